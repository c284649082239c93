package backuptarget

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/spf13/cobra"

	"github.com/difyctl/difyctl/internal/cmdutil"
	"github.com/difyctl/difyctl/internal/iostreams"
)

func TestTarget(t *testing.T) {
	io, _, _, _ := iostreams.Test()
	f := cmdutil.NewFactory()
	f.IOStreams, f.ProjectDir = io, t.TempDir()
	f.Getenv, f.Environ = func(string) string { return "" }, func() []string { return nil }
	if err := os.WriteFile(filepath.Join(f.ProjectDir, ".env"), []byte("COMPOSE_PROJECT_NAME=shop\nREDIS_PASSWORD=from-env-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var c Common
	cmd := &cobra.Command{}
	c.Flags(cmd)
	if c.Service != "redis" {
		t.Fatalf("default service %q", c.Service)
	}
	dir, project, bdir, pw, err := c.Target(f)
	if err != nil || dir != f.ProjectDir || project != "shop" || bdir != filepath.Join(dir, "backups", "redis") || pw != "from-env-file" {
		t.Fatalf("%s %s %s %q %v", dir, project, bdir, pw, err)
	}
	if err := cmd.Flags().Set("backup-dir", "rel"); err != nil {
		t.Fatal(err)
	}
	got, err := c.Dir(f)
	if wd, _ := os.Getwd(); err != nil || got != filepath.Join(wd, "rel") {
		t.Fatalf("relative --backup-dir: %s %v", got, err)
	}
}
