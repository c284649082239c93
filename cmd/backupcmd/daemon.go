package backupcmd

import (
	"context"
	"errors"
	"io"

	"github.com/spf13/cobra"

	"github.com/difyctl/difyctl/backup"
	"github.com/difyctl/difyctl/internal/cmdutil"
)

// NewCmdDaemon returns `backup daemon`; runF, when not nil, runs instead of
// Daemon (tests check the flag mapping through it).
func NewCmdDaemon(f *cmdutil.Factory, runF func(context.Context, *backup.Cron, *RedisOptions) error) *cobra.Command {
	var c Common
	var expr string
	opts := &RedisOptions{IO: f.IOStreams}
	cmd := &cobra.Command{
		Use:   "daemon --cron EXPR",
		Short: "Run `backup redis` on a schedule in the foreground (for difyctl in a container)",
		Long: `Run ` + "`backup redis`" + ` at each time the cron expression names, until SIGTERM or
Ctrl-C. The expression is read by robfig/cron v3 in the local time zone, or
in the zone a leading CRON_TZ=Zone names; every time the daemon prints is in
that one zone. Daylight-saving time: a time that does not exist on the
spring-forward day (02:30 in most of Europe and America) is skipped that
day, and a time that occurs twice on the fall-back day runs twice; use
CRON_TZ=UTC, or a time outside 01:00-03:00, to avoid both. An expression that
never matches (31 February) is refused (exit 2). Each run's outcome is
recorded in the status file as for a cron job.`,
		Args: cmdutil.Args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			sched, err := backup.ParseCron(expr)
			if err != nil {
				return cmdutil.WithExitCode(cmdutil.ExitUsage, err)
			}
			if err := opts.fill(f, &c); err != nil {
				return err
			}
			opts.Scheduled = sched.String()
			if runF != nil {
				return runF(cmd.Context(), sched, opts)
			}
			return Daemon(cmd.Context(), sched, opts)
		},
	}
	opts.flags(cmd, &c)
	cronFlag(cmd, &expr)
	cmd.AddCommand(NewCmdDaemonAll(f, nil))
	return cmd
}

func cronFlag(cmd *cobra.Command, expr *string) {
	cmd.Flags().StringVar(expr, "cron", "0 3 * * *", "when to run (cron expression; CRON_TZ=Zone first to name a zone)")
}

// NewCmdDaemonAll returns `backup daemon all`: `backup all` (its flags, its
// options) run at each time --cron names. runF, when not nil, runs instead
// of DaemonAll.
func NewCmdDaemonAll(f *cmdutil.Factory, runF func(context.Context, *backup.Cron, *AllOptions) error) *cobra.Command {
	var expr string
	var sched *backup.Cron
	cmd := NewCmdAll(f, func(ctx context.Context, opts *AllOptions) error {
		if opts.Stream {
			return cmdutil.UsageError("--output -: the daemon keeps its bundles in --backup-dir; stream one with backup all --output -")
		}
		opts.Scheduled = sched.String()
		if runF != nil {
			return runF(ctx, sched, opts)
		}
		return DaemonAll(ctx, sched, opts)
	})
	cmd.Use = "all --cron EXPR"
	cmd.Short = "Run `backup all` on a schedule in the foreground (for difyctl in a container)"
	cmd.Long = `Take a whole-deployment bundle (backup all, with the same flags) at each time
the cron expression names, until SIGTERM or Ctrl-C; the schedule is read as
for "backup daemon". Each run's outcome is recorded in the bundle directory's
status file (backup all list shows it); a failed run is never counted and
prunes nothing; the next one runs at its time.`
	cmd.PreRunE = func(*cobra.Command, []string) error {
		var err error
		if sched, err = backup.ParseCron(expr); err != nil {
			return cmdutil.WithExitCode(cmdutil.ExitUsage, err)
		}
		return nil
	}
	cronFlag(cmd, &expr)
	return cmd
}

// DaemonAll takes a bundle at each time sched names until ctx ends.
func DaemonAll(ctx context.Context, sched *backup.Cron, opts *AllOptions) error {
	return daemon(ctx, sched, opts.Quiet, opts.IO.ErrOut, func(ctx context.Context) error { return RunAll(ctx, opts) })
}

// Daemon runs a backup at each time sched names until ctx ends
// (backup.Daemon); a failed run is logged unless quiet.
func Daemon(ctx context.Context, sched *backup.Cron, opts *RedisOptions) error {
	return daemon(ctx, sched, opts.Quiet, opts.IO.ErrOut, func(ctx context.Context) error { return RunRedis(ctx, opts) })
}

func daemon(ctx context.Context, sched *backup.Cron, quiet bool, errOut io.Writer, run func(context.Context) error) error {
	var log io.Writer
	if !quiet {
		log = errOut
	}
	err := backup.Daemon(ctx, sched, run, log, nil, nil)
	var never *backup.NeverMatchesError
	if errors.As(err, &never) {
		return cmdutil.WithExitCode(cmdutil.ExitUsage, err)
	}
	return err
}
