package e2e

import (
	"context"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	mobyevents "github.com/moby/moby/api/types/events"
	"github.com/moby/moby/client"

	"github.com/difyctl/difyctl/compose"
	"github.com/difyctl/difyctl/internal/testenv"
)

// slowProbe: the api is ready 2 s after it starts, but the engine's first
// probe of it runs 30 s after its start (interval 30s, as Dify's api).
const slowProbe = `
services:
  api:
    image: difyctl-test/testsvc:latest
    command: ["--healthy-after", "2s"]
    restart: always
    healthcheck: {test: ["CMD", "/testsvc", "probe"], interval: 30s, timeout: 5s, retries: 3}
  web:
    image: difyctl-test/testsvc:latest
    restart: always
    depends_on: {api: {condition: service_healthy}}
`

func eventWith(evs []compose.Event, svc, state, detail string) (compose.Event, bool) {
	for _, e := range evs {
		if e.Service == svc && e.State == state && strings.Contains(e.Detail, detail) {
			return e, true
		}
	}
	return compose.Event{}, false
}

// A service whose engine probe is 30 s away gates its dependent as soon as
// difyctl's own probe passes: up finishes before the engine has probed the
// api at all.
func TestUpEarlyProbeGatesDependent(t *testing.T) {
	cli := testenv.Fixtures(t)
	project := testenv.ProjectName(t, cli)
	dir := writeProject(t, slowProbe)
	r := run(t, nil, "--project-dir", dir, "-p", project, "up", "-f", filepath.Join(dir, "compose.yaml"), "--progress", "json", "--wait-timeout", "2m")
	if r.code != 0 {
		t.Fatalf("up: exit %d\n%s", r.code, r.stderr)
	}
	evs := events(t, r.stderr)
	passed, ok1 := eventWith(evs, "api", compose.StateProbe, "passed")
	healthy, ok2 := eventWith(evs, "api", compose.StateHealthy, "difyctl's probe passed")
	apiStart, ok0 := eventWith(evs, "api", compose.StateStarting, "")
	webStart, ok3 := eventWith(evs, "web", compose.StateStarting, "")
	if !ok0 || !ok1 || !ok2 || !ok3 || webStart.Time.Before(healthy.Time) || healthy.Time.Before(passed.Time) {
		t.Fatalf("events:\n%s", r.stderr)
	}
	ins, err := cli.ContainerInspect(context.Background(), containerIDs(t, cli, project)["api"], client.ContainerInspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// The engine has not probed yet: difyctl's probe is what gated web.
	if h := ins.Container.State.Health; h == nil || h.Status != "starting" || len(h.Log) != 0 {
		t.Fatalf("engine health %+v: up should have ended before the engine's first probe\n%s", h, r.stderr)
	}
	// Generous: the engine alone would gate web no sooner than its first
	// probe, 30 s after the api started.
	if gated := webStart.Time.Sub(apiStart.Time); gated >= 30*time.Second {
		t.Fatalf("web started %s after the api, which was ready after 2 s", gated)
	}
}

// --probe-interval 0 keeps Docker's behaviour: no probe of difyctl's, the
// dependent waits for the engine's own probe.
func TestUpProbeIntervalZero(t *testing.T) {
	cli := testenv.Fixtures(t)
	project := testenv.ProjectName(t, cli)
	dir := writeProject(t, strings.Replace(slowProbe, "interval: 30s", "interval: 4s", 1))
	r := run(t, nil, "--project-dir", dir, "-p", project, "up", "-f", filepath.Join(dir, "compose.yaml"), "--progress", "json", "--probe-interval", "0", "--wait-timeout", "2m")
	if r.code != 0 {
		t.Fatalf("up: exit %d\n%s", r.code, r.stderr)
	}
	evs := events(t, r.stderr)
	if _, ok := eventWith(evs, "api", compose.StateProbe, ""); ok {
		t.Fatalf("difyctl probed with --probe-interval 0:\n%s", r.stderr)
	}
	if _, ok := eventWith(evs, "api", compose.StateHealthy, "after"); !ok {
		t.Fatalf("api not healthy by the engine's probes:\n%s", r.stderr)
	}
	ins, err := cli.ContainerInspect(context.Background(), containerIDs(t, cli, project)["api"], client.ContainerInspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if h := ins.Container.State.Health; h == nil || h.Status != "healthy" || len(h.Log) == 0 {
		t.Fatalf("engine health %+v: web was gated before the engine said healthy", h)
	}
}

// A restart: always service whose command is missing (exit 127) fails up
// quickly, saying so, with its last log lines, instead of waiting out
// --wait-timeout.
func TestUpCrashLoopFailsFast(t *testing.T) {
	cli := testenv.Fixtures(t)
	project := testenv.ProjectName(t, cli)
	dir := writeProject(t, `
services:
  worker:
    image: difyctl-test/busybox:latest
    command: ["sh", "-c", "echo starting worker; exec celery-worker-missing --loglevel INFO; touch /tmp/ready"]
    restart: always
    healthcheck: {test: ["CMD-SHELL", "test -f /tmp/ready"], interval: 30s}
  beat:
    image: difyctl-test/busybox:latest
    command: ["sleep", "3600"]
    depends_on: [worker]
`)
	start := time.Now()
	r := run(t, nil, "--project-dir", dir, "-p", project, "up", "-f", filepath.Join(dir, "compose.yaml"), "--progress", "plain", "--wait-timeout", "5m")
	took := time.Since(start)
	if r.code != 1 {
		t.Fatalf("up: exit %d\n%s", r.code, r.stderr)
	}
	for _, want := range []string{"worker failed: crash loop: exited with code 127 (command not found", "restarted 3 times in a row",
		"celery-worker-missing: not found"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("output lacks %q:\n%s", want, r.stderr)
		}
	}
	if !regexp.MustCompile(`worker +restarted +restart \d+: exited with code 127`).MatchString(r.stderr) {
		t.Errorf("restarts not shown as they happen:\n%s", r.stderr)
	}
	if took > 2*time.Minute {
		t.Fatalf("up took %s to find the crash loop", took)
	}
}

// up over a stop the engine is still carrying out (a command that asked for
// it was killed): up does not report the container up while the stop runs,
// and starts it again once it exited 0, instead of calling it exited.
func TestUpConvergesOverStopInFlight(t *testing.T) {
	cli := testenv.Fixtures(t)
	project := testenv.ProjectName(t, cli)
	// A server that takes 3 s to shut down on SIGTERM (Redis saving its
	// data set) and exits 0.
	dir := writeProject(t, `
services:
  store:
    image: difyctl-test/busybox:latest
    command: ["sh", "-c", "trap 'echo saving; sleep 3; echo saved; exit 0' TERM; echo ready; while true; do sleep 0.1; done"]
    restart: always
    stop_grace_period: 30s
`)
	args := []string{"--project-dir", dir, "-p", project, "up", "-f", filepath.Join(dir, "compose.yaml"), "--progress", "json", "--wait-timeout", "1m"}
	if r := run(t, nil, args...); r.code != 0 {
		t.Fatalf("first up: exit %d\n%s", r.code, r.stderr)
	}
	id := containerIDs(t, cli, project)["store"]
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ev := cli.Events(ctx, client.EventsListOptions{Filters: make(client.Filters).Add("container", id).Add("event", "kill")})
	stopped := make(chan error, 1)
	go func() {
		// The stop a killed restore asked for: the engine carries it out
		// whatever happens to the client.
		_, err := cli.ContainerStop(ctx, id, client.ContainerStopOptions{})
		stopped <- err
	}()
	select {
	case m := <-ev.Messages:
		if m.Action != mobyevents.ActionKill {
			t.Fatalf("event %+v", m)
		}
	case err := <-ev.Err:
		t.Fatal(err)
	}
	r := run(t, nil, args...)
	if r.code != 0 {
		t.Fatalf("up over a stop in flight: exit %d\n%s", r.code, r.stderr)
	}
	if err := <-stopped; err != nil {
		t.Fatal(err)
	}
	evs := events(t, r.stderr)
	if _, ok := eventWith(evs, "store", compose.StateStopping, "still being carried out"); !ok {
		t.Errorf("no stopping event:\n%s", r.stderr)
	}
	if _, ok := eventWith(evs, "store", compose.StateStarting, "starting it again"); !ok {
		t.Errorf("not started again:\n%s", r.stderr)
	}
	ins, err := cli.ContainerInspect(context.Background(), id, client.ContainerInspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !ins.Container.State.Running {
		t.Fatalf("store is %s after up returned 0", ins.Container.State.Status)
	}
	// And it stays up: the stop is over.
	time.Sleep(time.Second)
	if ins, err = cli.ContainerInspect(context.Background(), id, client.ContainerInspectOptions{}); err != nil || !ins.Container.State.Running {
		t.Fatalf("store stopped after up: %v %+v", err, ins.Container.State)
	}
}
