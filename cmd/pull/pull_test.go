package pull

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/difyctl/difyctl/compose"
	"github.com/difyctl/difyctl/internal/engine"
	"github.com/difyctl/difyctl/internal/engine/enginefake"

	"github.com/difyctl/difyctl/internal/cmdutil"
	"github.com/difyctl/difyctl/internal/iostreams"
)

func TestFlagsToOptions(t *testing.T) {
	io, _, _, _ := iostreams.Test()
	f := cmdutil.NewFactory()
	f.IOStreams = io
	f.ProjectDir, f.ProjectNameFlag = t.TempDir(), "p"
	var got *Options
	cmd := NewCmd(f, func(_ context.Context, o *Options) error { got = o; return nil })
	cmd.SetArgs([]string{"api", "web", "--progress", "plain"})
	if err := cmd.Execute(); err != nil {
		t.Fatal(err)
	}
	if got == nil || len(got.Services) != 2 || got.Services[1] != "web" || got.Progress != "plain" || got.Load.ProjectName != "p" || got.Load.ProjectDir != f.ProjectDir {
		t.Fatalf("options %+v", got)
	}
}

// Run pulls every service's image and says which changed.
func TestRunPulls(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "compose.yaml")
	os.WriteFile(file, []byte("services:\n  api:\n    image: app:1\n  web:\n    image: app:1\n"), 0o644)
	e := enginefake.New()
	e.AddImage("app:1", enginefake.Image{ID: "sha256:aaaa000000000001"})
	e.SetRemote("app:1", enginefake.Image{ID: "sha256:aaaa000000000002"})
	io, _, out, _ := iostreams.Test()
	o := &Options{IO: io, Progress: "quiet", Getenv: func(string) string { return "" },
		Load:   compose.LoadOptions{ProjectDir: dir, ProjectName: "p", Files: []string{file}},
		Engine: func(context.Context) (engine.Engine, error) { return e, nil }}
	if err := Run(context.Background(), o); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "app:1: updated") || !strings.Contains(out.String(), "[api web]") {
		t.Fatalf("%q", out.String())
	}
	o.Load.Files = []string{filepath.Join(dir, "missing.yaml")}
	if err := Run(context.Background(), o); cmdutil.ExitCode(err) != cmdutil.ExitFailure {
		t.Fatalf("%v", err)
	}
}
