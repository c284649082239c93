package compose

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"

	"github.com/difyctl/difyctl/health"
	"github.com/difyctl/difyctl/internal/engine"
)

// Outcomes: what up did with a container.
const (
	OutcomeCreated     = "created and started"
	OutcomeReplaced    = "replaced"
	OutcomeStarted     = "started"
	OutcomeKept        = "kept as it was"
	OutcomeRestarted   = "restarted"
	OutcomeUnpaused    = "unpaused"
	OutcomeRolledBack  = "not replaced: the replacement failed to start, the old container runs again"
	OutcomeNotReplaced = "not replaced: the old container is left as it was"
	OutcomeNotCreated  = "not created"
	OutcomeFailed      = "failed"
	OutcomeRemoved     = "removed (orphan)"
)

// executor carries out a plan: it waits, calls the engine and reports;
// every decision was made by the planner.
type executor struct {
	cli    engine.Engine
	plan   *Plan
	report Reporter
	probes bool // report every healthcheck probe (an inspect each)
	// probeInterval is difyctl's early probes' interval (0: the default,
	// negative: off); see health.WaitWith.
	probeInterval time.Duration
	ctx           context.Context // the caller's: cancelled on Ctrl-C
	waitCtx       context.Context // ctx bounded by the wait timeout
	fails         failures
	cpus          int         // the engine host's CPUs (engineCPUs)
	slots         *startSlots // bounds the starts asked at once (run sets it)
	createOnly    bool        // UpOptions.NoStart: createAll makes new containers only
	mu            sync.Mutex  // guards notes
	notes         []string
}

// created is the container made for a plan item in this run ("" none).
type created struct{ id string }

// createAll creates every new container and every replacement (under a
// temporary name, the old one untouched) in parallel. When one fails, those
// made are removed again and nothing else has changed.
func (x *executor) createAll(ids map[string]*created) error {
	var wg sync.WaitGroup
	var errs errList
	for i := range x.plan.Items {
		it := &x.plan.Items[i]
		if it.Action != ActionCreate && (it.Action != ActionRecreate || x.createOnly) {
			continue
		}
		c := &created{}
		ids[it.Service] = c
		wg.Add(1)
		go func() {
			defer wg.Done()
			spec := *it.spec
			x.startInterval(&spec)
			if it.Action == ActionRecreate {
				h := *spec.Host
				h.Mounts = append(h.Mounts[:0:0], h.Mounts...)
				spec.Host = &h
				inheritVolumes(&spec, it.existing.Mounts)
				spec.Name = tempName(it.existing.ID, spec.Name)
			}
			x.report.emit(it.Service, StateCreating, spec.Name)
			id, err := createContainer(x.ctx, x.cli, &spec)
			c.id = id
			if err != nil {
				x.report.emit(it.Service, StateFailed, err.Error())
				errs.add(fmt.Errorf("service %s: %w", it.Service, err))
				return
			}
			x.report.emit(it.Service, StateCreated, "")
		}()
	}
	wg.Wait()
	err := errs.join()
	if err == nil {
		return nil
	}
	for svc, c := range ids {
		if c.id != "" {
			if rmErr := x.remove(c.id); rmErr != nil {
				err = errors.Join(err, fmt.Errorf("service %s: removing the container made for it: %w", svc, rmErr))
			}
		}
		x.plan.item(svc).Outcome = OutcomeNotCreated
	}
	return fmt.Errorf("%w\nnothing was changed: every existing container is left as it was", err)
}

// startInterval gives the container's healthcheck a start_interval where
// the engine honours one (API 1.44 and later) and the compose file has
// none: the engine then probes at difyctl's probe interval during the start
// period, as difyctl would itself on older engines. Only the container's
// configuration changes, not the service's (its config hash), so compose
// and difyctl still agree on what is up to date.
func (x *executor) startInterval(spec *Spec) {
	hc := spec.Config.Healthcheck
	if x.probeInterval < 0 || hc == nil || hc.StartInterval > 0 || len(hc.Test) == 0 || hc.Test[0] == "NONE" || !health.EngineStartInterval(x.cli) {
		return
	}
	every := x.probeInterval
	if every == 0 {
		every = health.DefaultProbeInterval
	}
	cfg := *spec.Config
	h := *hc
	h.StartInterval = every
	cfg.Healthcheck = &h
	spec.Config = &cfg
}

// tempName is where a replacement is created, as compose names it.
func tempName(oldID, name string) string { return shortID(oldID) + "_" + name }

func createContainer(ctx context.Context, cli engine.Engine, spec *Spec) (string, error) {
	var netCfg *network.NetworkingConfig
	if len(spec.Networks) > 0 {
		first := spec.Networks[0]
		netCfg = &network.NetworkingConfig{EndpointsConfig: map[string]*network.EndpointSettings{first: {Aliases: spec.Aliases[first]}}}
	}
	res, err := cli.ContainerCreate(ctx, client.ContainerCreateOptions{Name: spec.Name, Config: spec.Config, HostConfig: spec.Host, NetworkingConfig: netCfg})
	if err != nil {
		return "", fmt.Errorf("creating container %s: %w", spec.Name, err)
	}
	// API 1.41 connects one network at create; the others before start.
	for _, n := range spec.Networks[min(1, len(spec.Networks)):] {
		if _, err := cli.NetworkConnect(ctx, n, client.NetworkConnectOptions{Container: res.ID, EndpointConfig: &network.EndpointSettings{Aliases: spec.Aliases[n]}}); err != nil {
			return res.ID, fmt.Errorf("connecting %s to network %s: %w", spec.Name, n, err)
		}
	}
	return res.ID, nil
}

// remove removes a container made in this run (its volumes stay: a
// replacement holds the old container's anonymous volumes).
func (x *executor) remove(id string) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(x.ctx), 30*time.Second)
	defer cancel()
	if _, err := x.cli.ContainerRemove(ctx, id, client.ContainerRemoveOptions{Force: true}); err != nil && !cerrdefs.IsNotFound(err) {
		return err
	}
	return nil
}

func (x *executor) note(format string, a ...any) {
	x.mu.Lock()
	x.notes = append(x.notes, fmt.Sprintf(format, a...))
	x.mu.Unlock()
}

// run walks the plan dependencies first, each service once its depends_on
// conditions hold.
func (x *executor) run(ids map[string]*created) {
	nodes := make([]string, 0, len(x.plan.Items))
	edges := map[string][]edge{}
	for _, it := range x.plan.Items {
		nodes = append(nodes, it.Service)
		if it.Action == ActionDone || it.Action == ActionKeep && !x.restartAfterDependency(&it) {
			// It runs (or ran) as it is and nothing is asked of the
			// engine for it: it waits for nothing, and what waits for it
			// waits only for its own condition, not for its dependencies'
			// replacements.
			continue
		}
		for dep, d := range it.spec.Service.DependsOn {
			edges[it.Service] = append(edges[it.Service], edge{to: dep, cond: conditionOf(d.Condition)})
		}
	}
	g := newGraph(nodes, edges)
	if x.cpus > 0 {
		starts := map[string]int{}
		for _, it := range x.plan.Items {
			if it.Action == ActionCreate || it.Action == ActionRecreate || it.Action == ActionStart {
				starts[it.Service]++
			}
		}
		ownReady := map[string]int{}
		for _, it := range x.plan.Items {
			ownReady[it.Service] = readyWeight(it.spec.Service.HealthCheck)
		}
		x.slots = newStartSlots(x.cpus, g.priorities(func(svc string) int { return ownReady[svc] }), starts, ownReady)
	}
	g.waiting = func(n string, e edge) { x.report.emit(n, StateWaiting, e.to+" "+conditionWord(string(e.cond))) }
	g.walk(x.waitCtx, false, func(svc string, own gates, b *blocked) {
		// A service that ends here without a start (blocked, failed
		// before it) no longer holds back the starts below it.
		defer x.slots.skip(svc, 1)
		defer x.slots.ready(svc)
		it := x.plan.item(svc)
		id := ""
		if c := ids[svc]; c != nil {
			id = c.id
		} else if it.existing != nil {
			id = it.existing.ID
		}
		if b != nil {
			x.blocked(it, id, b)
			return
		}
		if it.Action == ActionDone {
			x.report.emit(svc, StateCompleted, "exited 0 earlier; configuration unchanged, not run again")
			it.Outcome = OutcomeKept
			own.settle(nil)
			return
		}
		if err := x.act(it, id); err != nil {
			own.settle(err)
			return
		}
		own.open(health.Started, nil)
		x.ready(it, id, own)
	})
}

// blocked handles a service whose dependency failed: a container made for
// it is removed; a container it had is left as it was.
func (x *executor) blocked(it *PlanItem, id string, b *blocked) {
	reason := fmt.Sprintf("not started: dependency %s failed", b.dep)
	state := StateSkipped
	switch {
	case x.ctx.Err() != nil:
		reason, state = "interrupted while waiting for "+b.dep+" "+conditionWord(string(b.cond)), StateInterrupted
	case x.waitCtx.Err() != nil:
		reason = fmt.Sprintf("not started: timed out waiting for %s", b.dep)
	}
	it.Outcome = OutcomeNotCreated
	if it.existing != nil {
		it.Outcome = OutcomeNotReplaced
	}
	if it.Action == ActionCreate || it.Action == ActionRecreate {
		if err := x.remove(id); err != nil {
			reason += fmt.Sprintf("; removing the container made for it failed: %v", err)
		}
		if it.Action == ActionRecreate {
			reason += "; its old container is left as it was"
		}
	}
	x.report.emit(it.Service, state, reason)
}

// act starts, replaces, restarts or keeps a service's container.
func (x *executor) act(it *PlanItem, id string) error {
	switch it.Action {
	case ActionRecreate:
		return x.replace(it, id)
	case ActionUnpause:
		// A paused container is frozen, not stopped: no start is asked
		// of it (the engine refuses one), it is let go on.
		x.report.emit(it.Service, StateStarting, "unpausing: it was paused")
		if _, err := x.cli.ContainerUnpause(x.ctx, id, client.ContainerUnpauseOptions{}); err != nil {
			return x.failed(it, id, "unpause: "+err.Error(), nil)
		}
		it.Outcome = OutcomeUnpaused
		return nil
	case ActionKeep:
		if !x.restartAfterDependency(it) {
			x.report.emit(it.Service, StateUnchanged, "")
			it.Outcome = OutcomeKept
			return nil
		}
		x.report.emit(it.Service, StateRestarting, "a dependency with restart: true was recreated")
		if _, err := x.cli.ContainerRestart(x.ctx, id, client.ContainerRestartOptions{}); err != nil {
			return x.failed(it, id, "restart: "+err.Error(), nil)
		}
		it.Outcome = OutcomeRestarted
		return nil
	}
	if err := x.start(it.Service, id); err != nil {
		return x.failed(it, id, "start: "+err.Error(), nil)
	}
	it.Outcome = OutcomeStarted
	if it.Action == ActionCreate {
		it.Outcome = OutcomeCreated
	}
	return nil
}

// start starts a container once a start slot is free (startSlots), saying
// so when it begins.
func (x *executor) start(svc, id string) error {
	release, err := x.slots.acquire(x.ctx, svc)
	if err != nil {
		return err
	}
	defer release()
	return x.startHeld(svc, id)
}

// startHeld starts a container whose start slot is held.
func (x *executor) startHeld(svc, id string) error {
	x.report.emit(svc, StateStarting, "")
	_, err := x.cli.ContainerStart(x.ctx, id, client.ContainerStartOptions{})
	return err
}

// restartAfterDependency: a dependency declared with restart: true was
// created or replaced in this run.
func (x *executor) restartAfterDependency(it *PlanItem) bool {
	for dep, d := range it.spec.Service.DependsOn {
		if dit := x.plan.item(dep); d.Restart && dit != nil && (dit.Action == ActionRecreate || dit.Action == ActionCreate) {
			return true
		}
	}
	return false
}

func (x *executor) failed(it *PlanItem, id, reason string, st *health.State) error {
	x.fails.add(it.Service, id, reason, st)
	x.report.emit(it.Service, StateFailed, reason)
	if it.Outcome != OutcomeRolledBack && it.Outcome != OutcomeNotReplaced {
		it.Outcome = OutcomeFailed
	}
	return errors.New(reason)
}

// replace puts the replacement made by createAll in the old container's
// place: the old one is stopped (its stop signal, its grace period) and set
// aside, the new one takes its name and starts; when the new one cannot
// start, it is removed and the old one takes its name back and runs again.
// The old container is removed once the new one runs; its anonymous volumes
// stay, mounted in the new one.
func (x *executor) replace(it *PlanItem, newID string) error {
	old := it.existing
	x.report.emit(it.Service, StateRecreating, it.Reason)
	// A paused container was serving (frozen by a backup killed during its
	// copy): a rollback brings it back running.
	wasRunning := old.State == string(container.StateRunning) || old.State == string(container.StatePaused)
	// The slot is taken before the stop: stopping costs the engine as much
	// as starting, and the critical path's replacement goes first, alone.
	release, err := x.slots.acquire(x.ctx, it.Service)
	if err != nil {
		_ = x.remove(newID)
		it.Outcome = OutcomeNotReplaced
		return x.failed(it, old.ID, "interrupted before the old container was stopped; it is left as it was", nil)
	}
	defer release()
	if _, err := x.cli.ContainerStop(x.ctx, old.ID, client.ContainerStopOptions{}); err != nil && !cerrdefs.IsNotFound(err) {
		_ = x.remove(newID)
		it.Outcome = OutcomeNotReplaced
		return x.failed(it, old.ID, "stopping the old container: "+err.Error()+"; it is left as it was", nil)
	}
	aside := it.spec.Name + "_replaced_" + shortID(old.ID)
	if _, err := x.cli.ContainerRename(x.ctx, old.ID, client.ContainerRenameOptions{NewName: aside}); err != nil {
		return x.rollback(it, newID, "", wasRunning, "setting the old container aside: "+err.Error())
	}
	if _, err := x.cli.ContainerRename(x.ctx, newID, client.ContainerRenameOptions{NewName: it.spec.Name}); err != nil {
		return x.rollback(it, newID, aside, wasRunning, "renaming the replacement: "+err.Error())
	}
	if err := x.startHeld(it.Service, newID); err != nil {
		return x.rollback(it, newID, aside, wasRunning, "start: "+err.Error())
	}
	release()
	if st, err := health.Inspect(x.ctx, x.cli, newID); err == nil && st.Status == container.StateExited && st.ExitCode != 0 && !it.noRetry {
		return x.rollback(it, newID, aside, wasRunning, fmt.Sprintf("the replacement exited with code %d right after it started", st.ExitCode))
	}
	if err := x.remove(old.ID); err != nil {
		x.note("service %s: the old container %s could not be removed (%v); remove it with \"docker rm %s\"", it.Service, aside, err, aside)
	}
	it.Outcome = OutcomeReplaced
	return nil
}

// rollback removes a replacement that failed and brings the old container
// back under its name (aside: where it was set aside, "" when it was not),
// started again when it ran before.
func (x *executor) rollback(it *PlanItem, newID, aside string, wasRunning bool, cause string) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(x.ctx), time.Minute)
	defer cancel()
	var problems []string
	if err := x.remove(newID); err != nil {
		problems = append(problems, "removing the replacement: "+err.Error())
	}
	old := it.existing
	if aside != "" {
		if _, err := x.cli.ContainerRename(ctx, old.ID, client.ContainerRenameOptions{NewName: it.spec.Name}); err != nil {
			problems = append(problems, "renaming the old container back: "+err.Error())
		}
	}
	if wasRunning {
		if _, err := x.cli.ContainerStart(ctx, old.ID, client.ContainerStartOptions{}); err != nil {
			problems = append(problems, "starting the old container again: "+err.Error())
		}
	}
	reason := "replacement failed (" + cause + "); "
	if len(problems) == 0 {
		reason += "the old container runs again, unchanged"
		if !wasRunning {
			reason = strings.Replace(reason, "runs again", "is back", 1)
		}
		it.Outcome = OutcomeRolledBack
	} else {
		reason += "bringing the old container back failed too: " + strings.Join(problems, "; ")
	}
	x.report.emit(it.Service, StateRolledBack, reason)
	return x.failed(it, newID, reason, nil)
}

// ready waits until the service is ready (healthy, or for a job that may
// exit, exited 0), then, when a dependent waits for it to complete, until
// it exited 0; it opens the gates as it goes.
func (x *executor) ready(it *PlanItem, id string, own gates) {
	cond := health.Healthy
	if it.noRetry {
		cond = health.Ready
	}
	r := readiness{cli: x.cli, report: x.report, probeInterval: x.probeInterval}
	if !it.needs[health.Healthy] && !it.needs[health.CompletedSuccessfully] {
		// Only the end of the run waits for it: its probes give way to
		// the critical path's start.
		r.beforeProbe = x.slots.whileQuiet
	}
	st, err := r.wait(x.waitCtx, it.Service, id, cond, x.probeObserver(it))
	if err != nil {
		own.settle(x.notReady(it, id, err, st, cond))
		return
	}
	own.open(health.Healthy, nil)
	switch {
	case st.Status == container.StateExited:
		x.report.emit(it.Service, StateCompleted, "exited 0")
		own.open(health.CompletedSuccessfully, nil)
		return
	case it.noRetry && st.Health == "":
		x.report.emit(it.Service, StateStarted, "one-shot job running; dependents that need it completed wait for its exit")
	default:
		x.report.emit(it.Service, StateHealthy, healthDetail(st))
	}
	if !it.needs[health.CompletedSuccessfully] {
		return
	}
	st, err = r.wait(x.waitCtx, it.Service, id, health.CompletedSuccessfully, nil)
	if err != nil {
		own.settle(x.notReady(it, id, err, st, health.CompletedSuccessfully))
		return
	}
	x.report.emit(it.Service, StateCompleted, "exited 0")
	own.open(health.CompletedSuccessfully, nil)
}

// notReady reports why a wait ended: interrupted (with the container's
// real state), timed out, or the failure the container showed.
func (x *executor) notReady(it *PlanItem, id string, err error, st health.State, cond health.Condition) error {
	if x.ctx.Err() != nil {
		x.report.emit(it.Service, StateInterrupted, "while waiting for it "+conditionWord(string(cond))+"; container "+stateWords(st))
		return x.ctx.Err()
	}
	timedOut := "timed out waiting to be ready"
	switch {
	case cond == health.CompletedSuccessfully:
		timedOut = "timed out waiting to complete"
	case cond == health.Healthy && st.Health != "":
		timedOut = fmt.Sprintf("timed out waiting to be healthy (health: %s)", st.Health)
	}
	return x.failed(it, id, health.Reason(x.waitCtx, err, timedOut), &st)
}

func stateWords(st health.State) string {
	s := string(st.Status)
	if s == "" {
		s = "state unknown"
	}
	if st.Health != "" {
		s += " (health: " + string(st.Health) + ")"
	}
	return s
}

// probeObserver reports each healthcheck probe, when asked to.
func (x *executor) probeObserver(it *PlanItem) func(health.State) {
	if !x.probes {
		return nil
	}
	retries := 3
	if hc := it.spec.Config.Healthcheck; hc != nil && hc.Retries > 0 {
		retries = hc.Retries
	}
	last := -1
	return func(st health.State) {
		if st.Health == "" || len(st.Probes) == 0 || len(st.Probes) == last {
			return
		}
		last = len(st.Probes)
		detail := fmt.Sprintf("probe %d, %d/%d failed", len(st.Probes), st.Failing, retries)
		if out := st.Probes[len(st.Probes)-1].Output; out != "" {
			detail += ": " + firstLine(out)
		}
		x.report.emit(it.Service, StateHealth, detail)
	}
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	return s
}

func conditionWord(c string) string {
	switch health.Condition(c) {
	case health.Healthy:
		return "to be healthy"
	case health.CompletedSuccessfully:
		return "to complete"
	}
	return "to start"
}

func healthDetail(st health.State) string {
	if st.Health == "" {
		return "running (no healthcheck)"
	}
	if st.EarlyProbe {
		return "difyctl's probe passed (the engine's first probe is still to come)"
	}
	return fmt.Sprintf("after %d probe(s)", len(st.Probes))
}
