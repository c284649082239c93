package project

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestResolveName(t *testing.T) {
	dir := t.TempDir()
	noenv := func(string) string { return "" }

	name, src, err := ResolveName(dir, "", noenv)
	if err != nil || name != "dify" || src != "default" {
		t.Fatalf("no .env: got %q %q %v", name, src, err)
	}

	if err := os.WriteFile(filepath.Join(dir, ".env"), []byte("# c\nCOMPOSE_PROJECT_NAME=prod-dify\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	name, _, err = ResolveName(dir, "", noenv)
	if err != nil || name != "prod-dify" {
		t.Fatalf(".env: got %q %v", name, err)
	}

	env := func(k string) string {
		if k == "COMPOSE_PROJECT_NAME" {
			return "fromenv"
		}
		return ""
	}
	if name, _, _ = ResolveName(dir, "", env); name != "fromenv" {
		t.Fatalf("environment should beat .env, got %q", name)
	}
	if name, _, _ = ResolveName(dir, "flag", env); name != "flag" {
		t.Fatalf("flag should win, got %q", name)
	}

	_, _, err = ResolveName(dir, "Bad Name", noenv)
	if err == nil || !strings.Contains(err.Error(), "--project-name") {
		t.Fatalf("want an invalid-name error naming its source, got %v", err)
	}
}

func TestResolveDir(t *testing.T) {
	dir := t.TempDir()
	got, err := ResolveDir(dir)
	if err != nil || got != dir {
		t.Fatalf("got %q %v", got, err)
	}
	if _, err := ResolveDir(filepath.Join(dir, "missing")); err == nil {
		t.Fatal("missing directory accepted")
	}
	f := filepath.Join(dir, "file")
	os.WriteFile(f, nil, 0o600)
	if _, err := ResolveDir(f); err == nil {
		t.Fatal("a file accepted as project directory")
	}
}

func TestLockPerProject(t *testing.T) {
	dir := t.TempDir()
	env := func(k string) string {
		if k == "DIFYCTL_LOCK_DIR" {
			return dir
		}
		return ""
	}
	if d, err := LockDir(env); d != dir || err != nil {
		t.Fatal(d, err)
	}
	unlock, err := Lock(env, "dify")
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	if _, err := Lock(env, "dify"); err == nil || !strings.Contains(err.Error(), "another difyctl command on project dify is already running") {
		t.Fatalf("second lock on the project: %v", err)
	}
	other, err := Lock(env, "other")
	if err != nil {
		t.Fatalf("another project is not held up: %v", err)
	}
	other()
}
