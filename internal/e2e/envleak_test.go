package e2e

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"github.com/difyctl/difyctl/cmd/root"
	"github.com/difyctl/difyctl/internal/cmdutil"
	"github.com/difyctl/difyctl/internal/testenv"
)

// unreadableLines are the kinds of .env line docker compose's parser (and
// difyctl's) cannot read, or difyctl refuses; each holds a planted value.
var unreadableLines = map[string]string{
	"space in a name":        "SECRET_KEY " + sentinelInBadLine + " junk\n",
	"unclosed double quote":  "A_KEY=\"" + sentinelInBadLine + "\nMORE=" + sentinelRedisPW + "\n",
	"unclosed single quote":  "A_KEY='" + sentinelInBadLine + "\n",
	"NUL in a value":         "REDIS_PASSWORD=" + sentinelInBadLine + "\x00x\n",
	"invalid UTF-8":          "SECRET_KEY=" + sentinelInBadLine + "\xff\xfe\n",
	"unclosed ${":            "B=${" + sentinelInBadLine + "\n",
	"character not in names": "bad!" + sentinelInBadLine + "=x\n",
	"name without = at EOF":  sentinelInBadLine,
}

// leakArgs are the arguments each command runs with ({src}: a second
// folder holding the same .env, for env import). Every command of the tree
// must be listed: a new command is checked once it is added here.
var leakArgs = map[string][]string{
	"backup all":              nil,
	"backup daemon":           {"--cron", "* * * * *"},
	"backup daemon all":       {"--cron", "* * * * *"},
	"backup list":             nil,
	"backup prune":            nil,
	"backup redis":            nil,
	"backup schedule install": nil,
	"backup schedule remove":  nil,
	"backup schedule show":    nil,
	"backup verify":           {"missing-backup"},
	"completion":              {"bash"},
	"config":                  nil,
	"doctor":                  nil,
	"down":                    nil,
	"env backups":             nil,
	"env get":                 {"SECRET_KEY"},
	"env import":              {"{src}"},
	"env set":                 {"SECRET_KEY", "--stdin"},
	"env upgrade":             nil,
	"env validate":            nil,
	"init":                    nil,
	"logs":                    nil,
	"profiles":                nil,
	"releases":                nil,
	"ps":                      nil,
	"pull":                    nil,
	"restart":                 nil,
	"restore all":             {"missing-bundle", "--yes"},
	"restore redis":           {"missing.rdb", "--yes"},
	"rollback":                {"--yes"},
	"setup":                   nil,
	"start":                   nil,
	"stop":                    nil,
	"up":                      nil,
	"upgrade":                 {"--dry-run"},
	"version":                 nil,
}

// leafCommands lists the command tree's runnable commands ("env get").
func leafCommands() []string {
	var out []string
	var walk func(c *cobra.Command, path string)
	walk = func(c *cobra.Command, path string) {
		for _, sub := range c.Commands() {
			if sub.Name() == "help" || sub.Hidden {
				continue
			}
			p := strings.TrimSpace(path + " " + sub.Name())
			if sub.Runnable() && (len(sub.Commands()) == 0 || sub.Name() == "completion") {
				out = append(out, p)
				continue
			}
			walk(sub, p)
		}
	}
	walk(root.New(cmdutil.NewFactory()), "")
	sort.Strings(out)
	return out
}

// Every command, run against a .env with each kind of unreadable line,
// prints no value of the file (not the planted secrets, not the text of the
// bad line) on stdout or stderr, in text and JSON, whether the project name
// comes from .env or from -p.
func TestNoSecretFromUnreadableEnv(t *testing.T) {
	cmds := leafCommands()
	if len(cmds) < 25 {
		t.Fatalf("only %d commands in the tree: %v", len(cmds), cmds)
	}
	for _, c := range cmds {
		if _, ok := leakArgs[c]; !ok {
			t.Errorf("command %q is not in leakArgs: add it (with the arguments that make it read .env)", c)
		}
	}
	base := contractProject(t)
	good, err := os.ReadFile(filepath.Join(base, ".env"))
	if err != nil {
		t.Fatal(err)
	}
	bin := testenv.Difyctl(t)
	noEngine := []string{"DOCKER_HOST=unix:///nonexistent/difyctl-envleak.sock", "DOCKER_CONTEXT=", "HOME=" + t.TempDir()}
	kinds := make([]string, 0, len(unreadableLines))
	for k := range unreadableLines {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	// Every command meets every kind of line once; the way it runs rotates
	// (project name from .env or from -p, text or JSON), so each command
	// and each kind also meets every way. Three at a time.
	type job struct {
		cmd, kind      string
		named, jsonOut bool
	}
	var jobs []job
	for i, c := range cmds {
		for j, kind := range kinds {
			mode := (i + j) % 4
			jobs = append(jobs, job{c, kind, mode&1 == 1, mode&2 == 2})
		}
	}
	sem := make(chan struct{}, 3)
	done := make(chan struct{})
	for _, jb := range jobs {
		dir, src := t.TempDir(), t.TempDir()
		content := append(append([]byte(nil), good...), unreadableLines[jb.kind]...)
		for _, d := range []string{dir, src} {
			if err := os.WriteFile(filepath.Join(d, ".env"), content, 0o600); err != nil {
				t.Fatal(err)
			}
		}
		args := []string{"--project-dir", dir}
		name := ""
		if jb.named {
			b := make([]byte, 4)
			rand.Read(b)
			name = "envleak" + hex.EncodeToString(b)
			args = append(args, "-p", name)
		}
		args = append(args, strings.Fields(jb.cmd)...)
		for _, a := range leakArgs[jb.cmd] {
			args = append(args, strings.ReplaceAll(a, "{src}", src))
		}
		if jb.jsonOut {
			args = append(args, "-o", "json")
		}
		cwd := t.TempDir()
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; done <- struct{}{} }()
			r := runBounded(t, bin, args, noEngine, cwd, "new-value-0123456789abcdef\n")
			for _, s := range []string{sentinelSecretKey, sentinelRedisPW, sentinelInBadLine} {
				if strings.Contains(r.stdout, s) || strings.Contains(r.stderr, s) {
					t.Errorf("%s, %v: a value from .env is printed (exit %d)\nstdout: %.2000s\nstderr: %.2000s", jb.kind, args, r.code, r.stdout, r.stderr)
					break
				}
			}
			if jb.named && jb.cmd == "backup schedule install" {
				cleanupSchedule(t, bin, dir, name)
			}
		}()
	}
	for range jobs {
		<-done
	}
}

// runBounded runs the binary for at most 20 s (backup daemon, given a
// readable .env, would run on): what it printed until then is checked.
func runBounded(t *testing.T, bin string, args, env []string, cwd, stdin string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Dir = cwd
	cmd.Stdin = strings.NewReader(stdin)
	cmd.WaitDelay = 5 * time.Second
	return runCmd(t, cmd)
}

// cleanupSchedule removes a cron entry an install under -p may have
// written, so that the host is left as it was.
func cleanupSchedule(t *testing.T, bin, dir, name string) {
	t.Helper()
	exec.Command(bin, "--project-dir", dir, "-p", name, "backup", "schedule", "remove").Run()
	p := filepath.Join("/etc/cron.d", "difyctl-"+name)
	if _, err := os.Stat(p); err == nil {
		os.Remove(p)
		t.Errorf("backup schedule install wrote %s although .env cannot be read", p)
	}
}
