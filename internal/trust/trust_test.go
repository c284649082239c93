package trust

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCheckWritable(t *testing.T) {
	dir := t.TempDir()
	os.Chmod(dir, 0o755)
	env := filepath.Join(dir, ".env")
	os.WriteFile(env, nil, 0o600)
	if fs := Check(ProjectPaths(dir, nil), 0); len(fs) != 0 {
		t.Fatalf("a safe project: %v", fs)
	}
	os.Chmod(env, 0o664)
	warn, err := Split(Check(ProjectPaths(dir, nil), 0))
	if err == nil || !strings.Contains(err.Error(), env+" is writable by its group (mode 0664)") || !strings.Contains(err.Error(), "chmod go-w "+env) || len(warn) != 0 {
		t.Fatalf("as root: %v %v", err, warn)
	}
	// For another user it is only a warning: they endanger themselves.
	if warn, err := Split(Check(ProjectPaths(dir, nil), 1000)); err != nil || len(warn) != 1 {
		t.Fatalf("as a user: %v %v", err, warn)
	}
	os.Chmod(env, 0o600)
	override := filepath.Join(dir, "docker-compose.override.yaml")
	os.WriteFile(override, nil, 0o600)
	os.Chmod(override, 0o602)
	if _, err := Split(Check(ProjectPaths(dir, nil), 0)); err == nil || !strings.Contains(err.Error(), override+" is writable by every user") {
		t.Fatalf("override: %v", err)
	}
	os.Remove(override)
	os.Chmod(dir, 0o777)
	if _, err := Split(Check(ProjectPaths(dir, nil), 0)); err == nil || !strings.Contains(err.Error(), dir+" is writable by group and others") {
		t.Fatalf("dir: %v", err)
	}
}

func TestCheckSymlinkJudgesTarget(t *testing.T) {
	dir, secrets := t.TempDir(), t.TempDir()
	os.Chmod(dir, 0o755)
	real := filepath.Join(secrets, "dify.env")
	os.WriteFile(real, nil, 0o600)
	os.Chmod(real, 0o666)
	os.Symlink(real, filepath.Join(dir, ".env"))
	_, err := Split(Check(ProjectPaths(dir, nil), 0))
	if err == nil || !strings.Contains(err.Error(), "-> "+real) {
		t.Fatalf("writable target behind a link: %v", err)
	}
}

func TestCheckOtherOwner(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("chown needs root; the e2e test covers it")
	}
	dir := t.TempDir()
	os.Chmod(dir, 0o755)
	os.Chown(dir, 65534, 65534)
	warn, err := Split(Check(ProjectPaths(dir, nil), 0))
	if err != nil || len(warn) != 1 || !strings.Contains(warn[0].String(), "owned by") || !strings.Contains(warn[0].String(), "uid 65534") {
		t.Fatalf("%v %v", err, warn)
	}
}

func TestCheckSource(t *testing.T) {
	src := t.TempDir()
	os.WriteFile(filepath.Join(src, ".env"), []byte("A=1\n"), 0o600)
	if err := CheckSource([]string{src, filepath.Join(src, ".env")}, os.Geteuid(), false); err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() != 0 {
		return
	}
	// A link owned by another user to a root-only file: refused even when told.
	secret := filepath.Join(t.TempDir(), "shadow")
	os.WriteFile(secret, []byte("root:x"), 0o600)
	link := filepath.Join(src, "evil.env")
	os.Symlink(secret, link)
	os.Lchown(link, 65534, 65534)
	for _, allow := range []bool{false, true} {
		err := CheckSource([]string{link}, 0, allow)
		if err == nil || !strings.Contains(err.Error(), link) || !strings.Contains(err.Error(), secret) {
			t.Fatalf("allow=%v: %v", allow, err)
		}
	}
	// Another user's file: refused unless told.
	theirs := filepath.Join(src, "theirs.env")
	os.WriteFile(theirs, nil, 0o644)
	os.Chown(theirs, 65534, 65534)
	if err := CheckSource([]string{theirs}, 0, false); err == nil || !strings.Contains(err.Error(), "--allow-other-owner") {
		t.Fatalf("other owner: %v", err)
	}
	if err := CheckSource([]string{theirs}, 0, true); err != nil {
		t.Fatalf("other owner, told: %v", err)
	}
}
