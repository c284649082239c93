package backup

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// InstallResult says what installing a schedule did.
type InstallResult struct {
	Where   string     `json:"where"`
	Line    string     `json:"line"`
	LogFile string     `json:"logFile"`
	Status  string     `json:"statusFile"`
	Tested  bool       `json:"tested"`
	TestRun *RunRecord `json:"testRun,omitempty"`
	NextRun time.Time  `json:"nextRun"`
}

// InstallOptions says how to install a schedule.
type InstallOptions struct {
	Root        bool          // /etc/cron.d (root) or the user's crontab
	Test        bool          // run the job once as cron runs it; undo the install when that fails
	TestTimeout time.Duration // bound on the test run
	Now         time.Time     // for the next run
	Notify      io.Writer     // where the test run is announced
}

// InstallTested writes the entry after creating the backup directory and
// the job's log (the job appends to it before difyctl starts) and, with
// o.Test, runs it once as cron would; a failed test run puts back what was
// there and says so in its error.
func (s Schedule) InstallTested(ctx context.Context, o InstallOptions) (InstallResult, error) {
	line, err := s.Line(o.Root)
	if err != nil {
		return InstallResult{}, err
	}
	if err := os.MkdirAll(s.BackupDir, DirMode); err != nil {
		return InstallResult{}, fmt.Errorf("creating the backup directory: %w", err)
	}
	lf, err := os.OpenFile(s.LogFile(), os.O_CREATE|os.O_APPEND|os.O_WRONLY, FileMode)
	if err != nil {
		return InstallResult{}, fmt.Errorf("creating the job's log: %w", err)
	}
	lf.Close()
	where, undo, err := s.Install(o.Root)
	if err != nil {
		return InstallResult{}, err
	}
	sched, _ := ParseCronForCron(s.Cron)
	res := InstallResult{Where: where, Line: line, LogFile: s.LogFile(), Status: StatusPath(s.BackupDir, s.Project), NextRun: sched.Next(o.Now)}
	if !o.Test {
		return res, nil
	}
	res.Tested = true
	if o.Notify != nil {
		fmt.Fprintf(o.Notify, "test run of the job as cron runs it (env -i, PATH=/usr/bin:/bin, cwd /)...\n")
	}
	rec, err := s.testRun(ctx, o.TestTimeout)
	res.TestRun = rec
	if err != nil {
		if uerr := undo(); uerr != nil {
			return res, fmt.Errorf("%w; putting back the previous entry ALSO failed: %v (check %s)", err, uerr, where)
		}
		return res, fmt.Errorf("%w; nothing installed (any previous entry is back). Fix that, or pass --no-test to install anyway", err)
	}
	return res, nil
}

// testRun runs the installed command once and reads its outcome from the
// status file (or, when difyctl never got to write it, the log's end).
func (s Schedule) testRun(ctx context.Context, timeout time.Duration) (*RunRecord, error) {
	statusPath := StatusPath(s.BackupDir, s.Project)
	before, _ := ReadStatus(statusPath)
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	code, err := s.TestRun(ctx)
	if err != nil {
		return nil, err
	}
	after, _ := ReadStatus(statusPath)
	var rec *RunRecord
	if after != nil && after.LastAttempt != nil && (before == nil || before.LastAttempt == nil || !after.LastAttempt.Time.Equal(before.LastAttempt.Time)) {
		rec = after.LastAttempt
	}
	switch {
	case rec == nil:
		return nil, fmt.Errorf("the job's test run exited %d before difyctl recorded anything; the end of its log %s: %s", code, s.LogFile(), logTail(s.LogFile()))
	case rec.Result != "ok" || code != 0:
		return rec, fmt.Errorf("the job's test run failed (exit %d): %s", code, rec.Error)
	}
	return rec, nil
}

func logTail(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	s := strings.TrimSpace(string(b))
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		s = s[i+1:]
	}
	if s == "" {
		return "(empty)"
	}
	return s
}

// InvokedBinary is difyctl's path as it was invoked (arg0), made absolute
// but not resolved: a symlink (say /usr/local/bin/difyctl -> difyctl-1.2)
// stays, so replacing it upgrades the job too.
func InvokedBinary(arg0 string) (string, error) {
	if !strings.ContainsRune(arg0, os.PathSeparator) {
		p, err := exec.LookPath(arg0)
		if err != nil {
			return os.Executable()
		}
		arg0 = p
	}
	return filepath.Abs(arg0)
}
