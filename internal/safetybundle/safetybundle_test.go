package safetybundle

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/difyctl/difyctl/internal/engine/enginefake"
	"github.com/difyctl/difyctl/internal/upgrade"
)

func TestInstalledAsTheUpgradesSafetyNet(t *testing.T) {
	if upgrade.NewSafety == nil {
		t.Fatal("importing safetybundle leaves upgrade.NewSafety nil: upgrade would refuse without --no-bundle")
	}
	if _, ok := upgrade.NewSafety(enginefake.New(), nil).(*Safety); !ok {
		t.Fatal("upgrade.NewSafety does not build bundle safety nets")
	}
}

func TestReleaseOfABundle(t *testing.T) {
	s := New(enginefake.New(), nil)
	dir := t.TempDir()
	if _, err := s.Release(dir); err == nil {
		t.Fatal("a directory without a manifest has a release")
	}
	if err := os.WriteFile(filepath.Join(dir, "manifest.json"), []byte(`{"format":"difyctl-bundle/1","project":"p","difyVersion":"1.15.0","parts":[]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := s.Release(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got != "1.15.0" {
		t.Fatalf("release %q, want 1.15.0", got)
	}
}
