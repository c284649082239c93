package setup

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	tea "github.com/charmbracelet/bubbletea"

	"github.com/difyctl/difyctl/envgen"
	"github.com/difyctl/difyctl/internal/cmdutil"
	"github.com/difyctl/difyctl/internal/iostreams"
	"github.com/difyctl/difyctl/internal/release"
	"github.com/difyctl/difyctl/templates"
)

// panicky wraps the wizard and panics on the first key, as a bug would.
type panicky struct{ tea.Model }

func (p panicky) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	if _, ok := msg.(tea.KeyMsg); ok {
		var s []int
		_ = s[3] // index out of range
	}
	return p, nil
}

func opts(t *testing.T, keys string, wrap func(tea.Model) tea.Model) (*Options, *bytes.Buffer) {
	io, _, _, errOut := iostreams.Test()
	io.SetTTY(true, true, true)
	o := &Options{IO: io, ProjectDir: t.TempDir(), Getenv: func(k string) string {
		if k == "TERM" {
			return "xterm-256color"
		}
		return ""
	}}
	o.Program = func(ctx context.Context, m tea.Model) error {
		if wrap != nil {
			m = wrap(m)
		}
		var out bytes.Buffer
		_, err := tea.NewProgram(m, tea.WithInput(strings.NewReader(keys)), tea.WithOutput(&out), tea.WithContext(ctx), tea.WithoutSignalHandler()).Run()
		return err
	}
	return o, errOut
}

func TestPanicIsReportedAsABug(t *testing.T) {
	o, _ := opts(t, "x", func(m tea.Model) tea.Model { return panicky{m} })
	err := Run(context.Background(), o)
	if err == nil || cmdutil.ExitCode(err) != cmdutil.ExitFailure || !strings.Contains(err.Error(), "this is a bug in difyctl") {
		t.Fatalf("panic ended as %v (exit %d)", err, cmdutil.ExitCode(err))
	}
	if _, err := os.Stat(filepath.Join(o.ProjectDir, ".env")); !os.IsNotExist(err) {
		t.Fatal("a .env was written")
	}
}

func TestExitCodes(t *testing.T) {
	o, errOut := opts(t, "q", nil)
	err := Run(context.Background(), o)
	if cmdutil.ExitCode(err) != cmdutil.ExitFailure || !strings.Contains(errOut.String(), "quit; nothing written") {
		t.Fatalf("q: exit %d, %q", cmdutil.ExitCode(err), errOut)
	}
	o, errOut = opts(t, "\x03", nil)
	err = Run(context.Background(), o)
	if cmdutil.ExitCode(err) != cmdutil.ExitInterrupted || !strings.Contains(errOut.String(), "interrupted; nothing written") {
		t.Fatalf("ctrl+c: exit %d, %q", cmdutil.ExitCode(err), errOut)
	}
}

func TestDumbTerminalIsAccessible(t *testing.T) {
	o, errOut := opts(t, "", nil)
	o.Getenv = func(k string) string {
		if k == "TERM" {
			return "dumb"
		}
		return ""
	}
	o.Program = func(context.Context, tea.Model) error { t.Fatal("full-screen wizard on TERM=dumb"); return nil }
	err := Run(context.Background(), o)
	if cmdutil.ExitCode(err) != cmdutil.ExitFailure || !strings.Contains(errOut.String(), "Dify release:") || strings.Contains(errOut.String(), "\x1b") {
		t.Fatalf("TERM=dumb: %v\n%q", err, errOut)
	}
}

func TestFlagsToOptions(t *testing.T) {
	f, _, _ := cmdutil.NewTestFactory(t.TempDir(), map[string]string{"ACCESSIBLE": "1"})
	if err := os.WriteFile(filepath.Join(f.ProjectDir, ".env"), []byte("DB_TYPE=mysql\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var got *Options
	cmd := NewCmd(f, func(_ context.Context, o *Options) error { got = o; return nil })
	cmd.SetArgs([]string{"--accessible"})
	if err := cmd.Execute(); err != nil {
		t.Fatal(err)
	}
	if got.ProjectDir != f.ProjectDir || !got.Accessible || got.StartUp == nil || got.IO != f.IOStreams || got.Getenv("ACCESSIBLE") != "1" || got.Existing == nil {
		t.Fatalf("%+v", got)
	}
	if v, _ := got.Existing.Get("DB_TYPE"); v != "mysql" {
		t.Fatalf("the factory's .env was not passed on: DB_TYPE %q", v)
	}
	// The wizard starts from the .env as read.
	env, err := Env(got.ProjectDir, got.Existing, got.Release)
	if err != nil || env.Existing != got.Existing || env.Path != filepath.Join(f.ProjectDir, ".env") || env.Generated == nil {
		t.Fatalf("%v %+v", err, env)
	}
}

// --release reaches the options and preselects; the wizard run through
// bubbletea writes that release's deployment (record, .env's template).
func TestReleaseFlagWritesThatRelease(t *testing.T) {
	old := templates.Releases()[0]
	if old == templates.Latest() {
		t.Fatal("the catalogue holds one release")
	}
	f, _, _ := cmdutil.NewTestFactory(t.TempDir(), nil)
	var got *Options
	cmd := NewCmd(f, func(_ context.Context, o *Options) error { got = o; return nil })
	cmd.SetArgs([]string{"--release", old.Version})
	if err := cmd.Execute(); err != nil {
		t.Fatal(err)
	}
	if got.Release != old.Version {
		t.Fatalf("--release: %q", got.Release)
	}

	// welcome, release (preselected), database, vector, access, secrets, review, not now
	o, errOut := opts(t, "\r\r\r\r\t\r\rn", nil)
	o.Release = old.Version
	if err := Run(context.Background(), o); err != nil {
		t.Fatalf("%v\n%s", err, errOut)
	}
	if !strings.Contains(errOut.String(), "for Dify "+old.Version) {
		t.Errorf("the written message does not name the release: %q", errOut)
	}
	rec, err := release.Read(o.ProjectDir)
	if err != nil || rec == nil || rec.Release != old.Version {
		t.Fatalf("release record %+v %v", rec, err)
	}
	d, err := envgen.ReadFile(filepath.Join(o.ProjectDir, ".env"))
	if err != nil || d.TemplateVersion() != old.Version {
		t.Fatalf(".env for %q (%v), want %s", d.TemplateVersion(), err, old.Version)
	}
}

// A release the catalogue lacks is refused before anything is asked or
// written, naming `difyctl releases`.
func TestBadReleaseRefused(t *testing.T) {
	o, _ := opts(t, "", nil)
	o.Program = func(context.Context, tea.Model) error { t.Fatal("the wizard ran with a bad --release"); return nil }
	o.Release = "9.9.9"
	err := Run(context.Background(), o)
	if err == nil || cmdutil.ExitCode(err) != cmdutil.ExitUsage || !strings.Contains(err.Error(), "9.9.9") || !strings.Contains(err.Error(), "difyctl releases") {
		t.Fatalf("--release 9.9.9: %v (exit %d)", err, cmdutil.ExitCode(err))
	}
	if entries, _ := os.ReadDir(o.ProjectDir); len(entries) > 0 {
		t.Fatalf("written: %v", entries)
	}
}

// A project that deploys a release keeps it: --release naming another is
// refused with the way to change it; the wizard is told the recorded one.
func TestExistingDeploymentKeepsRelease(t *testing.T) {
	old := templates.Releases()[0]
	dir := t.TempDir()
	if err := release.Write(dir, release.Record{Release: old.Version, Source: release.SourceInit}); err != nil {
		t.Fatal(err)
	}
	existing, _ := envgen.Parse([]byte("DB_TYPE=postgresql\nVECTOR_STORE=weaviate\n"))
	env, err := Env(dir, existing, "")
	if err != nil || env.Deployed != old.Version || env.Release != old.Version || env.Generated.TemplateVersion() != old.Version {
		t.Fatalf("%v: deployed %q, release %q, generated for %q", err, env.Deployed, env.Release, env.Generated.TemplateVersion())
	}
	// A record without a .env is a deployment too.
	if env, err := Env(dir, nil, ""); err != nil || env.Deployed != old.Version {
		t.Fatalf("record only: %v %q", err, env.Deployed)
	}
	if _, err := Env(dir, existing, old.Version); err != nil {
		t.Fatalf("--release naming the recorded one: %v", err)
	}
	_, err = Env(dir, existing, templates.Latest().Version)
	if err == nil || cmdutil.ExitCode(err) != cmdutil.ExitUsage || !strings.Contains(err.Error(), "difyctl upgrade --to "+templates.Latest().Version) || !strings.Contains(err.Error(), "deploys Dify "+old.Version) {
		t.Fatalf("--release changing a deployment's release: %v", err)
	}
	// Without a record, a .env deploys the newest.
	if env, err := Env(t.TempDir(), existing, ""); err != nil || env.Deployed != templates.Latest().Version {
		t.Fatalf("no record: %v %q", err, env.Deployed)
	}
	// A new deployment: nothing deployed, the choice is open.
	if env, err := Env(t.TempDir(), nil, ""); err != nil || env.Deployed != "" || env.Release != templates.Latest().Version {
		t.Fatalf("new: %v %+v", err, env)
	}
}
