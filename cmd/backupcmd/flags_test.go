package backupcmd

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"github.com/difyctl/difyctl/backup"
	"github.com/difyctl/difyctl/internal/cmdutil"
)

func testFactory(t *testing.T) *cmdutil.Factory {
	t.Helper()
	f, _, _ := cmdutil.NewTestFactory(t.TempDir(), map[string]string{"DOCKER_HOST": "unix:///d.sock", "DIFYCTL_LOCK_DIR": "/locks"})
	os.WriteFile(filepath.Join(f.ProjectDir, ".env"), []byte("COMPOSE_PROJECT_NAME=shop\nREDIS_PASSWORD=pw\n"), 0o600)
	return f
}

func run(t *testing.T, cmd *cobra.Command, args ...string) error {
	t.Helper()
	cmd.SetArgs(args)
	cmd.SilenceErrors, cmd.SilenceUsage = true, true
	return cmd.Execute()
}

func TestRedisFlags(t *testing.T) {
	f := testFactory(t)
	f.Output = cmdutil.OutputJSON
	var got *RedisOptions
	if err := run(t, NewCmdRedis(f, func(_ context.Context, o *RedisOptions) error { got = o; return nil }),
		"--service", "cache", "--backup-dir", "/b", "--mode", "save", "--retention-days", "3", "--keep-min", "2", "-q", "--timeout", "1m", "--save-timeout", "20s", "--scheduled", "0 3 * * *"); err != nil {
		t.Fatal(err)
	}
	b := got.Backup
	if b.Project != "shop" || b.Service != "cache" || b.Dir != "/b" || b.Password != "pw" || b.Mode != "save" || b.Retention != 72*time.Hour || b.KeepMin != 2 || b.SaveTimeout != 20*time.Second {
		t.Fatalf("%+v", b)
	}
	if !got.JSON || !got.Quiet || got.Timeout != time.Minute || got.Scheduled != "0 3 * * *" || got.Engine == nil || got.Getenv("DIFYCTL_LOCK_DIR") != "/locks" {
		t.Fatalf("%+v", got)
	}
	for _, bad := range [][]string{{"--mode", "fork"}, {"--retention-days", "-1"}, {"--keep-min", "-1"}} {
		ran := false
		if err := run(t, NewCmdRedis(testFactory(t), func(context.Context, *RedisOptions) error { ran = true; return nil }), bad...); ran || cmdutil.ExitCode(err) != cmdutil.ExitUsage {
			t.Errorf("%v: ran %v, %v", bad, ran, err)
		}
	}
}

func TestDaemonFlags(t *testing.T) {
	f := testFactory(t)
	var got *RedisOptions
	var sched *backup.Cron
	if err := run(t, NewCmdDaemon(f, func(_ context.Context, s *backup.Cron, o *RedisOptions) error { got, sched = o, s; return nil }), "--cron", "CRON_TZ=UTC */5 * * * *"); err != nil {
		t.Fatal(err)
	}
	if sched.String() != "CRON_TZ=UTC */5 * * * *" || got.Scheduled != sched.String() || got.Backup.Project != "shop" || got.Backup.Mode != "bgsave" {
		t.Fatalf("%v %+v", sched, got)
	}
	ran := false
	if err := run(t, NewCmdDaemon(f, func(context.Context, *backup.Cron, *RedisOptions) error { ran = true; return nil }), "--cron", "0 0 31 2 *"); ran || cmdutil.ExitCode(err) != cmdutil.ExitUsage {
		t.Fatalf("never matching: ran %v, %v", ran, err)
	}
}

func TestListVerifyPruneFlags(t *testing.T) {
	f := testFactory(t)
	var l *ListOptions
	if err := run(t, NewCmdList(f, func(_ context.Context, o *ListOptions) error { l = o; return nil }), "--verify", "--backup-dir", "/b"); err != nil {
		t.Fatal(err)
	}
	if !l.Verify || l.Dir != "/b" || l.Project != "shop" || l.Now.IsZero() {
		t.Fatalf("list %+v", l)
	}
	var v *VerifyOptions
	if err := run(t, NewCmdVerify(f, func(_ context.Context, o *VerifyOptions) error { v = o; return nil })); err != nil || v.Which != "all" || v.Dir != filepath.Join(f.ProjectDir, "backups", "redis") {
		t.Fatalf("verify %v %+v", err, v)
	}
	if err := run(t, NewCmdVerify(f, func(_ context.Context, o *VerifyOptions) error { v = o; return nil }), "x.rdb"); err != nil || v.Which != "x.rdb" {
		t.Fatalf("verify x.rdb %v %+v", err, v)
	}
	var p *PruneOptions
	if err := run(t, NewCmdPrune(f, func(_ context.Context, o *PruneOptions) error { p = o; return nil }), "--dry-run", "--retention-days", "2", "--keep-min", "5"); err != nil {
		t.Fatal(err)
	}
	if !p.DryRun || p.Retention != 48*time.Hour || p.KeepMin != 5 || p.Project != "shop" || p.ProjectDir != f.ProjectDir {
		t.Fatalf("prune %+v", p)
	}
}

func TestScheduleInstallFlags(t *testing.T) {
	f := testFactory(t)
	f.Output = cmdutil.OutputJSON
	var got *ScheduleOptions
	sched := NewCmdSchedule(f, func(_ context.Context, o *ScheduleOptions) error { got = o; return nil })
	if err := run(t, sched, "install", "--cron", " @daily ", "--retention-days", "9", "--keep-min", "4", "--no-test", "--test-timeout", "2m", "--service", "cache"); err != nil {
		t.Fatal(err)
	}
	s := got.Schedule
	if s.Cron != "@daily" || s.Retention != 9 || s.KeepMin != 4 || s.Project != "shop" || s.ProjectDir != f.ProjectDir || s.Service != "cache" ||
		s.BackupDir != filepath.Join(f.ProjectDir, "backups", "redis") || !filepath.IsAbs(s.Binary) || strings.Join(s.Env, " ") != "DOCKER_HOST=unix:///d.sock" {
		t.Fatalf("%+v", s)
	}
	if !got.NoTest || got.Timeout != 2*time.Minute || !got.JSON || got.CheckProject == nil {
		t.Fatalf("%+v", got)
	}
	ran := false
	sched = NewCmdSchedule(f, func(context.Context, *ScheduleOptions) error { ran = true; return nil })
	if err := run(t, sched, "install", "--cron", "61 * * * *"); ran || cmdutil.ExitCode(err) != cmdutil.ExitUsage {
		t.Fatalf("bad cron: ran %v, %v", ran, err)
	}
}

func TestDaemonAllFlags(t *testing.T) {
	f := testFactory(t)
	var got *AllOptions
	var sched *backup.Cron
	if sub, _, err := NewCmdDaemon(f, nil).Find([]string{"all"}); err != nil || sub.Name() != "all" {
		t.Fatalf("backup daemon all: %v %v", sub, err)
	}
	if err := run(t, NewCmdDaemonAll(f, func(_ context.Context, s *backup.Cron, o *AllOptions) error { got, sched = o, s; return nil }),
		"--cron", "CRON_TZ=UTC 30 2 * * *", "--keep-min", "5", "--parallel", "2", "-q"); err != nil {
		t.Fatal(err)
	}
	if sched.String() != "CRON_TZ=UTC 30 2 * * *" || got.Scheduled != sched.String() || got.Bundle.Project != "shop" || got.Bundle.KeepMin != 5 || got.Bundle.Parallel != 2 || !got.Quiet {
		t.Fatalf("%v %+v", sched, got)
	}
	for _, bad := range [][]string{{"--cron", "0 0 31 2 *"}, {"--cron", "nonsense"}, {"--output", "-"}} {
		ran := false
		if err := run(t, NewCmdDaemonAll(testFactory(t), func(context.Context, *backup.Cron, *AllOptions) error { ran = true; return nil }), bad...); ran || cmdutil.ExitCode(err) != cmdutil.ExitUsage {
			t.Errorf("%v: ran %v, %v", bad, ran, err)
		}
	}
}
