package wizard

import (
	"crypto/rand"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"

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
		PortInUse: func(p int) bool { return p == 8081 },
		Validate:  func(d *envgen.Doc) []envgen.Finding { return envgen.Validate(d, envgen.DefaultSchema()) }}
	if existing {
		old, _ := envgen.Generate(envgen.DefaultSchema(), sel, rand.Reader, time.Now())
		old.Set("MY_SETTING", "keep-me")
		old.Set("LOG_LEVEL", "DEBUG")
		envgen.WriteFile(env.Path, old)
		env.Existing, _ = envgen.ReadFile(env.Path)
	}
	return env
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
	for _, v := range m.a.Secrets {
		screen = strings.ReplaceAll(screen, v, "<secret>")
	}
	return screen
}

func TestWalkWritesEnv(t *testing.T) {
	env := testEnv(t, false)
	m := New(env, false)
	golden(t, "welcome", stable(m, m.View()))
	press(m, "enter")         // welcome
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
	press(m, "r")
	if !strings.Contains(m.View(), m.a.Secrets[m.secrets[0]]) {
		t.Fatal("reveal did not show the secret")
	}
	press(m, "down", "e")
	typeText(m, "short")
	press(m, "enter")
	if !strings.Contains(m.View(), "at least 16 characters") {
		t.Fatalf("short replacement accepted:\n%s", m.View())
	}
	press(m, "esc", "e")
	typeText(m, "with@at-sign-0123456789")
	press(m, "enter")
	if !strings.Contains(m.View(), "would break a URL") {
		t.Fatal("URL-breaking replacement accepted")
	}
	press(m, "esc", "e")
	typeText(m, "operator-chosen-secret-0123456789")
	press(m, "enter")
	replaced := m.secrets[1]
	press(m, "enter") // to review
	if m.Step() != StepReview || !strings.Contains(m.View(), "env validate: 0 error(s)") {
		t.Fatalf("review:\n%s", m.View())
	}
	if strings.Contains(m.View(), "operator-chosen-secret") {
		t.Fatal("a secret shown unmasked in the review")
	}
	press(m, "enter") // write
	if !m.Written() {
		t.Fatalf("not written: %s", m.View())
	}
	d, err := envgen.ReadFile(env.Path)
	if err != nil {
		t.Fatal(err)
	}
	e := d.Map()
	for k, want := range map[string]string{"DB_TYPE": "mysql", "VECTOR_STORE": "qdrant", "EXPOSE_NGINX_PORT": "8080", "NGINX_HTTPS_ENABLED": "true", "CONSOLE_WEB_URL": "https://dify.example.com", replaced: "operator-chosen-secret-0123456789", "COMPOSE_PROFILES": "qdrant,mysql,collaboration"} {
		if e[k] != want {
			t.Errorf("%s = %q, want %q", k, e[k], want)
		}
	}
	if fs := envgen.Validate(d, envgen.DefaultSchema()); envgen.HasErrors(fs, false) {
		t.Errorf("written .env does not validate: %v", fs)
	}
	st, _ := os.Stat(env.Path)
	if st.Mode().Perm() != 0o600 {
		t.Errorf("mode %v", st.Mode())
	}
}

func TestBackKeepsAnswersAndQuitWritesNothing(t *testing.T) {
	env := testEnv(t, false)
	m := New(env, false)
	press(m, "enter", "down", "enter", "j", "j", "enter") // mysql, pgvector
	press(m, "esc")
	if m.Step() != StepVector || m.vecNames[m.cursor] != "pgvector" {
		t.Fatalf("back lost the vector answer: step %d cursor %d", m.Step(), m.cursor)
	}
	press(m, "shift+tab")
	if m.Step() != StepDatabase || m.dbNames[m.cursor] != "mysql" {
		t.Fatal("back lost the database answer")
	}
	press(m, "q")
	if !m.Quit() {
		t.Fatal("q did not quit")
	}
	if _, err := os.Stat(env.Path); !os.IsNotExist(err) {
		t.Fatal("quitting wrote a file")
	}
	m = New(env, false)
	press(m, "enter", "ctrl+c")
	if !m.Quit() {
		t.Fatal("ctrl+c did not quit")
	}
}

func TestEditExistingKeepsValues(t *testing.T) {
	env := testEnv(t, true)
	m := New(env, false)
	golden(t, "welcome-existing", stable(m, m.View()))
	press(m, "enter")                 // edit
	press(m, "enter")                 // keep postgresql
	press(m, "down", "enter")         // qdrant
	press(m, "tab", "enter", "enter") // access, secrets, review → write
	if !m.Written() {
		t.Fatalf("not written: %s", m.View())
	}
	d, _ := envgen.ReadFile(env.Path)
	e := d.Map()
	old := env.Existing.Map()
	if e["MY_SETTING"] != "keep-me" || e["LOG_LEVEL"] != "DEBUG" || e["REDIS_PASSWORD"] != old["REDIS_PASSWORD"] {
		t.Fatalf("edit lost values: %q %q", e["MY_SETTING"], e["LOG_LEVEL"])
	}
	if e["VECTOR_STORE"] != "qdrant" || e["QDRANT_URL"] != "http://qdrant:6333" || e["QDRANT_API_KEY"] == "" {
		t.Fatalf("profile change not applied: %q %q", e["VECTOR_STORE"], e["QDRANT_URL"])
	}
	copies, _ := filepath.Glob(env.Path + ".bak-*")
	if len(copies) != 1 {
		t.Fatal("no copy of the previous .env")
	}
}

func TestResize(t *testing.T) {
	env := testEnv(t, false)
	m := New(env, false)
	press(m, "enter", "enter")
	m.Update(tea.WindowSizeMsg{Width: 60, Height: 12})
	for _, l := range strings.Split(m.View(), "\n") {
		if len([]rune(l)) > 60 && !strings.Contains(l, "•") {
			t.Errorf("line wider than 60: %q", l)
		}
	}
}

func TestAccessible(t *testing.T) {
	env := testEnv(t, false)
	in := strings.NewReader("2\nqdrant\nhttp://dify.local\n8088\n\nn\n\ny\nn\n")
	var out strings.Builder
	a, err := Accessible(in, &out, env)
	if err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	if a.Database != "mysql" || a.Vector != "qdrant" || a.HTTPPort != "8088" {
		t.Fatalf("answers %+v", a)
	}
	d, _ := envgen.ReadFile(env.Path)
	if v, _ := d.Get("CONSOLE_WEB_URL"); v != "http://dify.local" {
		t.Fatalf("CONSOLE_WEB_URL %q", v)
	}
	if strings.Contains(out.String(), "\x1b[") {
		t.Fatal("accessible mode drew escape sequences")
	}
}
