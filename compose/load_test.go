package compose

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v4"

	"github.com/compose-spec/compose-go/v2/types"

	"github.com/difyctl/difyctl/envgen"
	"github.com/difyctl/difyctl/profiles"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// detRand is a deterministic byte stream, so golden renders are stable.
type detRand struct{ n uint64 }

func (r *detRand) Read(p []byte) (int, error) {
	for i := 0; i < len(p); {
		var b [8]byte
		binary.LittleEndian.PutUint64(b[:], r.n)
		r.n++
		sum := sha256.Sum256(b[:])
		i += copy(p[i:], sum[:])
	}
	return len(p), nil
}

func projectFor(t testing.TB, names ...string) (string, profiles.Selection) {
	t.Helper()
	sel, err := profiles.Select(names, false)
	if err != nil {
		t.Fatal(err)
	}
	d, err := envgen.Generate(envgen.DefaultSchema(), sel, &detRand{}, time.Unix(0, 0))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := envgen.WriteFile(filepath.Join(dir, ".env"), d); err != nil {
		t.Fatal(err)
	}
	return dir, sel
}

func load(t testing.TB, dir string) *types.Project {
	t.Helper()
	p, err := Load(context.Background(), LoadOptions{ProjectDir: dir, ProjectName: "dify"})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestGoldenEveryPair renders every database × vector store pair and
// compares its shape with testdata/golden/<db>_<vector>.yaml.
func TestGoldenEveryPair(t *testing.T) {
	for _, db := range profiles.Names(profiles.Database) {
		for _, vs := range profiles.Names(profiles.Vector) {
			dir, sel := projectFor(t, db, vs)
			p := load(t, dir)
			want := map[string]bool{}
			for _, n := range sel.Names() {
				pr, _ := profiles.Get(n)
				for _, s := range pr.Services {
					want[s] = true
				}
			}
			for _, s := range []string{"api", "worker", "worker_beat", "web", "redis", "sandbox", "plugin_daemon", "ssrf_proxy", "nginx", "init_permissions"} {
				want[s] = true
			}
			for s := range want {
				if _, ok := p.Services[s]; !ok {
					t.Errorf("%s+%s: service %s missing", db, vs, s)
				}
			}
			out, err := yaml.Marshal(Summarize(p))
			if err != nil {
				t.Fatal(err)
			}
			golden := filepath.Join("testdata", "golden", db+"_"+vs+".yaml")
			if *update {
				os.MkdirAll(filepath.Dir(golden), 0o755)
				if err := os.WriteFile(golden, out, 0o644); err != nil {
					t.Fatal(err)
				}
				continue
			}
			b, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test ./compose -run Golden -update)", err)
			}
			if string(b) != string(out) {
				t.Errorf("%s+%s: render differs from %s (rerun with -update if intended)", db, vs, golden)
			}
		}
	}
}

func TestLoadRequiresSecrets(t *testing.T) {
	dir, _ := projectFor(t)
	d, _ := envgen.ReadFile(filepath.Join(dir, ".env"))
	d.Set("REDIS_PASSWORD", "")
	envgen.WriteFile(filepath.Join(dir, ".env"), d)
	_, err := Load(context.Background(), LoadOptions{ProjectDir: dir, ProjectName: "dify"})
	if err == nil || !strings.Contains(err.Error(), "REDIS_PASSWORD") {
		t.Fatalf("an empty REDIS_PASSWORD loaded: %v", err)
	}
}

func TestOverrideMerged(t *testing.T) {
	dir, _ := projectFor(t)
	os.WriteFile(filepath.Join(dir, "docker-compose.override.yaml"), []byte("services:\n  nginx:\n    image: nginx:custom\n"), 0o644)
	if img := load(t, dir).Services["nginx"].Image; img != "nginx:custom" {
		t.Fatalf("override not merged: %s", img)
	}
}

func TestMask(t *testing.T) {
	out := string(Mask([]byte("a: s3cret-long\nb: redis://:s3cret-long@x\nc: s3cr"), []string{"s3cret-long", "s3cr"}))
	if strings.Contains(out, "s3cr") {
		t.Fatalf("secret left: %s", out)
	}
}

// TestFidelityWithUpstream compares every pair with upstream's own
// docker-compose.yaml rendered by docker compose with the same .env and
// profiles. It needs an upstream docker/ folder (DIFYCTL_UPSTREAM_DIR) and a
// docker compose binary (DIFYCTL_COMPOSE_BIN); no upstream file is kept in
// this repository, so it skips without them.
func TestFidelityWithUpstream(t *testing.T) {
	up, bin := os.Getenv("DIFYCTL_UPSTREAM_DIR"), os.Getenv("DIFYCTL_COMPOSE_BIN")
	if up == "" || bin == "" {
		t.Skip("set DIFYCTL_UPSTREAM_DIR (upstream docker/ folder) and DIFYCTL_COMPOSE_BIN to compare with upstream")
	}
	for _, db := range profiles.Names(profiles.Database) {
		for _, vs := range profiles.Names(profiles.Vector) {
			dir, sel := projectFor(t, db, vs)
			ours := Summarize(load(t, dir))
			envFile := filepath.Join(dir, ".env")
			args := []string{"-f", filepath.Join(up, "docker-compose.yaml"), "--project-directory", dir, "--env-file", envFile, "-p", "dify"}
			for _, n := range sel.Names() {
				args = append(args, "--profile", n)
			}
			cmd := exec.Command(bin, append(args, "config", "--format", "json")...)
			cmd.Env = append(os.Environ(), "COMPOSE_PROFILES=")
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("%s+%s: docker compose config: %v", db, vs, err)
			}
			var p types.Project
			if err := json.Unmarshal(out, &p); err != nil {
				t.Fatal(err)
			}
			p.WorkingDir = dir
			theirs := Summarize(&p)
			for _, d := range diffSummaries(ours, theirs) {
				t.Logf("%s+%s: %s", db, vs, d)
			}
		}
	}
}

func diffSummaries(a, b Summary) []string {
	var out []string
	names := map[string]bool{}
	for n := range a.Services {
		names[n] = true
	}
	for n := range b.Services {
		names[n] = true
	}
	var sorted []string
	for n := range names {
		sorted = append(sorted, n)
	}
	sort.Strings(sorted)
	for _, n := range sorted {
		x, okx := a.Services[n]
		y, oky := b.Services[n]
		switch {
		case !okx:
			out = append(out, "service "+n+" only upstream")
		case !oky:
			out = append(out, "service "+n+" only difyctl")
		case !reflect.DeepEqual(x, y):
			xb, _ := json.Marshal(x)
			yb, _ := json.Marshal(y)
			out = append(out, "service "+n+": difyctl "+string(xb)+" upstream "+string(yb))
		}
	}
	if !reflect.DeepEqual(a.Networks, b.Networks) {
		out = append(out, fmt.Sprintf("networks differ: difyctl %v upstream %v", a.Networks, b.Networks))
	}
	return out
}
