package catalog

import (
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/dotenv"

	"github.com/difyctl/difyctl/compose"

	"github.com/difyctl/difyctl/templates"
)

func release(t *testing.T, v string) *templates.Release {
	t.Helper()
	r, err := templates.Lookup(v)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestDiffUpgrade(t *testing.T) {
	c, err := Diff(release(t, "1.15.0"), release(t, "1.16.0"))
	if err != nil {
		t.Fatal(err)
	}
	var imgs []string
	for _, i := range c.Images {
		imgs = append(imgs, i.Service+" "+i.From+" "+i.To)
	}
	want := []string{
		"api langgenius/dify-api:1.15.0 langgenius/dify-api:1.16.0",
		"api_websocket langgenius/dify-api:1.15.0 langgenius/dify-api:1.16.0",
		"web langgenius/dify-web:1.15.0 langgenius/dify-web:1.16.0",
		"worker langgenius/dify-api:1.15.0 langgenius/dify-api:1.16.0",
		"worker_beat langgenius/dify-api:1.15.0 langgenius/dify-api:1.16.0",
	}
	if !slices.Equal(imgs, want) {
		t.Errorf("images %q, want %q", imgs, want)
	}
	var added []string
	for _, s := range c.ServicesAdded {
		added = append(added, s.Name)
	}
	if !slices.Equal(added, []string{"agent_backend", "local_sandbox"}) || len(c.ServicesRemoved) != 0 {
		t.Errorf("services added %v removed %v", added, c.ServicesRemoved)
	}
	for _, v := range []string{"API_WEBSOCKET_WORKER_AMOUNT", "REDIS_KEEPALIVE", "DIFY_AGENT_SERVER_SECRET_KEY", "WORKFLOW_GENERATION_TIMEOUT_MS"} {
		if !slices.Contains(c.VarsAdded, v) {
			t.Errorf("%s not among the variables added: %v", v, c.VarsAdded)
		}
	}
	if slices.Contains(c.VarsAdded, "NEXT_PUBLIC_ENABLE_AGENT_V2") || slices.Contains(c.VarsRemoved, "ENABLE_AGENT_V2") {
		t.Errorf("a rename shown as add/remove: %v %v", c.VarsAdded, c.VarsRemoved)
	}
	if len(c.VarsRenamed) != 1 || c.VarsRenamed[0] != (Rename{From: "ENABLE_AGENT_V2", To: "NEXT_PUBLIC_ENABLE_AGENT_V2"}) {
		t.Errorf("renames %v", c.VarsRenamed)
	}
	if len(c.VarsRemoved) != 0 {
		t.Errorf("removed %v", c.VarsRemoved)
	}
	if len(c.DefaultsChanged) != 1 || c.DefaultsChanged[0].Name != "NEXT_PUBLIC_ENABLE_FEATURE_PREVIEW" {
		t.Errorf("defaults changed %v", c.DefaultsChanged)
	}
	if !slices.Equal(c.FilesChanged, []string{"volumes/sandbox/conf/config.yaml"}) || len(c.FilesAdded)+len(c.FilesRemoved) != 0 {
		t.Errorf("files changed %v added %v removed %v", c.FilesChanged, c.FilesAdded, c.FilesRemoved)
	}
}

func TestDiffDowngradeIsTheReverse(t *testing.T) {
	up, _ := Diff(release(t, "1.15.0"), release(t, "1.16.0"))
	down, err := Diff(release(t, "1.16.0"), release(t, "1.15.0"))
	if err != nil {
		t.Fatal(err)
	}
	if len(down.ServicesRemoved) != len(up.ServicesAdded) || len(down.ServicesAdded) != 0 {
		t.Errorf("services: %v / %v", down.ServicesRemoved, down.ServicesAdded)
	}
	if !slices.Equal(down.VarsRemoved, sortedCopy(up.VarsAdded)) && len(down.VarsRemoved) != len(up.VarsAdded) {
		t.Errorf("removed %v, upgrade added %v", down.VarsRemoved, up.VarsAdded)
	}
	if len(down.VarsRenamed) != 1 || down.VarsRenamed[0] != (Rename{From: "NEXT_PUBLIC_ENABLE_AGENT_V2", To: "ENABLE_AGENT_V2"}) {
		t.Errorf("renames %v", down.VarsRenamed)
	}
	same, _ := Diff(release(t, "1.16.0"), release(t, "1.16.0"))
	if !same.Empty() {
		t.Errorf("a release differs from itself: %+v", same)
	}
}

func sortedCopy(s []string) []string { s = slices.Clone(s); sort.Strings(s); return s }

func TestDetect(t *testing.T) {
	cases := []struct {
		running map[string]string
		want    string
	}{
		{map[string]string{"api": "langgenius/dify-api:1.15.0", "web": "langgenius/dify-web:1.15.0", "redis": "redis:6-alpine"}, "1.15.0"},
		{map[string]string{"api": "langgenius/dify-api:1.16.0", "agent_backend": "langgenius/dify-agent-backend:1.16.0"}, "1.16.0"},
		// Half upgraded: no release runs these images.
		{map[string]string{"api": "langgenius/dify-api:1.16.0", "web": "langgenius/dify-web:1.15.0"}, ""},
		// Only images every release shares: cannot tell.
		{map[string]string{"redis": "redis:6-alpine", "nginx": "nginx:latest"}, ""},
		// A release difyctl does not carry.
		{map[string]string{"api": "langgenius/dify-api:1.9.0"}, ""},
		{nil, ""},
	}
	for _, c := range cases {
		if got := Detect(c.running); got != c.want {
			t.Errorf("Detect(%v) = %q, want %q", c.running, got, c.want)
		}
	}
}

// upstream returns ../shared/upstream/<v> or skips (fails under CI=true).
func upstream(t *testing.T, v string) string {
	dir, _ := filepath.Abs(filepath.Join("..", "..", "..", "shared", "upstream", v))
	if _, err := os.Stat(dir); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("CI=true: upstream's docker/ folder of %s: %v", v, err)
		}
		t.Skipf("no upstream copy: %v", err)
	}
	return dir
}

// upstreamVars are the variables upstream's .env.example and
// envs/**/*.env.example of a release set.
func upstreamVars(t *testing.T, dir string) map[string]bool {
	out := map[string]bool{}
	var files []string
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && filepath.Ext(p) == ".example" {
			files = append(files, p)
		}
		return nil
	})
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		m, err := dotenv.UnmarshalBytesWithLookup(b, func(string) (string, bool) { return "", false })
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		for k := range m {
			out[k] = true
		}
	}
	return out
}

// TestDiffMatchesUpstream: every variable upstream added between two
// catalogue releases is added (or the target of a rename) in difyctl's diff,
// every one upstream dropped is removed (or renamed away), and upstream's
// images agree.
func TestDiffMatchesUpstream(t *testing.T) {
	rs := templates.Releases()
	for i := 1; i < len(rs); i++ {
		from, to := rs[i-1], rs[i]
		a, b := upstreamVars(t, upstream(t, from.Version)), upstreamVars(t, upstream(t, to.Version))
		c, err := Diff(from, to)
		if err != nil {
			t.Fatal(err)
		}
		added := map[string]bool{}
		for _, v := range c.VarsAdded {
			added[v] = true
		}
		removed := map[string]bool{}
		for _, v := range c.VarsRemoved {
			removed[v] = true
		}
		for _, r := range c.VarsRenamed {
			added[r.To], removed[r.From] = true, true
		}
		for v := range b {
			if !a[v] && !added[v] {
				t.Errorf("%s -> %s: upstream adds %s, difyctl's diff does not", from.Version, to.Version, v)
			}
		}
		for v := range a {
			if !b[v] && !removed[v] {
				t.Errorf("%s -> %s: upstream drops %s, difyctl's diff does not", from.Version, to.Version, v)
			}
		}
		for _, v := range []string{from.Version, to.Version} {
			cb, err := os.ReadFile(filepath.Join(upstream(t, v), "docker-compose.yaml"))
			if err != nil {
				t.Fatal(err)
			}
			if got, err := DetectCompose(cb); err != nil || got != v {
				t.Errorf("upstream's %s compose file recognised as %q (%v)", v, got, err)
			}
		}
	}
}

func TestRunningRelease(t *testing.T) {
	c := func(svc, img, rel string) compose.ProjectContainer {
		return compose.ProjectContainer{Service: svc, Image: img, Release: rel}
	}
	for _, tc := range []struct {
		cs   []compose.ProjectContainer
		want string
	}{
		{[]compose.ProjectContainer{c("api", "langgenius/dify-api:1.16.0", "1.16.0"), c("redis", "redis:6-alpine", "1.16.0")}, "Dify 1.16.0 (from the containers' labels)"},
		{[]compose.ProjectContainer{c("api", "langgenius/dify-api:1.15.0", ""), c("redis", "redis:6-alpine", "")}, "Dify 1.15.0 (recognised from the images)"},
		{[]compose.ProjectContainer{c("api", "langgenius/dify-api:1.16.0", "1.16.0"), c("web", "langgenius/dify-web:1.15.0", "1.15.0")}, "several releases (1.15.0, 1.16.0)"},
		{[]compose.ProjectContainer{c("api", "x:1", "")}, "unknown"},
	} {
		if got := RunningRelease(tc.cs, ""); !strings.Contains(got, tc.want) {
			t.Errorf("RunningRelease = %q, want %q", got, tc.want)
		}
	}
}

// After an upgrade, the services 1.16.0 did not change keep their 1.15.0
// containers: with the record, that is 1.16.0, not an unfinished upgrade;
// a service whose image 1.16.0 changed still on a 1.15.0 container is.
func TestRunningReleaseRecorded(t *testing.T) {
	old, cur := servicesOfRelease("1.15.0"), servicesOfRelease("1.16.0")
	var same, changed string
	for svc, s := range cur {
		if o, ok := old[svc]; ok && o.Image == s.Image && same == "" {
			same = svc
		}
		if o, ok := old[svc]; ok && o.Image != s.Image && changed == "" {
			changed = svc
		}
	}
	if same == "" || changed == "" {
		t.Fatalf("the catalogue has no service kept (%q) or changed (%q) between 1.15.0 and 1.16.0", same, changed)
	}
	c := func(svc, rel string) compose.ProjectContainer {
		return compose.ProjectContainer{Service: svc, Image: "anything:local", Release: rel}
	}
	for _, tc := range []struct {
		cs   []compose.ProjectContainer
		want string
	}{
		{[]compose.ProjectContainer{c(changed, "1.16.0"), c(same, "1.15.0")}, "Dify 1.16.0 (recorded; services it did not change keep their containers from 1.15.0)"},
		{[]compose.ProjectContainer{c(changed, "1.15.0"), c(same, "1.16.0")}, "an upgrade did not finish"},
		{[]compose.ProjectContainer{c(changed, "1.16.0"), c(same, "1.16.0")}, "Dify 1.16.0 (recorded)"},
		// A release this difyctl does not carry is not judged stale.
		{[]compose.ProjectContainer{c(changed, "1.16.0"), c(same, "0.0.1")}, "Dify 1.16.0 (recorded; services it did not change keep their containers from 0.0.1)"},
	} {
		if got := RunningRelease(tc.cs, "1.16.0"); !strings.Contains(got, tc.want) {
			t.Errorf("%v: RunningRelease = %q, want %q", tc.cs, got, tc.want)
		}
	}
}
