package health

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/client"

	"github.com/difyctl/difyctl/internal/engine"
)

// ProbesOff as Options.ProbeInterval: the engine's health status only, as
// docker compose waits.
const ProbesOff time.Duration = -1

// DefaultCrashLoop is how many restarts in a row fail a wait.
const DefaultCrashLoop = 3

// Options for WaitWith. The zero value: difyctl's early probes every
// DefaultProbeInterval (when the client can exec), crash loops after
// DefaultCrashLoop restarts, nothing reported.
type Options struct {
	// ProbeInterval is how often difyctl runs a starting container's own
	// healthcheck test itself; 0: DefaultProbeInterval; negative
	// (ProbesOff): never.
	ProbeInterval time.Duration
	// CrashLoop is how many restarts in a row by the engine fail the wait;
	// 0: DefaultCrashLoop.
	CrashLoop int
	// Observe is called with the state after each inspection the wait makes
	// (the engine's probes included: its exec_die events are then watched).
	Observe func(State)
	// OnProbe is called after each probe difyctl ran itself.
	OnProbe func(ProbeRun)
	// OnProbing is called when difyctl starts probing a container itself.
	OnProbing func(interval time.Duration)
	// OnRestart is called each time the engine restarts the container after
	// it exited (its restart policy).
	OnRestart func(State)
	// OnStopping is called once when the container is running but a stop
	// asked of the engine is still being carried out.
	OnStopping func(State)
	// BeforeProbe, when set, is waited on before each probe difyctl runs
	// (a scheduler putting probes off while the engine is busier with
	// something more urgent); an error skips the probe.
	BeforeProbe func(context.Context) error
}

// WaitWith blocks until the container meets cond, can no longer meet it, or
// ctx ends, driven by the engine's events (never by polling its state).
//
// Readiness as soon as it is there: while a container with a healthcheck is
// in its start period (or, without start_period, until the engine's first
// probe result), difyctl runs the container's own healthcheck test through
// the engine (an exec: the same command, user and working directory as the
// engine's probe, the healthcheck's timeout) every ProbeInterval, one probe
// at a time, and counts the first pass as healthy for Healthy and Ready;
// then it stops probing. Where the engine honours start_interval (API 1.44
// and later) and the container has one, the engine probes during the start
// period itself and difyctl does not. Otherwise the engine's own status
// decides, as before: a container that turns unhealthy fails the wait.
//
// A crash loop fails fast: when the engine restarts the container
// Options.CrashLoop times in a row during the wait, the wait fails with the
// exit code and what it usually means.
//
// A stop in flight is waited out: a running container whose stop was asked
// of the engine (its "kill" event with a stopping signal since it last
// started, this wait's or earlier) is never reported as meeting cond; when
// it exits, the wait fails with a *FailedError whose Stopped is set, so the
// caller can start it again.
func WaitWith(ctx context.Context, cli engine.Watcher, id string, cond Condition, o Options) (State, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	w := newWaiter(cli, id, cond, o)
	ev := w.watch(ctx)
	c, err := w.inspect(ctx)
	if err != nil {
		return FromInspect(c), err
	}
	st := FromInspect(c)
	w.history(ctx, c)
	w.baseline, w.reported = st.Restarts, st.Restarts
	ps := w.newSchedule(c)
	defer ps.stop()
	for {
		if done, err := w.judge(&st, ps.passed); done || err != nil {
			return st, err
		}
		if w.o.Observe != nil {
			w.o.Observe(st)
		}
		ps.set(ps.pr != nil && !ps.passed && !w.stopAsked && w.shouldProbe(st, c))
		if ended, err := w.await(ctx, ev, ps, &c, &st); ended {
			return w.last(ctx, st, err)
		}
		if c, err = w.inspect(ctx); err != nil {
			return st, err
		}
		st = FromInspect(c)
		if w.sawStart {
			// A new run: what difyctl's probes found was about the last.
			ps.passed, w.sawStart = false, false
		}
	}
}

// newWaiter applies Options' defaults.
func newWaiter(cli engine.Watcher, id string, cond Condition, o Options) *waiter {
	w := &waiter{cli: cli, id: id, cond: cond, o: o}
	if w.o.CrashLoop <= 0 {
		w.o.CrashLoop = DefaultCrashLoop
	}
	if w.o.ProbeInterval == 0 {
		w.o.ProbeInterval = DefaultProbeInterval
	}
	w.engineStartInterval = EngineStartInterval(cli)
	return w
}

// watch subscribes to the container's events the wait acts on. The engine
// filters too, so the exec events of every probe are not sent (the engine
// matches health_status by prefix).
func (w *waiter) watch(ctx context.Context) client.EventsResult {
	actions := []string{string(events.ActionHealthStatus)}
	for _, a := range gatingActions {
		actions = append(actions, string(a))
	}
	if w.o.Observe != nil {
		actions = append(actions, string(events.ActionExecDie))
	}
	return w.cli.Events(ctx, client.EventsListOptions{
		Filters: make(client.Filters).Add("type", string(events.ContainerEventType)).Add("container", w.id).Add("event", actions...),
	})
}

// await blocks until a new inspection is due: a relevant event, a probe
// result, or a tick when the container no longer wants probing. ended: the
// wait is over (ctx ended, the event stream failed) for err.
func (w *waiter) await(ctx context.Context, ev client.EventsResult, ps *schedule, c *container.InspectResponse, st *State) (ended bool, err error) {
	for {
		select {
		case <-ctx.Done():
			return true, ctx.Err()
		case err := <-ev.Err:
			if err == nil {
				err = errors.New("engine closed the event stream")
			}
			return true, err
		case m := <-ev.Messages:
			w.note(m)
			if relevant(m.Action) || w.o.Observe != nil && m.Action == events.ActionExecDie {
				return false, nil
			}
		case <-ps.tick:
			if !w.onTick(ctx, ps, c, st) {
				return false, nil
			}
		case r := <-ps.results:
			ps.probing = false
			if ctx.Err() != nil {
				return true, ctx.Err()
			}
			if w.o.OnProbe != nil {
				w.o.OnProbe(r)
			}
			if r.Skipped && ps.tick != nil {
				// The port refused all along: nothing the engine knows
				// changed, so no inspection; the port is watched on at
				// once, not a tick later.
				ps.start(ctx, ps.addr)
				continue
			}
			if r.Passed {
				ps.passed = true
			}
			return false, nil
		}
	}
}

// onTick starts a probe unless one still runs; false when the container no
// longer wants probing (a new inspection is due). It refreshes c and st.
func (w *waiter) onTick(ctx context.Context, ps *schedule, c *container.InspectResponse, st *State) bool {
	// One probe at a time: a slow one is not joined by another, nor is one
	// that timed out and may still run.
	if ps.probing || ps.pr.busy(ctx) {
		return true
	}
	// The state as it is now (an inspect costs the engine far less than an
	// exec): the engine may have probed since.
	if nc, err := w.inspect(ctx); err == nil {
		*c, *st = nc, FromInspect(nc)
	}
	if !w.shouldProbe(*st, *c) {
		return false
	}
	ps.start(ctx, ContainerAddr(*c))
	return true
}

// schedule runs difyctl's own probes of one wait: every interval, one at a
// time, until one passes.
type schedule struct {
	pr        *prober // nil: no probes (no exec, ProbesOff, or a condition without health)
	interval  time.Duration
	onProbing func(time.Duration)
	before    func(context.Context) error
	results   chan ProbeRun
	ticker    *time.Ticker
	tick      <-chan time.Time // nil while not probing
	probing   bool             // a probe runs
	passed    bool             // a probe passed in this run of the container
	announced bool
	n         int    // probes started
	addr      string // the container's address the last probe was given
}

func (w *waiter) newSchedule(c container.InspectResponse) *schedule {
	ps := &schedule{interval: w.o.ProbeInterval, onProbing: w.o.OnProbing, before: w.o.BeforeProbe, results: make(chan ProbeRun, 1)}
	if exe, ok := w.cli.(Execer); ok && w.o.ProbeInterval > 0 && (w.cond == Healthy || w.cond == Ready) {
		ps.pr = newProber(exe, c)
	}
	return ps
}

// set starts or stops the ticker as probes are wanted or not.
func (ps *schedule) set(want bool) {
	switch {
	case want && ps.tick == nil:
		ps.ticker = time.NewTicker(ps.interval)
		ps.tick = ps.ticker.C
		if !ps.announced && ps.onProbing != nil {
			ps.onProbing(ps.interval)
		}
		ps.announced = true
	case !want && ps.tick != nil:
		ps.stop()
	}
}

func (ps *schedule) stop() {
	if ps.ticker != nil {
		ps.ticker.Stop()
	}
	ps.ticker, ps.tick = nil, nil
}

// start runs the next probe of the container at addr; its result arrives
// on results. A port gate may stand in for it (portGate): that costs the
// engine nothing, so it is not put off by before.
func (ps *schedule) start(ctx context.Context, addr string) {
	ps.probing = true
	ps.n++
	ps.addr = addr
	go func(n int) {
		began := time.Now()
		skip, forced := ps.pr.gate.stands(ctx, addr, ps.interval)
		if skip {
			r := ps.pr.gate.skippedRun(addr, time.Since(began))
			r.N = n
			ps.results <- r
			return
		}
		if ps.before != nil {
			if err := ps.before(ctx); err != nil {
				ps.results <- ProbeRun{N: n, Probe: Probe{ExitCode: -1, Output: err.Error()}, Problem: err.Error()}
				return
			}
		}
		r := ps.pr.run(ctx)
		r.N = n
		if forced && r.Passed {
			ps.pr.gate.off = true // the test passed with the port refused: the connect says nothing here
		}
		ps.results <- r
	}(ps.n)
}

type waiter struct {
	cli                 engine.Watcher
	id                  string
	cond                Condition
	o                   Options
	engineStartInterval bool
	baseline, reported  int  // restart counts: at the start of the wait, last reported
	stopAsked           bool // a stop was asked since the container last started
	stopReported        bool
	sawStart            bool // a start event since the last inspection
}

func (w *waiter) inspect(ctx context.Context) (container.InspectResponse, error) {
	res, err := w.cli.ContainerInspect(ctx, w.id, client.ContainerInspectOptions{})
	return res.Container, err
}

// judge decides on the state: done, failed, or not yet (false, nil).
func (w *waiter) judge(st *State, passed bool) (bool, error) {
	if err := w.countRestarts(*st); err != nil {
		return false, err
	}
	if w.stopAsked {
		return false, w.stopInFlight(*st)
	}
	done, err := st.Check(w.cond)
	if done || err != nil {
		return done, err
	}
	if passed && (w.cond == Healthy || w.cond == Ready) && st.Status == container.StateRunning && st.Health == container.Starting {
		st.EarlyProbe = true
		return true, nil
	}
	return false, nil
}

// countRestarts reports each restart by the engine and fails the wait on a
// crash loop (CrashLoop restarts in a row since the wait began).
func (w *waiter) countRestarts(st State) error {
	if st.Restarts < w.baseline { // started again by hand: the count began anew
		w.baseline, w.reported = st.Restarts, st.Restarts
	}
	if st.Restarts > w.reported {
		w.reported = st.Restarts
		if w.o.OnRestart != nil {
			w.o.OnRestart(st)
		}
	}
	if n := st.Restarts - w.baseline; n >= w.o.CrashLoop {
		return &FailedError{State: st, CrashLoop: true,
			Reason: fmt.Sprintf("crash loop: %s, restarted %d times in a row", exitWords(st.ExitCode, st.OOMKilled), n)}
	}
	return nil
}

// stopInFlight judges a container whose stop was asked: it never meets the
// condition; it fails the wait (Stopped) once it exited, and is reported
// once while it still runs.
func (w *waiter) stopInFlight(st State) error {
	if st.Status == container.StateExited || st.Status == container.StateDead {
		return &FailedError{State: st, Stopped: true,
			Reason: fmt.Sprintf("stopped by a stop asked of the engine while it was waited on (exit code %d)", st.ExitCode)}
	}
	if st.Status == container.StateRunning && !w.stopReported {
		w.stopReported = true
		if w.o.OnStopping != nil {
			w.o.OnStopping(st)
		}
	}
	return nil
}

// shouldProbe: the container runs, the engine says "starting", and it is in
// its start period or the engine has not probed it yet in this run; not
// when the engine probes at start_interval during the start period itself.
func (w *waiter) shouldProbe(st State, c container.InspectResponse) bool {
	if st.Status != container.StateRunning || st.Health != container.Starting || c.Config == nil || c.Config.Healthcheck == nil || c.State == nil {
		return false
	}
	hc := c.Config.Healthcheck
	inStart := false
	if started, err := time.Parse(time.RFC3339Nano, c.State.StartedAt); err == nil && hc.StartPeriod > 0 {
		inStart = time.Since(started) < hc.StartPeriod
	}
	if inStart && w.engineStartInterval && hc.StartInterval > 0 {
		return false
	}
	return inStart || len(st.Probes) == 0
}

// note follows the events that say a stop was asked (kill with a stopping
// signal) and that a new run began (start).
func (w *waiter) note(m events.Message) {
	switch m.Action {
	case events.ActionKill:
		if stopping(m.Actor.Attributes["signal"]) {
			w.stopAsked = true
		}
	case events.ActionStart:
		w.stopAsked, w.stopReported, w.sawStart = false, false, true
	}
}

// stopping: a kill with this signal asks the container to end. Signals that
// conventionally ask for a reload or a report (HUP, USR1, USR2, WINCH) and
// the signal-0 probe do not.
func stopping(sig string) bool {
	switch sig {
	case "0", "1", "10", "12", "28", "SIGHUP", "HUP", "SIGUSR1", "USR1", "SIGUSR2", "USR2", "SIGWINCH", "WINCH":
		return false
	}
	return true
}

// history reads the container's kill/start/die events since it last
// started from the engine's event log (it keeps the recent ones), so a stop
// asked before this wait began (by a command that was killed, or still
// running) is known.
func (w *waiter) history(ctx context.Context, c container.InspectResponse) {
	if c.State == nil {
		return
	}
	started, err := time.Parse(time.RFC3339Nano, c.State.StartedAt)
	if err != nil || started.Year() < 2000 {
		return
	}
	hctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	ev := w.cli.Events(hctx, client.EventsListOptions{
		Since:   unixNano(started),
		Until:   unixNano(time.Now()),
		Filters: make(client.Filters).Add("type", string(events.ContainerEventType)).Add("container", w.id).Add("event", string(events.ActionKill), string(events.ActionStart)),
	})
	for {
		select {
		case m := <-ev.Messages:
			w.note(m)
		case err := <-ev.Err:
			if err == nil || errors.Is(err, io.EOF) {
				// Drain what was sent before the stream ended.
				for {
					select {
					case m := <-ev.Messages:
						w.note(m)
					default:
						w.sawStart = false
						return
					}
				}
			}
			w.sawStart = false
			return
		case <-hctx.Done():
			w.sawStart = false
			return
		}
	}
}

// last ends a wait that timed out or was cancelled: the state as it is now
// (its latest probes) is what explains it.
func (w *waiter) last(ctx context.Context, st State, err error) (State, error) {
	lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if c, ierr := w.inspect(lctx); ierr == nil {
		st = FromInspect(c)
	}
	if w.stopAsked && st.Status == container.StateRunning && ctx.Err() != nil {
		return st, &FailedError{State: st, Reason: "a stop asked of the engine was still being carried out when the wait ended (or the container ignored its stop signal)"}
	}
	return st, fmt.Errorf("waiting for %s: %w", st.Name, err)
}

// unixNano is t as the events API reads a time: seconds.nanoseconds.
func unixNano(t time.Time) string {
	return strconv.FormatInt(t.Unix(), 10) + "." + fmt.Sprintf("%09d", t.Nanosecond())
}
