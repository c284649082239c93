package backup

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/difyctl/difyctl/internal/atomicfile"
)

// Schedule is the cron job that runs `difyctl backup redis`.
type Schedule struct {
	Cron       string // five-field expression
	Binary     string // absolute path of difyctl
	ProjectDir string
	Project    string
	BackupArgs []string // extra flags for `backup redis` (already quoted if needed)
	LogFile    string
}

// CronDir is where root's entries go (a variable for tests).
var CronDir = "/etc/cron.d"

func marker(project string) string { return "# difyctl backup schedule for project " + project }

// Command is the shell command cron runs: absolute paths, --quiet, output
// appended to the log file.
func (s Schedule) Command() string {
	args := []string{shq(s.Binary), "--project-dir", shq(s.ProjectDir), "-p", shq(s.Project), "backup", "redis", "--quiet"}
	args = append(args, s.BackupArgs...)
	return strings.Join(args, " ") + " >>" + shq(s.LogFile) + " 2>&1"
}

// shq quotes a word for /bin/sh when it needs it.
func shq(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789/._-=:,+@") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// CronDFile is root's entry for a project.
func CronDFile(project string) string { return filepath.Join(CronDir, "difyctl-"+project) }

// Install writes the entry: /etc/cron.d/difyctl-<project> when root, else a
// marked line in the user's crontab (replacing an earlier one). It returns
// where it went.
func (s Schedule) Install(root bool) (string, error) {
	if _, err := ParseCron(s.Cron); err != nil {
		return "", err
	}
	if root {
		body := fmt.Sprintf("%s\nSHELL=/bin/sh\nPATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n%s root %s\n", marker(s.Project), s.Cron, s.Command())
		// cron.d files must not be group/other writable; 0644 as cron expects, they hold no secret.
		if err := atomicfile.WriteFile(CronDFile(s.Project), []byte(body), 0o644); err != nil {
			return "", err
		}
		return CronDFile(s.Project), nil
	}
	cur, err := readCrontab()
	if err != nil {
		return "", err
	}
	lines := withoutEntry(cur, s.Project)
	lines = append(lines, marker(s.Project), s.Cron+" "+s.Command())
	if err := writeCrontab(strings.Join(lines, "\n") + "\n"); err != nil {
		return "", err
	}
	return "user crontab", nil
}

// ShowSchedule returns the installed entry for a project, or "".
func ShowSchedule(project string, root bool) (string, error) {
	if root {
		b, err := os.ReadFile(CronDFile(project))
		if errors.Is(err, fs.ErrNotExist) {
			return "", nil
		}
		return string(b), err
	}
	cur, err := readCrontab()
	if err != nil {
		return "", err
	}
	lines := strings.Split(cur, "\n")
	for i, l := range lines {
		if l == marker(project) && i+1 < len(lines) {
			return l + "\n" + lines[i+1] + "\n", nil
		}
	}
	return "", nil
}

// RemoveSchedule deletes the entry; it reports whether there was one.
func RemoveSchedule(project string, root bool) (bool, error) {
	if root {
		err := os.Remove(CronDFile(project))
		if errors.Is(err, fs.ErrNotExist) {
			return false, nil
		}
		return err == nil, err
	}
	cur, err := readCrontab()
	if err != nil {
		return false, err
	}
	lines := withoutEntry(cur, project)
	if len(lines) == len(strings.Split(strings.TrimRight(cur, "\n"), "\n")) {
		return false, nil
	}
	return true, writeCrontab(strings.Join(lines, "\n") + "\n")
}

func withoutEntry(crontab, project string) []string {
	var out []string
	lines := strings.Split(strings.TrimRight(crontab, "\n"), "\n")
	for i := 0; i < len(lines); i++ {
		if lines[i] == marker(project) {
			i++ // and the job line after it
			continue
		}
		if lines[i] != "" || len(out) > 0 {
			out = append(out, lines[i])
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
