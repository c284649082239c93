package backupcmd

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"filippo.io/age"

	"github.com/difyctl/difyctl/backup"
	"github.com/difyctl/difyctl/internal/cmdutil"
	"github.com/difyctl/difyctl/internal/engine"
)

func TestAllFlags(t *testing.T) {
	id, _ := age.GenerateX25519Identity()
	f := testFactory(t)
	var got *AllOptions
	if err := run(t, NewCmdAll(f, func(_ context.Context, o *AllOptions) error { got = o; return nil }),
		"--backup-dir", "/b", "--encrypt-to", id.Recipient().String(), "--retention-days", "3", "--keep-min", "2", "--parallel", "4", "-o", "json"); err != nil {
		t.Fatal(err)
	}
	b := got.Bundle
	if b.Project != "shop" || b.Dir != "/b" || len(b.Recipients) != 1 || b.Retention != 72*time.Hour || b.KeepMin != 2 || b.Parallel != 4 || b.RedisPassword != "pw" || !got.JSON || got.Stream {
		t.Fatalf("%+v", got)
	}
	f = testFactory(t)
	if err := run(t, NewCmdAll(f, func(_ context.Context, o *AllOptions) error { got = o; return nil }), "--output", "-"); err != nil {
		t.Fatal(err)
	}
	if !got.Stream || got.Bundle.Dir != filepath.Join(f.ProjectDir, "backups", "all") {
		t.Fatalf("%+v", got)
	}
	for _, bad := range [][]string{{"--encrypt-to", "not-a-recipient"}, {"--output", "yaml"}, {"--keep-min", "-1"}} {
		ran := false
		if err := run(t, NewCmdAll(testFactory(t), func(context.Context, *AllOptions) error { ran = true; return nil }), bad...); ran || cmdutil.ExitCode(err) != cmdutil.ExitUsage {
			t.Errorf("%v: ran %v, %v", bad, ran, err)
		}
	}
}

func TestScheduleWhatAll(t *testing.T) {
	s := backup.Schedule{Cron: "0 3 * * *", Binary: "/usr/bin/difyctl", ProjectDir: "/srv/dify", Project: "dify", BackupDir: "/srv/dify/backups/all", Retention: 7, KeepMin: 3, What: "all"}
	cmd, err := s.Command()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(cmd, "'backup' 'all' '--quiet' '--scheduled' '0 3 * * *' '--backup-dir' '/srv/dify/backups/all'") || strings.Contains(cmd, "--service") {
		t.Fatalf("%s", cmd)
	}
	f := testFactory(t)
	var got *ScheduleOptions
	if err := run(t, NewCmdSchedule(f, func(_ context.Context, o *ScheduleOptions) error { got = o; return nil }), "install", "--what", "all", "--no-test"); err != nil {
		t.Fatal(err)
	}
	if got.Schedule.What != "all" || got.Schedule.BackupDir != filepath.Join(f.ProjectDir, "backups", "all") || got.CheckProject == nil {
		t.Fatalf("%+v", got.Schedule)
	}
	if err := run(t, NewCmdSchedule(testFactory(t), func(context.Context, *ScheduleOptions) error { return nil }), "install", "--what", "files"); cmdutil.ExitCode(err) != cmdutil.ExitUsage {
		t.Fatalf("--what files: %v", err)
	}
}

// A scheduled bundle that fails before it begins (here: the engine is
// unreachable) is recorded as failed in the status file, with the cause,
// so the status never shows the last success over it.
func TestScheduledAllRecordsEarlyFailure(t *testing.T) {
	dir := t.TempDir()
	f := testFactory(t)
	opts := &AllOptions{IO: f.IOStreams, Quiet: true, Timeout: time.Minute, Scheduled: "0 3 * * *"}
	opts.Bundle.Project, opts.Bundle.Dir, opts.Bundle.RedisPassword = "shop", dir, "pw"
	opts.Engine = func(context.Context) (engine.Engine, error) {
		return nil, errors.New("cannot connect to the Docker daemon at unix:///d.sock")
	}
	if err := RunAll(context.Background(), opts); err == nil {
		t.Fatal("RunAll with no engine succeeded")
	}
	st, err := backup.ReadStatus(backup.StatusPath(dir, "shop"))
	if err != nil || st == nil || st.LastAttempt == nil {
		t.Fatalf("no status recorded: %+v, %v", st, err)
	}
	if a := st.LastAttempt; a.Result != "failed" || !strings.Contains(a.Error, "cannot connect to the Docker daemon") {
		t.Fatalf("recorded %+v", a)
	}
}
