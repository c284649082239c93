package e2e

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/creack/pty"
	"github.com/hinshun/vt10x"

	"github.com/difyctl/difyctl/envgen"
	"github.com/difyctl/difyctl/internal/release"
	"github.com/difyctl/difyctl/internal/testenv"
	"github.com/difyctl/difyctl/internal/wizard"
	"github.com/difyctl/difyctl/profiles"
	"github.com/difyctl/difyctl/templates"
)

// The setup wizard driven as an operator drives it: the real binary in a
// pseudo-terminal, its output read by a VT emulator (vt10x) that, like a
// terminal that does not answer queries, sends nothing back. Each case runs
// at 60x15 and 120x40; each checks the screens, the exit code and the .env
// byte for byte.

var wizardSizes = [][2]int{{60, 15}, {120, 40}}

type vterm struct {
	t          *testing.T
	cols, rows int
	ptmx       *os.File
	vt         vt10x.Terminal
	mu         sync.Mutex
	raw        bytes.Buffer
	exited     chan struct{}
	code       int
	dir        string
	shots      []string // the screens waitFor saw, for the transcript
}

// startWizard runs difyctl --project-dir dir setup args... in a cols x rows
// pseudo-terminal. TERM is xterm-256color unless env says otherwise; CI is
// unset in the child so that nothing skips a terminal query on its account.
func startWizard(t *testing.T, dir string, cols, rows int, env []string, args ...string) *vterm {
	t.Helper()
	cmd := exec.Command(testenv.Difyctl(t), append([]string{"--project-dir", dir, "setup"}, args...)...)
	for _, kv := range os.Environ() {
		switch k, _, _ := strings.Cut(kv, "="); k {
		case "TERM", "CI", "NO_COLOR", "COLORTERM", "ACCESSIBLE":
		default:
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(append(cmd.Env, "TERM=xterm-256color"), env...)
	ptmx, err := pty.StartWithSize(cmd, &pty.Winsize{Cols: uint16(cols), Rows: uint16(rows)})
	if err != nil {
		t.Fatal(err)
	}
	v := &vterm{t: t, cols: cols, rows: rows, ptmx: ptmx, vt: vt10x.New(vt10x.WithSize(cols, rows)), exited: make(chan struct{}), dir: dir}
	read := make(chan struct{})
	go func() {
		defer close(read)
		buf := make([]byte, 4096)
		for {
			n, err := ptmx.Read(buf)
			if n > 0 {
				v.mu.Lock()
				v.raw.Write(buf[:n])
				v.vt.Write(buf[:n])
				v.mu.Unlock()
			}
			if err != nil {
				return
			}
		}
	}()
	go func() {
		err := cmd.Wait()
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			v.code = ee.ExitCode()
		} else if err != nil {
			v.code = -1
		}
		<-read // the last output is on screen before exited closes
		close(v.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-v.exited:
		default:
			cmd.Process.Kill()
			<-v.exited
		}
		ptmx.Close()
	})
	return v
}

// screen is the terminal's text, trailing spaces and empty lines dropped.
func (v *vterm) screen() string {
	v.mu.Lock()
	defer v.mu.Unlock()
	var lines []string
	for y := 0; y < v.rows; y++ {
		var b strings.Builder
		for x := 0; x < v.cols; x++ {
			c := v.vt.Cell(x, y).Char
			if c == 0 {
				c = ' '
			}
			b.WriteRune(c)
		}
		lines = append(lines, strings.TrimRight(b.String(), " "))
	}
	return strings.TrimRight(strings.Join(lines, "\n"), "\n")
}

func (v *vterm) output() string {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.raw.String()
}

// waitFor waits until the screen shows every one of want and stops
// changing, and records it for the transcript.
func (v *vterm) waitFor(want ...string) string {
	v.t.Helper()
	return v.waitMatch(fmt.Sprintf("%q", want), func(s string) bool {
		for _, w := range want {
			if !strings.Contains(s, w) {
				return false
			}
		}
		return true
	})
}

// waitRe is waitFor with a regular expression.
func (v *vterm) waitRe(re string) string {
	v.t.Helper()
	r := regexp.MustCompile(re)
	return v.waitMatch(re, r.MatchString)
}

func (v *vterm) waitMatch(what string, ok func(string) bool) string {
	v.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	prev, same := "", 0
	for time.Now().Before(deadline) {
		s := v.screen()
		if ok(s) && s == prev {
			if same++; same >= 2 {
				v.checkScreen(s)
				v.shots = append(v.shots, s)
				return s
			}
		} else {
			same = 0
		}
		prev = s
		time.Sleep(40 * time.Millisecond)
	}
	v.t.Fatalf("%dx%d: the screen never showed %s:\n%s", v.cols, v.rows, what, v.screen())
	return ""
}

// wrapped matches the atoms in order, allowing a line break (and the
// continuation's indent) between any two: how a screen shows a long value.
func wrapped(atoms []string) *regexp.Regexp {
	return regexp.MustCompile(strings.Join(atoms, `(?:\n *)?`))
}

func literal(s string) []string {
	var out []string
	for _, r := range s {
		out = append(out, regexp.QuoteMeta(string(r)))
	}
	return out
}

var (
	reBackup *regexp.Regexp // .env.bak-<UTC time>, however wrapped
	reSecret = regexp.MustCompile(`= [A-Za-z0-9+/=_-]{16,}`)
)

func init() {
	var atoms []string
	atoms = append(atoms, literal(".env.bak-")...)
	for range 8 {
		atoms = append(atoms, `\d`)
	}
	atoms = append(atoms, "T")
	for range 6 {
		atoms = append(atoms, `\d`)
	}
	reBackup = wrapped(append(atoms, "Z"))
}

// transcript compares the screens waitFor saw, and the last one, with
// testdata/wizard/<test>.txt (UPDATE_GOLDEN=1 rewrites it). The project
// directory, backup times and revealed secrets are replaced by placeholders
// after rendering, so the layout is the real one.
func (v *vterm) transcript() {
	v.t.Helper()
	var b strings.Builder
	for i, s := range append(v.shots, v.screen()) {
		s = wrapped(literal(v.dir)).ReplaceAllString(s, "<dir>")
		s = reBackup.ReplaceAllString(s, ".env.bak-<time>")
		s = reSecret.ReplaceAllString(s, "= <secret>")
		fmt.Fprintf(&b, "── screen %d ──\n%s\n", i+1, s)
	}
	name := strings.NewReplacer("/", "-", "TestWizardPTY", "").Replace(v.t.Name())
	checkGolden(v.t, filepath.Join("testdata", "wizard", name+".txt"), b.String())
}

func checkGolden(t *testing.T, path, got string) {
	t.Helper()
	if os.Getenv("UPDATE_GOLDEN") != "" {
		os.MkdirAll(filepath.Dir(path), 0o755)
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (UPDATE_GOLDEN=1 regenerates it)", err)
	}
	if string(want) != got {
		t.Fatalf("screens differ from %s (UPDATE_GOLDEN=1 regenerates it):\n%s", path, lineDiff(want, []byte(got)))
	}
}

// projectDir is a new directory whose path has the same length on every run
// (so that screens wrap it the same way), removed after the test.
func projectDir(t *testing.T) string {
	t.Helper()
	var b [8]byte
	rand.Read(b[:])
	dir := filepath.Join("/tmp", fmt.Sprintf("difyctl-wizard-%x", b))
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// checkScreen: while the wizard runs, its title is on the first line and a
// key help on the last (the terminal is the screen's size, so nothing else
// can overflow).
func (v *vterm) checkScreen(s string) {
	v.t.Helper()
	select {
	case <-v.exited:
		return
	default:
	}
	lines := strings.Split(s, "\n")
	if !strings.HasPrefix(lines[0], "difyctl setup") && !strings.Contains(s, "[") {
		v.t.Errorf("%dx%d: the title is not on top:\n%s", v.cols, v.rows, s)
	}
}

// send types keys; each is written on its own so that escape is read alone.
func (v *vterm) send(keys ...string) {
	v.t.Helper()
	for _, k := range keys {
		if _, err := v.ptmx.Write([]byte(k)); err != nil {
			v.t.Fatal(err)
		}
		time.Sleep(60 * time.Millisecond)
	}
}

func (v *vterm) exit() int {
	v.t.Helper()
	select {
	case <-v.exited:
	case <-time.After(20 * time.Second):
		v.t.Fatalf("the wizard did not exit:\n%s", v.screen())
	}
	return v.code
}

const (
	kEnter = "\r"
	kTab   = "\t"
	kEsc   = "\x1b"
	kDown  = "\x1b[B"
	kUp    = "\x1b[A"
	kCtrlC = "\x03"
	kCtrlU = "\x15"
)

// existingEnv writes a generated .env (postgresql + weaviate) into a new
// directory, changed by edit, and returns the directory and its bytes.
func existingEnv(t *testing.T, edit func(d *envgen.Doc)) (string, []byte) {
	t.Helper()
	dir := projectDir(t)
	sel, _ := profiles.Select(nil, false)
	d, err := envgen.Generate(envgen.DefaultSchema(), sel, rand.Reader, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	// High ports, so that nothing on the test host holds them.
	d.Set("EXPOSE_NGINX_PORT", "18080")
	d.Set("EXPOSE_NGINX_SSL_PORT", "18443")
	if edit != nil {
		edit(d)
	}
	if err := envgen.WriteFile(filepath.Join(dir, ".env"), d); err != nil {
		t.Fatal(err)
	}
	return dir, d.Bytes()
}

func envBytes(t *testing.T, dir string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, ".env"))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// expectEnv compares the written .env with orig changed by set, byte for byte.
func expectEnv(t *testing.T, dir string, orig []byte, set map[string]string) {
	t.Helper()
	want, err := envgen.Parse(orig)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range set {
		want.Set(k, v)
	}
	got := envBytes(t, dir)
	if !bytes.Equal(got, want.Bytes()) {
		t.Fatalf("written .env differs from the expected one:\n%s", lineDiff(want.Bytes(), got))
	}
}

func lineDiff(want, got []byte) string {
	w, g := strings.Split(string(want), "\n"), strings.Split(string(got), "\n")
	var out []string
	for i := 0; i < max(len(w), len(g)); i++ {
		var a, b string
		if i < len(w) {
			a = w[i]
		}
		if i < len(g) {
			b = g[i]
		}
		if a != b {
			out = append(out, fmt.Sprintf("line %d: want %q got %q", i+1, a, b))
		}
	}
	return strings.Join(out, "\n")
}

func backups(t *testing.T, dir string) []string {
	b, _ := filepath.Glob(filepath.Join(dir, ".env.bak-*"))
	return b
}

func eachSize(t *testing.T, f func(t *testing.T, cols, rows int)) {
	for _, s := range wizardSizes {
		t.Run(fmt.Sprintf("%dx%d", s[0], s[1]), func(t *testing.T) { f(t, s[0], s[1]) })
	}
}

// Finding 1: a look at "Start fresh" then "Edit it" keeps every value, the
// secrets included; writing prints where the previous .env went.
func TestWizardPTYEditAfterFreshKeepsSecrets(t *testing.T) {
	eachSize(t, func(t *testing.T, cols, rows int) {
		dir, orig := existingEnv(t, nil)
		v := startWizard(t, dir, cols, rows, nil)
		v.waitFor("step 1/8", "> Edit it")
		v.send(kDown)
		v.waitFor("> Start fresh")
		v.send(kEnter)
		// Starting fresh keeps the release the project deploys (no
		// record: the newest); j/k only say so.
		latest := templates.Latest().Version
		v.waitFor("step 2/8", "> "+latest, "(deployed here)")
		v.send("j")
		v.waitFor("the release is fixed here", "> "+latest)
		v.send(kEsc)
		v.waitFor("step 1/8", "> Start fresh")
		v.send(kUp)
		v.waitFor("> Edit it")
		v.send(kEnter)
		v.waitFor("step 2/8")
		v.send(kEnter)
		v.waitFor("step 3/8")
		v.send(kEnter)
		v.waitFor("step 4/8")
		v.send(kEnter)
		v.waitFor("step 5/8")
		v.send(kTab)
		v.waitFor("step 6/8")
		v.send(kEnter)
		s := v.waitFor("step 7/8", "0 change(s)")
		if strings.Contains(s, "SECRET") {
			t.Fatalf("review changes a secret:\n%s", s)
		}
		v.send(kEnter)
		v.waitFor("Kept the previous one as", "Start Dify now")
		v.send(kEnter) // not now
		if code := v.exit(); code != 0 {
			t.Fatalf("exit %d:\n%s", code, v.screen())
		}
		b := backups(t, dir)
		if len(b) != 1 || !strings.Contains(strings.ReplaceAll(v.screen(), "\n", ""), "kept the previous one as "+b[0]) && !strings.Contains(v.output(), "kept the previous one as "+b[0]) {
			t.Fatalf("backup %v not reported:\n%s", b, v.screen())
		}
		expectEnv(t, dir, orig, nil)
		if old, _ := os.ReadFile(b[0]); !bytes.Equal(old, orig) {
			t.Fatal("the kept copy is not the previous .env")
		}
		v.transcript()
	})
}

// Findings 2 and 5: a rejected secret is cleared, the error goes when typing
// resumes; the review marks the changed secret; ctrl+c on "Start Dify now?"
// after writing exits 130 and says the .env was written.
func TestWizardPTYRejectedSecretAndCtrlC(t *testing.T) {
	eachSize(t, func(t *testing.T, cols, rows int) {
		dir, orig := existingEnv(t, nil)
		v := startWizard(t, dir, cols, rows, nil)
		v.waitFor("step 1/8")
		v.send(kEnter, kEnter, kEnter, kEnter, kTab)
		v.waitFor("step 6/8", "> SECRET_KEY")
		v.send("e")
		v.waitFor("New SECRET_KEY: █")
		v.send("short", kEnter)
		s := v.waitFor("at least 16 characters", "New SECRET_KEY: █")
		if strings.Contains(s, "•") && strings.Contains(s, "New SECRET_KEY: •") {
			t.Fatalf("rejected value left in the field:\n%s", s)
		}
		v.send("x")
		s = v.waitFor("New SECRET_KEY: •█")
		if strings.Contains(s, "at least 16") {
			t.Fatalf("the error stays while typing:\n%s", s)
		}
		v.send(kCtrlU, "operator-secret-key-0123456789", kEnter)
		v.waitFor("REPLACED")
		v.send(kEnter)
		v.waitFor("step 7/8", "SECRET(S) CHANGE: SECRET_KEY")
		v.send(kEnter)
		v.waitFor("Start Dify now")
		v.send(kCtrlC)
		if code := v.exit(); code != 130 {
			t.Fatalf("exit %d, want 130:\n%s", code, v.screen())
		}
		if !strings.Contains(v.output(), "not started (interrupted)") || strings.Contains(v.output(), "nothing written") {
			t.Fatalf("ctrl+c after writing misreported:\n%s", v.screen())
		}
		expectEnv(t, dir, orig, map[string]string{"SECRET_KEY": "operator-secret-key-0123456789"})
		v.transcript()
	})
}

// Finding 3: clearing the public URL in edit mode resets the URL variables.
func TestWizardPTYClearURL(t *testing.T) {
	eachSize(t, func(t *testing.T, cols, rows int) {
		dir, orig := existingEnv(t, func(d *envgen.Doc) {
			for _, k := range envgen.OriginURLs {
				d.Set(k, "https://dify.example.com")
			}
			d.Set("NEXT_PUBLIC_SOCKET_URL", "wss://dify.example.com")
			d.Set("ENDPOINT_URL_TEMPLATE", "https://dify.example.com/e/{hook_id}")
			d.Set("NGINX_SERVER_NAME", "dify.example.com")
		})
		v := startWizard(t, dir, cols, rows, nil)
		v.waitFor("step 1/8")
		v.send(kEnter, kEnter, kEnter, kEnter)
		v.waitFor("step 5/8", "https://dify.example.com")
		v.send(kEnter)
		v.waitFor("https://dify.example.com█")
		v.send(kCtrlU, kEnter)
		v.waitFor("(none)")
		v.send(kTab)
		v.waitFor("step 6/8")
		v.send(kEnter)
		v.waitFor("step 7/8", "10 change(s)")
		v.send(kEnter)
		v.waitFor("Start Dify now")
		v.send("n")
		if code := v.exit(); code != 0 {
			t.Fatalf("exit %d", code)
		}
		want := map[string]string{"NEXT_PUBLIC_SOCKET_URL": "ws://localhost", "ENDPOINT_URL_TEMPLATE": "http://localhost/e/{hook_id}", "NGINX_SERVER_NAME": "_", "TRIGGER_URL": "http://localhost"}
		for _, k := range envgen.OriginURLs {
			if k != "TRIGGER_URL" {
				want[k] = ""
			}
		}
		expectEnv(t, dir, orig, want)
		v.transcript()
	})
}

// Finding 4: an .env without secrets does not crash the wizard; q quits
// with exit 1 and writes nothing.
func TestWizardPTYEnvWithoutSecrets(t *testing.T) {
	eachSize(t, func(t *testing.T, cols, rows int) {
		dir := projectDir(t)
		orig := []byte("DB_TYPE=postgresql\nVECTOR_STORE=weaviate\n")
		os.WriteFile(filepath.Join(dir, ".env"), orig, 0o600)
		v := startWizard(t, dir, cols, rows, nil)
		v.waitFor("step 1/8")
		v.send(kEnter, kEnter, kEnter, kEnter, kTab)
		v.waitFor("step 6/8", "> SECRET_KEY")
		v.send("j", "r", "e")
		v.waitFor("New DB_PASSWORD: █")
		v.send(kEsc)
		v.waitFor("(shown below)")
		v.send("q")
		if code := v.exit(); code != 1 {
			t.Fatalf("exit %d, want 1", code)
		}
		if out := v.output(); !strings.Contains(out, "quit; nothing written") || strings.Contains(out, "panic") {
			t.Fatalf("output:\n%s", v.screen())
		}
		if !bytes.Equal(envBytes(t, dir), orig) {
			t.Fatal(".env changed")
		}
		v.transcript()
	})
}

// Findings 6 and 7: ports and URLs checked with env validate's rules; TLS
// follows the URL's scheme both ways; enter and space toggle it; ctrl+c
// before writing exits 130 and writes nothing.
func TestWizardPTYPortsURLsTLS(t *testing.T) {
	eachSize(t, func(t *testing.T, cols, rows int) {
		dir := projectDir(t)
		v := startWizard(t, dir, cols, rows, nil)
		v.waitFor("step 1/8")
		v.send(kEnter)
		// A new deployment chooses its release, the newest preselected.
		v.waitFor("step 2/8", "> "+templates.Latest().Version+"  "+wizard.DefaultLabel)
		v.send(kEnter, kEnter, kEnter)
		v.waitFor("step 5/8")
		v.send(kDown, kEnter)
		v.waitFor("HTTP port: 80█")
		v.send(kCtrlU)
		for _, bad := range []string{"+80", "0080"} {
			v.send(bad, kEnter)
			v.waitFor("not a port (1-65535)", "HTTP port: "+bad+"█")
			v.send(kCtrlU)
			v.waitFor("HTTP port: █")
		}
		v.send("18443", kEnter)
		v.waitRe(`HTTP port +18443`)
		v.send(kDown, kEnter, kCtrlU, "18443", kEnter)
		v.waitFor("already published as EXPOSE_NGINX_PORT")
		v.send(kEsc) // alone: an escape followed at once by more is read as alt+key
		v.waitRe(`(?s)HTTPS port +443.*tab`)
		v.send(kUp, kUp, kEnter)
		v.waitFor("Public URL (empty: Dify's defaults): █")
		for _, c := range [][2]string{
			{"https://example.com/some/path?x=1#frag", "has a path"},
			{"http://user:pass@host.com", "carries credentials"},
			{"http://:8080", "has no host name"},
			{"http://host:99999", "not a port"},
		} {
			bad, refusal := c[0], c[1]
			v.send(kCtrlU, bad, kEnter)
			s := v.waitFor(refusal)
			if strings.Contains(s, "pass@") && !strings.Contains(s, "user:pass@host.com█") {
				t.Fatalf("the refusal repeats the credentials:\n%s", s)
			}
		}
		tls := func(want string) {
			t.Helper()
			v.waitRe(`(?s)terminates TLS:? +` + want + `.*tab`)
		}
		v.send(kCtrlU, "https://dify.example.com", kEnter)
		tls("yes") // https turned TLS on
		v.send(kEnter, kCtrlU, "http://dify.example.com", kEnter)
		v.waitRe(`(?s)Public URL.*http://dify.example.com.*tab`)
		tls("no") // and http off again
		v.send(kDown, kDown, kDown, kEnter)
		tls("yes") // enter toggles
		v.send(" ")
		tls("no") // space too
		v.send(kCtrlC)
		if code := v.exit(); code != 130 {
			t.Fatalf("exit %d, want 130", code)
		}
		if _, err := os.Stat(filepath.Join(dir, ".env")); !os.IsNotExist(err) {
			t.Fatal("ctrl+c wrote a .env")
		}
		if !strings.Contains(v.output(), "interrupted; nothing written") {
			t.Fatalf("no message:\n%s", v.screen())
		}
		v.transcript()
	})
}

// The data a deployment holds: replacing DB_PASSWORD when volumes/db/data
// exists warns what it breaks and asks again; enter does not confirm.
func TestWizardPTYSecretOverData(t *testing.T) {
	eachSize(t, func(t *testing.T, cols, rows int) {
		dir, orig := existingEnv(t, nil)
		data := filepath.Join(dir, "volumes", "db", "data")
		os.MkdirAll(data, 0o700)
		os.WriteFile(filepath.Join(data, "PG_VERSION"), []byte("15\n"), 0o600)
		v := startWizard(t, dir, cols, rows, nil)
		v.waitFor("step 1/8")
		v.send(kEnter, kEnter, kEnter, kEnter, kTab)
		v.waitFor("step 6/8", "> SECRET_KEY")
		v.send("j")
		v.waitFor("> DB_PASSWORD")
		v.send("e", "new-db-password-0123456789", kEnter)
		v.waitFor("REPLACED")
		v.send(kEnter)
		v.waitFor("step 7/8", "SECRET(S) CHANGE: DB_PASSWORD")
		v.send(kEnter)
		v.waitFor("Write anyway?", "refuses the new one")
		v.send(kEnter) // a second enter does not confirm
		time.Sleep(300 * time.Millisecond)
		v.waitFor("Write anyway?")
		if !bytes.Equal(envBytes(t, dir), orig) {
			t.Fatal("enter wrote over the data")
		}
		v.send("y")
		v.waitFor("Start Dify now")
		v.send(kEnter)
		if code := v.exit(); code != 0 {
			t.Fatalf("exit %d", code)
		}
		expectEnv(t, dir, orig, map[string]string{"DB_PASSWORD": "new-db-password-0123456789"})
		v.transcript()
	})
}

// Findings 8 and 9: the vector list scrolls with "more" marks; the review
// scrolls to every error, shown in full, and refuses to write with errors.
func TestWizardPTYReviewScrolls(t *testing.T) {
	eachSize(t, func(t *testing.T, cols, rows int) {
		dir := projectDir(t)
		orig := []byte("DB_TYPE=postgresql\nVECTOR_STORE=weaviate\nEXPOSE_PLUGIN_DEBUGGING_PORT=0080\nEXPOSE_NGINX_PORT=18080\n")
		os.WriteFile(filepath.Join(dir, ".env"), orig, 0o600)
		v := startWizard(t, dir, cols, rows, nil)
		v.waitFor("step 1/8")
		v.send(kEnter, kEnter, kEnter)
		s := v.waitFor("step 4/8")
		if rows == 15 && !strings.Contains(s, "more") {
			t.Fatalf("the vector list has no more-mark:\n%s", s)
		}
		v.send("k") // the last one, oracle
		s = v.waitFor("> oracle")
		if rows == 15 && !strings.Contains(s, "↑") {
			t.Fatalf("no up-mark:\n%s", s)
		}
		for range 8 {
			v.send("k")
		}
		// elasticsearch: its resource note in full, however narrow.
		s = v.waitFor("> elasticsearch")
		if !strings.Contains(strings.Join(strings.Fields(s), " "), "2 GiB memory limit (ELASTICSEARCH mem_limit); needs vm.max_map_count >= 262144") {
			t.Fatalf("the resource note is cut:\n%s", s)
		}
		v.send(kEsc)
		v.waitFor("step 3/8")
		v.send(kEnter)
		v.waitFor("step 4/8", "> weaviate")
		v.send(kEnter)
		v.waitFor("step 5/8")
		v.send(kTab)
		v.waitFor("step 6/8")
		v.send(kEnter)
		v.waitFor("step 7/8", "error(s)")
		// Page through with space; each page is read once it is drawn.
		var seen strings.Builder
		for i := 0; i < 100; i++ {
			s := v.waitMatch("a settled page", func(string) bool { return true })
			seen.WriteString(s + "\n")
			if !regexp.MustCompile(`↓ \d+ more`).MatchString(s) {
				break
			}
			v.send(" ")
		}
		all := strings.Join(strings.Fields(seen.String()), "")
		for _, want := range []string{"EXPOSE_PLUGIN_DEBUGGING_PORTis\"0080\",notaport(1-65535)aswritten;write80;setavalidvalue(default:\"5003\")(.envline3)"} {
			if !strings.Contains(all, want) {
				t.Fatalf("the error is not shown in full; screens:\n%s", seen.String())
			}
		}
		v.send(kEnter)
		v.waitFor("not written")
		v.send("q")
		if code := v.exit(); code != 1 {
			t.Fatalf("exit %d", code)
		}
		if !bytes.Equal(envBytes(t, dir), orig) {
			t.Fatal(".env changed")
		}
		v.transcript()
	})
}

// Finding 10: TERM=dumb gives the plain prompts, no escape sequence; a
// terminal that does not answer is never asked (no colour or cursor query),
// NO_COLOR or not.
func TestWizardPTYNoTerminalQueries(t *testing.T) {
	for _, env := range [][]string{nil, {"NO_COLOR=1"}, {"COLORTERM=truecolor"}} {
		v := startWizard(t, t.TempDir(), 80, 24, env)
		v.waitFor("step 1/8")
		v.send("q")
		v.exit()
		if out := v.output(); strings.Contains(out, "\x1b]11;?") || strings.Contains(out, "\x1b]10;?") || strings.Contains(out, "\x1b[6n") {
			t.Fatalf("env %v: the terminal was queried: %q", env, out[:min(len(out), 200)])
		}
	}
	dir := projectDir(t)
	v := startWizard(t, dir, 80, 24, []string{"TERM=dumb"})
	v.waitFor("Dify release:", "number or version")
	v.send("\r")
	v.waitFor("Metadata database:", "number or name")
	v.send(kCtrlC)
	if code := v.exit(); code != 130 {
		t.Fatalf("ctrl+c in the plain prompts: exit %d, want 130", code)
	}
	if out := v.output(); strings.Contains(out, "\x1b") || !strings.Contains(out, "interrupted; nothing written") {
		t.Fatalf("TERM=dumb: %q", out)
	}
}

// Finding 11: --accessible never echoes a secret; the vector store's secret
// is offered; enter on "Start Dify now" means no; the backup is reported.
func TestWizardPTYAccessible(t *testing.T) {
	dir, orig := existingEnv(t, nil)
	v := startWizard(t, dir, 120, 40, nil, "--accessible")
	v.waitFor("edit it keeping every value")
	v.send("e\r")
	v.waitFor("Dify release: This project deploys Dify "+templates.Latest().Version, "Metadata database:")
	v.send("\r")
	v.waitFor("Vector store:")
	v.send("qdrant\r")
	v.waitFor("Public URL")
	v.send("\r")
	v.waitFor("HTTP port")
	v.send("\r")
	v.waitFor("HTTPS port")
	v.send("\r")
	v.waitFor("terminate TLS")
	v.send("\r")
	v.waitFor("QDRANT_API_KEY", "Name a secret")
	v.send("QDRANT_API_KEY\r")
	v.waitFor("New value for QDRANT_API_KEY (not shown)")
	v.send("typed-qdrant-key-0123456789\r")
	v.waitFor("QDRANT_API_KEY will be replaced")
	v.send("\r")
	v.waitFor("Write .env")
	v.send("y\r")
	v.waitFor("Start Dify now")
	v.send("\r")
	if code := v.exit(); code != 0 {
		t.Fatalf("exit %d:\n%s", code, v.screen())
	}
	if strings.Contains(v.output(), "typed-qdrant-key") {
		t.Fatal("--accessible echoed the secret")
	}
	b := backups(t, dir)
	if len(b) != 1 || !strings.Contains(v.output(), "kept the previous one as "+b[0]) {
		t.Fatalf("backup not reported:\n%s", v.screen())
	}
	d, _ := envgen.ReadFile(filepath.Join(dir, ".env"))
	if k, _ := d.Get("QDRANT_API_KEY"); k != "typed-qdrant-key-0123456789" {
		t.Fatalf("QDRANT_API_KEY %q", k)
	}
	old, _ := envgen.Parse(orig)
	for _, k := range []string{"SECRET_KEY", "DB_PASSWORD", "REDIS_PASSWORD"} {
		a, _ := old.Get(k)
		b, _ := d.Get(k)
		if a != b {
			t.Errorf("%s changed", k)
		}
	}
}

// An existing deployment keeps the release its record names, an older one
// here: the release step shows it fixed (j/k only say so), enter moves on,
// and the record is left as it was.
func TestWizardPTYReleaseFixed(t *testing.T) {
	dir, _ := existingEnv(t, nil)
	old := templates.Versions()[0]
	if old == templates.Latest().Version {
		t.Fatal("the catalogue has a single release; this test needs an older one")
	}
	if err := release.Write(dir, release.Record{Release: old, Source: release.SourceInit, At: time.Now().UTC()}); err != nil {
		t.Fatal(err)
	}
	rec, _ := os.ReadFile(release.Path(dir))
	v := startWizard(t, dir, 80, 24, nil)
	v.waitFor("step 1/8", "> Edit it")
	v.send(kEnter)
	s := v.waitFor("step 2/8", "> "+old+"  (deployed here)")
	if note := strings.Join(strings.Fields(s), " "); !strings.Contains(note, "This project deploys Dify "+old+" (recorded in "+release.FileName+")") {
		t.Fatalf("no fixed-release note naming %s:\n%s", old, s)
	}
	v.send("k")
	v.waitFor("the release is fixed here", "> "+old)
	v.send(kEnter)
	v.waitFor("step 3/8")
	v.send("q")
	if code := v.exit(); code != 1 {
		t.Fatalf("exit %d, want 1", code)
	}
	if now, _ := os.ReadFile(release.Path(dir)); !bytes.Equal(now, rec) {
		t.Fatalf("the release record changed:\n%s", now)
	}
}

// The README shows the wizard at 80x24; this regenerates (UPDATE_GOLDEN=1)
// or compares that capture, and checks the README carries it.
func TestWizardPTYReadmeCapture(t *testing.T) {
	dir, _ := existingEnv(t, nil)
	v := startWizard(t, dir, 80, 24, nil)
	var capture strings.Builder
	shot := func(title string, want ...string) {
		s := v.waitFor(want...)
		s = strings.ReplaceAll(s, dir, "/srv/dify")
		fmt.Fprintf(&capture, "── %s ──\n%s\n\n", title, s)
	}
	shot("welcome", "step 1/8")
	v.send(kEnter)
	shot("dify release", "step 2/8")
	v.send(kEnter)
	shot("metadata database", "step 3/8")
	v.send(kEnter, "j")
	shot("vector store", "step 4/8", "> qdrant")
	v.send(kEnter, kEnter, "https://dify.example.com", kEnter)
	shot("access", "step 5/8", "dify.example.com")
	v.send(kTab, "j", "e", "operator-chosen-password-01", kEnter)
	shot("secrets", "step 6/8", "REPLACED")
	v.send(kEnter)
	shot("review", "step 7/8", "SECRET(S) CHANGE")
	v.send("q")
	v.exit()
	got := strings.TrimRight(capture.String(), "\n") + "\n"
	golden := filepath.Join("testdata", "wizard-80x24.txt")
	checkGolden(t, golden, got)
	want, _ := os.ReadFile(golden)
	readme, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(readme, want) {
		t.Errorf("README.md does not show %s (copy it into the Setup wizard section)", golden)
	}
}
