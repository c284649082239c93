package setup

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	tea "github.com/charmbracelet/bubbletea"

	"github.com/difyctl/difyctl/internal/cmdutil"
	"github.com/difyctl/difyctl/internal/iostreams"
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
