package atomicfile

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

func TestReplaceWritesThroughSymlink(t *testing.T) {
	dir := t.TempDir()
	secrets := filepath.Join(dir, "secrets")
	if err := os.Mkdir(secrets, 0o700); err != nil {
		t.Fatal(err)
	}
	target := filepath.Join(secrets, "dify.env")
	if err := os.WriteFile(target, []byte("old"), 0o640); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, ".env")
	if err := os.Symlink("secrets/dify.env", link); err != nil {
		t.Fatal(err)
	}
	if err := ReplaceFile(link, []byte("new"), 0o600); err != nil {
		t.Fatal(err)
	}
	st, err := os.Lstat(link)
	if err != nil || st.Mode()&os.ModeSymlink == 0 {
		t.Fatalf("the link was replaced: %v %v", st.Mode(), err)
	}
	if b, _ := os.ReadFile(target); string(b) != "new" {
		t.Fatalf("target holds %q", b)
	}
	if st, _ := os.Stat(target); st.Mode().Perm() != 0o640 {
		t.Fatalf("target mode %v, want 0640 kept", st.Mode().Perm())
	}
	// No temporary file left in either directory.
	for _, d := range []string{dir, secrets} {
		es, _ := os.ReadDir(d)
		for _, e := range es {
			if e.Name() != ".env" && e.Name() != "secrets" && e.Name() != "dify.env" {
				t.Fatalf("left behind: %s", filepath.Join(d, e.Name()))
			}
		}
	}
}

func TestReplaceDanglingLinkCreatesTarget(t *testing.T) {
	dir := t.TempDir()
	link := filepath.Join(dir, ".env")
	if err := os.Symlink(filepath.Join(dir, "real.env"), link); err != nil {
		t.Fatal(err)
	}
	if err := ReplaceFile(link, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "real.env")); string(b) != "x" {
		t.Fatalf("target holds %q", b)
	}
	if st, _ := os.Stat(filepath.Join(dir, "real.env")); st.Mode().Perm() != 0o600 {
		t.Fatalf("new file mode %v", st.Mode().Perm())
	}
}

func TestReplaceKeepsOwner(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("changing a file's owner needs root")
	}
	p := filepath.Join(t.TempDir(), ".env")
	if err := os.WriteFile(p, []byte("a"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(p, 4242, 4343); err != nil {
		t.Fatal(err)
	}
	if err := ReplaceFile(p, []byte("b"), 0o600); err != nil {
		t.Fatal(err)
	}
	st, _ := os.Stat(p)
	sys := st.Sys().(*syscall.Stat_t)
	if sys.Uid != 4242 || sys.Gid != 4343 {
		t.Fatalf("owner %d:%d, want 4242:4343", sys.Uid, sys.Gid)
	}
}

func TestBackupNeverOverwrites(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, ".env")
	var names []string
	for _, content := range []string{"first", "second", "third"} {
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		name, err := Backup(p, ".bak-20260101T000000Z", 0o600)
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, name)
	}
	want := []string{p + ".bak-20260101T000000Z", p + ".bak-20260101T000000Z_2", p + ".bak-20260101T000000Z_3"}
	for i, n := range names {
		if n != want[i] {
			t.Fatalf("copy %d named %s, want %s", i, n, want[i])
		}
		b, _ := os.ReadFile(n)
		if string(b) != []string{"first", "second", "third"}[i] {
			t.Fatalf("%s holds %q", n, b)
		}
		if st, _ := os.Stat(n); st.Mode().Perm() != 0o600 {
			t.Fatalf("%s mode %v", n, st.Mode().Perm())
		}
	}
	es, _ := os.ReadDir(dir)
	if len(es) != 4 {
		t.Fatalf("temporary files left: %v", es)
	}
}
