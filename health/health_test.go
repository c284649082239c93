package health

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
)

func TestCheck(t *testing.T) {
	type tc struct {
		s     State
		cond  Condition
		done  bool
		fails bool
	}
	running := func(h container.HealthStatus) State { return State{Status: container.StateRunning, Health: h} }
	exited := func(code int) State { return State{Status: container.StateExited, ExitCode: code} }
	cases := []tc{
		{State{Status: container.StateCreated}, Started, false, false},
		{running(""), Started, true, false},
		{exited(0), Started, true, false},
		{exited(1), Started, false, true},

		{running(container.Starting), Healthy, false, false},
		{running(container.Healthy), Healthy, true, false},
		{running(container.Unhealthy), Healthy, false, true},
		{running(""), Healthy, true, false}, // no healthcheck: running is enough, as compose
		{exited(0), Healthy, false, true},
		{State{Status: container.StateCreated}, Healthy, false, false},

		{running(""), CompletedSuccessfully, false, false},
		{exited(0), CompletedSuccessfully, true, false},
		{exited(3), CompletedSuccessfully, false, true},
	}
	for i, c := range cases {
		done, err := c.s.Check(c.cond)
		var fe *FailedError
		if done != c.done || (err != nil) != c.fails || (err != nil && !errors.As(err, &fe)) {
			t.Errorf("case %d (%+v, %s): got done=%v err=%v", i, c.s, c.cond, done, err)
		}
	}
}

func TestFailedErrorSaysWhy(t *testing.T) {
	s := State{Name: "dify-api-1", Status: container.StateExited, ExitCode: 137, OOMKilled: true}
	_, err := s.Check(Healthy)
	if err == nil || err.Error() != "dify-api-1: exited with code 137 (killed: out of memory) before it became healthy" {
		t.Fatalf("got %v", err)
	}
}

func TestFromInspect(t *testing.T) {
	st := FromInspect(container.InspectResponse{
		ID: "abc", Name: "/p-redis-1",
		State: &container.State{Status: container.StateRunning, Health: &container.Health{
			Status: container.Unhealthy,
			Log:    []*container.HealthcheckResult{{ExitCode: 1, Output: "NOAUTH\n"}},
		}},
	})
	if st.Name != "p-redis-1" || st.Health != container.Unhealthy || len(st.Probes) != 1 || st.Probes[0].Output != "NOAUTH" {
		t.Fatalf("got %+v", st)
	}
}

// Probes from before the container's current start are the last run's.
func TestFromInspectDropsProbesOfEarlierRuns(t *testing.T) {
	started := time.Date(2026, 11, 23, 1, 0, 0, 0, time.UTC)
	st := FromInspect(container.InspectResponse{
		ID: "abc", Name: "/p-db-1",
		State: &container.State{Status: container.StateRunning, StartedAt: started.Format(time.RFC3339Nano), Health: &container.Health{
			Status: container.Starting,
			Log: []*container.HealthcheckResult{
				{Start: started.Add(-time.Minute), ExitCode: 0, Output: "ok from the last run"},
				{Start: started.Add(time.Second), ExitCode: 1, Output: "not yet"},
			},
		}},
	})
	if len(st.Probes) != 1 || st.Probes[0].Output != "not yet" {
		t.Fatalf("probes %+v", st.Probes)
	}
}

func TestReason(t *testing.T) {
	live, expired := context.Background(), func() context.Context {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		return ctx
	}()
	_, failed := State{Name: "p-db-1", Status: container.StateRunning, Health: container.Unhealthy}.Check(Healthy)
	for _, c := range []struct {
		ctx  context.Context
		err  error
		want string
	}{
		{live, failed, "unhealthy"},
		{expired, failed, "unhealthy"}, // what the container showed wins
		{expired, context.Canceled, "timed out"},
		{live, errors.New("engine closed the event stream"), "engine closed the event stream"},
	} {
		if got := Reason(c.ctx, c.err, "timed out"); got != c.want {
			t.Errorf("Reason(%v) = %q, want %q", c.err, got, c.want)
		}
	}
}
