package envbak

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestListAndPrune(t *testing.T) {
	dir := t.TempDir()
	for _, n := range []string{".env.bak-20260101T000000Z", ".env.bak-20260101T000000Z_2", ".env.bak-20260110T000000Z", ".env.bak-20260120T000000Z", ".env.bak-junk", ".env"} {
		os.WriteFile(filepath.Join(dir, n), []byte("SECRET_KEY=x\n"), 0o600)
	}
	os.Symlink("/etc/hostname", filepath.Join(dir, ".env.bak-20250101T000000Z"))
	es, err := List(dir)
	if err != nil || len(es) != 4 || es[0].Name != ".env.bak-20260101T000000Z" || es[1].Name != ".env.bak-20260101T000000Z_2" {
		t.Fatalf("%v %v", es, err)
	}
	now := time.Date(2026, 1, 21, 0, 0, 0, 0, time.UTC)
	plan, err := Prune(dir, now, 7*24*time.Hour, 1, true)
	if err != nil || len(plan.Remove) != 3 {
		t.Fatalf("dry run %+v %v", plan, err)
	}
	if es, _ := List(dir); len(es) != 4 {
		t.Fatal("dry run deleted")
	}
	if _, err := Prune(dir, now, 7*24*time.Hour, 1, false); err != nil {
		t.Fatal(err)
	}
	es, _ = List(dir)
	if len(es) != 1 || es[0].Name != ".env.bak-20260120T000000Z" {
		t.Fatalf("left %v", es)
	}
	for _, keep := range []string{".env", ".env.bak-junk", ".env.bak-20250101T000000Z"} {
		if _, err := os.Lstat(filepath.Join(dir, keep)); err != nil {
			t.Fatalf("%s removed", keep)
		}
	}
}
