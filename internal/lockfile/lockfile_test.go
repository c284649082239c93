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
	if b, _ := os.ReadFile(path); len(b) != 0 {
		t.Fatalf("PID left in a released lock: %q", b)
	}
	again, err := Acquire(path, "a thing")
	if err != nil {
		t.Fatalf("after unlock: %v", err)
	}
	again()
}
