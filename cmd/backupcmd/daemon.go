package backupcmd

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/difyctl/difyctl/backup"
	"github.com/difyctl/difyctl/internal/cmdutil"
)

func newDaemonCmd(f *cmdutil.Factory) *cobra.Command {
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
			return Daemon(cmd.Context(), sched, opts)
		},
	}
	opts.flags(cmd, &c)
	cmd.Flags().StringVar(&expr, "cron", "0 3 * * *", "when to run (cron expression; CRON_TZ=Zone first to name a zone)")
	return cmd
}

// Daemon runs a backup at each time sched names until ctx ends. A failed
// run is logged and the daemon waits for the next one. Times are printed in
// the schedule's zone.
func Daemon(ctx context.Context, sched *backup.Cron, opts *RedisOptions) error {
	loc := sched.Location()
	stamp := func() string { return time.Now().In(loc).Format(time.RFC3339) }
	for {
		next := sched.Next(time.Now())
		if next.IsZero() { // ParseCron refuses these; the horizon moved on
			return cmdutil.WithExitCode(cmdutil.ExitUsage, fmt.Errorf("cron expression %q matches no time in the next five years", sched))
		}
		if !opts.Quiet {
			fmt.Fprintf(opts.IO.ErrOut, "%s next backup at %s\n", stamp(), next.In(loc).Format(time.RFC3339))
		}
		timer := time.NewTimer(time.Until(next))
		select {
		case <-ctx.Done():
			timer.Stop()
			return nil
		case <-timer.C:
		}
		if err := RunRedis(ctx, opts); err != nil && !opts.Quiet {
			fmt.Fprintf(opts.IO.ErrOut, "%s backup failed: %v\n", stamp(), err)
		}
		if ctx.Err() != nil {
			return nil
		}
	}
}
