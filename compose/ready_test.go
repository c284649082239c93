package compose

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"

	"github.com/difyctl/difyctl/health"
	"github.com/difyctl/difyctl/internal/engine/enginefake"
)

const slowProbe = `
services:
  api:
    image: app:1
    restart: always
    user: dify
    healthcheck: {test: ["CMD-SHELL", "curl -f http://localhost:5001/health"], interval: 30s, timeout: 3s, retries: 3}
  web:
    image: app:1
    restart: always
    depends_on:
      api: {condition: service_healthy}
`

// readyAfter answers probes: failing n times, then passing.
func readyAfter(n int32) (func([]string, string) enginefake.ExecResult, *atomic.Int32) {
	var calls atomic.Int32
	return func([]string, string) enginefake.ExecResult {
		if calls.Add(1) <= n {
			return enginefake.ExecResult{Exit: 7, Output: "curl: (7) Failed to connect"}
		}
		return enginefake.ExecResult{Exit: 0, Output: "ok"}
	}, &calls
}

// A service whose engine probe is 30 s away gates its dependent as soon as
// difyctl's own probe passes; the events say which probe ran and how it
// ended.
func TestUpEarlyProbeGatesDependent(t *testing.T) {
	e := fakeEngine()
	exec, calls := readyAfter(2)
	e.Behave("api", enginefake.Behaviour{Exec: exec})
	res, ev, err := up(t, e, project(t, slowProbe), func(o *UpOptions) { o.ProbeInterval = 5 * time.Millisecond })
	if err != nil {
		t.Fatal(err)
	}
	if !ev.has("api", StateProbe, "difyctl probe 1: failed (exit 7)") || !ev.has("api", StateProbe, "difyctl probe 3: passed") ||
		!ev.has("api", StateHealthy, "difyctl's probe passed") || !ev.has("web", StateHealthy, "") {
		t.Fatalf("events %+v", ev.all)
	}
	if calls.Load() != 3 {
		t.Fatalf("%d probes", calls.Load())
	}
	x := e.Execs("p-api-1")[0]
	if !slices.Equal(x.Cmd, []string{"/bin/sh", "-c", "curl -f http://localhost:5001/health"}) || x.User != "dify" {
		t.Fatalf("probe exec %+v", x)
	}
	if res.Plan[0].Outcome != OutcomeCreated {
		t.Fatalf("plan %+v", res.Plan)
	}
}

// --probe-interval 0: the engine's status gates, as compose; no exec.
func TestUpProbesOff(t *testing.T) {
	e := fakeEngine()
	exec, calls := readyAfter(0)
	e.Behave("api", enginefake.Behaviour{Exec: exec})
	done := make(chan error, 1)
	var ev *events
	go func() {
		var err error
		_, ev, err = up(t, e, project(t, slowProbe), func(o *UpOptions) { o.ProbeInterval = health.ProbesOff })
		done <- err
	}()
	deadline := time.Now().Add(5 * time.Second)
	for e.Container("p-api-1") == nil || e.Container("p-api-1").Status != container.StateRunning {
		if time.Now().After(deadline) {
			t.Fatal("api never started")
		}
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(50 * time.Millisecond)
	if c := e.Container("p-web-1"); c.Status != container.StateCreated {
		t.Fatalf("web %s before the engine said api was healthy", c.Status)
	}
	e.EngineProbe("p-api-1", 0, container.Healthy)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if calls.Load() != 0 || ev.has("api", StateProbe, "") {
		t.Fatalf("difyctl probed %d times with probes off", calls.Load())
	}
}

// API 1.44 and later: the container gets difyctl's start_interval (the
// compose file has none), the config hash stays what it is on 1.41, and a
// start_interval from the file is kept.
func TestUpStartIntervalOnNewEngines(t *testing.T) {
	hashOf := func(api, yaml string) (string, *container.HealthConfig) {
		e := fakeEngine()
		e.SetAPIVersion(api)
		e.Behave("api", enginefake.Behaviour{Health: "healthy"})
		if _, _, err := up(t, e, project(t, yaml)); err != nil {
			t.Fatal(err)
		}
		c := e.Container("p-api-1")
		return c.Config.Labels["com.docker.compose.config-hash"], c.Config.Healthcheck
	}
	old, hcOld := hashOf("1.41", slowProbe)
	h, hcNew := hashOf("1.44", slowProbe)
	if h != old || h == "" {
		t.Fatalf("config hash %s on 1.44, %s on 1.41", h, old)
	}
	if hcOld.StartInterval != 0 || hcNew.StartInterval != health.DefaultProbeInterval || hcNew.Interval != 30*time.Second {
		t.Fatalf("healthchecks: 1.41 %+v, 1.44 %+v", hcOld, hcNew)
	}
	_, hcFile := hashOf("1.45", strings.Replace(slowProbe, "retries: 3}", "retries: 3, start_period: 60s, start_interval: 2s}", 1))
	if hcFile.StartInterval != 2*time.Second {
		t.Fatalf("the file's start_interval: %+v", hcFile)
	}
}

const crashing = `
services:
  api:
    image: app:1
    restart: always
    command: ["flask", "run"]
    healthcheck: {test: ["CMD", "probe"]}
  web:
    image: app:1
    depends_on:
      api: {condition: service_healthy}
`

// A restart: always service whose command is missing fails up fast, with
// the exit code, what it means and its last log lines; the restarts are
// reported as they happen.
func TestUpCrashLoop(t *testing.T) {
	e := fakeEngine()
	e.Behave("api", enginefake.Behaviour{Exit: enginefake.Exit(127), Restarts: true, Logs: "exec: \"flask\": executable file not found in $PATH\n"})
	res, ev, err := up(t, e, project(t, crashing), func(o *UpOptions) { o.WaitTimeout = time.Minute })
	var fe *FailedError
	if !errors.As(err, &fe) || len(fe.Failures) != 1 {
		t.Fatalf("error %v", err)
	}
	f := fe.Failures[0]
	for _, want := range []string{"crash loop", "exited with code 127", "command not found", "restarted 3 times"} {
		if !strings.Contains(f.Reason, want) {
			t.Errorf("reason %q lacks %q", f.Reason, want)
		}
	}
	if len(f.Logs) != 1 || !strings.Contains(f.Logs[0], "executable file not found") {
		t.Fatalf("logs %q", f.Logs)
	}
	if !ev.has("api", StateRestarted, ": exited with code 127 (command not found") || !ev.has("web", StateSkipped, "dependency api failed") {
		t.Fatalf("events %+v", ev.all)
	}
	if res.Plan[0].Outcome != OutcomeFailed {
		t.Fatalf("plan %+v", res.Plan)
	}
	// The engine keeps restarting it; the test leaves no goroutine behind.
	e.ContainerStop(context.Background(), "p-api-1", client.ContainerStopOptions{})
}

// up over a stop in flight (asked by a restore that was killed): the
// container is not reported up while the stop is carried out, and once it
// exited 0 it is started again, not reported as exited.
func TestUpConvergesOverStopInFlight(t *testing.T) {
	e := fakeEngine()
	healthyTwoTier(e)
	p := project(t, twoTier)
	if _, _, err := up(t, e, p); err != nil {
		t.Fatal(err)
	}
	e.BeginStop("p-db-1")
	done := make(chan error, 1)
	var ev *events
	go func() {
		var err error
		_, ev, err = up(t, e, p)
		done <- err
	}()
	select {
	case err := <-done:
		t.Fatalf("up returned while db's stop was being carried out: %v", err)
	case <-time.After(100 * time.Millisecond):
	}
	before := e.Container("p-db-1").StartCount
	e.FinishStop("p-db-1")
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	c := e.Container("p-db-1")
	if c.Status != container.StateRunning || c.StartCount != before+1 {
		t.Fatalf("db %s, started %d times (before %d)", c.Status, c.StartCount, before)
	}
	if !ev.has("db", StateStopping, "still being carried out") || !ev.has("db", StateStarting, "starting it again") || !ev.has("db", StateHealthy, "") {
		t.Fatalf("events %+v", ev.all)
	}
}

// start waits out a stop in flight the same way.
func TestStartConvergesOverStopInFlight(t *testing.T) {
	e := fakeEngine()
	healthyTwoTier(e)
	p := project(t, twoTier)
	if _, _, err := up(t, e, p); err != nil {
		t.Fatal(err)
	}
	cs, err := List(context.Background(), e, "p", true)
	if err != nil {
		t.Fatal(err)
	}
	e.BeginStop("p-db-1")
	done := make(chan error, 1)
	go func() {
		done <- StartWith(context.Background(), e, cs, nil, StartOptions{ProbeInterval: health.ProbesOff})
	}()
	select {
	case err := <-done:
		t.Fatalf("start returned while db's stop was being carried out: %v", err)
	case <-time.After(100 * time.Millisecond):
	}
	e.FinishStop("p-db-1")
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if c := e.Container("p-db-1"); c.Status != container.StateRunning {
		t.Fatalf("db %s", c.Status)
	}
}
