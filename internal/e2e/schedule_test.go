package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/difyctl/difyctl/backup"
	"github.com/difyctl/difyctl/internal/testenv"
)

// startCron starts Debian's cron daemon in the foreground for the test and
// stops it in t.Cleanup. A cron already running on the host is used as is
// (and left running). Missing cron or root fails under CI=true.
func startCron(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		if testenv.InCI() {
			t.Fatal("CI=true: the cron test installs into /etc/cron.d and needs root")
		}
		t.Skip("not root: cannot install into /etc/cron.d")
	}
	bin, err := exec.LookPath("cron")
	if err != nil {
		if testenv.InCI() {
			t.Fatal("CI=true: cron(8) is not installed (internal/testenv/ensure-engine.sh installs Debian's cron)")
		}
		t.Skip("cron(8) not installed")
	}
	// Under timeout(1): should the test binary die without its cleanups (a
	// test timeout panics), cron still stops within 15 minutes. timeout
	// passes our SIGTERM on to cron.
	cmd := exec.Command("timeout", "15m", bin, "-f")
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting cron: %v", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	select {
	case err := <-exited:
		if strings.Contains(out.String(), "can't lock") || strings.Contains(out.String(), "already running") {
			t.Logf("using the cron daemon already running")
			return
		}
		t.Fatalf("cron exited at once: %v: %s", err, out.String())
	case <-time.After(time.Second):
	}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
	})
}

// waitIdle waits (bounded) until no run of the project's backup holds its
// lock, so nothing writes into the directory while it is removed.
func waitIdle(t *testing.T, bdir, project string) {
	for deadline := time.Now().Add(2 * time.Minute); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		if unlock, err := backup.Lock(bdir, project); err == nil {
			unlock()
			return
		}
	}
	t.Errorf("a backup of %s was still running two minutes after cron stopped", project)
}

// readStatus reads a project's status file in a backup directory.
func readStatus(t *testing.T, bdir, project string) *backup.Status {
	t.Helper()
	s, err := backup.ReadStatus(backup.StatusPath(bdir, project))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// The job cron runs works on a project never backed up before, with a backup
// directory whose name holds a space, %, ' and an injected ;touch: a
// verified backup within two minutes, reported by `schedule show`, nothing
// injected run; remove takes only its own lines.
func TestScheduleRunsUnderRealCron(t *testing.T) {
	t.Parallel() // mostly waits (a minute boundary, a restore): overlap with the others here
	cli := testenv.Fixtures(t)
	project := testenv.ProjectName(t, cli)
	cronFile := filepath.Join("/etc/cron.d", "difyctl-"+project)
	t.Cleanup(func() { os.Remove(cronFile) }) // registered before cron starts: runs after it stops
	r := startRedis(t, cli, project, "")
	populate(t, r, "k", 100)

	tmp := t.TempDir()
	pwned := filepath.Join(tmp, "pwned")
	bdir := filepath.Join(tmp, "my backups 100% 'safe'", "b;touch${IFS}"+pwned+";#")
	projDir := t.TempDir()
	args := []string{"--project-dir", projDir, "-p", project}
	dockerHost := os.Getenv("DOCKER_HOST")
	if dockerHost == "" {
		dockerHost = "unix:///var/run/docker.sock"
	}
	env := []string{"DOCKER_HOST=" + dockerHost}

	res := run(t, env, append(args, "backup", "schedule", "install", "--cron", "* * * * *", "--backup-dir", bdir, "--retention-days", "1", "--keep-min", "5")...)
	if res.code != 0 {
		t.Fatalf("install: exit %d\n%s\n%s", res.code, res.stdout, res.stderr)
	}
	if !strings.Contains(res.stdout, "test run: ok, "+bdir+"/redis_") {
		t.Fatalf("install did not report its test run:\n%s", res.stdout)
	}
	entry, err := os.ReadFile(cronFile)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(entry), "'DOCKER_HOST="+dockerHost+"'") || !strings.Contains(string(entry), `100\%`) || strings.Count(string(entry), "\n") != 2 {
		t.Fatalf("entry:\n%s", entry)
	}
	if st, _ := os.Stat(bdir); st == nil || st.Mode().Perm() != 0o700 {
		t.Fatalf("backup directory not created 0700: %v", st)
	}
	if st, _ := os.Stat(backup.LogPath(bdir, project)); st == nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("log not created 0600: %v", st)
	}
	tested := readStatus(t, bdir, project)
	if tested == nil || tested.LastSuccess == nil {
		t.Fatalf("the test run recorded no success: %+v", tested)
	}

	// Cleanups run last-first: cron stops, then any run it started finishes.
	t.Cleanup(func() { waitIdle(t, bdir, project) })
	startCron(t)
	// cron reads the entry at the next minute and runs it: wait (bounded) for
	// a success newer than the test run's.
	deadline := time.Now().Add(150 * time.Second)
	var st *backup.Status
	for {
		st = readStatus(t, bdir, project)
		if st != nil && st.LastAttempt != nil && st.LastAttempt.Time.After(tested.LastAttempt.Time) {
			break
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(backup.LogPath(bdir, project))
			t.Fatalf("cron did not run the job within 150 s; status %+v; log:\n%s", st, log)
		}
		time.Sleep(2 * time.Second)
	}
	if st.LastAttempt.Result != "ok" || st.LastSuccess == nil || st.LastSuccess.File == tested.LastSuccess.File {
		log, _ := os.ReadFile(backup.LogPath(bdir, project))
		t.Fatalf("cron's run: %+v\nlog:\n%s", st.LastAttempt, log)
	}
	if _, err := os.Stat(pwned); err == nil {
		t.Fatal("the injected ;touch ran")
	}
	// The log, the status file and the entry hold no secret.
	for _, p := range []string{backup.LogPath(bdir, project), backup.StatusPath(bdir, project), cronFile} {
		if b, _ := os.ReadFile(p); strings.Contains(string(b), redisPassword) {
			t.Fatalf("the Redis password is in %s", p)
		}
	}

	// `backup list` names it; `backup verify NAME` accepts that name.
	res = run(t, nil, append(args, "backup", "list", "--backup-dir", bdir)...)
	name := filepath.Base(st.LastSuccess.File)
	if res.code != 0 || !strings.Contains(res.stdout, name) || !strings.Contains(res.stderr, "last scheduled success: ") {
		t.Fatalf("list: exit %d\n%s\n%s", res.code, res.stdout, res.stderr)
	}
	if res = run(t, nil, append(args, "backup", "verify", "--backup-dir", bdir, name)...); res.code != 0 || !strings.HasPrefix(res.stdout, "ok ") {
		t.Fatalf("verify %s: exit %d %s %s", name, res.code, res.stdout, res.stderr)
	}
	// `schedule show` prints the entry and the success (the backup directory
	// read back from the entry).
	res = run(t, nil, append(args, "backup", "schedule", "show")...)
	if res.code != 0 || !strings.Contains(res.stdout, "* * * * * root '/usr/bin/env'") ||
		!strings.Contains(res.stdout, "last scheduled success: ") || !strings.Contains(res.stdout, name) || strings.Contains(res.stderr, "WARNING") {
		t.Fatalf("show: exit %d\n%s\n%s", res.code, res.stdout, res.stderr)
	}

	// An operator's line in the file survives a reinstall and the removal.
	f, _ := os.OpenFile(cronFile, os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString("MAILTO=\"\"\n")
	f.Close()
	if res = run(t, env, append(args, "backup", "schedule", "install", "--cron", "0 4 * * *", "--backup-dir", bdir, "--no-test")...); res.code != 0 {
		t.Fatalf("reinstall: %s", res.stderr)
	}
	if b, _ := os.ReadFile(cronFile); !strings.Contains(string(b), "MAILTO=\"\"\n") || strings.Count(string(b), "difyctl-backup-job") != 1 {
		t.Fatalf("reinstalled entry:\n%s", b)
	}
	if res = run(t, nil, append(args, "backup", "schedule", "remove")...); res.code != 0 {
		t.Fatalf("remove: %s", res.stderr)
	}
	if b, _ := os.ReadFile(cronFile); string(b) != "MAILTO=\"\"\n" {
		t.Fatalf("after remove:\n%s", b)
	}
}

// A test run that fails (no Redis running) installs nothing.
func TestScheduleInstallRefusesAJobThatFails(t *testing.T) {
	t.Parallel() // mostly waits (a minute boundary, a restore): overlap with the others here
	if os.Geteuid() != 0 {
		if testenv.InCI() {
			t.Fatal("CI=true: needs root for /etc/cron.d")
		}
		t.Skip("not root")
	}
	cli := testenv.Fixtures(t)
	project := testenv.ProjectName(t, cli) // no containers
	cronFile := filepath.Join("/etc/cron.d", "difyctl-"+project)
	t.Cleanup(func() { os.Remove(cronFile) })
	args := []string{"--project-dir", t.TempDir(), "-p", project, "backup", "schedule", "install", "--backup-dir", t.TempDir()}
	res := run(t, nil, args...)
	if res.code != 1 || !strings.Contains(res.stderr, "no running Redis container") || !strings.Contains(res.stderr, "nothing installed") {
		t.Fatalf("install for a project without containers: exit %d\n%s", res.code, res.stderr)
	}
	if _, err := os.Stat(cronFile); !os.IsNotExist(err) {
		t.Fatalf("entry left behind: %v", err)
	}
	// --no-test installs, with a warning; difyctl invoked through a symlink
	// stays the symlink in the entry (replacing it upgrades the job).
	link := filepath.Join(t.TempDir(), "difyctl")
	if err := os.Symlink(testenv.Difyctl(t), link); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(link, append(args, "--no-test")...)
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "WARNING: the job will fail") {
		t.Fatalf("--no-test: %v\n%s", err, out)
	}
	if b, _ := os.ReadFile(cronFile); !strings.Contains(string(b), " '"+link+"' ") {
		t.Fatalf("binary path not kept as invoked (%s):\n%s", link, b)
	}
	for _, bad := range [][]string{{"--cron", "0 0 31 2 *"}, {"--cron", "0 0 30 2 *"}, {"--retention-days", "-1"}, {"--keep-min", "-2"}} {
		if res := run(t, nil, append(args, bad...)...); res.code != 2 {
			t.Errorf("install %v: exit %d %s", bad, res.code, res.stderr)
		}
	}
}

// Two projects in one backup directory with different retention: each
// keeps exactly its own backups, another project's and unowned files are
// never deleted, `restore latest` of each loads its own data, and after a
// restore `latest` is still the real latest, not the safety copy.
func TestTwoProjectsShareABackupDirectory(t *testing.T) {
	t.Parallel() // mostly waits (a minute boundary, a restore): overlap with the others here
	cli := testenv.Fixtures(t)
	pa, pb := testenv.ProjectName(t, cli), testenv.ProjectName(t, cli)
	ra, rb := startRedis(t, cli, pa, ""), startRedis(t, cli, pb, "")
	populate(t, ra, "a", 50)
	populate(t, rb, "b", 70)
	bdir := t.TempDir()
	// An old backup of b (beyond b's 30 days) and a file nobody owns.
	oldB := "redis_20200101_000000.rdb"
	os.WriteFile(filepath.Join(bdir, oldB), []byte("x"), 0o600)
	os.WriteFile(filepath.Join(bdir, oldB+".json"), []byte(`{"project":"`+pb+`"}`), 0o600)
	os.WriteFile(filepath.Join(bdir, "redis_20200102_000000.rdb"), []byte("x"), 0o600)

	argsA := []string{"--project-dir", t.TempDir(), "-p", pa}
	argsB := []string{"--project-dir", t.TempDir(), "-p", pb}
	backupA := append(append([]string{}, argsA...), "backup", "redis", "--backup-dir", bdir, "--retention-days", "0", "--keep-min", "2")
	backupB := append(append([]string{}, argsB...), "backup", "redis", "--backup-dir", bdir, "--retention-days", "30", "--keep-min", "1")

	// Round 1: a alone (retention 0): b's files untouched.
	if res := run(t, nil, backupA...); res.code != 0 {
		t.Fatalf("a: %s", res.stderr)
	}
	if _, err := os.Stat(filepath.Join(bdir, oldB)); err != nil {
		t.Fatalf("a's rotation deleted b's backup: %v", err)
	}
	// Rounds 2-3: both at once (same second: names must not collide).
	for i := 0; i < 2; i++ {
		var wg sync.WaitGroup
		var resA, resB result
		wg.Add(2)
		go func() { defer wg.Done(); resA = run(t, nil, backupA...) }()
		go func() { defer wg.Done(); resB = run(t, nil, backupB...) }()
		wg.Wait()
		if resA.code != 0 || resB.code != 0 {
			t.Fatalf("round %d: a exit %d %s; b exit %d %s", i+2, resA.code, resA.stderr, resB.code, resB.stderr)
		}
	}
	la, _ := backup.ListProject(bdir, pa)
	lb, _ := backup.ListProject(bdir, pb)
	if len(la.Own) != 2 || len(lb.Own) != 2 {
		t.Fatalf("a keeps %d (want 2: keep-min), b keeps %d (want 2: all its new ones)", len(la.Own), len(lb.Own))
	}
	for _, e := range append(la.Own, lb.Own...) {
		if _, _, err := backup.VerifyFile(e.Path); err != nil {
			t.Fatalf("%s: %v", e.Name, err)
		}
	}
	if _, err := os.Stat(filepath.Join(bdir, oldB)); !os.IsNotExist(err) {
		t.Fatal("b's own rotation kept its 2020 backup")
	}
	if _, err := os.Stat(filepath.Join(bdir, "redis_20200102_000000.rdb")); err != nil {
		t.Fatal("a file without a manifest was deleted")
	}
	// list shows each project its own.
	res := run(t, nil, append(argsA, "backup", "list", "--backup-dir", bdir, "-o", "json")...)
	var listing struct {
		Backups []struct{ Name string } `json:"backups"`
		Foreign []struct{ Name string } `json:"foreign"`
	}
	if err := json.Unmarshal([]byte(res.stdout), &listing); err != nil || len(listing.Backups) != 2 || len(listing.Foreign) != 3 {
		t.Fatalf("list of a: %v %s", err, res.stdout)
	}

	// restore latest of each loads its own data.
	for _, r := range []*backup.Redis{ra, rb} {
		if _, err := r.CLI(context.Background(), "FLUSHALL"); err != nil {
			t.Fatal(err)
		}
	}
	latestA := la.Own[len(la.Own)-1].Path
	for _, p := range []struct {
		args   []string
		name   string
		prefix string
		keys   int64
	}{{argsA, pa, "a", 50}, {argsB, pb, "b", 70}} {
		res := run(t, nil, append(p.args, "restore", "redis", "latest", "--backup-dir", bdir, "--yes")...)
		if res.code != 0 {
			t.Fatalf("restore %s: %s", p.name, res.stderr)
		}
		r := startedRedis(t, cli, p.name)
		if n := keyCount(t, r); n != p.keys {
			t.Fatalf("%s after restore latest: %d keys, want %d", p.name, n, p.keys)
		}
		if v, _ := r.CLI(context.Background(), "EXISTS", p.prefix+"1"); v != "1" {
			t.Fatalf("%s restored another project's data", p.name)
		}
	}
	// A name as `backup list` prints it is accepted by restore.
	res = run(t, nil, append(argsB, "restore", "redis", lb.Own[0].Name, "--backup-dir", bdir, "--dry-run")...)
	if res.code != 0 || !strings.Contains(res.stdout, "would restore "+lb.Own[0].Path+" ") {
		t.Fatalf("restore NAME --dry-run: exit %d %s %s", res.code, res.stdout, res.stderr)
	}
	// After the restore the safety copy is the newest file of a; latest is not it.
	res = run(t, nil, append(argsA, "restore", "redis", "latest", "--backup-dir", bdir, "--dry-run")...)
	if res.code != 0 || !strings.Contains(res.stdout, "would restore "+latestA+" ") {
		t.Fatalf("dry run after restore: exit %d %s %s (want %s)", res.code, res.stdout, res.stderr, latestA)
	}
	res = run(t, nil, append(argsA, "backup", "list", "--backup-dir", bdir)...)
	if !regexp.MustCompile(`safety copy \(before restoring redis_\d{8}_\d{6}(_\d+)?\.rdb\)`).MatchString(res.stdout) {
		t.Fatalf("list does not mark the safety copy:\n%s", res.stdout)
	}
	// Rotation with retention 0 keeps the safety copy while the backup it protects is kept.
	if res := run(t, nil, backupA...); res.code != 0 {
		t.Fatalf("a after restore: %s", res.stderr)
	}
	la, _ = backup.ListProject(bdir, pa)
	safety := 0
	for _, e := range la.Own {
		if e.IsSafetyCopy() {
			safety++
		}
	}
	if safety != 1 {
		t.Fatalf("safety copy rotated out while its backup is kept: %+v", la.Own)
	}
	// --retention-days 0 --keep-min 0 keeps exactly the backup just written.
	res = run(t, nil, append(argsA, "backup", "redis", "--backup-dir", bdir, "--retention-days", "0", "--keep-min", "0", "-o", "json")...)
	var written backup.Result
	json.Unmarshal([]byte(res.stdout), &written)
	la, _ = backup.ListProject(bdir, pa)
	if res.code != 0 || len(la.Own) != 1 || la.Own[0].Path != written.Path {
		t.Fatalf("retention 0, keep-min 0: exit %d, left %+v (wrote %s)", res.code, la.Own, written.Path)
	}
	// Negative retention is refused everywhere, and prune does not create a mistyped directory.
	for _, a := range [][]string{append(backupA[:len(backupA):len(backupA)], "--retention-days", "-1"), append(argsA, "backup", "prune", "--backup-dir", bdir, "--keep-min", "-1")} {
		if res := run(t, nil, a...); res.code != 2 {
			t.Errorf("%v: exit %d %s", a, res.code, res.stderr)
		}
	}
	typo := filepath.Join(bdir+"-typo", "x")
	if res := run(t, nil, append(argsA, "backup", "prune", "--backup-dir", typo)...); res.code != 1 || !strings.Contains(res.stderr, "does not exist") {
		t.Errorf("prune of a missing directory: exit %d %s", res.code, res.stderr)
	}
	if _, err := os.Stat(typo); !os.IsNotExist(err) {
		t.Error("prune created the mistyped directory")
	}
}

// bigRedis is a Redis whose dump takes a while to stream: ~60 MB,
// uncompressed.
func bigRedis(t *testing.T, project string) *backup.Redis {
	cli := testenv.Fixtures(t)
	r := startRedis(t, cli, project, "", "--rdbcompression", "no", "--enable-debug-command", "yes")
	if _, err := r.CLI(context.Background(), "DEBUG", "POPULATE", "240000", "big", "256"); err != nil {
		t.Fatal(err)
	}
	return r
}

// lockedBuffer collects a child's output while the test may read it.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// waitForTemp waits until a temporary backup file in dir has data in it;
// say adds what the writer said when it does not happen.
func waitForTemp(t *testing.T, dir string, within time.Duration, say func() string) string {
	t.Helper()
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		des, _ := os.ReadDir(dir)
		for _, de := range des {
			n := de.Name()
			if strings.HasPrefix(n, ".redis_") && strings.Contains(n, ".rdb.tmp-") {
				if info, err := de.Info(); err == nil && info.Size() > 0 {
					return filepath.Join(dir, n)
				}
			}
		}
		time.Sleep(time.Millisecond)
	}
	des, _ := os.ReadDir(dir)
	t.Fatalf("no backup was being written in %s within %s; there: %v; it said:\n%s", dir, within, des, say())
	return ""
}

// The daemon refuses a never-matching expression at once; SIGTERM in the
// middle of a stream leaves no file under a final name; a killed run's
// temporary file is shown by list and removed by the next run once an hour
// old.
func TestDaemonAndKilledRuns(t *testing.T) {
	t.Parallel() // mostly waits (a minute boundary, a restore): overlap with the others here
	cli := testenv.Fixtures(t)
	project := testenv.ProjectName(t, cli)
	args := []string{"--project-dir", t.TempDir(), "-p", project}
	bdir := t.TempDir()

	for _, expr := range []string{"0 0 31 2 *", "0 0 31 4 *"} {
		start := time.Now()
		res := run(t, nil, append(args, "backup", "daemon", "--cron", expr, "--backup-dir", bdir)...)
		if res.code != 2 || !strings.Contains(res.stderr, "never matches") || time.Since(start) > 10*time.Second {
			t.Fatalf("daemon %q: exit %d after %s: %s", expr, res.code, time.Since(start), res.stderr)
		}
	}
	if res := run(t, nil, append(args, "backup", "daemon", "--retention-days", "-3", "--backup-dir", bdir)...); res.code != 2 {
		t.Fatalf("daemon with negative retention: exit %d", res.code)
	}

	bigRedis(t, project)
	// The daemon on a one-minute schedule, stopped by SIGTERM while it streams.
	daemon := exec.Command(testenv.Difyctl(t), append(args, "backup", "daemon", "--cron", "CRON_TZ=Asia/Kolkata * * * * *", "--backup-dir", bdir)...)
	var derr lockedBuffer
	daemon.Stderr = &derr
	if err := daemon.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- daemon.Wait() }()
	t.Cleanup(func() {
		if daemon.ProcessState == nil {
			daemon.Process.Kill()
			<-done
		}
	})
	// The first run starts at the next minute; its BGSAVE of 60 MB may take a while on a busy host.
	tmp := waitForTemp(t, bdir, 150*time.Second, derr.String)
	daemon.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-done:
		// SIGTERM ends the daemon with 143 (128+15), as a shell reports it.
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 143 {
			t.Fatalf("daemon after SIGTERM: %v, want exit 143\n%s", err, derr.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("daemon did not stop on SIGTERM:\n%s", derr.String())
	}
	if all, _ := backup.List(bdir); len(all) != 0 {
		t.Fatalf("interrupted run left a backup under a final name: %+v", all)
	}
	if _, err := os.Stat(tmp); !os.IsNotExist(err) {
		t.Fatalf("interrupted run left its temporary file %s", tmp)
	}
	// One zone on a line: every stamp in +05:30.
	line := regexp.MustCompile(`(?m)^(\S+) next backup at (\S+)$`).FindStringSubmatch(derr.String())
	if line == nil || !strings.HasSuffix(line[1], "+05:30") || !strings.HasSuffix(line[2], "+05:30") {
		t.Fatalf("daemon's times not in the schedule's one zone:\n%s", derr.String())
	}
	if st := readStatus(t, bdir, project); st == nil || st.LastAttempt == nil || st.LastAttempt.Result != "failed" {
		t.Fatalf("interrupted run not recorded: %+v", st)
	}

	// A run killed outright leaves its temporary file: list shows it.
	kill := exec.Command(testenv.Difyctl(t), append(args, "backup", "redis", "--backup-dir", bdir)...)
	var kerr lockedBuffer
	kill.Stderr = &kerr
	if err := kill.Start(); err != nil {
		t.Fatal(err)
	}
	tmp = waitForTemp(t, bdir, 120*time.Second, kerr.String)
	kill.Process.Kill()
	kill.Wait()
	if _, err := os.Stat(tmp); err != nil {
		t.Fatalf("SIGKILL did not leave %s: %v", tmp, err)
	}
	res := run(t, nil, append(args, "backup", "list", "--backup-dir", bdir)...)
	if !strings.Contains(res.stderr, "temporary file "+filepath.Base(tmp)) || !strings.Contains(res.stderr, "left by a killed run") {
		t.Fatalf("list does not show the leftover temporary file:\n%s", res.stderr)
	}
	// Younger than an hour it stays; once older, the next run removes it.
	fresh := filepath.Join(bdir, ".redis_20990101_000000.rdb.tmp-fresh")
	os.WriteFile(fresh, []byte("x"), 0o600)
	old := time.Now().Add(-2 * time.Hour)
	os.Chtimes(tmp, old, old)
	res = run(t, nil, append(args, "backup", "redis", "--backup-dir", bdir)...)
	if res.code != 0 || !strings.Contains(res.stderr, "removed temporary files of killed runs: "+filepath.Base(tmp)) {
		t.Fatalf("next run: exit %d\n%s", res.code, res.stderr)
	}
	if _, err := os.Stat(tmp); !os.IsNotExist(err) {
		t.Fatal("old temporary file not removed")
	}
	if _, err := os.Stat(fresh); err != nil {
		t.Fatal("a temporary file younger than an hour was removed")
	}
	if all, _ := backup.List(bdir); len(all) != 1 {
		t.Fatalf("backups after the clean run: %d", len(all))
	}
}
