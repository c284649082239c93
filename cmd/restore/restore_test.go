package restore

import (
	"context"
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/difyctl/difyctl/backup/rdb"
	"github.com/difyctl/difyctl/internal/backuptarget"
	"github.com/difyctl/difyctl/internal/cmdutil"
)

func TestFlagsToOptions(t *testing.T) {
	f, _, _ := cmdutil.NewTestFactory(t.TempDir(), map[string]string{"DIFYCTL_LOCK_DIR": "/locks"})
	os.WriteFile(filepath.Join(f.ProjectDir, ".env"), []byte("COMPOSE_PROJECT_NAME=shop\nREDIS_PASSWORD=pw\n"), 0o600)
	var got *Options
	cmd := NewCmdRedis(f, func(_ context.Context, o *Options) error { got = o; return nil })
	cmd.SetArgs([]string{"redis_20260101_000000.rdb", "-y", "--dry-run", "--service", "cache", "--backup-dir", "/b", "--stop-timeout", "5s", "--wait-timeout", "1m", "--save-timeout", "2m"})
	if err := cmd.Execute(); err != nil {
		t.Fatal(err)
	}
	r := got.Restore
	if got.Which != "redis_20260101_000000.rdb" || !got.Yes || !got.DryRun || got.Engine == nil || got.Getenv("DIFYCTL_LOCK_DIR") != "/locks" {
		t.Fatalf("%+v", got)
	}
	if r.Project != "shop" || r.Service != "cache" || r.Dir != "/b" || r.Password != "pw" || r.Mode != "bgsave" || r.Now == nil ||
		r.StopTimeout != 5*time.Second || r.WaitTimeout != time.Minute || r.SaveTimeout != 2*time.Minute {
		t.Fatalf("%+v", r)
	}
	cmd = NewCmdRedis(f, func(_ context.Context, o *Options) error { got = o; return nil })
	cmd.SetArgs(nil)
	if err := cmd.Execute(); err != nil || got.Which != "latest" || got.Yes || got.DryRun || got.Restore.Dir != filepath.Join(f.ProjectDir, "backups", "redis") {
		t.Fatalf("defaults: %v %+v", err, got)
	}
}

// tinyRDB is an RDB v9 holding one string key, with its CRC-64.
func tinyRDB() []byte {
	b := []byte("REDIS0009\xfe\x00\x00\x01k\x01v\xff")
	return binary.LittleEndian.AppendUint64(b, rdb.CRC64(b))
}

func options(t *testing.T, which string) *Options {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "redis_20260101_000000.rdb"), tinyRDB(), 0o600); err != nil {
		t.Fatal(err)
	}
	f, _, _ := cmdutil.NewTestFactory(dir, nil)
	o := &Options{IO: f.IOStreams, Which: which, Engine: func() (*backuptarget.Engine, error) {
		t.Fatal("the engine was asked for")
		return nil, nil
	}}
	o.Restore.Project, o.Restore.Service, o.Restore.Dir = "shop", "redis", dir
	return o
}

// --dry-run names and verifies the backup and touches nothing else.
func TestDryRun(t *testing.T) {
	o := options(t, "redis_20260101_000000.rdb")
	o.DryRun = true
	if err := Run(context.Background(), o); err != nil {
		t.Fatal(err)
	}
	out := o.IO.Out.(interface{ String() string }).String()
	if !strings.Contains(out, "would restore "+filepath.Join(o.Restore.Dir, "redis_20260101_000000.rdb")+" (verified, 1 keys") || !strings.Contains(out, "into shop/redis; nothing changed") {
		t.Fatalf("%q", out)
	}
}

// Without --yes: no terminal is a usage error, a "no" changes nothing;
// neither reaches the engine. A broken backup is refused first.
func TestConfirmation(t *testing.T) {
	o := options(t, "redis_20260101_000000.rdb")
	if err := Run(context.Background(), o); cmdutil.ExitCode(err) != cmdutil.ExitUsage || !strings.Contains(err.Error(), "--yes") {
		t.Fatalf("no terminal: %v", err)
	}
	o = options(t, "redis_20260101_000000.rdb")
	o.IO.SetTTY(true, false, false)
	o.IO.In = strings.NewReader("n\n")
	if err := Run(context.Background(), o); cmdutil.ExitCode(err) != cmdutil.ExitFailure || err.Error() != "not confirmed; nothing changed" {
		t.Fatalf("declined: %v", err)
	}
	if e := o.IO.ErrOut.(interface{ String() string }).String(); !strings.Contains(e, "Replace all data of shop/redis with") || !strings.HasSuffix(e, "[y/N] ") {
		t.Fatalf("asked %q", e)
	}
	o = options(t, "redis_20260101_000000.rdb")
	os.WriteFile(filepath.Join(o.Restore.Dir, "redis_20260101_000000.rdb"), []byte("REDIS0009garbage"), 0o600)
	if err := Run(context.Background(), o); cmdutil.ExitCode(err) != cmdutil.ExitFailure || !strings.Contains(err.Error(), "refusing to restore") {
		t.Fatalf("broken backup: %v", err)
	}
	o = options(t, "latest")
	if err := Run(context.Background(), o); cmdutil.ExitCode(err) != cmdutil.ExitUsage {
		t.Fatalf("latest without a manifest of the project: %v", err)
	}
}
