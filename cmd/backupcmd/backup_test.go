package backupcmd

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/difyctl/difyctl/backup"
	"github.com/difyctl/difyctl/internal/cmdutil"
	"github.com/difyctl/difyctl/internal/iostreams"
)

func writeBackup(t *testing.T, dir, name string, m backup.Manifest) {
	t.Helper()
	p := filepath.Join(dir, name)
	os.WriteFile(p, []byte("x"), 0o600)
	m.File = name
	b, _ := json.Marshal(m)
	os.WriteFile(p+".json", b, 0o600)
}

func TestListShowsOwnSafetyCopiesTemporariesAndStatus(t *testing.T) {
	dir := t.TempDir()
	writeBackup(t, dir, "redis_20261120_030000.rdb", backup.Manifest{Project: "a", RDBKeys: 5})
	writeBackup(t, dir, "redis_20261121_030000.rdb", backup.Manifest{Project: "a", RDBKeys: 6, SafetyCopy: true, SafetyCopyOf: "redis_20261120_030000.rdb"})
	writeBackup(t, dir, "redis_20261121_040000.rdb", backup.Manifest{Project: "b"})
	os.WriteFile(filepath.Join(dir, ".redis_20261122_030000.rdb.tmp-1"), []byte("half"), 0o600)
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	backup.RecordRun(backup.StatusPath(dir, "a"), "a", "CRON_TZ=UTC 0 3 * * *", backup.RunRecord{Time: time.Date(2026, 11, 20, 3, 0, 0, 0, time.UTC), Result: "ok", File: "redis_20261120_030000.rdb"})
	backup.RecordRun(backup.StatusPath(dir, "a"), "a", "CRON_TZ=UTC 0 3 * * *", backup.RunRecord{Time: time.Date(2026, 11, 25, 3, 0, 0, 0, time.UTC), Result: "failed", Error: "no running Redis container", ExitCode: 1})

	io, out, errOut := testIO()
	if err := List(&ListOptions{IO: io, Dir: dir, Project: "a", Now: now}); err != nil {
		t.Fatal(err)
	}
	o, e := out.String(), errOut.String()
	if strings.Count(o, "\n") != 3 || !strings.Contains(o, "safety copy (before restoring redis_20261120_030000.rdb)") || strings.Contains(o, "redis_20261121_040000.rdb") {
		t.Fatalf("table:\n%s", o)
	}
	for _, want := range []string{"1 backup file(s) of other projects", "temporary file .redis_20261122_030000.rdb.tmp-1", "last scheduled attempt: 2026-11-25T03:00:00Z failed: no running Redis container", "last scheduled success: 2026-11-20T03:00:00Z", "WARNING: the last successful backup"} {
		if !strings.Contains(e, want) {
			t.Errorf("stderr lacks %q:\n%s", want, e)
		}
	}
	// A missing directory is an error, not "no backups".
	if err := List(&ListOptions{IO: io, Dir: filepath.Join(dir, "typo"), Project: "a", Now: now}); err == nil || cmdutil.ExitCode(err) != 1 {
		t.Fatalf("missing dir: %v", err)
	}
}

func TestShowWarnsWhenStale(t *testing.T) {
	backup.CronDir = t.TempDir()
	bdir := t.TempDir()
	s := backup.Schedule{Cron: "0 3 * * *", Binary: "/usr/local/bin/difyctl", ProjectDir: "/srv/x", Project: "x", BackupDir: bdir, Service: "redis", Retention: 7, KeepMin: 3}
	if _, _, err := s.Install(true); err != nil {
		t.Fatal(err)
	}
	io, out, errOut := testIO()
	opts := &ShowOptions{IO: io, Project: "x", BackupDir: bdir, Root: true, Now: time.Now()}
	if err := Show(opts); err != nil || !strings.Contains(out.String(), "no run recorded yet") {
		t.Fatalf("%v\n%s", err, out.String())
	}
	backup.RecordRun(backup.StatusPath(bdir, "x"), "x", "0 3 * * *", backup.RunRecord{Time: time.Now().Add(-72 * time.Hour), Result: "ok", File: "f"})
	out.Reset()
	if err := Show(opts); err != nil || !strings.Contains(out.String(), "last scheduled success: ") || !strings.Contains(errOut.String(), "older than two periods") {
		t.Fatalf("%v\n%s\n%s", err, out.String(), errOut.String())
	}
	if ok, _ := backup.RemoveSchedule("x", true); !ok {
		t.Fatal("not removed")
	}
	if err := Show(opts); cmdutil.ExitCode(err) != 1 {
		t.Fatalf("show without an entry: %v", err)
	}
}

func testIO() (*iostreams.IOStreams, *bytes.Buffer, *bytes.Buffer) {
	io, _, out, errOut := iostreams.Test()
	return io, out, errOut
}
