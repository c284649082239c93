package backup

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

// The daemon runs at each scheduled time, logs a failed run and goes on,
// and stops when its context ends; it waits exactly until the next time.
func TestDaemonRunsOnScheduleUntilCancelled(t *testing.T) {
	sched, err := ParseCron("CRON_TZ=UTC */10 * * * *")
	if err != nil {
		t.Fatal(err)
	}
	clock := time.Date(2026, 11, 26, 3, 4, 0, 0, time.UTC)
	var waits []time.Duration
	after := func(d time.Duration) <-chan time.Time {
		waits = append(waits, d)
		clock = clock.Add(d)
		c := make(chan time.Time, 1)
		c <- clock
		return c
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	runs := 0
	run := func(context.Context) error {
		runs++
		if runs == 2 {
			return errors.New("no running Redis container")
		}
		if runs == 3 {
			cancel()
		}
		return nil
	}
	var log bytes.Buffer
	if err := Daemon(ctx, sched, run, &log, func() time.Time { return clock }, after); err != nil {
		t.Fatal(err)
	}
	if runs != 3 || len(waits) != 3 || waits[0] != 6*time.Minute || waits[1] != 10*time.Minute {
		t.Fatalf("runs %d waits %v", runs, waits)
	}
	for _, want := range []string{"2026-11-26T03:04:00Z next backup at 2026-11-26T03:10:00Z", "2026-11-26T03:20:00Z backup failed: no running Redis container", "next backup at 2026-11-26T03:30:00Z"} {
		if !strings.Contains(log.String(), want) {
			t.Fatalf("log lacks %q:\n%s", want, log.String())
		}
	}
}

// A cancelled context ends the wait at once, without a run.
func TestDaemonStopsWhileWaiting(t *testing.T) {
	sched, _ := ParseCron("0 3 * * *")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	ran := false
	if err := Daemon(ctx, sched, func(context.Context) error { ran = true; return nil }, nil, nil, nil); err != nil || ran {
		t.Fatalf("%v ran %v", err, ran)
	}
}

func TestCronEnvRecordsOnlyWhatIsSet(t *testing.T) {
	env := map[string]string{"DOCKER_HOST": "tcp://10.0.0.1:2376", "DOCKER_TLS_VERIFY": "1", "HOME": "/root"}
	got := CronEnv(func(k string) string { return env[k] })
	if strings.Join(got, " ") != "DOCKER_HOST=tcp://10.0.0.1:2376 DOCKER_TLS_VERIFY=1" {
		t.Fatalf("%v", got)
	}
}
