package lifecycle

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"github.com/difyctl/difyctl/internal/cmdutil"
	"github.com/difyctl/difyctl/internal/iostreams"
)

func factory(t *testing.T) *cmdutil.Factory {
	t.Helper()
	io, _, _, _ := iostreams.Test()
	f := cmdutil.NewFactory()
	f.IOStreams = io
	f.Getenv = func(k string) string { return map[string]string{"DIFYCTL_LOCK_DIR": "/locks"}[k] }
	f.ProjectDir, f.ProjectNameFlag, f.Output = t.TempDir(), "shop", cmdutil.OutputJSON
	return f
}

func execute(t *testing.T, cmd *cobra.Command, args ...string) {
	t.Helper()
	cmd.SetArgs(args)
	cmd.SilenceErrors, cmd.SilenceUsage = true, true
	if err := cmd.Execute(); err != nil {
		t.Fatal(err)
	}
}

// checkCommon: the factory's project, streams, environment and engine
// reach the options.
func checkCommon(t *testing.T, f *cmdutil.Factory, o *Options, services ...string) {
	t.Helper()
	if o.Project != "shop" || !o.JSON || o.IO != f.IOStreams || o.Engine == nil || o.Getenv == nil || o.Getenv("DIFYCTL_LOCK_DIR") != "/locks" ||
		strings.Join(o.Services, ",") != strings.Join(services, ",") {
		t.Fatalf("options %+v", o)
	}
}

func TestDownFlags(t *testing.T) {
	f := factory(t)
	var got *DownOptions
	execute(t, NewCmdDown(f, func(_ context.Context, o *DownOptions) error { got = o; return nil }), "--volumes", "-y", "-t", "7s", "--progress", "plain")
	checkCommon(t, f, &got.Options)
	if !got.Volumes || !got.Yes || got.Timeout == nil || *got.Timeout != 7*time.Second || got.Progress != "plain" {
		t.Fatalf("%+v", got)
	}
	execute(t, NewCmdDown(f, func(_ context.Context, o *DownOptions) error { got = o; return nil }))
	if got.Volumes || got.Yes || got.Timeout != nil || got.Progress != "auto" {
		t.Fatalf("defaults %+v", got)
	}
}

func TestPsFlags(t *testing.T) {
	f := factory(t)
	var got *PsOptions
	execute(t, NewCmdPs(f, func(_ context.Context, o *PsOptions) error { got = o; return nil }), "api", "--all=false")
	checkCommon(t, f, &got.Options, "api")
	if got.All {
		t.Fatal("--all=false")
	}
	execute(t, NewCmdPs(f, func(_ context.Context, o *PsOptions) error { got = o; return nil }))
	if !got.All {
		t.Fatal("ps lists stopped containers by default")
	}
}

func TestLogsFlags(t *testing.T) {
	f := factory(t)
	var got *LogsOptions
	execute(t, NewCmdLogs(f, func(_ context.Context, o *LogsOptions) error { got = o; return nil }), "api", "web", "-f", "-n", "20", "--since", "10m")
	checkCommon(t, f, &got.Options, "api", "web")
	if l := got.Logs; !l.Follow || l.Tail != "20" || l.Since != "10m" || !l.JSON || l.Escape {
		t.Fatalf("%+v", l)
	}
	// A --since the engine cannot read is refused before anything runs.
	ran := false
	cmd := NewCmdLogs(f, func(context.Context, *LogsOptions) error { ran = true; return nil })
	cmd.SetArgs([]string{"--since", "yesterday"})
	cmd.SilenceErrors, cmd.SilenceUsage = true, true
	if err := cmd.Execute(); ran || cmdutil.ExitCode(err) != cmdutil.ExitUsage {
		t.Fatalf("ran %v: %v", ran, err)
	}
}

func TestVerbFlags(t *testing.T) {
	f := factory(t)
	var got *VerbOptions
	runF := func(_ context.Context, o *VerbOptions) error { got = o; return nil }
	execute(t, NewCmdStop(f, runF), "api", "-t", "3s")
	checkCommon(t, f, &got.Options, "api")
	if got.Verb != "stop" || got.Timeout == nil || *got.Timeout != 3*time.Second || got.WaitTimeout != 0 {
		t.Fatalf("stop %+v", got)
	}
	execute(t, NewCmdStart(f, runF), "--wait-timeout", "1m")
	if got.Verb != "start" || got.Timeout != nil || got.WaitTimeout != time.Minute {
		t.Fatalf("start %+v", got)
	}
	execute(t, NewCmdRestart(f, runF))
	if got.Verb != "restart" || got.Timeout != nil || got.WaitTimeout != 10*time.Minute {
		t.Fatalf("restart %+v", got)
	}
	// start has no --timeout: it stops nothing.
	if NewCmdStart(f, runF).Flags().Lookup("timeout") != nil || NewCmdStop(f, runF).Flags().Lookup("wait-timeout") != nil {
		t.Fatal("start takes --timeout or stop --wait-timeout")
	}
}

// Act refuses a verb it does not know before it locks or connects.
func TestActUnknownVerb(t *testing.T) {
	if err := Act(context.Background(), &VerbOptions{Verb: "pause"}); err == nil || !strings.Contains(err.Error(), "pause") {
		t.Fatal(err)
	}
}
