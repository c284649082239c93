package initcmd

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/difyctl/difyctl/internal/cmdutil"
)

func TestFlagsToOptions(t *testing.T) {
	f, _, _ := cmdutil.NewTestFactory(t.TempDir(), map[string]string{"COMPOSE_PROJECT_NAME": "shop"})
	f.Output = cmdutil.OutputJSON
	var got *Options
	cmd := NewCmd(f, func(_ context.Context, o *Options) error { got = o; return nil })
	cmd.SetArgs([]string{"--profile", "mysql", "--profile=qdrant", "--force"})
	if err := cmd.Execute(); err != nil {
		t.Fatal(err)
	}
	if got.ProjectDir != f.ProjectDir || got.Project != "shop" || !got.JSON || !got.Force || strings.Join(got.Profiles, ",") != "mysql,qdrant" || got.Now == nil {
		t.Fatalf("%+v", got)
	}
}

// Run writes the .env with the project's name and says so.
func TestRun(t *testing.T) {
	f, out, _ := cmdutil.NewTestFactory(t.TempDir(), nil)
	f.ProjectNameFlag = "shop"
	if err := NewCmd(f, nil).Execute(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(f.ProjectDir, ".env"))
	if err != nil || !strings.Contains(string(b), "COMPOSE_PROJECT_NAME=shop") {
		t.Fatalf("%v", err)
	}
	if !strings.Contains(out.String(), "wrote "+filepath.Join(f.ProjectDir, ".env")) || !strings.Contains(out.String(), "database postgresql, vector store weaviate") {
		t.Fatalf("%q", out.String())
	}
	// A second init without --force refuses (exit 2).
	f2, _, _ := cmdutil.NewTestFactory(f.ProjectDir, nil)
	cmd := NewCmd(f2, nil)
	cmd.SilenceErrors, cmd.SilenceUsage = true, true
	if err := cmd.Execute(); cmdutil.ExitCode(err) != cmdutil.ExitUsage || !strings.Contains(err.Error(), "--force") {
		t.Fatalf("%v", err)
	}
	if _, err := Write(t.TempDir(), nil, false, time.Now()); err != nil {
		t.Fatal(err)
	}
}
