package health

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"

	"github.com/difyctl/difyctl/internal/engine/enginefake"
)

// started makes and starts a container of service with cfg's healthcheck,
// user and the like.
func started(t *testing.T, e *enginefake.Engine, service string, cfg container.Config, host container.HostConfig) string {
	t.Helper()
	e.AddImage("img", enginefake.Image{ID: "sha256:img"})
	cfg.Image = "img"
	cfg.Labels = map[string]string{"com.docker.compose.service": service}
	res, err := e.ContainerCreate(context.Background(), client.ContainerCreateOptions{Name: "p-" + service + "-1", Config: &cfg, HostConfig: &host})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.ContainerStart(context.Background(), res.ID, client.ContainerStartOptions{}); err != nil {
		t.Fatal(err)
	}
	return res.ID
}

// passesAfter answers probes: failing n times, then passing.
func passesAfter(n int32, delay time.Duration) (func([]string, string) enginefake.ExecResult, *atomic.Int32) {
	var calls atomic.Int32
	return func([]string, string) enginefake.ExecResult {
		if calls.Add(1) <= n {
			return enginefake.ExecResult{Exit: 1, Output: "probe: not healthy yet\n", Delay: delay}
		}
		return enginefake.ExecResult{Exit: 0, Output: "probe: ok\n", Delay: delay}
	}, &calls
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// difyctl's first passing probe is healthy for gating, while the engine
// still says "starting" (its first probe an interval away); the probe runs
// the healthcheck's own command as the container's user in its working
// directory, and probing stops once it passed.
func TestEarlyProbeGatesAndStops(t *testing.T) {
	e := enginefake.New()
	exec, calls := passesAfter(2, 0)
	e.Behave("api", enginefake.Behaviour{Exec: exec})
	id := started(t, e, "api", container.Config{User: "dify", WorkingDir: "/app",
		Healthcheck: &container.HealthConfig{Test: []string{"CMD", "/testsvc", "probe"}, Interval: 30 * time.Second, Timeout: 2 * time.Second}},
		container.HostConfig{})
	var mu sync.Mutex
	var runs []ProbeRun
	announced := 0
	st, err := WaitWith(context.Background(), e, id, Healthy, Options{ProbeInterval: 5 * time.Millisecond,
		OnProbe:   func(r ProbeRun) { mu.Lock(); runs = append(runs, r); mu.Unlock() },
		OnProbing: func(time.Duration) { announced++ }})
	if err != nil {
		t.Fatal(err)
	}
	if !st.EarlyProbe || st.Health != container.Starting {
		t.Fatalf("state %+v: want healthy by difyctl's probe while the engine says starting", st)
	}
	mu.Lock()
	if len(runs) != 3 || runs[0].Passed || runs[1].Passed || !runs[2].Passed || runs[2].N != 3 || runs[0].Probe.ExitCode != 1 ||
		runs[0].Probe.Output != "probe: not healthy yet" || announced != 1 {
		t.Fatalf("probe runs %+v (announced %d)", runs, announced)
	}
	mu.Unlock()
	for _, x := range e.Execs("p-api-1") {
		if !slices.Equal(x.Cmd, []string{"/testsvc", "probe"}) || x.User != "dify" || x.Dir != "/app" {
			t.Fatalf("exec %+v: want the healthcheck's command as the container's user in its working directory", x)
		}
	}
	time.Sleep(50 * time.Millisecond)
	if n := calls.Load(); n != 3 {
		t.Fatalf("%d probes: probing must stop the moment one passes", n)
	}
}

// CMD-SHELL runs through the container's shell (SHELL), else /bin/sh -c, as
// the engine runs it; NONE and an empty test run nothing.
func TestProbeCommand(t *testing.T) {
	hc := func(test ...string) *container.HealthConfig { return &container.HealthConfig{Test: test} }
	cases := []struct {
		hc    *container.HealthConfig
		shell []string
		want  []string
	}{
		{hc("CMD", "pg_isready", "-U", "postgres"), nil, []string{"pg_isready", "-U", "postgres"}},
		{hc("CMD-SHELL", "curl -f http://localhost:5001/health || exit 1"), nil, []string{"/bin/sh", "-c", "curl -f http://localhost:5001/health || exit 1"}},
		{hc("CMD-SHELL", "redis-cli ping"), []string{"/bin/bash", "-c"}, []string{"/bin/bash", "-c", "redis-cli ping"}},
		{hc("NONE"), nil, nil},
		{hc(), nil, nil},
		{nil, nil, nil},
	}
	for _, c := range cases {
		if got := probeCommand(c.hc, c.shell); !slices.Equal(got, c.want) {
			t.Errorf("%v (shell %v): %q, want %q", c.hc, c.shell, got, c.want)
		}
	}
}

// Never more than one probe at a time: a probe slower than the interval is
// not joined by another.
func TestOneProbeAtATime(t *testing.T) {
	e := enginefake.New()
	exec, calls := passesAfter(3, 40*time.Millisecond)
	e.Behave("api", enginefake.Behaviour{Exec: exec})
	id := started(t, e, "api", container.Config{Healthcheck: &container.HealthConfig{Test: []string{"CMD", "probe"}, Interval: time.Minute}}, container.HostConfig{})
	if _, err := WaitWith(context.Background(), e, id, Healthy, Options{ProbeInterval: time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	if got := e.MaxConcurrentExecs("p-api-1"); got != 1 {
		t.Fatalf("%d probes ran at once", got)
	}
	if calls.Load() != 4 {
		t.Fatalf("%d probes, want 4", calls.Load())
	}
}

// A probe that outlives the healthcheck's timeout is a failed probe, and no
// other starts while it may still run in the container.
func TestProbeTimeout(t *testing.T) {
	e := enginefake.New()
	var calls atomic.Int32
	e.Behave("api", enginefake.Behaviour{Exec: func([]string, string) enginefake.ExecResult {
		if calls.Add(1) == 1 {
			return enginefake.ExecResult{Exit: 0, Delay: 150 * time.Millisecond}
		}
		return enginefake.ExecResult{Exit: 0}
	}})
	id := started(t, e, "api", container.Config{Healthcheck: &container.HealthConfig{Test: []string{"CMD", "probe"}, Timeout: 20 * time.Millisecond}}, container.HostConfig{})
	var runs []ProbeRun
	start := time.Now()
	if _, err := WaitWith(context.Background(), e, id, Healthy, Options{ProbeInterval: time.Millisecond, OnProbe: func(r ProbeRun) { runs = append(runs, r) }}); err != nil {
		t.Fatal(err)
	}
	if len(runs) != 2 || runs[0].Passed || !strings.Contains(runs[0].Problem, "exceeded its timeout (20ms)") || !runs[1].Passed {
		t.Fatalf("runs %+v", runs)
	}
	if e.MaxConcurrentExecs("p-api-1") != 1 || time.Since(start) < 150*time.Millisecond {
		t.Fatal("a probe started while the one that timed out still ran")
	}
}

// --probe-interval 0: the engine's status only, no exec.
func TestProbesOff(t *testing.T) {
	e := enginefake.New()
	exec, calls := passesAfter(0, 0)
	e.Behave("api", enginefake.Behaviour{Exec: exec})
	id := started(t, e, "api", container.Config{Healthcheck: &container.HealthConfig{Test: []string{"CMD", "probe"}}}, container.HostConfig{})
	done := make(chan State, 1)
	go func() {
		st, _ := WaitWith(context.Background(), e, id, Healthy, Options{ProbeInterval: ProbesOff})
		done <- st
	}()
	time.Sleep(50 * time.Millisecond)
	select {
	case st := <-done:
		t.Fatalf("healthy without the engine saying so: %+v", st)
	default:
	}
	e.EngineProbe("p-api-1", 0, container.Healthy)
	st := <-done
	if st.EarlyProbe || st.Health != container.Healthy || calls.Load() != 0 {
		t.Fatalf("state %+v, %d probes by difyctl", st, calls.Load())
	}
}

// A disabled healthcheck: running is enough, nothing probed.
func TestDisabledHealthcheck(t *testing.T) {
	e := enginefake.New()
	exec, calls := passesAfter(0, 0)
	e.Behave("worker", enginefake.Behaviour{Exec: exec})
	id := started(t, e, "worker", container.Config{Healthcheck: &container.HealthConfig{Test: []string{"NONE"}}}, container.HostConfig{})
	st, err := WaitWith(context.Background(), e, id, Ready, Options{ProbeInterval: time.Millisecond})
	if err != nil || st.Status != container.StateRunning || calls.Load() != 0 {
		t.Fatalf("%+v %v, %d probes", st, err, calls.Load())
	}
}

// Without start_period difyctl probes until the engine's first probe
// result, then leaves it to the engine.
func TestProbingEndsAtEnginesFirstProbe(t *testing.T) {
	e := enginefake.New()
	exec, calls := passesAfter(1<<30, 0)
	e.Behave("api", enginefake.Behaviour{Exec: exec})
	id := started(t, e, "api", container.Config{Healthcheck: &container.HealthConfig{Test: []string{"CMD", "probe"}, Retries: 3}}, container.HostConfig{})
	done := make(chan error, 1)
	go func() {
		_, err := WaitWith(context.Background(), e, id, Healthy, Options{ProbeInterval: 2 * time.Millisecond})
		done <- err
	}()
	waitFor(t, "difyctl's probes", func() bool { return calls.Load() >= 2 })
	e.EngineProbe("p-api-1", 1, container.Starting) // a failed probe: still starting
	time.Sleep(30 * time.Millisecond)               // one more probe may be under way
	n := calls.Load()
	time.Sleep(50 * time.Millisecond)
	if calls.Load() != n {
		t.Fatalf("difyctl kept probing after the engine's first probe (%d, then %d)", n, calls.Load())
	}
	e.EngineProbe("p-api-1", 1, container.Unhealthy)
	if err := <-done; err == nil || !strings.Contains(err.Error(), "unhealthy") {
		t.Fatalf("a later failing engine status must fail the wait: %v", err)
	}
}

// With a start_period, difyctl probes through it: the engine's failing
// probes there do not end difyctl's.
func TestProbingThroughStartPeriod(t *testing.T) {
	e := enginefake.New()
	exec, calls := passesAfter(1<<30, 0)
	e.Behave("api", enginefake.Behaviour{Exec: exec})
	id := started(t, e, "api", container.Config{Healthcheck: &container.HealthConfig{Test: []string{"CMD", "probe"}, StartPeriod: time.Minute}}, container.HostConfig{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go WaitWith(ctx, e, id, Healthy, Options{ProbeInterval: 2 * time.Millisecond})
	waitFor(t, "difyctl's probes", func() bool { return calls.Load() >= 2 })
	e.EngineProbe("p-api-1", 1, container.Starting)
	n := calls.Load()
	waitFor(t, "probes after the engine's", func() bool { return calls.Load() >= n+3 })
}

// API 1.44 and later: a container with a start_interval is probed by the
// engine during its start period; difyctl does not exec. Without a start
// period (start_interval then has no effect) difyctl still probes.
func TestEngineStartInterval(t *testing.T) {
	e := enginefake.New()
	e.SetAPIVersion("1.44")
	exec, calls := passesAfter(0, 0)
	e.Behave("api", enginefake.Behaviour{Exec: exec})
	e.Behave("web", enginefake.Behaviour{Exec: exec})
	id := started(t, e, "api", container.Config{Healthcheck: &container.HealthConfig{Test: []string{"CMD", "probe"}, StartPeriod: time.Minute, StartInterval: time.Second}}, container.HostConfig{})
	done := make(chan State, 1)
	go func() {
		st, _ := WaitWith(context.Background(), e, id, Healthy, Options{ProbeInterval: time.Millisecond})
		done <- st
	}()
	time.Sleep(50 * time.Millisecond)
	if calls.Load() != 0 {
		t.Fatalf("difyctl probed %d times where the engine probes at start_interval", calls.Load())
	}
	e.EngineProbe("p-api-1", 0, container.Healthy)
	if st := <-done; st.Health != container.Healthy || st.EarlyProbe {
		t.Fatalf("%+v", st)
	}
	web := started(t, e, "web", container.Config{Healthcheck: &container.HealthConfig{Test: []string{"CMD", "probe"}, StartInterval: time.Second}}, container.HostConfig{})
	if st, err := WaitWith(context.Background(), e, web, Healthy, Options{ProbeInterval: time.Millisecond}); err != nil || !st.EarlyProbe {
		t.Fatalf("without a start period: %+v %v", st, err)
	}
	if !EngineStartInterval(e) {
		t.Fatal("1.44 honours start_interval")
	}
	e.SetAPIVersion("1.41")
	if EngineStartInterval(e) || EngineStartInterval(struct{}{}) || apiAtLeast("1.9", 1, 44) || !apiAtLeast("2.0", 1, 44) {
		t.Fatal("version check")
	}
}

// A container its restart policy keeps restarting fails the wait after
// three restarts in a row, with the exit code and what it usually means.
func TestCrashLoop(t *testing.T) {
	e := enginefake.New()
	e.Behave("api", enginefake.Behaviour{Exit: enginefake.Exit(127), Restarts: true})
	id := started(t, e, "api", container.Config{Healthcheck: &container.HealthConfig{Test: []string{"CMD", "probe"}}},
		container.HostConfig{RestartPolicy: container.RestartPolicy{Name: container.RestartPolicyAlways}})
	var restarts []int
	st, err := WaitWith(context.Background(), e, id, Healthy, Options{OnRestart: func(s State) { restarts = append(restarts, s.Restarts) }})
	var fe *FailedError
	if !errors.As(err, &fe) || !fe.CrashLoop || st.ExitCode != 127 {
		t.Fatalf("got %v %+v", err, st)
	}
	for _, want := range []string{"crash loop", "exited with code 127", "command not found", "restarted 3 times in a row"} {
		if !strings.Contains(fe.Reason, want) {
			t.Errorf("reason %q lacks %q", fe.Reason, want)
		}
	}
	if len(restarts) == 0 || restarts[len(restarts)-1] < 3 {
		t.Fatalf("restarts reported: %v", restarts)
	}
}

func TestExitMeaning(t *testing.T) {
	for code, want := range map[int]string{127: "command not found", 126: "not executable", 137: "killed", 139: "segmentation fault", 1: "generic", 143: "terminated", 158: "signal 30"} {
		if got := ExitMeaning(code, false); !strings.Contains(got, want) {
			t.Errorf("%d: %q", code, got)
		}
	}
	if !strings.Contains(ExitMeaning(137, true), "out of memory") || ExitMeaning(42, false) != "" {
		t.Error("oom / unknown")
	}
}

// A stop asked of the engine before the wait began (a killed command's) and
// still being carried out: the container is not reported healthy; when it
// exits, the wait says it was stopped, so the caller starts it again.
func TestStopInFlight(t *testing.T) {
	e := enginefake.New()
	e.Behave("redis", enginefake.Behaviour{Health: "healthy"})
	id := started(t, e, "redis", container.Config{Healthcheck: &container.HealthConfig{Test: []string{"CMD", "redis-cli", "ping"}}}, container.HostConfig{})
	e.BeginStop("p-redis-1")
	stoppingSeen := make(chan struct{}, 1)
	done := make(chan error, 1)
	go func() {
		_, err := WaitWith(context.Background(), e, id, Healthy, Options{OnStopping: func(State) { stoppingSeen <- struct{}{} }})
		done <- err
	}()
	<-stoppingSeen
	select {
	case err := <-done:
		t.Fatalf("the wait ended while the stop was being carried out: %v", err)
	case <-time.After(50 * time.Millisecond):
	}
	e.FinishStop("p-redis-1")
	var fe *FailedError
	if err := <-done; !errors.As(err, &fe) || !fe.Stopped || fe.State.ExitCode != 0 {
		t.Fatalf("got %v", err)
	}
	// Started again: the stop is history, the wait succeeds.
	if _, err := e.ContainerStart(context.Background(), id, client.ContainerStartOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := WaitWith(context.Background(), e, id, Healthy, Options{}); err != nil {
		t.Fatalf("after a new start: %v", err)
	}
	// A stop asked while waiting is seen from the live events; a reload
	// signal (HUP) is not a stop.
	e.Behave("redis", enginefake.Behaviour{})
	e.ContainerRestart(context.Background(), id, client.ContainerRestartOptions{})
	go func() {
		_, err := WaitWith(context.Background(), e, id, Healthy, Options{})
		done <- err
	}()
	time.Sleep(20 * time.Millisecond)
	e.BeginStop("p-redis-1")
	time.Sleep(20 * time.Millisecond)
	e.EngineProbe("p-redis-1", 0, container.Healthy)
	select {
	case err := <-done:
		t.Fatalf("reported while a stop was under way: %v", err)
	case <-time.After(50 * time.Millisecond):
	}
	e.FinishStop("p-redis-1")
	if err := <-done; !errors.As(err, &fe) || !fe.Stopped {
		t.Fatalf("got %v", err)
	}
	if stopping("1") || stopping("SIGHUP") || !stopping("15") || !stopping("9") {
		t.Fatal("stopping signals")
	}
}
