package e2e

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/difyctl/difyctl/internal/testenv"
	"github.com/difyctl/difyctl/templates"
)

// README command examples, and how TestReadmeExamples runs them.
//
// An example is a fenced block of README.md that holds a difyctl command:
//
//   - a ```sh (or bash, shell) block: every line is a command;
//   - a ``` block without an info string (or ```console): a transcript, where
//     a line starting with "$ " or "# " (a root prompt) is a command and the
//     lines after it, up to the next command, are its output.
//
// Blocks with another info string (text, json, yaml) are not examples: they
// show screens or files (the wizard's screens are checked by
// TestWizardPTYReadmeCapture).
//
// Every example runs, in the order of the README, in one shell session:
// one scratch HOME (so `mkdir -p ~/dify && cd ~/dify` makes a scratch
// project), the working directory, exported variables and the last exit
// status carried from command to command, difyctl first on PATH, and the
// stand-in images under Dify's real names. The session's environment names
// the test's own project (COMPOSE_PROJECT_NAME) and moves the ports Dify
// publishes (EXPOSE_NGINX_PORT, EXPOSE_NGINX_SSL_PORT,
// EXPOSE_PLUGIN_DEBUGGING_PORT; the environment wins over .env, as with
// docker compose) to free ones, so the examples run as written on a shared
// host. Each command must exit 0, unless the next command is `echo $?`,
// whose output then shows the status; each output line of a transcript must
// appear, in order, in what the command printed (spaces collapsed).
//
// An example that cannot run here is marked on the line before its fence,
// with the reason:
//
//	<!-- example: skip: needs a remote engine over ssh -->
//
// The test lists every skipped example with its reason, and fails on a
// marker without a reason or not followed by an example.

type readmeCommand struct {
	line   int
	cmd    string
	output []string // expected lines (transcripts)
}

type readmeExample struct {
	line     int // of the opening fence
	skip     string
	commands []readmeCommand
}

var (
	fenceRE   = regexp.MustCompile("^```\\s*([A-Za-z0-9_-]*)\\s*$")
	markerRE  = regexp.MustCompile(`^<!--\s*example:\s*(.*?)\s*-->\s*$`)
	difyctlRE = regexp.MustCompile(`(^|&&\s*|;\s*)difyctl(\s|$)`)
)

// readmeExamples extracts the examples of a README.
func readmeExamples(text string) ([]readmeExample, []string) {
	var (
		out      []readmeExample
		problems []string
		marker   string
		markerAt int
	)
	lines := strings.Split(text, "\n")
	for i := 0; i < len(lines); i++ {
		l := lines[i]
		if m := markerRE.FindStringSubmatch(l); m != nil {
			if marker != "" {
				problems = append(problems, fmt.Sprintf("README.md:%d: example marker not followed by an example", markerAt))
			}
			marker, markerAt = m[1], i+1
			continue
		}
		m := fenceRE.FindStringSubmatch(l)
		if m == nil {
			if strings.TrimSpace(l) != "" && marker != "" {
				problems = append(problems, fmt.Sprintf("README.md:%d: example marker not directly before a fence", markerAt))
				marker = ""
			}
			continue
		}
		lang := m[1]
		var body []string
		start := i + 1
		for i++; i < len(lines) && !strings.HasPrefix(strings.TrimSpace(lines[i]), "```"); i++ {
			body = append(body, lines[i])
		}
		ex := readmeExample{line: start}
		switch lang {
		case "sh", "bash", "shell":
			for j, b := range body {
				if strings.TrimSpace(b) != "" && !strings.HasPrefix(strings.TrimSpace(b), "#") {
					ex.commands = append(ex.commands, readmeCommand{line: start + 1 + j, cmd: b})
				}
			}
		case "", "console":
			for j, b := range body {
				if c, ok := strings.CutPrefix(b, "$ "); ok {
					ex.commands = append(ex.commands, readmeCommand{line: start + 1 + j, cmd: c})
				} else if c, ok := strings.CutPrefix(b, "# "); ok {
					ex.commands = append(ex.commands, readmeCommand{line: start + 1 + j, cmd: c})
				} else if n := len(ex.commands); n > 0 && strings.TrimSpace(b) != "" {
					ex.commands[n-1].output = append(ex.commands[n-1].output, b)
				}
			}
		}
		isExample := false
		for _, c := range ex.commands {
			isExample = isExample || difyctlRE.MatchString(strings.TrimSpace(c.cmd))
		}
		if marker != "" {
			if !isExample {
				problems = append(problems, fmt.Sprintf("README.md:%d: example marker before a block that is not an example", markerAt))
			} else if reason, ok := strings.CutPrefix(marker, "skip:"); !ok || strings.TrimSpace(reason) == "" {
				problems = append(problems, fmt.Sprintf("README.md:%d: example marker %q: write `example: skip: REASON`", markerAt, marker))
			} else {
				ex.skip = strings.TrimSpace(reason)
			}
			marker = ""
		}
		if isExample {
			out = append(out, ex)
		}
	}
	if marker != "" {
		problems = append(problems, fmt.Sprintf("README.md:%d: example marker not followed by an example", markerAt))
	}
	return out, problems
}

func TestReadmeExampleExtraction(t *testing.T) {
	text := "intro\n```sh\nmake install\n```\n" +
		"```sh\nmkdir -p ~/x && cd ~/x\ndifyctl init   # comment\n# a comment line\n```\n" +
		"<!-- example: skip: writes /etc/cron.d -->\n```\n# difyctl backup schedule install\ninstalled\n# echo $?\n0\n```\n" +
		"```text\ndifyctl setup  step 1/8\n```\n" +
		"```\n$ difyctl up --dry-run\nlevel 0  redis  unchanged\n\n$ difyctl ps\n```\n" +
		"<!-- example: skip: -->\n```sh\ndifyctl version\n```\n" +
		"<!-- example: skip: stale -->\n\ntext\n"
	exs, problems := readmeExamples(text)
	if len(exs) != 4 {
		t.Fatalf("%d examples: %+v", len(exs), exs)
	}
	if c := exs[0].commands; len(c) != 2 || c[1].cmd != "difyctl init   # comment" {
		t.Errorf("sh block: %+v", c)
	}
	if exs[1].skip != "writes /etc/cron.d" || len(exs[1].commands) != 2 || exs[1].commands[0].output[0] != "installed" {
		t.Errorf("root transcript: %+v", exs[1])
	}
	if c := exs[2].commands; len(c) != 2 || len(c[0].output) != 1 || len(c[1].output) != 0 {
		t.Errorf("transcript: %+v", c)
	}
	if len(problems) != 2 || !strings.Contains(problems[0], "REASON") || !strings.Contains(problems[1], "not directly before") {
		t.Errorf("problems: %q", problems)
	}
}

// session runs commands as one shell session would: working directory,
// exported variables and the last exit status carried over.
type session struct {
	t     *testing.T
	state string
	env   []string
}

func newSession(t *testing.T, env []string, cwd string) *session {
	s := &session{t: t, state: t.TempDir(), env: env}
	for name, content := range map[string]string{"cwd": cwd, "env": "", "rc": "0"} {
		if err := os.WriteFile(filepath.Join(s.state, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

func (s *session) run(cmd string) result {
	script := `S="$1"; cd "$(cat "$S/cwd")" || exit 99; . "$S/env"; (exit "$(cat "$S/rc")")
` + cmd + `
rc=$?; pwd > "$S/cwd"; export -p > "$S/env"; echo "$rc" > "$S/rc"; exit "$rc"
`
	c := exec.Command("bash", "-c", script, "readme-example", s.state)
	c.Env = s.env
	return runCmd(s.t, c)
}

func collapse(s string) string { return strings.Join(strings.Fields(s), " ") }

// containsInOrder reports the first expected line not found, in order, among
// the output's lines (each compared with spaces collapsed).
func containsInOrder(output string, want []string) (string, bool) {
	sc := bufio.NewScanner(strings.NewReader(output))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	i := 0
	for sc.Scan() && i < len(want) {
		if collapse(sc.Text()) == collapse(want[i]) {
			i++
		}
	}
	if i < len(want) {
		return want[i], false
	}
	return "", true
}

// keyOutput are lines a command of a sh block must print (where the README
// shows no output): what the README says the command does.
var keyOutput = []struct {
	prefix string
	want   []string
}{
	{"difyctl init", []string{".env"}},
	{"difyctl ps", []string{"api", "db_postgres", "redis", "healthy", "nginx", "weaviate"}},
}

// TestReadmeExamples runs every command example of README.md (see above).
func TestReadmeExamples(t *testing.T) {
	root, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	text, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	examples, problems := readmeExamples(string(text))
	for _, p := range problems {
		t.Error(p)
	}
	if len(examples) == 0 {
		t.Fatal("README.md has no command example")
	}
	cli := testenv.Fixtures(t)
	testenv.WithStandins(t, templates.DifyVersion(), testenv.StandinOptions{})
	project := testenv.ProjectName(t, cli)
	home := t.TempDir()
	bin := testenv.Difyctl(t)
	env := []string{
		"PATH=" + filepath.Dir(bin) + ":" + os.Getenv("PATH"),
		"HOME=" + home,
		"COMPOSE_PROJECT_NAME=" + project,
		"NO_COLOR=1",
	}
	for k, v := range publishedPortVars(t) {
		env = append(env, k+"="+v)
	}
	for _, k := range []string{"DOCKER_HOST", "DOCKER_CONTEXT", "DOCKER_CONFIG", "DOCKER_TLS_VERIFY", "DOCKER_CERT_PATH", "TMPDIR", "USER", "LOGNAME"} {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	s := newSession(t, env, home)
	ran := 0
	for _, ex := range examples {
		if ex.skip != "" {
			t.Logf("README.md:%d: skipped (%s): %s", ex.line, ex.skip, ex.commands[0].cmd)
			continue
		}
		for i, c := range ex.commands {
			r := s.run(c.cmd)
			ran++
			out := r.stdout + r.stderr
			t.Logf("README.md:%d: $ %s  -> exit %d", c.line, c.cmd, r.code)
			statusShown := i+1 < len(ex.commands) && strings.TrimSpace(ex.commands[i+1].cmd) == "echo $?"
			if r.code != 0 && !statusShown {
				t.Fatalf("README.md:%d: `%s` exited %d:\n%s", c.line, c.cmd, r.code, out)
			}
			if missing, ok := containsInOrder(out, c.output); !ok {
				t.Errorf("README.md:%d: `%s` did not print %q (in order); it printed:\n%s", c.line, c.cmd, missing, out)
			}
			for _, k := range keyOutput {
				if strings.TrimSpace(c.cmd) == k.prefix || strings.HasPrefix(strings.TrimSpace(c.cmd), k.prefix+" ") {
					for _, w := range k.want {
						if !strings.Contains(out, w) {
							t.Errorf("README.md:%d: `%s` printed no %q:\n%s", c.line, c.cmd, w, out)
						}
					}
				}
			}
		}
	}
	t.Logf("%d commands of %d examples run", ran, len(examples))
	if n, _ := strconv.Atoi(strings.TrimSpace(readFile(t, filepath.Join(s.state, "rc")))); n != 0 {
		t.Errorf("the last example command exited %d", n)
	}
}

func readFile(t *testing.T, path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
