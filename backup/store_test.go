package backup

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/difyctl/difyctl/internal/lockfile"
)

func TestNames(t *testing.T) {
	ts := time.Date(2026, 11, 22, 3, 4, 5, 0, time.UTC)
	dir := t.TempDir()
	n1 := NewName(dir, ts)
	if n1 != "redis_20261122_030405.rdb" {
		t.Fatalf("name %s", n1)
	}
	os.WriteFile(filepath.Join(dir, n1), nil, 0o600)
	n2 := NewName(dir, ts)
	if n2 != "redis_20261122_030405_2.rdb" {
		t.Fatalf("second name %s", n2)
	}
	t1, ok1 := ParseName(n1)
	t2, ok2 := ParseName(n2)
	if !ok1 || !ok2 || !t1.Equal(ts) || !t2.After(t1) {
		t.Fatalf("parse: %v %v %v %v", t1, ok1, t2, ok2)
	}
	for _, bad := range []string{"dump.rdb", "redis_2026.rdb", "redis_20261122_030405.rdb.json", "xredis_20261122_030405.rdb"} {
		if _, ok := ParseName(bad); ok {
			t.Errorf("%s taken for a backup", bad)
		}
	}
}

func entriesAt(now time.Time, agesDays ...float64) []Entry {
	var out []Entry
	for _, a := range agesDays { // oldest first
		ts := now.Add(-time.Duration(a * 24 * float64(time.Hour)))
		out = append(out, Entry{Name: "redis_" + ts.Format(stampLayout) + ".rdb", Time: ts})
	}
	return out
}

func TestPlanRetention(t *testing.T) {
	now := time.Date(2026, 11, 22, 3, 0, 0, 0, time.UTC)
	week := 7 * 24 * time.Hour
	// 10, 9, 8 days old go; 7.5 too; 6, 1, 0 stay.
	p := Plan(entriesAt(now, 10, 9, 8, 7.5, 6, 1, 0), now, week, 3)
	if len(p.Remove) != 4 || len(p.Keep) != 3 {
		t.Fatalf("remove %d keep %d", len(p.Remove), len(p.Keep))
	}
	// All old: the newest keep-min stay anyway.
	p = Plan(entriesAt(now, 30, 20, 15, 10, 9), now, week, 3)
	if len(p.Remove) != 2 || p.Keep[0].Name != entriesAt(now, 15)[0].Name {
		t.Fatalf("keep-min not honoured: %+v", p)
	}
	// Exactly at the boundary is kept.
	p = Plan(entriesAt(now, 7, 0), now, week, 0)
	if len(p.Remove) != 0 {
		t.Fatalf("7-day-old backup removed: %+v", p)
	}
}

func TestApplyKeepsForeignFiles(t *testing.T) {
	dir := t.TempDir()
	now := time.Date(2026, 11, 22, 3, 0, 0, 0, time.UTC)
	old := "redis_" + now.Add(-10*24*time.Hour).Format(stampLayout) + ".rdb"
	for _, n := range []string{old, old + ".json", "my-notes.txt", "dump.rdb"} {
		os.WriteFile(filepath.Join(dir, n), []byte("x"), 0o600)
		os.Chtimes(filepath.Join(dir, n), now.Add(-30*24*time.Hour), now.Add(-30*24*time.Hour))
	}
	entries, err := List(dir)
	if err != nil || len(entries) != 1 {
		t.Fatalf("list: %v %v", entries, err)
	}
	if err := Plan(entries, now, 7*24*time.Hour, 0).Apply(dir); err != nil {
		t.Fatal(err)
	}
	left, _ := os.ReadDir(dir)
	var names []string
	for _, e := range left {
		names = append(names, e.Name())
	}
	if len(names) != 2 || names[0] != "dump.rdb" || names[1] != "my-notes.txt" {
		t.Fatalf("left: %v", names)
	}
}

func TestLock(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "backups")
	unlock, err := Lock(dir)
	if err != nil {
		t.Fatal(err)
	}
	// flock is per open file description: a second open in this process conflicts too.
	_, err = Lock(dir)
	var le *lockfile.HeldError
	if !errors.As(err, &le) || le.PID != os.Getpid() || !strings.Contains(err.Error(), "a backup or restore is already running") {
		t.Fatalf("second lock: %v", err)
	}
	unlock()
	unlock2, err := Lock(dir)
	if err != nil {
		t.Fatalf("lock after unlock: %v", err)
	}
	unlock2()
	st, _ := os.Stat(dir)
	if st.Mode().Perm() != DirMode {
		t.Fatalf("dir mode %v", st.Mode())
	}
}
