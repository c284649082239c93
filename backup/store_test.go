package backup

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/difyctl/difyctl/internal/lockfile"
)

func TestNames(t *testing.T) {
	ts := time.Date(2026, 11, 22, 3, 4, 5, 0, time.UTC)
	t1, ok1 := ParseName("redis_20261122_030405.rdb")
	t2, ok2 := ParseName("redis_20261122_030405_2.rdb")
	if !ok1 || !ok2 || !t1.Equal(ts) || !t2.After(t1) {
		t.Fatalf("parse: %v %v %v %v", t1, ok1, t2, ok2)
	}
	for _, bad := range []string{"dump.rdb", "redis_2026.rdb", "redis_20261122_030405.rdb.json", "xredis_20261122_030405.rdb", ".redis_20261122_030405.rdb.tmp-1"} {
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
	p := Plan(entriesAt(now, 10, 9, 8, 7.5, 6, 1, 0), now, week, 3, "")
	if len(p.Remove) != 4 || len(p.Keep) != 3 {
		t.Fatalf("remove %d keep %d", len(p.Remove), len(p.Keep))
	}
	// All old: the newest keep-min stay anyway.
	p = Plan(entriesAt(now, 30, 20, 15, 10, 9), now, week, 3, "")
	if len(p.Remove) != 2 || p.Keep[0].Name != entriesAt(now, 15)[0].Name {
		t.Fatalf("keep-min not honoured: %+v", p)
	}
	// Exactly at the boundary is kept.
	p = Plan(entriesAt(now, 7, 0), now, week, 0, "")
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
	if err := Plan(entries, now, 7*24*time.Hour, 0, "").Apply(dir); err != nil {
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
	unlock, err := Lock(dir, "a")
	if err != nil {
		t.Fatal(err)
	}
	// flock is per open file description: a second open in this process conflicts too.
	_, err = Lock(dir, "a")
	var le *lockfile.HeldError
	if !errors.As(err, &le) || le.PID != os.Getpid() || !strings.Contains(err.Error(), "a backup or restore of project a is already running") {
		t.Fatalf("second lock: %v", err)
	}
	// Another project sharing the directory does not wait.
	unlockB, err := Lock(dir, "b")
	if err != nil {
		t.Fatalf("project b waits for project a: %v", err)
	}
	unlockB()
	unlock()
	unlock2, err := Lock(dir, "a")
	if err != nil {
		t.Fatalf("lock after unlock: %v", err)
	}
	unlock2()
	st, _ := os.Stat(dir)
	if st.Mode().Perm() != DirMode {
		t.Fatalf("dir mode %v", st.Mode())
	}
}

// writeOwned writes a backup file and its manifest for project.
func writeOwned(t *testing.T, dir, name, project string, safetyOf string) {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	ts, _ := ParseName(name)
	m := &Manifest{File: name, Project: project, CreatedAt: ts, SafetyCopyOf: safetyOf, SafetyCopy: safetyOf != ""}
	if err := writeManifest(p, m); err != nil {
		t.Fatal(err)
	}
}

func TestOwnershipLatestAndSafetyCopies(t *testing.T) {
	dir := t.TempDir()
	writeOwned(t, dir, "redis_20261101_030000.rdb", "a", "")
	writeOwned(t, dir, "redis_20261102_030000.rdb", "b", "")
	writeOwned(t, dir, "redis_20261103_030000.rdb", "a", "")
	writeOwned(t, dir, "redis_20261104_030000.rdb", "a", "redis_20261101_030000.rdb") // safety copy, newest of a
	os.WriteFile(filepath.Join(dir, "redis_20261105_030000.rdb"), []byte("x"), 0o600) // no manifest: nobody's
	l, err := ListProject(dir, "a")
	if err != nil || len(l.Own) != 3 || len(l.Foreign) != 2 {
		t.Fatalf("listing %+v %v", l, err)
	}
	if p, err := LatestOf(dir, "a"); err != nil || filepath.Base(p) != "redis_20261103_030000.rdb" {
		t.Fatalf("latest of a: %s %v (the safety copy or a foreign file chosen?)", p, err)
	}
	if p, err := LatestOf(dir, "b"); err != nil || filepath.Base(p) != "redis_20261102_030000.rdb" {
		t.Fatalf("latest of b: %s %v", p, err)
	}
	if _, err := LatestOf(dir, "c"); err == nil || !strings.Contains(err.Error(), "other projects") {
		t.Fatalf("latest of c: %v", err)
	}
	// An older manifest marks a safety copy only by its reason.
	if !(&Manifest{Reason: SafetyReason}).IsSafetyCopy() {
		t.Fatal("reason-only safety copy not recognised")
	}
}

func TestPlanProtectsJustWrittenAndSafetyCopies(t *testing.T) {
	now := time.Date(2026, 11, 22, 3, 0, 0, 0, time.UTC)
	e := entriesAt(now, 30, 20, 10, 0)
	// retention 0, keep-min 0: only the one just written stays.
	p := Plan(e, now, 0, 0, e[3].Name)
	if len(p.Keep) != 1 || p.Keep[0].Name != e[3].Name {
		t.Fatalf("retention 0: %+v", p)
	}
	// A safety copy 20 days old that protects a kept backup stays; one whose
	// backup goes, goes.
	e[1].Manifest = &Manifest{SafetyCopy: true, SafetyCopyOf: e[2].Name}
	e[0].Manifest = &Manifest{SafetyCopy: true, SafetyCopyOf: "redis_19990101_000000.rdb"}
	p = Plan(e, now, 7*24*time.Hour, 2, e[3].Name)
	keep := map[string]bool{}
	for _, k := range p.Keep {
		keep[k.Name] = true
	}
	if !keep[e[1].Name] || !keep[e[2].Name] || !keep[e[3].Name] || keep[e[0].Name] {
		t.Fatalf("keep %v", keep)
	}
	// Safety copies do not count towards keep-min.
	p = Plan(e, now, 0, 1, "")
	if len(p.Keep) != 1 || p.Keep[0].Name != e[3].Name {
		t.Fatalf("keep-min counted a safety copy: %+v", p.Keep)
	}
}

func TestRetentionValidation(t *testing.T) {
	if ValidateRetention(0, 0) != nil || ValidateRetention(7, 3) != nil {
		t.Fatal("valid values refused")
	}
	if ValidateRetention(-1, 3) == nil || ValidateRetention(7, -1) == nil {
		t.Fatal("negative value accepted")
	}
}

func TestTempsAndCleanup(t *testing.T) {
	dir := t.TempDir()
	now := time.Now()
	old := filepath.Join(dir, ".redis_20261101_030000.rdb.tmp-123")
	fresh := filepath.Join(dir, ".redis_20261101_030001.rdb.tmp-456")
	held := filepath.Join(dir, ".redis_20261101_030002.rdb.tmp-789")
	other := filepath.Join(dir, ".notes.tmp-1")
	for _, p := range []string{old, fresh, held, other} {
		os.WriteFile(p, []byte("x"), 0o600)
	}
	for _, p := range []string{old, held, other} {
		os.Chtimes(p, now.Add(-2*time.Hour), now.Add(-2*time.Hour))
	}
	f, err := os.Open(held) // a running process holds it
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	temps, err := Temps(dir)
	if err != nil || len(temps) != 3 {
		t.Fatalf("temps %+v %v", temps, err)
	}
	removed, err := CleanTemps(dir, now)
	if err != nil || len(removed) != 1 || removed[0] != filepath.Base(old) {
		t.Fatalf("removed %v %v", removed, err)
	}
	for _, p := range []string{fresh, held, other} {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("%s removed", p)
		}
	}
}

func TestWriteBackupFileNeverReplaces(t *testing.T) {
	dir := t.TempDir()
	ts := time.Date(2026, 11, 22, 3, 4, 5, 0, time.UTC)
	os.WriteFile(filepath.Join(dir, "redis_20261122_030405.rdb"), []byte("other project"), 0o600)
	name, err := writeBackupFile(dir, ts, func(w io.Writer) error { _, err := w.Write([]byte("mine")); return err })
	if err != nil || name != "redis_20261122_030405_2.rdb" {
		t.Fatalf("%s %v", name, err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "redis_20261122_030405.rdb")); string(b) != "other project" {
		t.Fatal("existing backup replaced")
	}
	st, _ := os.Stat(filepath.Join(dir, name))
	if st.Mode().Perm() != FileMode {
		t.Fatalf("mode %v", st.Mode())
	}
	// A failed write leaves nothing, under a final name or a temporary one.
	_, err = writeBackupFile(dir, ts.Add(time.Hour), func(w io.Writer) error { w.Write([]byte("half")); return errors.New("cut") })
	if err == nil {
		t.Fatal("error lost")
	}
	des, _ := os.ReadDir(dir)
	if len(des) != 2 {
		t.Fatalf("left behind: %v", des)
	}
}

func TestResolveFile(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "redis_20261122_030405.rdb"), nil, 0o600)
	if got := ResolveFile(dir, "redis_20261122_030405.rdb"); got != filepath.Join(dir, "redis_20261122_030405.rdb") {
		t.Fatalf("name not found in the backup dir: %s", got)
	}
	if got := ResolveFile(dir, "./x.rdb"); got != "./x.rdb" {
		t.Fatalf("path changed: %s", got)
	}
}
