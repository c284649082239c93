package upgrade

import (
	"context"
	"testing"
	"time"

	"github.com/difyctl/difyctl/internal/cmdutil"
	"github.com/difyctl/difyctl/internal/iostreams"
)

func factory(t *testing.T) *cmdutil.Factory {
	io, _, _, _ := iostreams.Test()
	dir := t.TempDir()
	return &cmdutil.Factory{IOStreams: io, Output: "json", ProjectDir: dir, ProjectNameFlag: "p",
		Getenv: func(string) string { return "" }, Environ: func() []string { return []string{"A=1"} }}
}

func TestUpgradeFlags(t *testing.T) {
	var got *Options
	cmd := NewCmd(factory(t), func(_ context.Context, o *Options) error { got = o; return nil })
	cmd.SetArgs([]string{"--to", "1.16.0", "--dry-run", "--yes", "--allow-downgrade", "--bundle", "/b", "--no-bundle", "--wait-timeout", "3m"})
	if err := cmd.Execute(); err != nil {
		t.Fatal(err)
	}
	if got.To != "1.16.0" || !got.DryRun || !got.Yes || !got.AllowDowngrade || got.Bundle != "/b" || !got.NoBundle ||
		got.WaitTimeout != 3*time.Minute || !got.JSON || got.Project != "p" || got.Dir == "" || len(got.Environ) != 1 {
		t.Fatalf("options %+v", got)
	}
}

func TestRollbackFlags(t *testing.T) {
	var got *RollbackOptions
	cmd := NewCmdRollback(factory(t), func(_ context.Context, o *RollbackOptions) error { got = o; return nil })
	cmd.SetArgs([]string{"--yes"})
	if err := cmd.Execute(); err != nil {
		t.Fatal(err)
	}
	if !got.Yes || got.WaitTimeout != 10*time.Minute || got.Project != "p" {
		t.Fatalf("options %+v", got)
	}
}
