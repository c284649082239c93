package backup

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// cronCommand does to a job line's command what cron(8) (Debian's
// do_command.c) does before handing it to sh: \% becomes %, the first
// unescaped % ends the command (the rest is stdin).
func cronCommand(cmd string) string {
	var b strings.Builder
	escaped := false
	for _, ch := range cmd {
		if escaped {
			if ch != '%' {
				b.WriteRune('\\')
			}
			b.WriteRune(ch)
			escaped = false
			continue
		}
		if ch == '\\' {
			escaped = true
			continue
		}
		if ch == '%' {
			break
		}
		b.WriteRune(ch)
	}
	return b.String()
}

func testSchedule(t *testing.T, backupDir string) Schedule {
	return Schedule{Cron: "0 3 * * *", Binary: "/usr/local/bin/difyctl", ProjectDir: "/srv/dify prod", Project: "dify",
		BackupDir: backupDir, Service: "redis", Retention: 7, KeepMin: 3, Env: []string{"DOCKER_HOST=unix:///run/x.sock"}}
}

// Every word reaches difyctl intact through cron and sh, whatever it holds,
// and an injected command runs nothing.
func TestCommandQuotingThroughCronAndSh(t *testing.T) {
	tmp := t.TempDir()
	argsOut := filepath.Join(tmp, "args")
	bin := filepath.Join(tmp, "fake difyctl")
	os.WriteFile(bin, []byte("#!/bin/sh\nfor a in \"$@\"; do printf '%s\\n' \"$a\"; done > '"+argsOut+"'\n"), 0o755)
	for _, dir := range []string{"b d%x'y\"$HOME`id`", "b;touch${IFS}pwned;#", "a\\b %% c"} {
		os.Remove(argsOut)
		s := testSchedule(t, filepath.Join(tmp, dir))
		s.Binary = bin
		os.MkdirAll(s.BackupDir, 0o700)
		line, err := s.Line(true)
		if err != nil {
			t.Fatalf("%q: %v", dir, err)
		}
		cmd := strings.TrimSuffix(strings.SplitN(line, " root ", 2)[1], " "+tag("dify"))
		c := shRun(t, tmp, cronCommand(cmd))
		if c != "" {
			t.Fatalf("%q: sh said %s", dir, c)
		}
		b, err := os.ReadFile(argsOut)
		if err != nil {
			t.Fatalf("%q: difyctl not run: %v (line %s)", dir, err, line)
		}
		if !strings.Contains(string(b), "\n--backup-dir\n"+filepath.Join(tmp, dir)+"\n") || !strings.Contains(string(b), "\n--scheduled\n0 3 * * *\n") {
			t.Fatalf("%q: args\n%s", dir, b)
		}
		if _, err := os.Stat(filepath.Join(tmp, "pwned")); err == nil {
			t.Fatal("injected command ran")
		}
	}
	s := testSchedule(t, "/srv/a\nb")
	if _, err := s.Line(true); err == nil || !strings.Contains(err.Error(), "line break") {
		t.Fatalf("newline: %v", err)
	}
	s = testSchedule(t, `/srv/a\%b`)
	if _, err := s.Line(true); err == nil {
		t.Fatal(`\% accepted`)
	}
	s = testSchedule(t, "/srv/b")
	s.Cron = "0 0 31 2 *"
	if _, err := s.Line(true); err == nil {
		t.Fatal("never-matching schedule accepted")
	}
}

// shRun runs a command with /bin/sh from dir and returns anything it says.
func shRun(t *testing.T, dir, command string) string {
	t.Helper()
	cmd := exec.Command("/bin/sh", "-c", command)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		return err.Error() + ": " + string(out)
	}
	return string(out)
}

func TestInstallKeepsOperatorLines(t *testing.T) {
	CronDir = t.TempDir()
	s := testSchedule(t, "/srv/dify prod/backups/redis")
	path := CronDFile("dify")
	// The operator's lines, one of them right after a legacy entry of ours.
	legacy := "MAILTO=ops@example.com\n" + marker("dify") + "\nSHELL=/bin/sh\nPATH=" + CronPATH +
		"\n0 3 * * * root /usr/local/bin/difyctl --project-dir /srv -p dify backup redis --quiet >>/srv/backups/backup.log 2>&1\n" +
		"15 4 * * * root /usr/local/bin/my-own-job\n"
	os.WriteFile(path, []byte(legacy), 0o644)
	where, undo, err := s.Install(true)
	if err != nil || where != path {
		t.Fatalf("%s %v", where, err)
	}
	b, _ := os.ReadFile(path)
	got := string(b)
	if !strings.HasPrefix(got, "MAILTO=ops@example.com\n15 4 * * * root /usr/local/bin/my-own-job\n"+marker("dify")+"\n0 3 * * * root '/usr/bin/env' ") ||
		strings.Contains(got, "backup.log") || strings.Count(got, "\n") != 4 {
		t.Fatalf("entry:\n%s", got)
	}
	if st, _ := os.Stat(path); st.Mode().Perm() != 0o644 {
		t.Fatalf("mode %v", st.Mode())
	}
	// Reinstalling replaces only our job.
	s.Cron = "30 2 * * *"
	if _, _, err := s.Install(true); err != nil {
		t.Fatal(err)
	}
	b, _ = os.ReadFile(path)
	if c := string(b); !strings.Contains(c, "MAILTO=") || !strings.Contains(c, "my-own-job") || strings.Count(c, tag("dify")) != 1 || !strings.Contains(c, "\n30 2 * * * root ") {
		t.Fatalf("reinstalled:\n%s", c)
	}
	in, err := Installed("dify", true)
	if err != nil || in == nil || in.Cron != "30 2 * * *" || in.BackupDir != "/srv/dify prod/backups/redis" || in.ProjectDir != "/srv/dify prod" {
		t.Fatalf("installed: %+v %v", in, err)
	}
	show, _ := ShowSchedule("dify", true)
	if strings.Count(show, "\n") != 2 || strings.Contains(show, "MAILTO") {
		t.Fatalf("show: %q", show)
	}
	// Remove takes only our lines; the operator's stay.
	if ok, err := RemoveSchedule("dify", true); !ok || err != nil {
		t.Fatalf("remove: %v %v", ok, err)
	}
	b, _ = os.ReadFile(path)
	if string(b) != "MAILTO=ops@example.com\n15 4 * * * root /usr/local/bin/my-own-job\n" {
		t.Fatalf("after remove:\n%s", b)
	}
	if ok, _ := RemoveSchedule("dify", true); ok {
		t.Fatal("removed twice")
	}
	// Undo puts back what was there before the first install.
	if err := undo(); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(path); string(b) != legacy {
		t.Fatalf("undo:\n%s", b)
	}
	// A file with only our job goes away on remove; undo of a first install removes it.
	os.Remove(path)
	_, undo, _ = s.Install(true)
	if ok, _ := RemoveSchedule("dify", true); !ok {
		t.Fatal("not removed")
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatalf("empty entry file left: %v", err)
	}
	s.Install(true)
	undo()
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatalf("undo of a first install left the file: %v", err)
	}
}

func TestWithoutOwnInCrontab(t *testing.T) {
	// A user crontab: the operator's job right after our marker is not ours.
	tab := "MAILTO=x\n" + marker("a") + "\n0 3 * * * job-of-the-operator\n" + marker("b") + "\n0 4 * * * x " + tag("b") + "\n"
	got := strings.Join(withoutOwn(tab, "a"), "\n")
	if got != "MAILTO=x\n0 3 * * * job-of-the-operator\n"+marker("b")+"\n0 4 * * * x "+tag("b") {
		t.Fatalf("got %q", got)
	}
	got = strings.Join(withoutOwn(tab, "b"), "\n")
	if got != "MAILTO=x\n"+marker("a")+"\n0 3 * * * job-of-the-operator" {
		t.Fatalf("got %q", got)
	}
}

func TestTestRunUsesCronEnvironment(t *testing.T) {
	tmp := t.TempDir()
	bin := filepath.Join(tmp, "difyctl")
	envOut := filepath.Join(tmp, "env")
	os.WriteFile(bin, []byte("#!/bin/sh\n{ pwd; env | sort; } > '"+envOut+"'\nexit 3\n"), 0o755)
	s := testSchedule(t, filepath.Join(tmp, "b"))
	s.Binary = bin
	os.MkdirAll(s.BackupDir, 0o700)
	t.Setenv("SECRET_OF_THE_SHELL", "x")
	code, err := s.TestRun(context.Background())
	if err != nil || code != 3 {
		t.Fatalf("%d %v", code, err)
	}
	b, _ := os.ReadFile(envOut)
	env := string(b)
	if !strings.HasPrefix(env, "/\n") || strings.Contains(env, "SECRET_OF_THE_SHELL") || !strings.Contains(env, "PATH="+CronPATH+"\n") || !strings.Contains(env, "DOCKER_HOST=unix:///run/x.sock\n") {
		t.Fatalf("environment:\n%s", env)
	}
}

func TestStatusRecord(t *testing.T) {
	p := filepath.Join(t.TempDir(), "s.json")
	if s, err := ReadStatus(p); s != nil || err != nil {
		t.Fatal("missing status not (nil, nil)")
	}
	t0 := time.Date(2026, 11, 20, 3, 0, 1, 0, time.UTC)
	RecordRun(p, "dify", "CRON_TZ=UTC 0 3 * * *", RunRecord{Time: t0, Result: "ok", File: "/b/redis_1.rdb"})
	RecordRun(p, "dify", "CRON_TZ=UTC 0 3 * * *", RunRecord{Time: t0.Add(24 * time.Hour), Result: "failed", Error: Redact("NOAUTH pw-123 wrong", "pw-123"), ExitCode: 1})
	s, err := ReadStatus(p)
	if err != nil || s.LastSuccess.File != "/b/redis_1.rdb" || s.LastAttempt.Result != "failed" || strings.Contains(s.LastAttempt.Error, "pw-123") {
		t.Fatalf("%+v %v", s, err)
	}
	if st, _ := os.Stat(p); st.Mode().Perm() != FileMode {
		t.Fatalf("mode %v", st.Mode())
	}
	if w := s.Warning(t0.Add(47 * time.Hour)); w != "" {
		t.Fatalf("early warning: %s", w)
	}
	if w := s.Warning(t0.Add(49 * time.Hour)); !strings.Contains(w, "older than two periods") {
		t.Fatalf("warning: %q", w)
	}
}
