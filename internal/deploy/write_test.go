package deploy

import (
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/difyctl/difyctl/envgen"
	"github.com/difyctl/difyctl/internal/testenv"
)

func listTree(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && p != dir {
			rel, _ := filepath.Rel(dir, p)
			out = append(out, rel)
		}
		return nil
	})
	sort.Strings(out)
	return out
}

func TestFreshInit(t *testing.T) {
	dir := t.TempDir()
	res, err := Write(dir, nil, false, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(filepath.Join(dir, ".env"))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf(".env: %v %v", st, err)
	}
	if len(res.SupportFiles) == 0 {
		t.Fatal("no support files written")
	}
	for _, f := range listTree(t, dir) {
		if strings.HasPrefix(f, ".difyctl-init-") {
			t.Fatalf("temporary directory left: %s", f)
		}
	}
}

// Two init --force in the same second keep both earlier files.
func TestForceTwiceInOneSecondKeepsBoth(t *testing.T) {
	dir := t.TempDir()
	env := filepath.Join(dir, ".env")
	if err := os.WriteFile(env, []byte("ORIGINAL=secret-original\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 11, 26, 1, 2, 3, 0, time.UTC)
	r1, err := Write(dir, nil, true, now)
	if err != nil {
		t.Fatal(err)
	}
	first, _ := os.ReadFile(env)
	r2, err := Write(dir, nil, true, now.Add(300*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	if r1.Backup == r2.Backup {
		t.Fatalf("both runs kept the copy as %s", r1.Backup)
	}
	if b, _ := os.ReadFile(r1.Backup); string(b) != "ORIGINAL=secret-original\n" {
		t.Fatalf("%s holds %q, want the original", r1.Backup, b)
	}
	if b, _ := os.ReadFile(r2.Backup); string(b) != string(first) {
		t.Fatalf("%s does not hold the first run's .env", r2.Backup)
	}
	if !strings.HasSuffix(r2.Backup, "_2") {
		t.Fatalf("second copy named %s, want the _2 rule", r2.Backup)
	}
	if st, _ := os.Stat(env); st.Mode().Perm() != 0o600 {
		t.Fatalf(".env mode %v", st.Mode().Perm())
	}
}

// An existing .env keeps its mode (and owner) through init --force.
func TestForceKeepsMode(t *testing.T) {
	dir := t.TempDir()
	env := filepath.Join(dir, ".env")
	if err := os.WriteFile(env, []byte("A=1\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	os.Chmod(env, 0o640)
	if _, err := Write(dir, nil, true, time.Now()); err != nil {
		t.Fatal(err)
	}
	if st, _ := os.Stat(env); st.Mode().Perm() != 0o640 {
		t.Fatalf(".env mode %v, want 0640 kept", st.Mode().Perm())
	}
}

// A symlinked .env stays a symlink and its target changes.
func TestForceThroughSymlink(t *testing.T) {
	dir := t.TempDir()
	secrets := t.TempDir()
	target := filepath.Join(secrets, "dify.env")
	if err := os.WriteFile(target, []byte("OLD=1\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	env := filepath.Join(dir, ".env")
	if err := os.Symlink(target, env); err != nil {
		t.Fatal(err)
	}
	res, err := Write(dir, nil, true, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if st, _ := os.Lstat(env); st.Mode()&os.ModeSymlink == 0 {
		t.Fatal(".env is no longer a symlink")
	}
	b, _ := os.ReadFile(target)
	if !strings.Contains(string(b), "SECRET_KEY=") {
		t.Fatal("the link's target did not get the new .env")
	}
	if st, _ := os.Stat(target); st.Mode().Perm() != 0o640 {
		t.Fatalf("target mode %v, want 0640 kept", st.Mode().Perm())
	}
	if bk, _ := os.ReadFile(res.Backup); string(bk) != "OLD=1\n" {
		t.Fatalf("copy %s holds %q", res.Backup, bk)
	}
}

// init on a full disk leaves nothing new and says so.
func TestInitOnTinyTmpfsLeavesNothing(t *testing.T) {
	if os.Geteuid() != 0 {
		if testenv.InCI() {
			t.Fatal("this test mounts a tmpfs and needs root under CI")
		}
		t.Skip("mounting a tmpfs needs root")
	}
	for _, size := range []string{"16k", "48k", "96k"} {
		t.Run(size, func(t *testing.T) {
			dir := t.TempDir()
			if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size, "tmpfs", dir).CombinedOutput(); err != nil {
				if testenv.InCI() {
					t.Fatalf("mount tmpfs: %v %s", err, out)
				}
				t.Skipf("mount tmpfs: %v %s", err, out)
			}
			t.Cleanup(func() { exec.Command("umount", dir).Run() })
			if err := os.WriteFile(filepath.Join(dir, "operator-notes.txt"), []byte("mine"), 0o644); err != nil {
				t.Fatal(err)
			}
			before := listTree(t, dir)
			_, err := Write(dir, nil, false, time.Now())
			if err == nil {
				t.Logf("init fits in %s", size)
				return
			}
			if !strings.Contains(err.Error(), "nothing") {
				t.Fatalf("error does not say nothing was left: %v", err)
			}
			if after := listTree(t, dir); strings.Join(after, "\n") != strings.Join(before, "\n") {
				t.Fatalf("init on a full disk left files:\nbefore %v\nafter  %v\n(%v)", before, after, err)
			}
			// The rerun does not claim .env exists.
			if _, err := Write(dir, nil, false, time.Now()); err != nil && strings.Contains(err.Error(), "exists") {
				t.Fatalf("rerun: %v", err)
			}
		})
	}
}

// init records the project name, so that a plain "docker compose" in the
// directory names the same project (it would use the directory's name).
func TestWriteRecordsProjectName(t *testing.T) {
	dir := t.TempDir()
	if _, err := WriteProject(dir, "shop-dify", nil, false, time.Now()); err != nil {
		t.Fatal(err)
	}
	d, err := envgen.ReadFile(filepath.Join(dir, ".env"))
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := d.Get("COMPOSE_PROJECT_NAME"); v != "shop-dify" {
		t.Fatalf("COMPOSE_PROJECT_NAME = %q", v)
	}
}

// A deployment never lands in difyctl's own checkout (git add -A would
// commit its secrets).
func TestRefusesSourceTree(t *testing.T) {
	root, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Write(root, nil, false, time.Now()); err == nil || !strings.Contains(err.Error(), "source tree") {
		t.Fatalf("init in the source tree: %v", err)
	}
	if _, err := os.Stat(filepath.Join(root, ".env")); err == nil {
		t.Fatal("a .env was written into the source tree")
	}
}
