// Package health reads a container's state as dependency gating sees it and
// waits for a condition (started, healthy, completed successfully), driven by
// the engine's events rather than by polling.
package health

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/client"

	"github.com/difyctl/difyctl/internal/engine"
)

// Condition is what a dependent waits for; the names are compose's depends_on
// conditions.
type Condition string

// The depends_on conditions.
const (
	Started               Condition = "service_started"
	Healthy               Condition = "service_healthy"
	CompletedSuccessfully Condition = "service_completed_successfully"
	// Ready is what `up` waits for at the end: running and healthy (or
	// running without a healthcheck), or, for a one-shot job, exited 0.
	Ready Condition = "ready"
)

// Probe is one healthcheck run.
type Probe struct {
	ExitCode int    `json:"exitCode"`
	Output   string `json:"output"`
}

// State is a container's state as far as gating goes.
type State struct {
	ID        string                   `json:"id"`
	Name      string                   `json:"name"`
	Status    container.ContainerState `json:"status"`           // created, running, exited, ...
	Health    container.HealthStatus   `json:"health,omitempty"` // empty when the container has no healthcheck
	ExitCode  int                      `json:"exitCode"`
	OOMKilled bool                     `json:"oomKilled,omitempty"`
	Error     string                   `json:"error,omitempty"`
	Probes    []Probe                  `json:"probes,omitempty"`        // the last probes, oldest first
	Failing   int                      `json:"failingStreak,omitempty"` // consecutive failed probes
	// Restarts is how often the engine restarted it (its restart policy)
	// since it was last started by hand.
	Restarts int `json:"restarts,omitempty"`
	// EarlyProbe: difyctl's own run of its healthcheck passed while the
	// engine still said "starting" (see WaitWith).
	EarlyProbe bool `json:"earlyProbe,omitempty"`
}

// FromInspect extracts the gating state from an inspect response.
func FromInspect(c container.InspectResponse) State {
	s := State{ID: c.ID, Name: strings.TrimPrefix(c.Name, "/"), Restarts: c.RestartCount}
	if c.State == nil {
		return s
	}
	s.Status, s.ExitCode, s.OOMKilled, s.Error = c.State.Status, c.State.ExitCode, c.State.OOMKilled, c.State.Error
	if h := c.State.Health; h != nil {
		s.Health = h.Status
		s.Failing = h.FailingStreak
		// The engine keeps the last probes across restarts: only those of
		// the current run say anything about it.
		started, err := time.Parse(time.RFC3339Nano, c.State.StartedAt)
		for _, p := range h.Log {
			if p != nil && (err != nil || !p.Start.Before(started)) {
				s.Probes = append(s.Probes, Probe{ExitCode: p.ExitCode, Output: strings.TrimSpace(p.Output)})
			}
		}
	}
	return s
}

// Inspect reads a container's gating state.
func Inspect(ctx context.Context, cli engine.Watcher, id string) (State, error) {
	res, err := cli.ContainerInspect(ctx, id, client.ContainerInspectOptions{})
	if err != nil {
		return State{}, err
	}
	return FromInspect(res.Container), nil
}

// FailedError says that a condition can no longer be met.
type FailedError struct {
	State  State
	Reason string
	// Stopped: it exited because a stop was asked of the engine (by
	// another command, or one that was killed) while it was waited on, not
	// by itself; starting it again is what converges.
	Stopped bool
	// CrashLoop: the engine kept restarting it (Options.CrashLoop times in
	// a row) and it exited each time.
	CrashLoop bool
}

func (e *FailedError) Error() string { return fmt.Sprintf("%s: %s", e.State.Name, e.Reason) }

// Check tells whether s meets cond (done), or can no longer meet it (a
// *FailedError), or may yet (false, nil).
func (s State) Check(cond Condition) (bool, error) {
	exited := s.Status == container.StateExited || s.Status == container.StateDead
	fail := func(format string, a ...any) (bool, error) {
		return false, &FailedError{State: s, Reason: fmt.Sprintf(format, a...)}
	}
	exitReason := func() string {
		r := fmt.Sprintf("exited with code %d", s.ExitCode)
		if s.OOMKilled {
			r += " (killed: out of memory)"
		}
		if s.Error != "" {
			r += ": " + s.Error
		}
		return r
	}
	switch cond {
	case Ready:
		if exited {
			if s.ExitCode == 0 {
				return true, nil
			}
			return fail("%s", exitReason())
		}
		return s.Check(Healthy)
	case CompletedSuccessfully:
		if exited {
			if s.ExitCode == 0 {
				return true, nil
			}
			return fail("%s", exitReason())
		}
		return false, nil
	case Healthy:
		if exited {
			return fail("%s before it became healthy", exitReason())
		}
		if s.Status != container.StateRunning {
			return false, nil
		}
		switch s.Health {
		case "", container.NoHealthcheck:
			// compose treats a service without a healthcheck as healthy once running.
			return true, nil
		case container.Healthy:
			return true, nil
		case container.Unhealthy:
			return fail("unhealthy")
		}
		return false, nil
	default: // Started
		if s.Status == container.StateRunning {
			return true, nil
		}
		if exited {
			// A container that ran and exited 0 has started (and finished).
			if s.ExitCode == 0 {
				return true, nil
			}
			return fail("%s", exitReason())
		}
		return false, nil
	}
}

// Reason says in a few words why a Wait ended in err: the failure the
// container showed, timedOut when ctx expired first, or the error itself.
func Reason(ctx context.Context, err error, timedOut string) string {
	var fe *FailedError
	switch {
	case errors.As(err, &fe):
		return fe.Reason
	case ctx.Err() != nil:
		return timedOut
	}
	return err.Error()
}

// Wait blocks until the container meets cond, can no longer meet it, or ctx
// ends. It subscribes to the container's events first and inspects once, so
// no transition is missed between the two; every further inspection is
// triggered by an event (start, die, health_status, ...), never by a timer.
func Wait(ctx context.Context, cli engine.Watcher, id string, cond Condition) (State, error) {
	return WaitObserved(ctx, cli, id, cond, nil)
}

// WaitObserved is Wait that also calls observe with the state after every
// healthcheck probe (the engine's exec_die events), for progress views.
func WaitObserved(ctx context.Context, cli engine.Watcher, id string, cond Condition, observe func(State)) (State, error) {
	return WaitWith(ctx, cli, id, cond, Options{Observe: observe})
}

// nextEvent blocks until an event that can change the gating state arrives.
func nextEvent(ctx context.Context, ev client.EventsResult, probes bool) error {
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case err := <-ev.Err:
			if err == nil {
				err = errors.New("engine closed the event stream")
			}
			return err
		case m := <-ev.Messages:
			if relevant(m.Action) || probes && m.Action == events.ActionExecDie {
				return nil
			}
		}
	}
}

// gatingActions are the container events, besides health_status, after
// which a condition can have changed.
var gatingActions = []events.Action{events.ActionStart, events.ActionDie, events.ActionStop, events.ActionKill,
	events.ActionOOM, events.ActionRestart, events.ActionDestroy}

func relevant(a events.Action) bool {
	return slices.Contains(gatingActions, a) || strings.HasPrefix(string(a), string(events.ActionHealthStatus))
}
