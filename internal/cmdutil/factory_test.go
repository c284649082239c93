package cmdutil

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The project is resolved once: the .env read for the name is the document
// Env returns, later changes to the file are not seen until Reload.
func TestProjectAndEnvResolvedOnce(t *testing.T) {
	dir := t.TempDir()
	env := filepath.Join(dir, ".env")
	os.WriteFile(env, []byte("COMPOSE_PROJECT_NAME=shop\nREDIS_PASSWORD=${FROM_SHELL}\n"), 0o600)
	f, _, _ := NewTestFactory(dir, map[string]string{"FROM_SHELL": "s3cret"})
	d, name, err := f.Project()
	if err != nil || d != dir || name != "shop" {
		t.Fatalf("%s %s %v", d, name, err)
	}
	m, err := f.EnvMap()
	if err != nil || m["REDIS_PASSWORD"] != "s3cret" {
		t.Fatalf("${VAR} not resolved against the factory's environment: %v %v", m, err)
	}
	os.WriteFile(env, []byte("COMPOSE_PROJECT_NAME=other\n"), 0o600)
	if _, name, _ := f.Project(); name != "shop" {
		t.Fatalf("read again: %s", name)
	}
	f.Reload()
	if _, name, _ := f.Project(); name != "other" {
		t.Fatalf("after Reload: %s", name)
	}
}

// A name from the flag still reads .env once for Env; no .env is no error;
// a .env that cannot be read is an input-file error (exit 2) from Env only.
func TestEnvWithoutAndUnreadable(t *testing.T) {
	dir := t.TempDir()
	f, _, _ := NewTestFactory(dir, nil)
	f.ProjectNameFlag = "p"
	if d, err := f.Env(); d != nil || err != nil {
		t.Fatalf("no .env: %v %v", d, err)
	}
	os.Symlink(filepath.Join(dir, "gone"), filepath.Join(dir, ".env"))
	f, _, _ = NewTestFactory(dir, nil)
	f.ProjectNameFlag = "p"
	if _, name, err := f.Project(); err != nil || name != "p" {
		t.Fatalf("%s %v", name, err)
	}
	if _, err := f.Env(); ExitCode(err) != ExitUsage || !strings.Contains(err.Error(), ".env") {
		t.Fatalf("dangling .env link: %v", err)
	}
	f, _, _ = NewTestFactory(filepath.Join(dir, "missing"), nil)
	if _, _, err := f.Project(); ExitCode(err) != ExitUsage {
		t.Fatalf("missing project directory: %v", err)
	}
	if _, err := f.Env(); ExitCode(err) != ExitUsage {
		t.Fatalf("Env of a missing project directory: %v", err)
	}
}
