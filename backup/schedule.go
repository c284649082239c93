package backup

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"time"

	"github.com/mattn/go-shellwords"

	"github.com/difyctl/difyctl/internal/atomicfile"
)

// Schedule is the cron job that runs `difyctl backup redis`.
type Schedule struct {
	Cron       string   // five-field expression or descriptor, host local time
	Binary     string   // absolute path of difyctl as invoked (a symlink stays a symlink)
	ProjectDir string   // absolute
	Project    string   // compose project name
	BackupDir  string   // absolute
	Service    string   // compose service running Redis
	Retention  int      // days
	KeepMin    int      // newest backups never deleted
	Env        []string // NAME=value of the engine endpoint the installing shell uses
	What       string   // "redis" (backup redis, the default) or "all" (backup all: bundles)
}

// EngineEnv are the variables that choose the engine endpoint; the ones set
// in the installing shell are recorded in the entry (none holds a secret).
var EngineEnv = []string{"DOCKER_HOST", "DOCKER_CONTEXT", "DOCKER_CONFIG", "DOCKER_TLS_VERIFY", "DOCKER_CERT_PATH", "DOCKER_API_VERSION"}

// CronPATH is the PATH the job runs with (set in the command itself).
const CronPATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// cronDefaultPATH is the PATH cron(8) gives a job that sets none.
const cronDefaultPATH = "/usr/bin:/bin"

// CronDir is where root's entries go (a variable for tests).
var CronDir = "/etc/cron.d"

// marker is the comment line above the job; tag ends the job line (a shell
// comment, so cron and sh ignore it). Only lines carrying them are ours.
func marker(project string) string { return "# difyctl backup schedule for project " + project }
func tag(project string) string    { return "# difyctl-backup-job project=" + project }

// LogPath and StatusPath are the job's log and its outcome record, per
// project in the backup directory.
func LogPath(backupDir, project string) string {
	return filepath.Join(backupDir, "difyctl-backup-"+project+".log")
}

// StatusPath is the small JSON file each scheduled run updates.
func StatusPath(backupDir, project string) string {
	return filepath.Join(backupDir, "difyctl-backup-"+project+".status.json")
}

// LogFile is the schedule's log.
func (s Schedule) LogFile() string { return LogPath(s.BackupDir, s.Project) }

// shq quotes one word for /bin/sh: every word of the command goes through
// it, whatever it holds.
func shq(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// words is the command as an argument vector: /usr/bin/env sets PATH and
// the recorded engine variables, then difyctl by the path it was invoked
// with.
func (s Schedule) words() []string {
	w := []string{"/usr/bin/env", "PATH=" + CronPATH}
	w = append(w, s.Env...)
	if s.What == "all" {
		return append(w, s.Binary, "--project-dir", s.ProjectDir, "-p", s.Project, "backup", "all", "--quiet",
			"--scheduled", s.Cron, "--backup-dir", s.BackupDir,
			"--retention-days", fmt.Sprint(s.Retention), "--keep-min", fmt.Sprint(s.KeepMin))
	}
	return append(w, s.Binary, "--project-dir", s.ProjectDir, "-p", s.Project, "backup", "redis", "--quiet",
		"--scheduled", s.Cron, "--backup-dir", s.BackupDir, "--service", s.Service,
		"--retention-days", fmt.Sprint(s.Retention), "--keep-min", fmt.Sprint(s.KeepMin))
}

// Command is the shell command the job runs, every word quoted, output
// appended to the log. It is what /bin/sh gets after cron's `%` handling.
func (s Schedule) Command() (string, error) {
	var b strings.Builder
	for _, w := range append(s.words(), s.LogFile()) {
		if strings.ContainsAny(w, "\n\r\x00") {
			return "", fmt.Errorf("%q holds a line break: a cron entry is one line; rename it", w)
		}
		if strings.Contains(w, `\%`) {
			return "", fmt.Errorf(`%q holds \%%, which cron(8) cannot pass through; rename it`, w)
		}
	}
	for i, w := range s.words() {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(shq(w))
	}
	b.WriteString(" >>" + shq(s.LogFile()) + " 2>&1")
	return b.String(), nil
}

// cronEscape makes a command cron(8) passes to sh unchanged: cron turns an
// unescaped % into a newline and \% into %.
func cronEscape(cmd string) string { return strings.ReplaceAll(cmd, "%", `\%`) }

// Line is the entry's job line: as root with the user field for /etc/cron.d.
func (s Schedule) Line(root bool) (string, error) {
	if _, err := ParseCronForCron(s.Cron); err != nil {
		return "", err
	}
	if strings.ContainsAny(s.Project, " \t\n\r#") || s.Project == "" {
		return "", fmt.Errorf("project name %q cannot name a cron entry", s.Project)
	}
	cmd, err := s.Command()
	if err != nil {
		return "", err
	}
	user := ""
	if root {
		user = "root "
	}
	return s.Cron + " " + user + cronEscape(cmd) + " " + tag(s.Project), nil
}

// CronDFile is root's entry for a project.
func CronDFile(project string) string { return filepath.Join(CronDir, "difyctl-"+project) }

// Install writes the entry: into /etc/cron.d/difyctl-<project> when root,
// else into the user's crontab, replacing only lines of an earlier entry of
// this project and keeping every other line (MAILTO=, the operator's own
// jobs). It returns where it went and an undo that puts back what was
// there before.
func (s Schedule) Install(root bool) (where string, undo func() error, err error) {
	line, err := s.Line(root)
	if err != nil {
		return "", nil, err
	}
	block := []string{marker(s.Project), line}
	if root {
		path := CronDFile(s.Project)
		prev, err := os.ReadFile(path)
		existed := err == nil
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return "", nil, err
		}
		lines := append(withoutOwn(string(prev), s.Project), block...)
		// cron.d files must not be group/other writable; 0644 as cron expects, they hold no secret.
		if err := atomicfile.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
			return "", nil, err
		}
		return path, func() error {
			if !existed {
				return os.Remove(path)
			}
			return atomicfile.WriteFile(path, prev, 0o644)
		}, nil
	}
	cur, err := readCrontab()
	if err != nil {
		return "", nil, err
	}
	lines := append(withoutOwn(cur, s.Project), block...)
	if err := writeCrontab(strings.Join(lines, "\n") + "\n"); err != nil {
		return "", nil, err
	}
	return "user crontab", func() error { return writeCrontab(cur) }, nil
}

// ShowSchedule returns the project's lines of the installed entry, or "".
func ShowSchedule(project string, root bool) (string, error) {
	content, err := readEntry(project, root)
	if err != nil {
		return "", err
	}
	var own []string
	for _, l := range strings.Split(content, "\n") {
		if isOwn(l, project) {
			own = append(own, l)
		}
	}
	if len(own) == 0 {
		return "", nil
	}
	return strings.Join(own, "\n") + "\n", nil
}

// Installed reads back the project's installed job: its schedule, backup
// directory and the rest of its words (nil when none is installed). The
// words are parsed with go-shellwords after undoing cron's %-escape.
func Installed(project string, root bool) (*Schedule, error) {
	content, err := readEntry(project, root)
	if err != nil {
		return nil, err
	}
	for _, l := range strings.Split(content, "\n") {
		if !strings.HasSuffix(l, " "+tag(project)) {
			continue
		}
		i := strings.Index(l, " '/usr/bin/env'")
		j := strings.LastIndex(l, " >>")
		if i < 0 || j < i {
			continue
		}
		words, err := shellwords.Parse(strings.ReplaceAll(l[i:j], `\%`, "%"))
		if err != nil {
			return nil, fmt.Errorf("reading the installed job: %w", err)
		}
		s := &Schedule{Cron: strings.TrimSuffix(l[:i], " root"), Project: project}
		for k := 0; k+1 < len(words); k++ {
			switch words[k] {
			case "--backup-dir":
				s.BackupDir = words[k+1]
			case "--project-dir":
				s.ProjectDir = words[k+1]
			case "--service":
				s.Service = words[k+1]
			case "backup":
				s.What = words[k+1]
			}
		}
		return s, nil
	}
	return nil, nil
}

func readEntry(project string, root bool) (string, error) {
	if root {
		b, err := os.ReadFile(CronDFile(project))
		if errors.Is(err, fs.ErrNotExist) {
			return "", nil
		}
		return string(b), err
	}
	return readCrontab()
}

// RemoveSchedule deletes the project's lines, and the cron.d file when
// nothing else is left in it; it reports whether there were any.
func RemoveSchedule(project string, root bool) (bool, error) {
	content, err := readEntry(project, root)
	if err != nil {
		return false, err
	}
	rest := withoutOwn(content, project)
	if len(rest) == len(nonEmptyTail(content)) {
		return false, nil
	}
	if root {
		if strings.TrimSpace(strings.Join(rest, "\n")) == "" {
			return true, os.Remove(CronDFile(project))
		}
		return true, atomicfile.WriteFile(CronDFile(project), []byte(strings.Join(rest, "\n")+"\n"), 0o644)
	}
	return true, writeCrontab(strings.Join(rest, "\n") + "\n")
}

func nonEmptyTail(content string) []string {
	return withoutOwn(content, "\x00never a project")
}

// isOwn: the marker, or a job line carrying the tag.
func isOwn(line, project string) bool {
	return line == marker(project) || strings.HasSuffix(line, " "+tag(project))
}

// withoutOwn returns the lines that are not this project's: its marker and
// tagged job line go; so do the untagged job line an earlier difyctl wrote
// right after the marker (with its SHELL=/PATH= lines in cron.d), recognised
// by its `-p <project> backup redis`. Anything else stays, in order.
func withoutOwn(content, project string) []string {
	lines := strings.Split(strings.TrimRight(content, "\n"), "\n")
	var out []string
	for i := 0; i < len(lines); i++ {
		l := lines[i]
		if l == marker(project) {
			// A legacy entry: SHELL/PATH lines and the job, directly after the marker.
			j := i + 1
			for j < len(lines) && (lines[j] == "SHELL=/bin/sh" || lines[j] == "PATH="+CronPATH) {
				j++
			}
			if j < len(lines) && !strings.HasSuffix(lines[j], tag(project)) && strings.Contains(lines[j], " -p "+project+" backup redis ") {
				i = j
			}
			continue
		}
		if isOwn(l, project) {
			continue
		}
		if l != "" || len(out) > 0 {
			out = append(out, l)
		}
	}
	return out
}

func readCrontab() (string, error) {
	var out, errOut bytes.Buffer
	cmd := exec.Command("crontab", "-l")
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		if strings.Contains(errOut.String(), "no crontab") {
			return "", nil
		}
		if errors.Is(err, exec.ErrNotFound) {
			return "", errors.New("crontab not found: install cron, or run as root to use /etc/cron.d")
		}
		return "", fmt.Errorf("crontab -l: %v: %s", err, strings.TrimSpace(errOut.String()))
	}
	return out.String(), nil
}

func writeCrontab(content string) error {
	cmd := exec.Command("crontab", "-")
	cmd.Stdin = strings.NewReader(content)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("crontab -: %v: %s", err, strings.TrimSpace(string(out)))
	}
	return nil
}

// TestRun runs the job's command once as cron(8) would: /bin/sh -c with
// cron's environment only (SHELL, cron's PATH, HOME, LOGNAME), from /. It
// returns sh's exit code; the outcome is in the status file and the log.
func (s Schedule) TestRun(ctx context.Context) (int, error) {
	command, err := s.Command()
	if err != nil {
		return 0, err
	}
	home, logname := "/", "root"
	if u, err := user.Current(); err == nil {
		home, logname = u.HomeDir, u.Username
	}
	cmd := exec.CommandContext(ctx, "/bin/sh", "-c", command)
	cmd.Env = []string{"SHELL=/bin/sh", "PATH=" + cronDefaultPATH, "HOME=" + home, "LOGNAME=" + logname}
	cmd.Dir = "/"
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out // everything goes to the log; anything here is sh's own
	err = cmd.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode(), nil
	}
	if err != nil {
		return -1, fmt.Errorf("running the job: %w", err)
	}
	return 0, nil
}

// RunRecord is the outcome of one scheduled run.
type RunRecord struct {
	Time     time.Time `json:"time"`
	Result   string    `json:"result"` // ok, failed
	File     string    `json:"file,omitempty"`
	Error    string    `json:"error,omitempty"`
	ExitCode int       `json:"exitCode"`
	Duration string    `json:"duration,omitempty"`
}

// Status is what scheduled runs of a project record (StatusPath): the last
// attempt and the last success. Never a secret: errors are scrubbed of the
// password.
type Status struct {
	Project     string     `json:"project"`
	Schedule    string     `json:"schedule"` // the expression the runs follow
	LastAttempt *RunRecord `json:"lastAttempt,omitempty"`
	LastSuccess *RunRecord `json:"lastSuccess,omitempty"`
}

// ReadStatus reads a status file; a missing one is (nil, nil).
func ReadStatus(path string) (*Status, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var s Status
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("status file %s: %w", path, err)
	}
	return &s, nil
}

// RecordRun updates the status file with one run's outcome (atomically,
// 0600).
func RecordRun(path, project, schedule string, r RunRecord) error {
	s, err := ReadStatus(path)
	if err != nil || s == nil {
		s = &Status{}
	}
	s.Project, s.Schedule = project, schedule
	s.LastAttempt = &r
	if r.Result == "ok" {
		s.LastSuccess = &r
	}
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(path, append(b, '\n'), FileMode)
}

// Redact removes secret from a message.
func Redact(msg, secret string) string {
	if secret == "" {
		return msg
	}
	return strings.ReplaceAll(msg, secret, "***")
}

// Warning returns why the record is worrying at now, or "": no success
// recorded, or the last success older than two periods of the schedule.
func (s *Status) Warning(now time.Time) string {
	if s == nil {
		return ""
	}
	if s.LastSuccess == nil {
		if s.LastAttempt != nil {
			return "no scheduled run has succeeded yet"
		}
		return ""
	}
	c, err := ParseCron(s.Schedule)
	if err != nil {
		return ""
	}
	if c.Overdue(s.LastSuccess.Time, time.Time{}, now) {
		return fmt.Sprintf("the last successful backup (%s) is older than two periods of the schedule %q: scheduled runs are failing or not running",
			s.LastSuccess.Time.Local().Format(time.RFC3339), s.Schedule)
	}
	return ""
}
