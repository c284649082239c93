package adopt

import (
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/difyctl/difyctl/templates"
)

func write(t *testing.T, p, s string) {
	t.Helper()
	os.MkdirAll(filepath.Dir(p), 0o755)
	if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}

func read(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func embedded(t *testing.T, rel string) string {
	t.Helper()
	b, err := fs.ReadFile(templates.SupportFiles(), rel)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// An older release's nginx and squid configuration is not used as it is:
// the embedded release's files are, the operator's differing ones are kept
// as .orig beside them; files the release does not ship (certificates) are
// copied; data is linked; the source is only read.
func TestFoldersFromAnOlderRelease(t *testing.T) {
	src, proj := filepath.Join(t.TempDir(), "docker"), t.TempDir()
	const oldNginx = "# nginx of Dify 1.1.3: no route for the new services\n"
	write(t, filepath.Join(src, "nginx", "nginx.conf.template"), oldNginx)
	write(t, filepath.Join(src, "nginx", "ssl", "dify.crt"), "CERT")
	write(t, filepath.Join(src, "ssrf_proxy", "squid.conf.template"), embedded(t, "ssrf_proxy/squid.conf.template"))
	write(t, filepath.Join(src, "volumes", "db", "data", "PG_VERSION"), "15")
	os.Symlink("/etc/passwd", filepath.Join(src, "nginx", "link"))

	rep, err := Folders(src, proj)
	if err != nil {
		t.Fatal(err)
	}
	if got := read(t, filepath.Join(proj, "nginx", "nginx.conf.template")); got != embedded(t, "nginx/nginx.conf.template") {
		t.Error("the older release's nginx.conf.template is used")
	}
	if got := read(t, filepath.Join(proj, "nginx", "nginx.conf.template.orig")); got != oldNginx {
		t.Error("the operator's nginx.conf.template is not kept as .orig")
	}
	if _, err := os.Stat(filepath.Join(proj, "ssrf_proxy", "squid.conf.template.orig")); err == nil {
		t.Error("an unchanged file got a .orig")
	}
	if read(t, filepath.Join(proj, "nginx", "ssl", "dify.crt")) != "CERT" {
		t.Error("certificate not copied")
	}
	if target, err := os.Readlink(filepath.Join(proj, "volumes")); err != nil || target != filepath.Join(src, "volumes") {
		t.Errorf("volumes not linked: %q %v", target, err)
	}
	if _, err := os.Lstat(filepath.Join(proj, "nginx", "link")); err == nil {
		t.Error("a symlink of the source was copied")
	}
	if !slices.Contains(rep.Replaced, filepath.Join("nginx", "nginx.conf.template")) || !slices.Contains(rep.Copied, filepath.Join("nginx", "ssl", "dify.crt")) ||
		!slices.Contains(rep.Linked, "volumes") || len(rep.Skipped) != 1 {
		t.Errorf("report: %+v", rep)
	}
	if read(t, filepath.Join(src, "nginx", "nginx.conf.template")) != oldNginx {
		t.Error("the source changed")
	}
	// Again: nothing new, no second .orig.
	rep2, err := Folders(src, proj)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(proj, "nginx", "nginx.conf.template.orig.1")); err == nil || len(rep2.Linked) != 0 {
		t.Errorf("second adoption: %+v %v", rep2, err)
	}
}

// In place (the docker/ folder is the project): the differing file is moved
// aside to .orig and the embedded one written.
func TestFoldersInPlace(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, "ssrf_proxy", "squid.conf.template"), "old squid: no private-network deny rules\n")
	rep, err := Folders(dir, dir)
	if err != nil {
		t.Fatal(err)
	}
	if read(t, filepath.Join(dir, "ssrf_proxy", "squid.conf.template")) != embedded(t, "ssrf_proxy/squid.conf.template") ||
		read(t, filepath.Join(dir, "ssrf_proxy", "squid.conf.template.orig")) != "old squid: no private-network deny rules\n" || len(rep.Linked) != 0 {
		t.Fatalf("in place: %+v", rep)
	}
}

// A file the project already has, edited by the operator, is left alone.
func TestFoldersKeepTheProjectsOwn(t *testing.T) {
	src, proj := t.TempDir(), t.TempDir()
	write(t, filepath.Join(src, "nginx", "proxy.conf.template"), "old\n")
	write(t, filepath.Join(proj, "nginx", "proxy.conf.template"), "mine\n")
	rep, err := Folders(src, proj)
	if err != nil {
		t.Fatal(err)
	}
	if read(t, filepath.Join(proj, "nginx", "proxy.conf.template")) != "mine\n" || len(rep.Kept) != 1 {
		t.Fatalf("project's own file: %+v", rep)
	}
}
