package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/difyctl/difyctl/envgen"
	projectpkg "github.com/difyctl/difyctl/internal/project"
	"github.com/difyctl/difyctl/internal/testenv"
)

// Secrets planted in every contract project: none may appear in any output.
const (
	sentinelSecretKey = "sentinel-secret-key-7f3a9c1e5b"
	sentinelRedisPW   = "sentinel-redis-pw-2d8e4b6a0c"
	sentinelInBadLine = "sentinel-bad-line-9e1c3a5f7b"
)

// contractProject is a project directory with a valid .env whose secrets are
// the sentinels.
func contractProject(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if r := run(t, nil, "--project-dir", dir, "init"); r.code != 0 {
		t.Fatalf("init: exit %d: %s", r.code, r.stderr)
	}
	path := filepath.Join(dir, ".env")
	d, err := envgen.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	envgen.SetLinked(d, "SECRET_KEY", sentinelSecretKey)
	envgen.SetLinked(d, "REDIS_PASSWORD", sentinelRedisPW)
	if err := envgen.WriteFile(path, d); err != nil {
		t.Fatal(err)
	}
	return dir
}

func appendEnv(t *testing.T, dir, text string) {
	t.Helper()
	f, err := os.OpenFile(filepath.Join(dir, ".env"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(text); err != nil {
		t.Fatal(err)
	}
}

type contractCase struct {
	name  string
	setup func(t *testing.T, dir string) // changes the project before the run
	args  []string                       // after --project-dir DIR
	env   []string
	stdin string
	cwd   string // "" = a fresh directory that is not the project
	// nobody runs the binary as uid/gid 65534 (an unreadable file for root
	// is no such thing).
	nobody bool
	want   int
	// Substrings the text-mode output must hold (stdout+stderr).
	says []string
}

// runContract runs difyctl for a case; jsonOut appends -o json.
func runContract(t *testing.T, dir string, c contractCase, jsonOut bool) result {
	t.Helper()
	return runContractWith(t, testenv.Difyctl(t), dir, c, jsonOut)
}

func runContractWith(t *testing.T, bin0, dir string, c contractCase, jsonOut bool) result {
	t.Helper()
	args := append([]string{"--project-dir", dir}, c.args...)
	if jsonOut {
		args = append(args, "-o", "json")
	}
	bin := bin0
	if c.nobody {
		bin = binaryForNobody(t, bin0)
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), c.env...)
	cmd.Dir = c.cwd
	if cmd.Dir == "" {
		cmd.Dir = t.TempDir()
	}
	if c.nobody {
		cmd.Dir = "/"
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	}
	cmd.Stdin = strings.NewReader(c.stdin)
	return runCmd(t, cmd)
}

// reachable lets any user traverse every directory from p up to /.
func reachable(p string) {
	for ; p != "/"; p = filepath.Dir(p) {
		if st, err := os.Stat(p); err == nil && st.IsDir() && st.Mode().Perm()&0o001 == 0 {
			os.Chmod(p, st.Mode().Perm()|0o005)
		}
	}
}

// binaryForNobody copies the binary where uid 65534 can run it.
func binaryForNobody(t *testing.T, src string) string {
	t.Helper()
	dir := t.TempDir()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "difyctl")
	if err := os.WriteFile(bin, b, 0o755); err != nil {
		t.Fatal(err)
	}
	reachable(dir)
	return bin
}

// checkNoSecrets fails when output holds a value planted in .env.
func checkNoSecrets(t *testing.T, r result) {
	t.Helper()
	for _, s := range []string{sentinelSecretKey, sentinelRedisPW, sentinelInBadLine} {
		if strings.Contains(r.stdout, s) || strings.Contains(r.stderr, s) {
			t.Errorf("a value from .env appears in the output:\nstdout: %s\nstderr: %s", r.stdout, r.stderr)
		}
	}
}

// checkJSONContract: stdout is valid JSON or empty; on failure the last line
// of stderr is {"error": ..., "exitCode": <the exit code>}.
func checkJSONContract(t *testing.T, r result) {
	t.Helper()
	if s := strings.TrimSpace(r.stdout); s != "" && !json.Valid([]byte(s)) {
		t.Errorf("-o json: stdout is not valid JSON:\n%s", r.stdout)
	}
	if r.code == 0 {
		return
	}
	lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
	var e struct {
		Error    *string `json:"error"`
		ExitCode *int    `json:"exitCode"`
	}
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &e); err != nil || e.Error == nil || e.ExitCode == nil {
		t.Errorf("-o json: the error is not one JSON object on stderr (%v):\n%s", err, r.stderr)
		return
	}
	if *e.ExitCode != r.code {
		t.Errorf("-o json: exitCode %d in the error, process exit %d", *e.ExitCode, r.code)
	}
}

// TestContract runs each case of issue 24 (and of the README's exit code
// table) against the real binary: the exit code, stdout valid JSON or empty
// under -o json, the error as one JSON object, and no value from .env in any
// output.
func TestContract(t *testing.T) {
	for _, c := range contractCases() {
		t.Run(c.name, func(t *testing.T) {
			for _, jsonOut := range []bool{false, true} {
				dir := contractProject(t)
				if c.setup != nil {
					c.setup(t, dir)
				}
				r := runContract(t, dir, c, jsonOut)
				mode := "text"
				if jsonOut {
					mode = "json"
				}
				if r.code != c.want {
					t.Errorf("%s: exit %d, want %d\nstdout: %s\nstderr: %s", mode, r.code, c.want, r.stdout, r.stderr)
				}
				checkNoSecrets(t, r)
				if jsonOut {
					checkJSONContract(t, r)
				} else {
					for _, s := range c.says {
						if !strings.Contains(r.stdout+r.stderr, s) {
							t.Errorf("text: output does not say %q:\nstdout: %s\nstderr: %s", s, r.stdout, r.stderr)
						}
					}
				}
			}
		})
	}
}

// TestContractBefore prints each case's exit code with another binary
// (DIFYCTL_CONTRACT_BEFORE=path, e.g. a build from before issue 24) beside
// the code it has now: the record for the closing note.
func TestContractBefore(t *testing.T) {
	before := os.Getenv("DIFYCTL_CONTRACT_BEFORE")
	if before == "" {
		t.Skip("set DIFYCTL_CONTRACT_BEFORE to a difyctl binary to compare with")
	}
	for _, c := range contractCases() {
		dir := contractProject(t)
		if c.setup != nil {
			c.setup(t, dir)
		}
		r := runContractWith(t, before, dir, c, false)
		leak := ""
		for _, s := range []string{sentinelSecretKey, sentinelRedisPW, sentinelInBadLine} {
			if strings.Contains(r.stdout+r.stderr, s) {
				leak = " (printed a value from .env)"
			}
		}
		t.Logf("| %s | %d | %d |%s", c.name, r.code, c.want, leak)
	}
}

func contractCases() []contractCase {
	noEngine := []string{"DOCKER_HOST=unix:///nonexistent/difyctl-contract.sock", "DOCKER_CONTEXT="}
	chmod000 := func(t *testing.T, dir string) {
		t.Helper()
		os.Chmod(dir, 0o755)
		if err := os.Chmod(filepath.Join(dir, ".env"), 0); err != nil {
			t.Fatal(err)
		}
		reachable(dir) // nobody reaches the directory, not the file
	}
	cases := []contractCase{
		// Exit codes of the README's table.
		{name: "success", args: []string{"env", "validate"}, want: 0},
		{name: "findings", setup: func(t *testing.T, d string) { appendEnv(t, d, "EXPOSE_NGINX_PORT=99999\n") },
			args: []string{"env", "validate"}, want: 1, says: []string{"EXPOSE_NGINX_PORT", "line"}},
		{name: "bad flag", args: []string{"env", "validate", "--bogus"}, want: 2},
		{name: "unknown command", args: []string{"frobnicate"}, want: 2},

		// Unreadable or unusable input files: 2. (-p keeps the project name
		// from being read from .env, so that config itself reads it.)
		{name: "config .env unreadable", setup: chmod000, nobody: true, args: []string{"-p", "contract", "config"}, want: 2, says: []string{".env"}},
		{name: "env validate .env unreadable", setup: chmod000, nobody: true, args: []string{"env", "validate"}, want: 2},
		{name: "config .env is a directory", setup: func(t *testing.T, d string) {
			os.Remove(filepath.Join(d, ".env"))
			os.Mkdir(filepath.Join(d, ".env"), 0o700)
		}, args: []string{"-p", "contract", "config"}, want: 2, says: []string{"is a directory"}},
		{name: "config bad line", setup: func(t *testing.T, d string) { appendEnv(t, d, "SECRET_KEY "+sentinelInBadLine+" junk\n") },
			args: []string{"-p", "contract", "config"}, want: 2, says: []string{".env", "line"}},
		{name: "env validate bad line", setup: func(t *testing.T, d string) { appendEnv(t, d, "SECRET_KEY "+sentinelInBadLine+" junk\n") },
			args: []string{"env", "validate"}, want: 2, says: []string{"line"}},
		{name: "every command: bad line", setup: func(t *testing.T, d string) { appendEnv(t, d, "A_KEY=\""+sentinelInBadLine+"\n") },
			args: []string{"env", "get", "DB_TYPE"}, want: 2, says: []string{"A_KEY", "line"}},
		{name: "env validate NUL in a value", setup: func(t *testing.T, d string) { appendEnv(t, d, "REDIS_PASSWORD="+sentinelInBadLine+"\x00x\n") },
			args: []string{"env", "validate"}, want: 2, says: []string{"REDIS_PASSWORD", "NUL"}},
		{name: "config NUL in a value", setup: func(t *testing.T, d string) { appendEnv(t, d, "SECRET_KEY='"+sentinelInBadLine+"\x00'\n") },
			args: []string{"-p", "contract", "config"}, want: 2, says: []string{"SECRET_KEY", "NUL"}},
		{name: "config invalid UTF-8 in a value", setup: func(t *testing.T, d string) { appendEnv(t, d, "SECRET_KEY="+sentinelInBadLine+"\xff\xfe\n") },
			args: []string{"-p", "contract", "config"}, want: 2, says: []string{"SECRET_KEY", "UTF-8"}},
		{name: "config -f missing.yaml", args: []string{"config", "-f", "missing.yaml"}, want: 2, says: []string{"missing.yaml"}},
		{name: "up -f missing.yaml", args: []string{"up", "-f", "missing.yaml"}, env: noEngine, want: 2, says: []string{"missing.yaml"}},
		{name: "restore redis /nonexistent", args: []string{"restore", "redis", "/nonexistent", "--yes"}, want: 2},
		{name: "restore redis a directory", args: []string{"restore", "redis", "/", "--yes"}, want: 2, says: []string{"not a regular file"}},
		{name: "backup verify missing", args: []string{"backup", "verify", "missing"}, want: 2},
		{name: "env set invalid name", args: []string{"env", "set", "BAD-NAME=1"}, want: 2},
		{name: "logs --since garbage", args: []string{"logs", "--since", "garbage"}, want: 2, says: []string{"--since"}},
		{name: "env set NUL from stdin", args: []string{"env", "set", "SECRET_KEY", "--stdin"}, stdin: sentinelInBadLine + "\x00\n", want: 2},

		// Engine unreachable: 3, for every command that needs it.
		{name: "version engine unreachable", args: []string{"version"}, env: noEngine, want: 3, says: []string{"Version:", "unreachable"}},
		{name: "ps engine unreachable", args: []string{"ps"}, env: noEngine, want: 3},
		{name: "down engine unreachable", args: []string{"down"}, env: noEngine, want: 3},
		{name: "logs engine unreachable", args: []string{"logs"}, env: noEngine, want: 3},
		{name: "stop engine unreachable", args: []string{"stop"}, env: noEngine, want: 3},
		{name: "backup redis engine unreachable", args: []string{"backup", "redis"}, env: noEngine, want: 3},

		// What docker compose reads, difyctl reads (godotenv refused these
		// and printed the rest of the file).
		{name: "key with a dash, CRLF, BOM", setup: func(t *testing.T, d string) {
			b, _ := os.ReadFile(filepath.Join(d, ".env"))
			b = append([]byte("\uFEFF"), bytes.ReplaceAll(b, []byte("\n"), []byte("\r\n"))...)
			b = append(b, "my-custom.key[0]=value\r\n"...)
			os.WriteFile(filepath.Join(d, ".env"), b, 0o600)
		}, args: []string{"env", "get", "my-custom.key[0]"}, want: 0, says: []string{"value"}},

		// Results under -o json.
		{name: "config", args: []string{"config"}, want: 0, says: []string{"MASKED"}},
		{name: "env get", args: []string{"env", "get", "EXPOSE_NGINX_PORT"}, want: 0, says: []string{"80"}},
	}
	return cases
}

// The JSON forms: config as compose's JSON, env get as an object.
func TestContractJSONForms(t *testing.T) {
	dir := contractProject(t)
	r := runContract(t, dir, contractCase{args: []string{"config"}}, true)
	var p struct {
		Name     string                    `json:"name"`
		Services map[string]map[string]any `json:"services"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &p); err != nil || len(p.Services) == 0 {
		t.Fatalf("config -o json is not compose's JSON form (%v):\n%.400s", err, r.stdout)
	}
	r = runContract(t, dir, contractCase{args: []string{"env", "get", "EXPOSE_NGINX_PORT"}}, true)
	var kv struct{ Key, Value string }
	if err := json.Unmarshal([]byte(r.stdout), &kv); err != nil || kv.Key != "EXPOSE_NGINX_PORT" || kv.Value != "80" {
		t.Fatalf("env get -o json: %v %q", err, r.stdout)
	}
}

// Relative -f paths resolve against the current directory, as docker
// compose resolves them, not against --project-dir.
func TestContractFileRelativeToCwd(t *testing.T) {
	dir := contractProject(t)
	cwd := t.TempDir()
	compose := "services:\n  web:\n    image: difyctl-test/busybox\n    command: [\"sleep\", \"1\"]\n"
	if err := os.WriteFile(filepath.Join(cwd, "mine.yaml"), []byte(compose), 0o644); err != nil {
		t.Fatal(err)
	}
	r := runContract(t, dir, contractCase{args: []string{"config", "-f", "mine.yaml"}, cwd: cwd}, false)
	if r.code != 0 || !strings.Contains(r.stdout, "web:") {
		t.Fatalf("config -f mine.yaml from its directory: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}

// SIGINT exits 130 and SIGTERM 143, also for a run the signal ends
// cleanly (the backup daemons, of Redis and of bundles).
func TestContractSignals(t *testing.T) {
	for sig, want := range map[syscall.Signal]int{syscall.SIGINT: 130, syscall.SIGTERM: 143} {
		for _, what := range [][]string{{"daemon"}, {"daemon", "all"}} {
			t.Run(sig.String()+" "+strings.Join(what, " "), func(t *testing.T) {
				contractSignal(t, sig, want, what)
			})
		}
	}
}

func contractSignal(t *testing.T, sig syscall.Signal, want int, what []string) {
	dir := contractProject(t)
	args := append(append([]string{"--project-dir", dir, "backup"}, what...), "--cron", "0 3 * * *")
	cmd := exec.Command(testenv.Difyctl(t), args...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill() })
	sc := bufio.NewScanner(stderr)
	if !sc.Scan() || !strings.Contains(sc.Text(), "next backup") {
		t.Fatalf("daemon did not start: %q", sc.Text())
	}
	cmd.Process.Signal(sig)
	go func() {
		for sc.Scan() {
		}
	}()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatalf("still running 20 s after %v", sig)
	}
	if got := cmd.ProcessState.ExitCode(); got != want {
		t.Fatalf("%v: exit %d, want %d", sig, got, want)
	}
}

// Files: two init --force in the same second keep both earlier files; a
// symlinked .env stays a symlink and its target changes (init --force, env
// set, env upgrade).
func TestContractFiles(t *testing.T) {
	t.Run("init --force twice", func(t *testing.T) {
		dir := t.TempDir()
		orig := "SECRET_KEY=" + sentinelSecretKey + "\n"
		os.WriteFile(filepath.Join(dir, ".env"), []byte(orig), 0o600)
		for i := 0; i < 2; i++ {
			if r := run(t, nil, "--project-dir", dir, "init", "--force"); r.code != 0 {
				t.Fatalf("init --force: exit %d %s", r.code, r.stderr)
			}
		}
		baks, _ := filepath.Glob(filepath.Join(dir, ".env.bak-*"))
		sort.Strings(baks)
		if len(baks) != 2 {
			t.Fatalf("want 2 kept copies, have %v", baks)
		}
		found := false
		for _, b := range baks {
			if c, _ := os.ReadFile(b); string(c) == orig {
				found = true
			}
		}
		if !found {
			t.Fatalf("the original .env is in none of %v", baks)
		}
	})
	t.Run("symlinked .env", func(t *testing.T) {
		dir, secrets := t.TempDir(), t.TempDir()
		target := filepath.Join(secrets, "dify.env")
		os.WriteFile(target, []byte("# mine\n"), 0o640)
		link := filepath.Join(dir, ".env")
		if err := os.Symlink(target, link); err != nil {
			t.Fatal(err)
		}
		steps := []struct {
			args  []string
			stdin string
			check string
		}{
			{[]string{"init", "--force"}, "", "SECRET_KEY="},
			{[]string{"env", "set", "EXPOSE_NGINX_PORT=8080"}, "", "EXPOSE_NGINX_PORT=8080"},
			{[]string{"env", "set", "SECRET_KEY", "--stdin"}, sentinelSecretKey + "\n", sentinelSecretKey},
		}
		for _, s := range steps {
			cmd := exec.Command(testenv.Difyctl(t), append([]string{"--project-dir", dir}, s.args...)...)
			cmd.Stdin = strings.NewReader(s.stdin)
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("%v: %v\n%s", s.args, err, out)
			}
			if st, err := os.Lstat(link); err != nil || st.Mode()&os.ModeSymlink == 0 {
				t.Fatalf("after %v .env is no longer a symlink", s.args)
			}
			if c, _ := os.ReadFile(target); !strings.Contains(string(c), s.check) {
				t.Fatalf("after %v the target lacks %q", s.args, s.check)
			}
		}
		// upgrade: drop a variable, upgrade puts it back through the link.
		d, _ := envgen.ReadFile(link)
		b := strings.Replace(string(d.Bytes()), "\nEXPOSE_NGINX_SSL_PORT=", "\n# EXPOSE_NGINX_SSL_PORT=", 1)
		os.WriteFile(target, []byte(b), 0o640)
		if r := run(t, nil, "--project-dir", dir, "env", "upgrade"); r.code != 0 {
			t.Fatalf("env upgrade: exit %d %s", r.code, r.stderr)
		}
		if st, _ := os.Lstat(link); st.Mode()&os.ModeSymlink == 0 {
			t.Fatal("env upgrade replaced the link")
		}
		if c, _ := os.ReadFile(target); !strings.Contains(string(c), "\nEXPOSE_NGINX_SSL_PORT=") {
			t.Fatal("env upgrade did not write through the link")
		}
		if st, _ := os.Stat(target); st.Mode().Perm() != 0o640 {
			t.Fatalf("target mode %v, want 0640 kept", st.Mode().Perm())
		}
	})
	t.Run("init on a 16 KiB tmpfs", func(t *testing.T) {
		if os.Geteuid() != 0 {
			t.Fatal("needs root to mount a tmpfs")
		}
		dir := t.TempDir()
		if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=16k,mode=0700", "tmpfs", dir).CombinedOutput(); err != nil {
			t.Fatalf("mount: %v %s", err, out)
		}
		t.Cleanup(func() { exec.Command("umount", dir).Run() })
		r := run(t, nil, "--project-dir", dir, "init")
		if r.code == 0 {
			t.Fatal("init fitted in 16 KiB")
		}
		if es, _ := os.ReadDir(dir); len(es) != 0 {
			t.Fatalf("init left %d entries on a full disk: %v", len(es), es)
		}
		if !strings.Contains(r.stderr, "nothing") {
			t.Fatalf("the error does not say nothing was left: %s", r.stderr)
		}
	})
}

// A backup takes turns with the commands that change the project, whatever
// its backup directory: while another difyctl holds the project (a restore,
// up, down), a backup into another directory exits 4 naming the holder.
func TestContractBackupWaitsForProject(t *testing.T) {
	cli := testenv.Engine(t)
	project := testenv.ProjectName(t, cli)
	lockDir := t.TempDir()
	getenv := func(k string) string {
		if k == "DIFYCTL_LOCK_DIR" {
			return lockDir
		}
		return os.Getenv(k)
	}
	unlock, err := projectpkg.Lock(getenv, project)
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	r := run(t, []string{"DIFYCTL_LOCK_DIR=" + lockDir}, "--project-dir", t.TempDir(), "-p", project, "backup", "redis", "--backup-dir", t.TempDir())
	if r.code != 4 || !strings.Contains(r.stderr, strconv.Itoa(os.Getpid())) {
		t.Fatalf("backup while the project is held: exit %d\n%s", r.code, r.stderr)
	}
}
