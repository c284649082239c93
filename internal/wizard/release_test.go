package wizard

import (
	"bytes"
	"context"
	"crypto/rand"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/difyctl/difyctl/envgen"
	"github.com/difyctl/difyctl/internal/catalog"
	"github.com/difyctl/difyctl/internal/release"
	"github.com/difyctl/difyctl/profiles"
	"github.com/difyctl/difyctl/templates"
)

// older is the catalogue's release before the newest, and what changes
// from it to the newest: the test's evidence of which release was written.
func older(t *testing.T) (*templates.Release, *catalog.Changes) {
	t.Helper()
	all := templates.Releases()
	if len(all) < 2 {
		t.Fatal("the catalogue holds one release")
	}
	old := all[len(all)-2]
	c, err := catalog.Diff(old, templates.Latest())
	if err != nil {
		t.Fatal(err)
	}
	if len(c.VarsAdded) == 0 || len(c.FilesChanged) == 0 {
		t.Fatalf("%s and %s differ in no variable or support file: nothing tells them apart", old.Version, templates.Latest().Version)
	}
	return old, c
}

// checkRelease checks that dir holds a deployment of rel: the record, a
// .env of rel's schema (none of the other release's variables, valid),
// and rel's version of every support file that differs between them.
func checkRelease(t *testing.T, dir string, rel *templates.Release, c *catalog.Changes) {
	t.Helper()
	rec, err := release.Read(dir)
	if err != nil || rec == nil || rec.Release != rel.Version {
		t.Fatalf("release record: %+v %v, want %s", rec, err, rel.Version)
	}
	d, err := envgen.ReadFile(filepath.Join(dir, ".env"))
	if err != nil {
		t.Fatal(err)
	}
	env := d.Map()
	if v := d.TemplateVersion(); v != rel.Version {
		t.Errorf("the .env was written for Dify %q, want %s", v, rel.Version)
	}
	newer := 0
	for _, v := range c.VarsAdded {
		if _, ok := env[v]; ok {
			newer++
		}
	}
	if newest := rel == templates.Latest(); newest && newer == 0 || !newest && newer > 0 {
		t.Errorf("Dify %s's .env holds %d of the %d variables the newest release added", rel.Version, newer, len(c.VarsAdded))
	}
	if fs := envgen.Validate(d, envgen.SchemaFor(rel)); envgen.HasErrors(fs, false) {
		t.Errorf("the .env does not validate against Dify %s: %v", rel.Version, fs)
	}
	for _, p := range c.FilesChanged {
		want, err := fs.ReadFile(rel.SupportFiles(), p)
		if err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(p)))
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("support file %s is not Dify %s's (%v)", p, rel.Version, err)
		}
	}
}

// Choosing the older release writes that release's deployment; the
// screens show it (the review names it; the Secrets screen has none of the
// newer release's secrets).
func TestChooseOlderRelease(t *testing.T) {
	old, c := older(t)
	env := testEnv(t, false)
	m := New(env)
	press(m, "enter")
	if m.Step() != StepRelease || m.Answers().Release != templates.Latest().Version || !strings.Contains(m.View(), "> "+templates.Latest().Version+"  "+DefaultLabel) {
		t.Fatalf("the newest is not preselected and marked:\n%s", m.View())
	}
	for m.relNames[m.cursor] != old.Version {
		press(m, "k")
	}
	if !strings.Contains(m.View(), "an older release") {
		t.Fatalf("no note on the older release:\n%s", m.View())
	}
	press(m, "enter", "enter", "enter", "tab")
	if m.Step() != StepSecrets {
		t.Fatalf("step %d:\n%s", m.Step(), m.View())
	}
	for _, n := range m.secrets() {
		if _, ok := envgen.SchemaFor(old).Lookup(n); !ok {
			t.Errorf("the Secrets screen lists %s, which Dify %s does not have", n, old.Version)
		}
	}
	press(m, "enter")
	if !strings.Contains(m.View(), "Dify "+old.Version+", database postgresql") {
		t.Fatalf("the review does not name the release:\n%s", m.View())
	}
	press(m, "enter")
	if !m.Written() || m.Result().Release != old.Version || !strings.Contains(m.View(), "for Dify "+old.Version) {
		t.Fatalf("written %v, release %q:\n%s", m.Written(), m.Result().Release, m.View())
	}
	checkRelease(t, filepath.Dir(env.Path), old, c)
	if msg := WrittenMessage(env.Path, m.Result()); !strings.Contains(msg, "for Dify "+old.Version) {
		t.Errorf("written message %q", msg)
	}
}

// By default the newest release is written, as init writes it.
func TestDefaultReleaseIsNewest(t *testing.T) {
	_, c := older(t)
	env := testEnv(t, false)
	m := New(env)
	press(m, "enter", "enter", "enter", "enter", "tab", "enter", "enter")
	if !m.Written() {
		t.Fatalf("not written:\n%s", m.View())
	}
	checkRelease(t, filepath.Dir(env.Path), templates.Latest(), c)
}

// --release preselects; the operator may still choose another.
func TestReleasePreselected(t *testing.T) {
	old, c := older(t)
	env := testEnv(t, false)
	env.Release = "v" + old.Version
	m := New(env)
	press(m, "enter")
	if m.Answers().Release != old.Version || !strings.Contains(m.View(), "> "+old.Version) {
		t.Fatalf("--release %s not preselected:\n%s", old.Version, m.View())
	}
	// Generated was made for another release: not used for this one.
	press(m, "enter", "enter", "enter", "tab", "enter", "enter")
	checkRelease(t, filepath.Dir(env.Path), old, c)
}

// An existing deployment keeps its release: the step shows it fixed with
// the way to change it, the .env is completed by that release's schema
// (not the newest's), and the record is left as it is; also when starting
// fresh.
func TestEditKeepsRecordedRelease(t *testing.T) {
	old, c := older(t)
	for _, fresh := range []bool{false, true} {
		dir := t.TempDir()
		sel, _ := profiles.Select(nil, false)
		d, err := envgen.Generate(envgen.SchemaFor(old), sel, rand.Reader, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		env := Env{Path: filepath.Join(dir, ".env"), Deployed: old.Version, DeployedFrom: "recorded in " + release.FileName}
		writeEnv(t, &env, d.Bytes())
		if err := release.Write(dir, release.Record{Release: old.Version, Source: release.SourceInit, At: time.Unix(1, 0).UTC()}); err != nil {
			t.Fatal(err)
		}
		recBefore, _ := os.ReadFile(release.Path(dir))
		m := New(env)
		if fresh {
			press(m, "down")
		}
		press(m, "enter")
		v := m.View()
		if m.Answers().Release != old.Version || !strings.Contains(v, "> "+old.Version) || !strings.Contains(squash(v), squash("difyctl upgrade --to VERSION")) || !strings.Contains(squash(v), squash("deploys Dify "+old.Version+" (recorded in .difyctl-release)")) {
			t.Fatalf("fresh=%v: the recorded release is not shown fixed:\n%s", fresh, v)
		}
		press(m, "j")
		if m.cursor != index(m.relNames, old.Version) || !strings.Contains(m.View(), "the release is fixed") {
			t.Fatalf("fresh=%v: the release moved:\n%s", fresh, m.View())
		}
		press(m, "enter", "enter", "enter", "tab", "enter")
		if !strings.Contains(m.View(), "Dify "+old.Version+" (kept)") {
			t.Fatalf("fresh=%v: review:\n%s", fresh, m.View())
		}
		for _, ch := range m.changes {
			if index(c.VarsAdded, ch.Var) >= 0 && c.VarsAdded[index(c.VarsAdded, ch.Var)] == ch.Var {
				t.Errorf("fresh=%v: the review adds %s, a variable of the newer release", fresh, ch.Var)
			}
		}
		press(m, "enter")
		if !m.Written() || m.Result().Release != old.Version {
			t.Fatalf("fresh=%v: not written:\n%s", fresh, m.View())
		}
		checkRelease(t, dir, old, &catalog.Changes{VarsAdded: c.VarsAdded})
		if recAfter, _ := os.ReadFile(release.Path(dir)); !bytes.Equal(recBefore, recAfter) {
			t.Errorf("fresh=%v: the release record changed:\n%s", fresh, recAfter)
		}
		if _, err := os.Stat(filepath.Join(dir, filepath.FromSlash(c.FilesChanged[0]))); err == nil {
			t.Errorf("fresh=%v: editing a deployment wrote support files", fresh)
		}
	}
}

// A .env without a record deploys the newest (what up loads it with):
// that is what the step shows, fixed.
func TestEditWithoutRecordShowsNewest(t *testing.T) {
	m := New(testEnv(t, true))
	press(m, "enter")
	if m.Answers().Release != templates.Latest().Version || !strings.Contains(m.View(), "no release record") {
		t.Fatalf("release %q:\n%s", m.Answers().Release, m.View())
	}
}

// The plain prompts: the release by number, written as chosen; for an
// existing deployment, the fixed release and the way to change it.
func TestAccessibleRelease(t *testing.T) {
	old, c := older(t)
	env := testEnv(t, false)
	num := index(templates.Versions(), old.Version) + 1
	in := strings.NewReader("9\n" + string(rune('0'+num)) + "\n\n\n\n\n\n\n\ny\nn\n")
	var out strings.Builder
	res, err := Accessible(context.Background(), in, &out, env)
	if err != nil || !res.Written || res.Release != old.Version {
		t.Fatalf("%v %+v\n%s", err, res, out.String())
	}
	o := out.String()
	if !strings.Contains(o, templates.Latest().Version+"  "+DefaultLabel) || !strings.Contains(o, `"9" is not one of the choices`) || !strings.Contains(o, "Dify "+old.Version+", database") {
		t.Fatalf("output:\n%s", o)
	}
	checkRelease(t, filepath.Dir(env.Path), old, c)

	env = testEnv(t, true)
	env.Deployed, env.DeployedFrom = old.Version, "recorded in "+release.FileName
	out.Reset()
	if _, err := Accessible(context.Background(), strings.NewReader("e\n"), &out, env); err == nil {
		t.Fatal("input ended, yet no error")
	}
	if o := out.String(); !strings.Contains(o, "Dify release: This project deploys Dify "+old.Version) || !strings.Contains(o, "difyctl upgrade --to VERSION") || strings.Contains(o, "number or version") {
		t.Fatalf("fixed release, accessible:\n%s", o)
	}
}

// The database and vector-store choices are those the chosen release's
// compose file declares.
func TestProfilesOfRelease(t *testing.T) {
	if got := declaredOnly([]string{"weaviate", "qdrant", "oracle"}, map[string]bool{"weaviate": true, "oracle": true}); strings.Join(got, ",") != "weaviate,oracle" {
		t.Fatalf("declaredOnly: %v", got)
	}
	m := New(testEnv(t, false))
	for _, v := range m.relNames {
		m.a().Release = v
		svcs, err := catalog.Services(m.rel())
		if err != nil {
			t.Fatal(err)
		}
		declared := map[string]bool{}
		for _, s := range svcs {
			for _, p := range s.Profiles {
				declared[p] = true
			}
		}
		for _, n := range append(m.dbNames(), m.vecNames()...) {
			if !declared[n] {
				t.Errorf("Dify %s: %s offered but not declared", v, n)
			}
		}
		if len(m.dbNames()) < 2 || len(m.vecNames()) < 10 {
			t.Errorf("Dify %s: %d databases, %d vector stores offered", v, len(m.dbNames()), len(m.vecNames()))
		}
	}
}

// A failed .env write leaves nothing of the release behind.
func TestFailedWriteLeavesNoRelease(t *testing.T) {
	env := testEnv(t, false)
	dir := filepath.Dir(env.Path)
	if err := os.Mkdir(env.Path, 0o755); err != nil { // .env is a directory: the write fails
		t.Fatal(err)
	}
	m := New(env)
	press(m, "enter", "enter", "enter", "enter", "tab", "enter", "enter")
	if m.Written() || m.errMsg == "" {
		t.Fatalf("written over a directory:\n%s", m.View())
	}
	if _, err := os.Stat(release.Path(dir)); !os.IsNotExist(err) {
		t.Error("a release record is left after a failed write")
	}
	var left []string
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && p != dir && p != env.Path && !strings.HasPrefix(p, env.Path+string(filepath.Separator)) {
			left = append(left, p)
		}
		return nil
	})
	if len(left) > 0 {
		t.Errorf("left after a failed write: %v", left)
	}
}

// A directory that records a release but has no .env (removed by hand):
// the release is fixed to the recorded one, the new .env and the missing
// support files are that release's, and the record stays as it was.
func TestRecordWithoutEnv(t *testing.T) {
	old, c := older(t)
	env := testEnv(t, false)
	dir := filepath.Dir(env.Path)
	if err := release.Write(dir, release.Record{Release: old.Version, Source: release.SourceUpgrade, At: time.Unix(1, 0).UTC()}); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(release.Path(dir))
	env.Deployed, env.DeployedFrom = old.Version, "recorded in "+release.FileName
	m := New(env)
	press(m, "enter", "j", "enter", "enter", "enter", "tab", "enter")
	if !strings.Contains(m.View(), "Dify "+old.Version+" (kept)") || !strings.Contains(squash(m.View()), squash("stays as it is")) {
		t.Fatalf("review:\n%s", m.View())
	}
	press(m, "enter")
	if !m.Written() {
		t.Fatalf("not written:\n%s", m.View())
	}
	checkRelease(t, dir, old, c)
	if after, _ := os.ReadFile(release.Path(dir)); !bytes.Equal(before, after) {
		t.Errorf("the record changed:\n%s", after)
	}
}
