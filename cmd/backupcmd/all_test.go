package backupcmd

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"filippo.io/age"

	"github.com/difyctl/difyctl/backup"
	"github.com/difyctl/difyctl/internal/cmdutil"
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
