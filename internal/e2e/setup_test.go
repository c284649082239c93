package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/difyctl/difyctl/envgen"
	"github.com/difyctl/difyctl/internal/release"
	"github.com/difyctl/difyctl/internal/testenv"
	"github.com/difyctl/difyctl/internal/wizard"
	"github.com/difyctl/difyctl/templates"
)

func TestSetupWithoutTerminal(t *testing.T) {
	r := run(t, nil, "--project-dir", t.TempDir(), "setup")
	if r.code != 2 || !strings.Contains(r.stderr, "difyctl init --profile") {
		t.Fatalf("setup without a terminal: exit %d %s", r.code, r.stderr)
	}
}

// TestSetupInTmux walks the whole wizard in a real terminal (tmux, 80×24)
// with non-default choices and checks the .env it writes.
func TestSetupInTmux(t *testing.T) {
	if _, err := exec.LookPath("tmux"); err != nil {
		if testenv.InCI() {
			t.Fatal("tmux missing; make test installs it")
		}
		t.Skip("tmux not installed (make test installs it)")
	}
	bin := testenv.Difyctl(t)
	dir := t.TempDir()
	sock := filepath.Join(t.TempDir(), "tmux.sock")
	tmux := func(args ...string) string {
		out, err := exec.Command("tmux", append([]string{"-S", sock}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("tmux %v: %v %s", args, err, out)
		}
		return string(out)
	}
	tmux("new-session", "-d", "-s", "w", "-x", "80", "-y", "24", "env", "NO_COLOR=1", bin, "--project-dir", dir, "setup")
	t.Cleanup(func() { exec.Command("tmux", "-S", sock, "kill-server").Run() })
	screen := func() string { return tmux("capture-pane", "-p", "-t", "w") }
	waitFor := func(s string) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for time.Now().Before(deadline) {
			if strings.Contains(screen(), s) {
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
		t.Fatalf("screen never showed %q:\n%s", s, screen())
	}
	keys := func(k ...string) { tmux(append([]string{"send-keys", "-t", "w"}, k...)...) }
	text := func(s string) { tmux("send-keys", "-t", "w", "-l", s) }

	waitFor("step 1/8")
	keys("Enter")
	latest := templates.Latest().Version
	waitFor("> " + latest + "  " + wizard.DefaultLabel)
	keys("Enter") // the newest release, preselected
	waitFor("Metadata database")
	keys("j", "Enter") // mysql
	waitFor("Vector store")
	keys("j", "j", "Enter") // pgvector
	waitFor("Access")
	keys("Enter")
	text("http://dify.internal")
	keys("Enter", "j", "Enter", "BSpace", "BSpace")
	text("8089")
	keys("Enter", "Tab")
	waitFor("Secrets")
	keys("Enter")
	waitFor("env validate: 0 error(s)")
	keys("Enter")
	waitFor("Start Dify now")
	keys("n")
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if _, err := os.Stat(filepath.Join(dir, ".env")); err == nil {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	d, err := envgen.ReadFile(filepath.Join(dir, ".env"))
	if err != nil {
		t.Fatalf("no .env: %v\n%s", err, screen())
	}
	e := d.Map()
	for k, want := range map[string]string{"DB_TYPE": "mysql", "VECTOR_STORE": "pgvector", "EXPOSE_NGINX_PORT": "8089", "CONSOLE_WEB_URL": "http://dify.internal", "PGVECTOR_HOST": "pgvector"} {
		if e[k] != want {
			t.Errorf("%s = %q, want %q", k, e[k], want)
		}
	}
	if e["PGVECTOR_PASSWORD"] == "" || e["PGVECTOR_PASSWORD"] != e["PGVECTOR_POSTGRES_PASSWORD"] {
		t.Error("pgvector passwords not generated and tied")
	}
	if fs := envgen.Validate(d, envgen.DefaultSchema()); envgen.HasErrors(fs, true) {
		t.Errorf("written .env has findings: %v", fs)
	}
	// The default release is recorded beside the .env, as init records it.
	if rec, err := release.Read(dir); err != nil || rec == nil || rec.Release != latest {
		t.Errorf("%s: %+v, %v; want release %s", release.FileName, rec, err, latest)
	}
}
