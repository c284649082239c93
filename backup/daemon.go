package backup

import (
	"context"
	"fmt"
	"io"
	"time"
)

// Daemon runs run at each time sched names until ctx ends. A failed run is
// logged on log and the daemon waits for the next one. Times are printed in
// the schedule's zone; a nil log prints nothing. now is the clock (nil:
// time.Now); after waits for a duration (nil: a timer).
func Daemon(ctx context.Context, sched *Cron, run func(context.Context) error, log io.Writer, now func() time.Time, after func(time.Duration) <-chan time.Time) error {
	if now == nil {
		now = time.Now
	}
	if log == nil {
		log = io.Discard
	}
	loc := sched.Location()
	stamp := func() string { return now().In(loc).Format(time.RFC3339) }
	for {
		next := sched.Next(now())
		if next.IsZero() { // ParseCron refuses these; the horizon moved on
			return &NeverMatchesError{Expr: sched.String()}
		}
		fmt.Fprintf(log, "%s next backup at %s\n", stamp(), next.In(loc).Format(time.RFC3339))
		if !wait(ctx, next.Sub(now()), after) {
			return nil
		}
		if err := run(ctx); err != nil {
			fmt.Fprintf(log, "%s backup failed: %v\n", stamp(), err)
		}
		if ctx.Err() != nil {
			return nil
		}
	}
}

// wait waits d (through after when set) and reports false when ctx ended
// first.
func wait(ctx context.Context, d time.Duration, after func(time.Duration) <-chan time.Time) bool {
	var c <-chan time.Time
	if after != nil {
		c = after(d)
	} else {
		t := time.NewTimer(d)
		defer t.Stop()
		c = t.C
	}
	select {
	case <-ctx.Done():
		return false
	case <-c:
		return true
	}
}

// NeverMatchesError is a schedule with no next time.
type NeverMatchesError struct{ Expr string }

func (e *NeverMatchesError) Error() string {
	return fmt.Sprintf("cron expression %q matches no time in the next five years", e.Expr)
}

// CronEnv returns NAME=value for each variable of EngineEnv set in the
// installing shell: the cron entry carries them.
func CronEnv(getenv func(string) string) []string {
	var env []string
	for _, k := range EngineEnv {
		if v := getenv(k); v != "" {
			env = append(env, k+"="+v)
		}
	}
	return env
}
