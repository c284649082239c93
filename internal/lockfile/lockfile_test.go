package lockfile

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestAcquire(t *testing.T) {
	path := filepath.Join(t.TempDir(), "locks", "p.lock")
	unlock, err := Acquire(path, "a thing")
	if err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(path); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("lock file: %v %v", st.Mode(), err)
	}
	if st, _ := os.Stat(filepath.Dir(path)); st.Mode().Perm() != 0o700 {
		t.Fatalf("lock dir mode %v", st.Mode())
	}
	// flock is per open file description: a second open in this process conflicts too.
	_, err = Acquire(path, "a thing")
	var he *HeldError
	if !errors.As(err, &he) || he.PID != os.Getpid() || he.Path != path {
		t.Fatalf("second acquire: %v", err)
	}
	if want := "a thing is already running (process "; !strings.HasPrefix(err.Error(), want) || !strings.Contains(err.Error(), "wait for it to finish") {
		t.Fatalf("message: %v", err)
	}
	unlock()
	if _, err := os.Lstat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("lock file left after release: %v", err)
	}
	again, err := Acquire(path, "a thing")
	if err != nil {
		t.Fatalf("after unlock: %v", err)
	}
	again()
}

// victim is a file the attacker wants emptied.
func victim(t *testing.T) string {
	t.Helper()
	v := filepath.Join(t.TempDir(), "victim")
	if err := os.WriteFile(v, []byte("precious\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return v
}

func wantUnsafe(t *testing.T, err error, path, reason string) {
	t.Helper()
	var ue *UnsafeError
	if !errors.As(err, &ue) || ue.Path != path || !strings.Contains(err.Error(), reason) {
		t.Fatalf("want an UnsafeError on %s (%s), got %v", path, reason, err)
	}
}

func unchanged(t *testing.T, v string) {
	t.Helper()
	if b, err := os.ReadFile(v); err != nil || string(b) != "precious\n" {
		t.Fatalf("victim changed: %q %v", b, err)
	}
}

func TestRefusesSymlink(t *testing.T) {
	v := victim(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "p.lock")
	os.Symlink(v, path)
	_, err := Acquire(path, "x")
	wantUnsafe(t, err, path, "symbolic link")
	unchanged(t, v)
}

func TestRefusesHardLink(t *testing.T) {
	v := victim(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "p.lock")
	if err := os.Link(v, path); err != nil {
		t.Fatal(err)
	}
	_, err := Acquire(path, "x")
	wantUnsafe(t, err, path, "2 hard links")
	unchanged(t, v)
}

func TestRefusesNonRegular(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "p.lock")
	os.Mkdir(path, 0o700)
	_, err := Acquire(path, "x")
	if err == nil {
		t.Fatal("a directory accepted as a lock file")
	}
}

func TestRefusesWritableDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "shared")
	os.Mkdir(dir, 0o700)
	os.Chmod(dir, 0o777)
	_, err := Acquire(filepath.Join(dir, "p.lock"), "x")
	wantUnsafe(t, err, dir, "writable by group or others")
	if _, err := os.Lstat(filepath.Join(dir, "p.lock")); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("lock file created in a refused directory")
	}
	// Sticky (as /tmp): others cannot replace our entries; accepted.
	os.Chmod(dir, os.ModeSticky|0o777)
	unlock, err := Acquire(filepath.Join(dir, "p.lock"), "x")
	if err != nil {
		t.Fatalf("sticky directory: %v", err)
	}
	unlock()
}

func TestRefusesOtherOwner(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("chown to another user needs root; the e2e test covers it as an unprivileged user")
	}
	v := victim(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "p.lock")
	os.WriteFile(path, []byte("x"), 0o600)
	os.Chown(path, 65534, 65534)
	_, err := Acquire(path, "x")
	wantUnsafe(t, err, path, "owned by uid 65534")
	unchanged(t, v)
	if b, _ := os.ReadFile(path); string(b) != "x" {
		t.Fatal("another user's file written")
	}

	d2 := filepath.Join(t.TempDir(), "theirs")
	os.Mkdir(d2, 0o700)
	os.Chown(d2, 65534, 65534)
	_, err = Acquire(filepath.Join(d2, "p.lock"), "x")
	wantUnsafe(t, err, d2, "owned by uid 65534")
}
