package up

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/difyctl/difyctl/compose"
	"github.com/difyctl/difyctl/internal/cmdutil"
	"github.com/difyctl/difyctl/internal/iostreams"
)

func TestSetPolicies(t *testing.T) {
	o := &Options{}
	if err := setPolicies(o, true, true, ""); cmdutil.ExitCode(err) != cmdutil.ExitUsage {
		t.Fatalf("both recreate flags: %v", err)
	}
	for _, c := range []struct {
		no, force bool
		pull      string
		recreate  compose.RecreatePolicy
		want      compose.PullPolicy
	}{
		{false, false, "", compose.RecreateDiverged, ""},
		{true, false, "never", compose.RecreateNever, compose.PullNever},
		{false, true, "always", compose.RecreateForce, compose.PullAlways},
		{false, false, "missing", compose.RecreateDiverged, compose.PullMissing},
	} {
		if err := setPolicies(o, c.no, c.force, c.pull); err != nil || o.Recreate != c.recreate || o.Pull != c.want {
			t.Fatalf("%+v: %v %s %s", c, err, o.Recreate, o.Pull)
		}
	}
	if err := setPolicies(o, false, false, "sometimes"); cmdutil.ExitCode(err) != cmdutil.ExitUsage {
		t.Fatalf("--pull sometimes: %v", err)
	}
}

func factory(t *testing.T, env string) *cmdutil.Factory {
	t.Helper()
	io, _, _, _ := iostreams.Test()
	f := cmdutil.NewFactory()
	f.IOStreams = io
	f.Getenv = func(string) string { return "" }
	f.Environ = func() []string { return nil }
	f.ProjectDir = t.TempDir()
	if env != "" {
		writeFile(t, filepath.Join(f.ProjectDir, ".env"), env)
	}
	return f
}

// The flags map onto the options; nothing runs.
func TestFlagsToOptions(t *testing.T) {
	f := factory(t, "COMPOSE_PROJECT_NAME=shop\nDB_TYPE=mysql\n")
	var got *Options
	cmd := NewCmd(f, func(_ context.Context, o *Options) error { got = o; return nil })
	cmd.SetArgs([]string{"api", "web", "--profile", "mysql", "--profile=certbot", "--wait-timeout", "2m", "--progress", "plain",
		"--force-recreate", "--pull", "never", "--remove-orphans", "--no-deps", "--dry-run"})
	if err := cmd.Execute(); err != nil {
		t.Fatal(err)
	}
	switch {
	case got == nil:
		t.Fatal("runF not called")
	case strings.Join(got.Services, ",") != "api,web", strings.Join(got.Profiles, ",") != "mysql,certbot":
		t.Fatalf("services %v profiles %v", got.Services, got.Profiles)
	case got.WaitTimeout != 2*time.Minute || got.Progress != "plain" || got.Recreate != compose.RecreateForce || got.Pull != compose.PullNever || !got.Orphans || !got.NoDeps || !got.DryRun:
		t.Fatalf("options %+v", got)
	case got.Load.ProjectName != "shop" || got.Load.ProjectDir != f.ProjectDir || !got.Embedded || got.JSON:
		t.Fatalf("project %+v embedded %v", got.Load, got.Embedded)
	case got.Env == nil:
		t.Fatal("the factory's .env was not passed on")
	}
	if v, _ := got.Env.Get("DB_TYPE"); v != "mysql" {
		t.Fatalf("DB_TYPE %q", v)
	}
}

func TestFlagsDefaultsAndFiles(t *testing.T) {
	f := factory(t, "")
	file := filepath.Join(f.ProjectDir, "compose.yaml")
	writeFile(t, file, "services: {}\n")
	var got *Options
	cmd := NewCmd(f, func(_ context.Context, o *Options) error { got = o; return nil })
	cmd.SetArgs([]string{"-f", file})
	if err := cmd.Execute(); err != nil {
		t.Fatal(err)
	}
	if got.Embedded || got.Env != nil || got.WaitTimeout != 10*time.Minute || got.Recreate != compose.RecreateDiverged || got.Pull != "" || got.DryRun || len(got.Load.Files) != 1 || got.Load.ProjectName != "dify" {
		t.Fatalf("options %+v", got)
	}
	// A missing -f file is refused before anything runs (exit 2).
	ran := false
	cmd = NewCmd(factory(t, ""), func(context.Context, *Options) error { ran = true; return nil })
	cmd.SetArgs([]string{"-f", filepath.Join(t.TempDir(), "nope.yaml")})
	cmd.SilenceErrors, cmd.SilenceUsage = true, true
	if err := cmd.Execute(); ran || cmdutil.ExitCode(err) != cmdutil.ExitUsage {
		t.Fatalf("ran %v err %v", ran, err)
	}
	cmd = NewCmd(factory(t, ""), func(context.Context, *Options) error { ran = true; return nil })
	cmd.SetArgs([]string{"--no-recreate", "--force-recreate"})
	cmd.SilenceErrors, cmd.SilenceUsage = true, true
	if err := cmd.Execute(); ran || cmdutil.ExitCode(err) != cmdutil.ExitUsage {
		t.Fatalf("ran %v err %v", ran, err)
	}
}
