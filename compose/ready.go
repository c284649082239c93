package compose

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/moby/moby/client"

	"github.com/difyctl/difyctl/health"
	"github.com/difyctl/difyctl/internal/engine"
)

// maxStartsAgain bounds how often a wait starts a container again that a
// stop asked of the engine took down while it was waited on.
const maxStartsAgain = 3

// readiness is how up and start wait for a service: difyctl's early probes
// every probeInterval, crash loops, stops in flight; every step reported.
type readiness struct {
	cli           engine.Engine
	report        Reporter
	probeInterval time.Duration // 0: health.DefaultProbeInterval; negative: off
	// beforeProbe, when set, is waited on before each of difyctl's probes
	// (health.Options.BeforeProbe).
	beforeProbe func(context.Context) error
}

// options are the wait's options for a service's container, each
// observation reported as an event.
func (r readiness) options(svc string, observe func(health.State)) health.Options {
	return health.Options{
		ProbeInterval: r.probeInterval,
		Observe:       observe,
		BeforeProbe:   r.beforeProbe,
		OnProbing: func(every time.Duration) {
			r.report.emit(svc, StateProbe, fmt.Sprintf("difyctl runs its healthcheck every %s until it passes or the engine's first probe", every))
		},
		OnProbe: func(p health.ProbeRun) {
			r.report.emit(svc, StateProbe, probeWords(p))
		},
		OnRestart: func(st health.State) {
			r.report.emit(svc, StateRestarted, fmt.Sprintf("restart %d: %s", st.Restarts, exitDetail(st)))
		},
		OnStopping: func(health.State) {
			r.report.emit(svc, StateStopping, "a stop asked of the engine earlier is still being carried out; waiting for it to finish")
		},
	}
}

func probeWords(p health.ProbeRun) string {
	s := fmt.Sprintf("difyctl probe %d: ", p.N)
	switch {
	case p.Skipped:
		return s + firstLine(p.Probe.Output)
	case p.Passed:
		s += "passed"
	default:
		s += fmt.Sprintf("failed (exit %d)", p.Probe.ExitCode)
	}
	s += fmt.Sprintf(" in %s", p.Took.Round(time.Millisecond))
	if out := firstLine(p.Probe.Output); out != "" {
		s += ": " + out
	}
	return s
}

func exitDetail(st health.State) string {
	s := fmt.Sprintf("exited with code %d", st.ExitCode)
	if m := health.ExitMeaning(st.ExitCode, st.OOMKilled); m != "" {
		s += " (" + m + ")"
	}
	return s
}

// wait waits until the container meets cond. A container that a stop asked
// of the engine (by a command killed or still running) took down while it
// was waited on is started again and waited on anew: up and start converge
// over it rather than report it exited.
func (r readiness) wait(ctx context.Context, svc, id string, cond health.Condition, observe func(health.State)) (health.State, error) {
	for again := 0; ; again++ {
		st, err := health.WaitWith(ctx, r.cli, id, cond, r.options(svc, observe))
		var fe *health.FailedError
		if err == nil || !errors.As(err, &fe) || !fe.Stopped || again == maxStartsAgain || ctx.Err() != nil {
			if fe != nil && fe.Stopped && again == maxStartsAgain {
				fe.Reason += fmt.Sprintf("; started again %d times and stopped again each time: something keeps stopping it", again)
			}
			return st, err
		}
		r.report.emit(svc, StateStarting, fmt.Sprintf("a stop asked of the engine took it down (exit code %d); starting it again", st.ExitCode))
		// ctx bounds the waiting, not the start itself.
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
		_, serr := r.cli.ContainerStart(sctx, id, client.ContainerStartOptions{})
		cancel()
		if serr != nil {
			return st, &health.FailedError{State: st, Reason: "a stop asked of the engine took it down; starting it again failed: " + serr.Error()}
		}
	}
}
