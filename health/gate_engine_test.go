package health_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"

	"github.com/difyctl/difyctl/compose"
	"github.com/difyctl/difyctl/health"
	"github.com/difyctl/difyctl/internal/testenv"
)

// Against the real engine: a stand-in web server that listens 1.5 s after
// its start, with Dify's kind of healthcheck (curl of its own loopback).
// While its port refuses connects, difyctl's probes run no exec (the
// engine's exec_create events count them), except the one every
// gateMaxSkips+1-th probe runs whatever the connect said; once the port
// opens, the next probe runs the test and it passes.
func TestPortGateAgainstTheEngine(t *testing.T) {
	cli := testenv.Fixtures(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	project := testenv.ProjectName(t, cli)
	res, err := cli.ContainerCreate(ctx, client.ContainerCreateOptions{
		Name: project + "-web-1",
		Config: &container.Config{
			Image:  testenv.FixturePrefix + "standin:dify-web",
			Env:    []string{"STANDIN_READY_AFTER=1500ms"},
			Labels: map[string]string{compose.LabelProject: project, compose.LabelService: "web"},
			Healthcheck: &container.HealthConfig{Test: []string{"CMD", "curl", "-f", "http://localhost:3000/"},
				Interval: 30 * time.Second, Timeout: 5 * time.Second},
		},
		HostConfig: &container.HostConfig{},
	})
	if err != nil {
		t.Fatal(err)
	}
	evs := cli.Events(ctx, client.EventsListOptions{Filters: make(client.Filters).Add("container", res.ID).Add("event", "exec_create")})
	var execs sync.WaitGroup
	var nExec int
	stop := make(chan struct{})
	execs.Add(1)
	go func() {
		defer execs.Done()
		for {
			select {
			case <-evs.Messages:
				nExec++
			case <-stop:
				return
			case <-evs.Err:
				return
			}
		}
	}()
	if _, err := cli.ContainerStart(ctx, res.ID, client.ContainerStartOptions{}); err != nil {
		t.Fatal(err)
	}
	var runs []health.ProbeRun
	st, err := health.WaitWith(ctx, cli, res.ID, health.Healthy, health.Options{ProbeInterval: 200 * time.Millisecond,
		OnProbe: func(r health.ProbeRun) { runs = append(runs, r) }})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second) // the last exec_create event on its way
	close(stop)
	execs.Wait()
	if !st.EarlyProbe || len(runs) == 0 || !runs[len(runs)-1].Passed {
		t.Fatalf("state %+v after %d probes: want healthy by difyctl's probe", st, len(runs))
	}
	skipped, run, streak := 0, 0, 0
	for _, r := range runs {
		if r.Skipped {
			skipped++
			streak++
			if !strings.Contains(r.Probe.Output, "port 3000") {
				t.Errorf("skipped probe %d says %q", r.N, r.Probe.Output)
			}
			continue
		}
		run++
		if !r.Passed && streak != 4 {
			t.Errorf("probe %d ran the test and failed after %d skips: the gate stood aside while the port refused", r.N, streak)
		}
		streak = 0
	}
	if skipped == 0 {
		t.Fatalf("no probe skipped in %d: the port was closed for 1.5 s", len(runs))
	}
	if nExec != run {
		t.Fatalf("the engine saw %d execs for %d probes that ran the test (%d skipped)", nExec, run, skipped)
	}
	t.Logf("%d probes: %d skipped without an exec, %d ran the test", len(runs), skipped, run)
}
