package backupcmd

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/difyctl/difyctl/backup"
	"github.com/difyctl/difyctl/internal/cmdutil"
	"github.com/difyctl/difyctl/internal/iostreams"
)

// ScheduleOptions for `backup schedule install`.
type ScheduleOptions struct {
	IO       *iostreams.IOStreams
	JSON     bool
	Schedule backup.Schedule
	Root     bool
	NoTest   bool
	Timeout  time.Duration // bound on the test run
	// CheckProject reports why the project cannot be backed up now (no
	// running Redis), or nil; used with --no-test to warn.
	CheckProject func(ctx context.Context) error
	Now          func() time.Time
}

// InstallResult says what install did.
type InstallResult = backup.InstallResult

// NewCmdSchedule returns `backup schedule install|show|remove`; runF, when
// not nil, runs instead of Install (tests check the flag mapping through
// it).
func NewCmdSchedule(f *cmdutil.Factory, runF func(context.Context, *ScheduleOptions) error) *cobra.Command {
	var c Common
	var expr string
	opts := &ScheduleOptions{IO: f.IOStreams, Root: os.Geteuid() == 0, Now: time.Now}
	cmd := &cobra.Command{Use: "schedule install|show|remove", Short: "Run `backup redis` from cron"}
	install := &cobra.Command{
		Use:   "install [--cron EXPR] [--no-test]",
		Short: "Install the cron entry (/etc/cron.d/difyctl-<project> as root, else your crontab) and test it",
		Long: `Install a cron job that runs ` + "`difyctl backup redis`" + ` for the project, then run
that exact command once as cron runs it (empty environment but cron's, PATH
/usr/bin:/bin, from /) and report the result; if that test run fails, the
previous entry is put back and the command exits 1 (--no-test skips it).

The backup directory and the job's log (difyctl-backup-<project>.log in it)
are created 0700/0600 first. Each run records its outcome in
difyctl-backup-<project>.status.json beside the log. DOCKER_HOST,
DOCKER_CONTEXT (and DOCKER_CONFIG, DOCKER_TLS_VERIFY, DOCKER_CERT_PATH) of
this shell are carried into the entry. Lines of the entry file that are not
this project's job (MAILTO=, your own jobs) are kept.`,
		Args: cmdutil.Args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := backup.ValidateRetention(opts.Schedule.Retention, opts.Schedule.KeepMin); err != nil {
				return cmdutil.WithExitCode(cmdutil.ExitUsage, err)
			}
			if _, err := backup.ParseCronForCron(expr); err != nil {
				return cmdutil.WithExitCode(cmdutil.ExitUsage, err)
			}
			dir, project, bdir, _, err := c.Target(f)
			if err != nil {
				return err
			}
			bin, err := backup.InvokedBinary(os.Args[0])
			if err != nil {
				return err
			}
			s := &opts.Schedule
			s.Cron, s.Binary, s.ProjectDir, s.Project, s.BackupDir, s.Service = strings.TrimSpace(expr), bin, dir, project, bdir, c.Service
			s.Env = backup.CronEnv(f.Getenv)
			opts.JSON = f.JSON()
			opts.CheckProject = func(ctx context.Context) error {
				eng, err := NewEngine(f)
				if err != nil {
					return err
				}
				defer eng.Close()
				_, err = backup.FindRedis(ctx, eng.Engine, project, c.Service, "")
				return err
			}
			if err := scheduleWhat(f, opts, &c, dir, project); err != nil {
				return err
			}
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return Install(cmd.Context(), opts)
		},
	}
	c.Flags(install)
	install.Flags().StringVar(&expr, "cron", "0 3 * * *", "when to run: cron expression in the host's local time (5 fields, names such as MON, or @daily)")
	install.Flags().IntVar(&opts.Schedule.Retention, "retention-days", 7, "passed to backup redis")
	install.Flags().IntVar(&opts.Schedule.KeepMin, "keep-min", 3, "passed to backup redis")
	install.Flags().BoolVar(&opts.NoTest, "no-test", false, "do not run the job once after installing it")
	install.Flags().StringVar(&opts.Schedule.What, "what", "redis", "what the job backs up: redis (backup redis) or all (backup all: whole-deployment bundles)")
	install.Flags().DurationVar(&opts.Timeout, "test-timeout", 31*time.Minute, "bound on the test run")

	var showDir Common
	show := &cobra.Command{
		Use: "show", Short: "Print the installed entry, the last attempt and the last success", Args: cmdutil.Args(cobra.NoArgs),
		RunE: func(*cobra.Command, []string) error {
			_, project, bdir, _, err := showDir.Target(f)
			if err != nil {
				return err
			}
			if showDir.BackupDir == "" { // the installed job's directory
				if in, err := backup.Installed(project, opts.Root); err == nil && in != nil && in.BackupDir != "" {
					bdir = in.BackupDir
				}
			}
			return Show(&ShowOptions{IO: f.IOStreams, JSON: f.JSON(), Project: project, BackupDir: bdir, Root: opts.Root, Now: time.Now()})
		},
	}
	showDir.Flags(show)
	remove := &cobra.Command{
		Use: "remove", Short: "Remove the project's job (other lines of the entry stay)", Args: cmdutil.Args(cobra.NoArgs),
		RunE: func(*cobra.Command, []string) error {
			_, project, err := f.Project()
			if err != nil {
				return err
			}
			ok, err := backup.RemoveSchedule(project, opts.Root)
			if err != nil {
				return err
			}
			if !ok {
				fmt.Fprintf(opts.IO.ErrOut, "no backup schedule installed for project %s\n", project)
				return nil
			}
			fmt.Fprintf(opts.IO.ErrOut, "removed the backup schedule of project %s\n", project)
			return nil
		},
	}
	cmd.AddCommand(install, show, remove)
	return cmd
}

// Install writes the entry and, unless NoTest, runs it once as cron would;
// a failed test run puts back what was there and exits 1.
func Install(ctx context.Context, opts *ScheduleOptions) error {
	s := opts.Schedule
	if _, err := s.Line(opts.Root); err != nil {
		return cmdutil.WithExitCode(cmdutil.ExitUsage, err)
	}
	res, err := s.InstallTested(ctx, backup.InstallOptions{Root: opts.Root, Test: !opts.NoTest, TestTimeout: opts.Timeout, Now: opts.Now(), Notify: opts.IO.ErrOut})
	if err != nil {
		return cmdutil.WithExitCode(cmdutil.ExitFailure, err)
	}
	if opts.NoTest && opts.CheckProject != nil {
		cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		if err := opts.CheckProject(cctx); err != nil {
			fmt.Fprintf(opts.IO.ErrOut, "WARNING: the job will fail as things stand: %v\n", err)
		}
		cancel()
	}
	if opts.JSON {
		return cmdutil.WriteJSON(opts.IO.Out, res)
	}
	fmt.Fprintf(opts.IO.Out, "installed in %s:\n  %s\n", res.Where, res.Line)
	if res.TestRun != nil {
		fmt.Fprintf(opts.IO.Out, "test run: ok, %s (%s)\n", res.TestRun.File, res.TestRun.Duration)
	}
	fmt.Fprintf(opts.IO.Out, "log: %s\nstatus: %s\nnext run: %s\n", res.LogFile, res.Status, res.NextRun.Format(time.RFC3339))
	return nil
}

// ShowOptions for `backup schedule show`.
type ShowOptions struct {
	IO        *iostreams.IOStreams
	JSON      bool
	Project   string
	BackupDir string
	Root      bool
	Now       time.Time
}

// Show prints the installed entry and the record of its runs.
func Show(opts *ShowOptions) error {
	entry, err := backup.ShowSchedule(opts.Project, opts.Root)
	if err != nil {
		return err
	}
	if entry == "" {
		return cmdutil.WithExitCode(cmdutil.ExitFailure, fmt.Errorf("no backup schedule installed for project %s", opts.Project))
	}
	statusPath := backup.StatusPath(opts.BackupDir, opts.Project)
	st, err := backup.ReadStatus(statusPath)
	if err != nil {
		return err
	}
	warning := st.Warning(opts.Now)
	if opts.JSON {
		return cmdutil.WriteJSON(opts.IO.Out, struct {
			Entry      string         `json:"entry"`
			StatusFile string         `json:"statusFile"`
			Status     *backup.Status `json:"status"`
			Warning    string         `json:"warning,omitempty"`
		}{entry, statusPath, st, warning})
	}
	fmt.Fprint(opts.IO.Out, entry)
	if st == nil {
		fmt.Fprintf(opts.IO.Out, "no run recorded yet (%s)\n", statusPath)
		return nil
	}
	printStatus(opts.IO.Out, st, "")
	if warning != "" {
		fmt.Fprintf(opts.IO.ErrOut, "WARNING: %s\n", warning)
	}
	return nil
}
