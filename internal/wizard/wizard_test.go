package wizard

import (
	"bytes"
	"context"
	"crypto/rand"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/x/ansi"

	"github.com/difyctl/difyctl/envgen"
	"github.com/difyctl/difyctl/profiles"
)

var update = flag.Bool("update", false, "rewrite golden screens")

func testEnv(t *testing.T, existing bool) Env {
	t.Helper()
	dir := t.TempDir()
	sel, _ := profiles.Select(nil, false)
	gen, err := envgen.Generate(envgen.DefaultSchema(), sel, rand.Reader, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	env := Env{Path: filepath.Join(dir, ".env"), Generated: gen,
		PortInUse: func(p int) bool { return p == 8081 }}
	if existing {
		old, _ := envgen.Generate(envgen.DefaultSchema(), sel, rand.Reader, time.Now())
		old.Set("MY_SETTING", "keep-me")
		old.Set("LOG_LEVEL", "DEBUG")
		writeEnv(t, &env, old.Bytes())
	}
	return env
}

func writeEnv(t *testing.T, env *Env, b []byte) {
	t.Helper()
	if err := os.WriteFile(env.Path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	d, err := envgen.ReadFile(env.Path)
	if err != nil {
		t.Fatal(err)
	}
	env.Existing = d
}

func key(s string) tea.KeyMsg {
	switch s {
	case "enter":
		return tea.KeyMsg{Type: tea.KeyEnter}
	case "tab":
		return tea.KeyMsg{Type: tea.KeyTab}
	case "esc":
		return tea.KeyMsg{Type: tea.KeyEsc}
	case "shift+tab":
		return tea.KeyMsg{Type: tea.KeyShiftTab}
	case "up":
		return tea.KeyMsg{Type: tea.KeyUp}
	case "down":
		return tea.KeyMsg{Type: tea.KeyDown}
	case "backspace":
		return tea.KeyMsg{Type: tea.KeyBackspace}
	case "ctrl+c":
		return tea.KeyMsg{Type: tea.KeyCtrlC}
	case "ctrl+u":
		return tea.KeyMsg{Type: tea.KeyCtrlU}
	case " ":
		return tea.KeyMsg{Type: tea.KeySpace, Runes: []rune{' '}}
	}
	return tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune(s)}
}

func press(m *Model, keys ...string) {
	for _, k := range keys {
		m.Update(key(k))
	}
}

func typeText(m *Model, s string) {
	for _, r := range s {
		m.Update(tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune{r}})
	}
}

func golden(t *testing.T, name, screen string) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	if *update {
		os.MkdirAll("testdata", 0o755)
		os.WriteFile(path, []byte(screen), 0o644)
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (go test ./internal/wizard -update)", err)
	}
	if string(want) != screen {
		t.Errorf("screen %s differs:\n--- want\n%s\n--- got\n%s", name, want, screen)
	}
}

// stable hides what changes between runs (the temp path, secrets).
func stable(m *Model, screen string) string {
	screen = strings.ReplaceAll(screen, m.env.Path, "<project>/.env")
	for _, n := range m.secrets() {
		screen = strings.ReplaceAll(screen, m.secretValue(n), "<secret>")
	}
	return screen
}

func readEnv(t *testing.T, path string) map[string]string {
	t.Helper()
	d, err := envgen.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return d.Map()
}

func TestWalkWritesEnv(t *testing.T) {
	env := testEnv(t, false)
	m := New(env)
	golden(t, "welcome", stable(m, m.View()))
	press(m, "enter") // welcome
	golden(t, "release", stable(m, m.View()))
	press(m, "enter")         // the newest release
	press(m, "down", "enter") // mysql
	golden(t, "vector", stable(m, m.View()))
	press(m, "j", "enter") // qdrant
	press(m, "enter")      // edit the public URL
	typeText(m, "https://dify.example.com")
	press(m, "enter")
	press(m, "down", "enter") // HTTP port
	press(m, "backspace", "backspace")
	typeText(m, "8081") // taken on this "host"
	press(m, "enter")
	if !strings.Contains(m.View(), "port 8081 is in use") {
		t.Fatalf("taken port not reported inline:\n%s", m.View())
	}
	press(m, "backspace")
	typeText(m, "0") // 8080
	press(m, "enter")
	golden(t, "access", stable(m, m.View()))
	press(m, "tab") // to secrets
	golden(t, "secrets", stable(m, m.View()))
	if !strings.Contains(m.View(), "QDRANT_API_KEY") {
		t.Fatalf("the vector store's secret is not on the Secrets screen:\n%s", m.View())
	}
	press(m, "r")
	if !strings.Contains(m.View(), m.secretValue(m.secrets()[0])) {
		t.Fatal("reveal did not show the secret")
	}
	press(m, "down", "e")
	typeText(m, "operator-chosen-secret-0123456789")
	press(m, "enter")
	replaced := m.secrets()[1]
	press(m, "enter") // to review
	if m.Step() != StepReview || !strings.Contains(m.View(), "env validate: 0 error(s)") {
		t.Fatalf("review:\n%s", m.View())
	}
	if strings.Contains(m.View(), "operator-chosen-secret") {
		t.Fatal("a secret shown unmasked in the review")
	}
	press(m, "enter") // write
	if !m.Written() || m.Step() != StepDone {
		t.Fatalf("not written: %s", m.View())
	}
	e := readEnv(t, env.Path)
	for k, want := range map[string]string{"DB_TYPE": "mysql", "VECTOR_STORE": "qdrant", "EXPOSE_NGINX_PORT": "8080", "NGINX_HTTPS_ENABLED": "true", "CONSOLE_WEB_URL": "https://dify.example.com", replaced: "operator-chosen-secret-0123456789", "COMPOSE_PROFILES": "qdrant,mysql,collaboration"} {
		if e[k] != want {
			t.Errorf("%s = %q, want %q", k, e[k], want)
		}
	}
	// What the Secrets screen showed is what was written.
	if e["QDRANT_API_KEY"] != m.secretValue("QDRANT_API_KEY") {
		t.Error("QDRANT_API_KEY written differs from the one shown")
	}
	d, _ := envgen.ReadFile(env.Path)
	if fs := envgen.Validate(d, envgen.DefaultSchema()); envgen.HasErrors(fs, false) {
		t.Errorf("written .env does not validate: %v", fs)
	}
	st, _ := os.Stat(env.Path)
	if st.Mode().Perm() != 0o600 {
		t.Errorf("mode %v", st.Mode())
	}
	// Start now: enter means no.
	press(m, "enter")
	if m.Result().StartNow {
		t.Fatal("enter on 'Start Dify now?' started Dify")
	}
}

func TestBackKeepsAnswersAndQuitWritesNothing(t *testing.T) {
	env := testEnv(t, false)
	m := New(env)
	press(m, "enter", "enter", "down", "enter", "j", "j", "enter") // newest, mysql, pgvector (third in the list)
	press(m, "esc")
	if m.Step() != StepVector || m.vecNames()[m.cursor] != m.vecNames()[2] {
		t.Fatalf("back lost the vector answer: step %d cursor %d", m.Step(), m.cursor)
	}
	press(m, "shift+tab")
	if m.Step() != StepDatabase || m.dbNames()[m.cursor] != "mysql" {
		t.Fatal("back lost the database answer")
	}
	press(m, "q")
	if !m.Quit() || m.Result().Interrupted {
		t.Fatal("q did not quit")
	}
	if _, err := os.Stat(env.Path); !os.IsNotExist(err) {
		t.Fatal("quitting wrote a file")
	}
	m = New(env)
	press(m, "enter", "ctrl+c")
	if !m.Quit() || !m.Result().Interrupted {
		t.Fatal("ctrl+c did not quit as an interruption")
	}
}

// Finding 1: edit → fresh → edit keeps every value, secrets included; the
// fresh answers never leak into the edit.
func TestEditFreshEditKeepsValues(t *testing.T) {
	env := testEnv(t, true)
	orig, _ := os.ReadFile(env.Path)
	m := New(env)
	golden(t, "welcome-existing", stable(m, m.View()))
	// Edit: change the URL.
	press(m, "enter", "enter", "enter", "enter") // edit, release kept, keep postgresql, keep weaviate
	press(m, "enter")
	typeText(m, "http://dify.internal")
	press(m, "enter")
	// Back to Welcome, look at Start fresh and change things there.
	press(m, "esc", "esc", "esc", "esc")
	press(m, "down", "enter")         // fresh
	press(m, "enter")                 // the release, kept
	press(m, "down", "enter")         // mysql in the fresh model
	press(m, "enter", "tab", "enter") // vector, access, secrets → review
	if !m.Fresh() || !strings.Contains(m.View(), "Start fresh") {
		t.Fatalf("not in fresh mode:\n%s", m.View())
	}
	// Back to Welcome, choose Edit again.
	press(m, "esc", "esc", "esc", "esc", "esc", "esc")
	if m.Step() != StepWelcome {
		t.Fatalf("step %d", m.Step())
	}
	press(m, "up", "enter", "enter")
	if m.Fresh() || m.Answers().Database != "postgresql" || m.Answers().PublicURL != "http://dify.internal" {
		t.Fatalf("edit answers changed by the fresh look: %+v", m.Answers())
	}
	press(m, "enter", "enter", "tab", "enter") // db, vector, access, secrets → review
	if len(m.changedSecrets()) != 0 || strings.Contains(m.View(), "SECRET") {
		t.Fatalf("review changes secrets:\n%s", m.View())
	}
	press(m, "enter")
	if !m.Written() {
		t.Fatalf("not written:\n%s", m.View())
	}
	// Byte for byte: the original with the URL lines changed, nothing else.
	want, _ := envgen.Parse(orig)
	for _, k := range envgen.OriginURLs {
		want.Set(k, "http://dify.internal")
	}
	want.Set("NEXT_PUBLIC_SOCKET_URL", "ws://dify.internal")
	want.Set("ENDPOINT_URL_TEMPLATE", "http://dify.internal/e/{hook_id}")
	want.Set("NGINX_SERVER_NAME", "dify.internal")
	got, _ := os.ReadFile(env.Path)
	if !bytes.Equal(got, want.Bytes()) {
		t.Fatalf("written .env differs from the original plus the URL change")
	}
	copies, _ := filepath.Glob(env.Path + ".bak-*")
	if len(copies) != 1 || m.Result().Backup != copies[0] {
		t.Fatalf("copy of the previous .env: %v, reported %q", copies, m.Result().Backup)
	}
	if b, _ := os.ReadFile(copies[0]); !bytes.Equal(b, orig) {
		t.Fatal("the copy is not the previous .env")
	}
}

// Finding 2: a rejected secret is cleared, never appended to; the error
// goes when typing resumes.
func TestRejectedSecretCleared(t *testing.T) {
	env := testEnv(t, true)
	m := New(env)
	press(m, "enter", "enter", "enter", "enter", "tab") // → Secrets
	name := m.secrets()[0]
	press(m, "e")
	typeText(m, "short")
	press(m, "enter")
	if !strings.Contains(m.View(), "at least 16 characters") || m.input.value != "" {
		t.Fatalf("short secret: value %q\n%s", m.input.value, m.View())
	}
	typeText(m, "x")
	if strings.Contains(m.View(), "at least 16 characters") {
		t.Fatal("the error stays on screen while typing")
	}
	press(m, "ctrl+u")
	typeText(m, "valid-replacement-0123456789")
	press(m, "enter")
	if got := m.a().Replaced[name]; got != "valid-replacement-0123456789" {
		t.Fatalf("replacement %q", got)
	}
	press(m, "enter") // review
	if cs := m.changedSecrets(); len(cs) != 1 || cs[0] != name || !strings.Contains(m.View(), "SECRET(S) CHANGE: "+name) {
		t.Fatalf("changed secret not marked: %v\n%s", cs, m.View())
	}
	press(m, "enter")
	if readEnv(t, env.Path)[name] != "valid-replacement-0123456789" {
		t.Fatal("replacement not written")
	}
}

// Finding 3: clearing the public URL resets the URL variables.
func TestClearURLResetsDefaults(t *testing.T) {
	env := testEnv(t, true)
	env.Existing.Set("CONSOLE_WEB_URL", "https://old.example.com")
	for _, k := range envgen.OriginURLs {
		env.Existing.Set(k, "https://old.example.com")
	}
	env.Existing.Set("NGINX_SERVER_NAME", "old.example.com")
	env.Existing.Set("ENDPOINT_URL_TEMPLATE", "https://old.example.com/e/{hook_id}")
	writeEnv(t, &env, env.Existing.Bytes())
	m := New(env)
	press(m, "enter", "enter", "enter", "enter", "enter", "ctrl+u", "enter")
	if m.a().PublicURL != "" || !strings.Contains(m.View(), "(none)") {
		t.Fatalf("URL not cleared:\n%s", m.View())
	}
	press(m, "tab", "enter")
	if len(m.changes) < 9 {
		t.Fatalf("clearing the URL changes %d variables:\n%s", len(m.changes), m.View())
	}
	press(m, "enter")
	e := readEnv(t, env.Path)
	if e["CONSOLE_WEB_URL"] != "" || e["NGINX_SERVER_NAME"] != "_" || e["TRIGGER_URL"] != "http://localhost" || e["ENDPOINT_URL_TEMPLATE"] != "http://localhost/e/{hook_id}" {
		t.Fatalf("URL variables not reset: %q %q %q", e["CONSOLE_WEB_URL"], e["NGINX_SERVER_NAME"], e["TRIGGER_URL"])
	}
}

// Finding 4: an .env without secrets: no panic, the missing ones generated
// and listed, the rest kept.
func TestEnvWithoutSecrets(t *testing.T) {
	env := testEnv(t, false)
	writeEnv(t, &env, []byte("DB_TYPE=postgresql\nVECTOR_STORE=weaviate\n"))
	m := New(env)
	press(m, "enter", "enter", "enter", "enter", "tab", "j", "r", "e")
	if m.input == nil || len(m.secrets()) == 0 {
		t.Fatalf("secrets screen:\n%s", m.View())
	}
	press(m, "esc", "enter")
	if m.Step() != StepReview {
		t.Fatalf("step %d", m.Step())
	}
	if !strings.Contains(m.View(), "+ SECRET_KEY=********") {
		t.Fatalf("missing secret not generated:\n%s", m.View())
	}
}

// Finding 6: ports canonical and distinct.
func TestPortsCanonicalAndDistinct(t *testing.T) {
	env := testEnv(t, false)
	m := New(env)
	press(m, "enter", "enter", "enter", "enter", "down", "enter", "ctrl+u")
	for _, bad := range []string{"+80", "0080", "99999", "0"} {
		typeText(m, bad)
		press(m, "enter")
		if !strings.Contains(m.View(), "not a port (1-65535)") {
			t.Fatalf("%q accepted:\n%s", bad, m.View())
		}
		if m.input.value != bad {
			t.Fatalf("rejected port not left for correction: %q", m.input.value)
		}
		press(m, "ctrl+u")
	}
	typeText(m, "8443")
	press(m, "enter", "down", "enter", "ctrl+u")
	typeText(m, "8443") // HTTPS on the HTTP port
	press(m, "enter")
	if !strings.Contains(m.View(), "already published as EXPOSE_NGINX_PORT") {
		t.Fatalf("duplicate port accepted:\n%s", m.View())
	}
	press(m, "esc")
	if m.a().HTTPSPort != "443" {
		t.Fatal("a rejected port was kept")
	}
}

// Finding 7: URLs with a path, query, fragment, credentials or no host are
// refused; TLS follows the scheme unless set by hand.
func TestURLChecksAndTLS(t *testing.T) {
	env := testEnv(t, false)
	m := New(env)
	press(m, "enter", "enter", "enter", "enter", "enter")
	for _, bad := range []string{"https://example.com/some/path?x=1#frag", "http://user:pass@host.com", "http://:8080", "http://host:99999"} {
		press(m, "ctrl+u")
		typeText(m, bad)
		press(m, "enter")
		if m.input == nil || m.errMsg == "" {
			t.Fatalf("%q accepted", bad)
		}
		if strings.Contains(m.errMsg, "pass@") {
			t.Fatalf("error repeats credentials: %s", m.errMsg)
		}
	}
	press(m, "ctrl+u")
	typeText(m, "https://dify.example.com/")
	press(m, "enter")
	if m.a().PublicURL != "https://dify.example.com" || !m.a().TLS {
		t.Fatalf("https: %+v", m.Answers())
	}
	press(m, "enter", "ctrl+u")
	typeText(m, "http://dify.example.com")
	press(m, "enter")
	if m.a().TLS {
		t.Fatal("TLS stays on after switching back to http")
	}
	// Set by hand, TLS no longer follows the scheme.
	press(m, "down", "down", "down", "enter")
	if !m.a().TLS {
		t.Fatal("enter did not toggle TLS")
	}
	press(m, " ")
	if m.a().TLS {
		t.Fatal("space did not toggle TLS")
	}
	press(m, "enter", "up", "up", "up", "enter", "ctrl+u")
	typeText(m, "https://dify.example.com")
	press(m, "enter")
	if !m.a().TLS {
		t.Fatal("TLS set by hand was overridden by the scheme")
	}
}

// Finding 8: the review scrolls through every change and error in full.
func TestReviewScrollsInFull(t *testing.T) {
	env := testEnv(t, false)
	writeEnv(t, &env, []byte("DB_TYPE=postgresql\nVECTOR_STORE=weaviate\nEXPOSE_PLUGIN_DEBUGGING_PORT=0080\nCONSOLE_WEB_URL=http://user:pw@example.com/x\n"))
	m := New(env)
	m.Update(tea.WindowSizeMsg{Width: 60, Height: 15})
	press(m, "enter", "enter", "down", "enter", "enter", "tab", "enter") // mysql: many changes
	if m.Step() != StepReview {
		t.Fatalf("step %d", m.Step())
	}
	var seen strings.Builder
	for prev := ""; ; {
		v := m.View()
		if v == prev {
			break
		}
		seen.WriteString(squash(v) + "|")
		press(m, "j")
		prev = v
	}
	all := seen.String()
	for _, c := range m.changes {
		if !strings.Contains(all, squash(c.String())) {
			t.Fatalf("change %q never shown in full", c)
		}
	}
	if m.errorCount() == 0 {
		t.Fatal("no validation errors to show")
	}
	for _, f := range m.findings {
		if !strings.Contains(all, squash(f.String())) {
			t.Fatalf("finding %q never shown in full", f.String())
		}
	}
	press(m, "enter")
	if m.Written() || !strings.Contains(m.View(), "not written: env validate finds") {
		t.Fatalf("written with errors:\n%s", m.View())
	}
}

// squash drops the spaces and line breaks within each screen, so that a
// wrapped line compares with its text.
func squash(s string) string {
	return strings.NewReplacer(" ", "", "\n", "").Replace(s)
}

// Finding 9: every screen fits 60x15: no line wider, no more lines, the
// title on top, the key help with esc and q, "more" marks on long lists.
func TestSmallScreens(t *testing.T) {
	env := testEnv(t, true)
	for _, size := range [][2]int{{60, 15}, {80, 24}, {50, 10}} {
		m := New(env)
		m.Update(tea.WindowSizeMsg{Width: size[0], Height: size[1]})
		check := func(where string) {
			t.Helper()
			v := m.View()
			lines := strings.Split(v, "\n")
			if len(lines) > size[1] {
				t.Errorf("%dx%d %s: %d lines:\n%s", size[0], size[1], where, len(lines), v)
			}
			if !strings.HasPrefix(lines[0], "difyctl setup") {
				t.Errorf("%dx%d %s: title gone:\n%s", size[0], size[1], where, v)
			}
			for _, l := range lines {
				if w := ansi.StringWidth(l); w > size[0] {
					t.Errorf("%dx%d %s: line %d wide: %q", size[0], size[1], where, w, l)
				}
			}
			if m.step != StepDone && m.input == nil && !m.confirm && !strings.Contains(v, "q") {
				t.Errorf("%dx%d %s: no quit key in the help:\n%s", size[0], size[1], where, v)
			}
		}
		check("welcome")
		press(m, "enter")
		check("release")
		press(m, "j")
		check("release fixed")
		press(m, "enter")
		check("database")
		press(m, "enter")
		check("vector")
		if size[1] <= 15 && !strings.Contains(m.View(), "more") {
			t.Errorf("%dx%d: the vector list has no more-mark:\n%s", size[0], size[1], m.View())
		}
		for range 12 {
			press(m, "j")
		}
		check("vector bottom")
		if !strings.Contains(m.View(), "> "+m.vecNames()[12]) {
			t.Errorf("selection scrolled out of view:\n%s", m.View())
		}
		press(m, "k", "k", "k", "k", "k", "k", "k", "k", "k", "k", "k", "k", "enter")
		check("access")
		press(m, "enter")
		check("access input")
		press(m, "esc", "tab")
		check("secrets")
		press(m, "r")
		check("secrets revealed")
		press(m, "enter")
		check("review")
		press(m, "enter")
		check("done")
	}
}

// Finding 11 and the data risk: changing DB_PASSWORD of a deployment whose
// database directory holds data asks again; enter does not confirm.
func TestChangedSecretOverDataAsksAgain(t *testing.T) {
	env := testEnv(t, true)
	env.DataIn = func(dir string) bool { return dir == "volumes/db/data" }
	m := New(env)
	press(m, "enter", "enter", "enter", "enter", "tab")
	names := m.secrets()
	i := index(names, "DB_PASSWORD")
	if names[i] != "DB_PASSWORD" {
		t.Fatalf("DB_PASSWORD not on the Secrets screen: %v", names)
	}
	if !strings.Contains(m.View(), "j/k") {
		t.Fatalf("Secrets help does not list j/k:\n%s", m.View())
	}
	for range i {
		press(m, "j")
	}
	press(m, "e")
	typeText(m, "another-db-password-0123")
	press(m, "enter", "enter")
	if !strings.Contains(m.View(), "volumes/db/data holds data") {
		t.Fatalf("no data warning:\n%s", m.View())
	}
	press(m, "enter")
	if !m.confirm || m.Written() {
		t.Fatal("enter wrote over data without asking again")
	}
	press(m, "enter")
	if m.Written() {
		t.Fatal("a second enter confirmed")
	}
	press(m, "n")
	if m.confirm {
		t.Fatal("n did not go back")
	}
	press(m, "enter", "y")
	if !m.Written() || readEnv(t, env.Path)["DB_PASSWORD"] != "another-db-password-0123" {
		t.Fatal("y did not write")
	}
}

func TestAccessible(t *testing.T) {
	env := testEnv(t, false)
	in := strings.NewReader("\n2\nqdrant\nhttp://dify.local\n8088\n\nn\nSECRET_KEY\nshort\nSECRET_KEY\nmy-own-secret-key-0123456789\n\ny\n\n")
	var out strings.Builder
	res, err := Accessible(context.Background(), in, &out, env)
	if err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	if !res.Written || res.StartNow {
		t.Fatalf("result %+v", res)
	}
	e := readEnv(t, env.Path)
	if e["CONSOLE_WEB_URL"] != "http://dify.local" || e["DB_TYPE"] != "mysql" || e["VECTOR_STORE"] != "qdrant" || e["EXPOSE_NGINX_PORT"] != "8088" || e["SECRET_KEY"] != "my-own-secret-key-0123456789" {
		t.Fatalf("written: %q %q %q", e["CONSOLE_WEB_URL"], e["DB_TYPE"], e["SECRET_KEY"])
	}
	o := out.String()
	if strings.Contains(o, "\x1b[") {
		t.Fatal("accessible mode drew escape sequences")
	}
	if strings.Contains(o, "my-own-secret-key") || strings.Contains(o, e["QDRANT_API_KEY"]) {
		t.Fatal("accessible mode echoed a secret")
	}
	if !strings.Contains(o, "at least 16 characters") || !strings.Contains(o, "QDRANT_API_KEY") {
		t.Fatalf("output:\n%s", o)
	}
}

// Starting fresh over a deployment with data: every secret changes, the
// review says so and asks again; the existing ports count as ours.
func TestFreshOverDataAsksAgain(t *testing.T) {
	env := testEnv(t, true)
	env.Existing.Set("EXPOSE_NGINX_PORT", "8081") // "in use" here: by our own nginx
	writeEnv(t, &env, env.Existing.Bytes())
	env.DataIn = func(dir string) bool { return dir == "volumes/db/data" }
	m := New(env)
	press(m, "down", "enter", "enter", "enter", "enter", "down", "enter", "ctrl+u")
	typeText(m, "8081")
	press(m, "enter", "tab")
	if m.Step() != StepSecrets {
		t.Fatalf("the existing .env's port refused when starting fresh:\n%s", m.View())
	}
	press(m, "enter")
	v := m.View()
	if !strings.Contains(v, "Start fresh: every secret is new") || !strings.Contains(v, "SECRET_KEY changes, and volumes/db/data holds data") {
		t.Fatalf("review:\n%s", v)
	}
	press(m, "enter", "enter")
	if m.Written() || !m.confirm {
		t.Fatal("wrote over the data without asking again")
	}
	press(m, "y")
	if !m.Written() || m.Result().Backup == "" {
		t.Fatal("not written after y")
	}
}

// A scrolled list moves only as far as the selection needs.
func TestListScrollsSteadily(t *testing.T) {
	m := New(testEnv(t, false))
	m.Update(tea.WindowSizeMsg{Width: 60, Height: 15})
	press(m, "enter", "enter", "enter", "k") // vector list, the last one
	up := regexp.MustCompile(`↑ \d+ more`)
	if v := m.View(); !strings.Contains(v, "> oracle") || !up.MatchString(v) {
		t.Fatalf("bottom:\n%s", v)
	}
	press(m, "k")
	if v := m.View(); !strings.Contains(v, "> iris") || !strings.Contains(v, "  oracle") {
		t.Fatalf("moving up jumped the list:\n%s", v)
	}
	for range 14 {
		press(m, "k")
	}
	if v := m.View(); !strings.Contains(v, "> weaviate") || up.MatchString(v) || !strings.Contains(v, "↓ 8 more") {
		t.Fatalf("top:\n%s", v)
	}
}
