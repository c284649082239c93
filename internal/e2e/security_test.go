package e2e

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/difyctl/difyctl/backup"
	"github.com/difyctl/difyctl/internal/testenv"
)

// needRoot: the attacks below need two users; the tests run as root and
// create an unprivileged one. Under CI=true not being root is a failure.
func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		if testenv.InCI() {
			t.Fatal("CI=true: the security tests need root (they create a user)")
		}
		t.Skip("needs root: creates an unprivileged user")
	}
}

// sharedTemp is a directory every user can reach (t.TempDir is 0700 root's).
func sharedTemp(t *testing.T) string {
	t.Helper()
	d, err := os.MkdirTemp("", "difyctl-sec-")
	if err != nil {
		t.Fatal(err)
	}
	os.Chmod(d, 0o755)
	t.Cleanup(func() { os.RemoveAll(d) })
	return d
}

type testUser struct {
	name     string
	uid, gid int
	home     string
}

// newUser creates an unprivileged user with a home under base; userdel
// removes it when the test ends.
func newUser(t *testing.T, base string) testUser {
	t.Helper()
	b := make([]byte, 4)
	rand.Read(b)
	name := "dctl" + hex.EncodeToString(b)
	home := filepath.Join(base, name)
	if out, err := exec.Command("useradd", "-m", "-d", home, "-s", "/bin/sh", "-U", name).CombinedOutput(); err != nil {
		t.Fatalf("useradd: %v %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("userdel", "-r", name).CombinedOutput(); err != nil {
			t.Errorf("userdel %s: %v %s", name, err, out)
		}
	})
	u, err := user.Lookup(name)
	if err != nil {
		t.Fatal(err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return testUser{name: name, uid: uid, gid: gid, home: home}
}

// sharedBinary is the difyctl binary where every user can run it.
func sharedBinary(t *testing.T, base string) string {
	t.Helper()
	src := testenv.Difyctl(t)
	dst := filepath.Join(base, "difyctl")
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	out.Close()
	return dst
}

// runAs runs bin as u with a clean environment plus env.
func runAs(t *testing.T, u testUser, bin string, env []string, args ...string) result {
	t.Helper()
	full := append([]string{"--reuid=" + strconv.Itoa(u.uid), "--regid=" + strconv.Itoa(u.gid), "--clear-groups", "--",
		"env", "-i", "HOME=" + u.home, "PATH=/usr/local/bin:/usr/bin:/bin", "USER=" + u.name}, env...)
	full = append(full, bin)
	full = append(full, args...)
	return runCmd(t, exec.Command("setpriv", full...))
}

// runRoot runs bin as root with env added to this process's environment.
func runRoot(t *testing.T, bin string, env []string, args ...string) result {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	return runCmd(t, cmd)
}

// victim writes a file only root can read and returns a check that it is
// unchanged.
func victimFile(t *testing.T, dir, name string, uid, gid int) (string, func()) {
	t.Helper()
	p := filepath.Join(dir, name)
	content := "precious " + name + "\n"
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	os.Chown(p, uid, gid)
	return p, func() {
		t.Helper()
		if b, err := os.ReadFile(p); err != nil || string(b) != content {
			t.Fatalf("%s changed: %q %v", p, b, err)
		}
	}
}

func chownR(t *testing.T, root string, u testUser) {
	t.Helper()
	filepath.Walk(root, func(p string, _ os.FileInfo, err error) error {
		if err == nil {
			os.Lchown(p, u.uid, u.gid)
		}
		return nil
	})
}

// Finding 1: a lock file planted as a symlink to a root-only file is
// refused, never truncated; as an unprivileged user, no lock lives under a
// fixed /tmp name another user could create first.
func TestSecurityLockAttacks(t *testing.T) {
	needRoot(t)
	base := sharedTemp(t)
	bin := sharedBinary(t, base)
	attacker := newUser(t, base)

	t.Run("backup lock symlink as root", func(t *testing.T) {
		// The attacker owns the project directory (cloned as them, run with sudo).
		proj := filepath.Join(base, "proj-backup")
		os.MkdirAll(filepath.Join(proj, "backups", "redis"), 0o755)
		chownR(t, proj, attacker)
		shadow, unchanged := victimFile(t, base, "shadow", 0, 0)
		lock := filepath.Join(proj, "backups", "redis", backup.LockName("dify"))
		os.Symlink(shadow, lock)
		os.Lchown(lock, attacker.uid, attacker.gid)
		r := runRoot(t, bin, nil, "--project-dir", proj, "backup", "prune")
		if r.code == 0 || !strings.Contains(r.stderr, filepath.Join(proj, "backups", "redis")) {
			t.Fatalf("exit %d, stderr %s", r.code, r.stderr)
		}
		unchanged()

		// Even in a directory root owns, the planted link is refused by name.
		os.Lchown(filepath.Join(proj, "backups", "redis"), 0, 0)
		r = runRoot(t, bin, nil, "--project-dir", proj, "backup", "prune")
		if r.code == 0 || !strings.Contains(r.stderr, lock) || !strings.Contains(r.stderr, "symbolic link") {
			t.Fatalf("exit %d, stderr %s", r.code, r.stderr)
		}
		unchanged()
	})

	t.Run("hard link as root", func(t *testing.T) {
		proj := filepath.Join(base, "proj-hard")
		os.MkdirAll(filepath.Join(proj, "backups", "redis"), 0o700)
		shadow, unchanged := victimFile(t, filepath.Join(proj, "backups"), "shadow2", 0, 0)
		lock := filepath.Join(proj, "backups", "redis", backup.LockName("dify"))
		if err := os.Link(shadow, lock); err != nil {
			t.Fatal(err)
		}
		r := runRoot(t, bin, nil, "--project-dir", proj, "backup", "prune")
		if r.code == 0 || !strings.Contains(r.stderr, lock) || !strings.Contains(r.stderr, "hard links") {
			t.Fatalf("exit %d, stderr %s", r.code, r.stderr)
		}
		unchanged()
	})

	t.Run("no fixed /tmp name for an unprivileged user", func(t *testing.T) {
		victim := newUser(t, base)
		keys, unchanged := victimFile(t, victim.home, "authorized_keys", victim.uid, victim.gid)
		// The attacker creates the old predictable directory first, with the
		// lock pointing at the victim's authorized_keys.
		trap := filepath.Join(os.TempDir(), fmt.Sprintf("difyctl-%d", victim.uid))
		os.RemoveAll(trap)
		os.Mkdir(trap, 0o777)
		os.Chmod(trap, 0o777)
		t.Cleanup(func() { os.RemoveAll(trap) })
		os.Symlink(keys, filepath.Join(trap, "dify.lock"))
		chownR(t, trap, attacker)
		proj := filepath.Join(victim.home, "dify")
		os.Mkdir(proj, 0o700)
		os.Chown(proj, victim.uid, victim.gid)
		r := runAs(t, victim, bin, nil, "--project-dir", proj, "down")
		unchanged()
		// The lock lived in the victim's own cache (and is removed after use).
		if _, err := os.Stat(filepath.Join(victim.home, ".cache", "difyctl", "locks")); err != nil {
			t.Fatalf("lock directory not under the user's cache: %v (exit %d, %s)", err, r.code, r.stderr)
		}
		if st, _ := os.Stat(filepath.Join(victim.home, ".cache", "difyctl", "locks")); st.Mode().Perm() != 0o700 {
			t.Fatalf("lock dir mode %v", st.Mode())
		}

		// A lock directory others can write, chosen explicitly, is refused by name.
		r = runAs(t, victim, bin, []string{"DIFYCTL_LOCK_DIR=" + trap}, "--project-dir", proj, "down")
		if r.code == 0 || !strings.Contains(r.stderr, trap) || !strings.Contains(r.stderr, "refusing lock") {
			t.Fatalf("exit %d, stderr %s", r.code, r.stderr)
		}
		unchanged()
	})
}

// Finding 3: as root, a project others can write is refused (naming the
// path and the fix); one owned by another user is used with a warning and
// reported by doctor; env import refuses another user's sources.
func TestSecurityRootTrustsProject(t *testing.T) {
	needRoot(t)
	base := sharedTemp(t)
	bin := sharedBinary(t, base)
	owner := newUser(t, base)
	compose := "services:\n  web:\n    image: difyctl-test/testsvc:latest\n"

	newProject := func(name string) string {
		p := filepath.Join(base, name)
		os.Mkdir(p, 0o755)
		os.WriteFile(filepath.Join(p, "compose.yaml"), []byte(compose), 0o644)
		os.WriteFile(filepath.Join(p, ".env"), []byte("COMPOSE_PROJECT_NAME=sec\n"), 0o600)
		return p
	}
	for _, tc := range []struct {
		name   string
		attack func(p string) string // returns the path that must be named
	}{
		{"project dir world-writable", func(p string) string { os.Chmod(p, 0o777); return p }},
		{"project dir group-writable", func(p string) string { os.Chmod(p, 0o775); return p }},
		{".env writable", func(p string) string { e := filepath.Join(p, ".env"); os.Chmod(e, 0o666); return e }},
		{"override file planted writable", func(p string) string {
			o := filepath.Join(p, "docker-compose.override.yaml")
			os.WriteFile(o, []byte("services:\n  web:\n    privileged: true\n    volumes: [\"/:/host\"]\n"), 0o600)
			os.Chmod(o, 0o666)
			return o
		}},
		{"backups writable", func(p string) string {
			b := filepath.Join(p, "backups")
			os.Mkdir(b, 0o777)
			os.Chmod(b, 0o777)
			return b
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := newProject(strings.ReplaceAll(tc.name, " ", "-"))
			named := tc.attack(p)
			for _, args := range [][]string{{"config"}, {"-f", filepath.Join(p, "compose.yaml"), "up", "--dry-run"}, {"ps"}} {
				r := runRoot(t, bin, nil, append([]string{"--project-dir", p}, args...)...)
				if r.code != 1 || !strings.Contains(r.stderr, "refusing to run as root: "+named) || !strings.Contains(r.stderr, "chmod go-w "+named) {
					t.Fatalf("%v: exit %d, stderr %s", args, r.code, r.stderr)
				}
			}
			// doctor reports it as a failed check, with the fix.
			r := runRoot(t, bin, nil, "--project-dir", p, "doctor")
			if !strings.Contains(r.stdout, "project files") || !strings.Contains(r.stdout, named) || !strings.Contains(r.stdout, "chmod go-w") {
				t.Fatalf("doctor: %s", r.stdout)
			}
		})
	}

	t.Run("owned by another user: warning and doctor finding", func(t *testing.T) {
		p := newProject("owned")
		chownR(t, p, owner)
		r := runRoot(t, bin, nil, "--project-dir", p, "config", "-f", filepath.Join(p, "compose.yaml"))
		if r.code != 0 {
			t.Fatalf("exit %d: %s", r.code, r.stderr)
		}
		lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
		if !strings.HasPrefix(lines[0], "warning: "+p+" is owned by user "+owner.name) {
			t.Fatalf("stderr %q", r.stderr)
		}
		if strings.Count(r.stderr, "warning:") != 1 || !strings.Contains(lines[0], "more path(s) alike") {
			t.Fatalf("want one warning line, got %q", r.stderr)
		}
		r = runRoot(t, bin, nil, "--project-dir", p, "doctor")
		if !strings.Contains(r.stdout, "warn  project files") || !strings.Contains(r.stdout, owner.name) {
			t.Fatalf("doctor: %s", r.stdout)
		}
		// The same project is fine for its owner.
		r = runAs(t, owner, bin, nil, "--project-dir", p, "config", "-f", filepath.Join(p, "compose.yaml"))
		if r.code != 0 || strings.Contains(r.stderr, "warning") {
			t.Fatalf("owner: exit %d %s", r.code, r.stderr)
		}
	})

	t.Run("env import of another user's source", func(t *testing.T) {
		secret, unchanged := victimFile(t, base, "root-only.env", 0, 0)
		os.WriteFile(secret, []byte("SECRET_KEY=rootsecretvalue\n"), 0o600)
		src := filepath.Join(base, "upstream-docker")
		os.MkdirAll(filepath.Join(src, "volumes"), 0o755)
		os.Symlink(secret, filepath.Join(src, ".env"))
		chownR(t, src, owner)
		dst := filepath.Join(base, "importer")
		os.Mkdir(dst, 0o700)
		for _, extra := range [][]string{nil, {"--allow-other-owner"}} {
			r := runRoot(t, bin, nil, append([]string{"--project-dir", dst, "env", "import", src}, extra...)...)
			if r.code == 0 || !strings.Contains(r.stderr, "refusing to import") || strings.Contains(r.stdout+r.stderr, "rootsecretvalue") {
				t.Fatalf("%v: exit %d %s %s", extra, r.code, r.stdout, r.stderr)
			}
			if _, err := os.Lstat(filepath.Join(dst, ".env")); err == nil {
				t.Fatal(".env written from a refused import")
			}
		}
		_ = unchanged
		// A plain .env of the other user: refused unless told.
		os.Remove(filepath.Join(src, ".env"))
		os.WriteFile(filepath.Join(src, ".env"), []byte("COMPOSE_PROJECT_NAME=theirs\n"), 0o644)
		chownR(t, src, owner)
		r := runRoot(t, bin, nil, "--project-dir", dst, "env", "import", src)
		if r.code != 2 || !strings.Contains(r.stderr, src) || !strings.Contains(r.stderr, "--allow-other-owner") {
			t.Fatalf("exit %d %s", r.code, r.stderr)
		}
		r = runRoot(t, bin, nil, "--project-dir", dst, "env", "import", "--allow-other-owner", src)
		if r.code != 0 {
			t.Fatalf("told: exit %d %s", r.code, r.stderr)
		}
	})
}

// Finding 7: .env.bak-* copies (rotated secrets) follow the backups'
// retention and are listed by `env backups`.
func TestEnvCopiesRotated(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, ".env"), []byte("COMPOSE_PROJECT_NAME=rot\n"), 0o600)
	old, recent := ".env.bak-20200101T000000Z", ".env.bak-20200102T000000Z"
	for _, n := range []string{old, recent} {
		os.WriteFile(filepath.Join(dir, n), []byte("SECRET_KEY=old\n"), 0o600)
	}
	r := run(t, nil, "--project-dir", dir, "env", "backups")
	if r.code != 0 || !strings.Contains(r.stdout, old) || !strings.Contains(r.stdout, recent) {
		t.Fatalf("env backups: exit %d %s %s", r.code, r.stdout, r.stderr)
	}
	// A project that has taken backups: prune refuses a backup directory
	// that does not exist (a mistyped --backup-dir).
	if err := os.MkdirAll(filepath.Join(dir, "backups", "redis"), 0o700); err != nil {
		t.Fatal(err)
	}
	r = run(t, nil, "--project-dir", dir, "backup", "prune", "--retention-days", "7", "--keep-min", "1")
	if r.code != 0 || !strings.Contains(r.stdout, "deleted "+old) {
		t.Fatalf("prune: exit %d %s %s", r.code, r.stdout, r.stderr)
	}
	if _, err := os.Stat(filepath.Join(dir, old)); err == nil {
		t.Fatal("old copy kept")
	}
	if _, err := os.Stat(filepath.Join(dir, recent)); err != nil {
		t.Fatal("the newest keep-min copy deleted")
	}
}
