package compose

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/compose-spec/compose-go/v2/types"
	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/go-units"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"

	"github.com/difyctl/difyctl/health"
	"github.com/difyctl/difyctl/internal/engine"
)

// Event is one state change of a service during up/down, for the progress
// view: plain lines, JSON objects or the live terminal view.
type Event struct {
	Time    time.Time `json:"time"`
	Service string    `json:"service"`
	State   string    `json:"state"` // see the State* constants
	Detail  string    `json:"detail,omitempty"`
}

// States a service goes through.
const (
	StateWaiting    = "waiting"    // for a dependency (Detail names it)
	StatePulling    = "pulling"    // its image
	StateCreating   = "creating"   // its container
	StateCreated    = "created"    //
	StateStarting   = "starting"   //
	StateStarted    = "started"    // running; health not yet known
	StateHealth     = "health"     // a healthcheck probe ran; Detail says how many failed of how many allowed
	StateHealthy    = "healthy"    // running and healthy (or running, without a healthcheck)
	StateCompleted  = "completed"  // a one-shot job that exited 0
	StateUnchanged  = "unchanged"  // already running with this configuration
	StateRecreating = "recreating" // configuration changed
	StateRestarting = "restarting" // a dependency with restart: true was recreated
	StateFailed     = "failed"     // exited, unhealthy, or could not be created/started
	StateSkipped    = "skipped"    // not started: a dependency failed, or not required
	StateStopping   = "stopping"
	StateStopped    = "stopped"
	StateRemoved    = "removed"
)

// Reporter receives events; it must be safe for concurrent use.
type Reporter func(Event)

// UpOptions for Up.
type UpOptions struct {
	Project     *types.Project
	ConfigFiles []string
	Services    []string      // only these and their dependencies; empty: all
	WaitTimeout time.Duration // bound on the whole wait; 0: none
	Recreate    string        // "diverged" (default), "never", "force"
	DryRun      bool
	Version     string // difyctl's version, for the version label
	Report      Reporter
	// RegistryAuth gives the engine's X-Registry-Auth value for pulling an
	// image ("" for an anonymous pull); nil: always anonymous.
	RegistryAuth func(ctx context.Context, image string) (string, error)
}

// Failure explains why a service did not come up.
type Failure struct {
	Service string         `json:"service"`
	Reason  string         `json:"reason"`
	Probes  []health.Probe `json:"probes,omitempty"`
	Logs    []string       `json:"logs,omitempty"`
}

// PlanItem is what up does, or would do, with one service.
type PlanItem struct {
	Service string `json:"service"`
	Action  string `json:"action"` // create, recreate, start, unchanged, done, skip
	Reason  string `json:"reason,omitempty"`
	Level   int    `json:"level"` // dependency depth: 0 starts first
}

// UpResult is what Up did.
type UpResult struct {
	Plan     []PlanItem `json:"plan"`
	Failures []Failure  `json:"failures,omitempty"`
	Notes    []string   `json:"notes,omitempty"`
}

// FailedError: some services did not come up.
type FailedError struct {
	Failures []Failure
	// Err, when set, is every error of the run, one per container, the
	// services left unstarted because of a failure included (start).
	Err error
}

func (e *FailedError) Unwrap() error { return e.Err }

func (e *FailedError) Error() string {
	var names []string
	for _, f := range e.Failures {
		names = append(names, f.Service+" ("+f.Reason+")")
	}
	return "services failed: " + strings.Join(names, ", ")
}

// Diagnose writes, for each failure, the service, the reason, its last
// probe outputs and its last log lines, for an operator to read.
func (e *FailedError) Diagnose(w io.Writer) {
	for _, f := range e.Failures {
		fmt.Fprintf(w, "\n%s failed: %s\n", f.Service, f.Reason)
		for i, pr := range f.Probes {
			fmt.Fprintf(w, "  probe %d (exit %d): %s\n", i+1, pr.ExitCode, pr.Output)
		}
		if len(f.Logs) > 0 {
			fmt.Fprintf(w, "  last %d log lines:\n", len(f.Logs))
			for _, l := range f.Logs {
				fmt.Fprintln(w, "    "+l)
			}
		}
	}
}

// diagnosisLogLines is how many of its last log lines a failure carries.
const diagnosisLogLines = 20

// gate is a one-time signal with an error.
type gate struct {
	once sync.Once
	ch   chan struct{}
	err  error
}

func newGate() *gate { return &gate{ch: make(chan struct{})} }

func (g *gate) done(err error) {
	g.once.Do(func() { g.err = err; close(g.ch) })
}

func (g *gate) wait(ctx context.Context) error {
	select {
	case <-g.ch:
		return g.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// svcRun is one service's state during up.
type svcRun struct {
	spec      *Spec
	action    string
	reason    string
	existing  *ProjectContainer
	id        string
	oneShot   bool
	started   *gate // running (or done, for a finished one-shot)
	ready     *gate // healthy (or, for a one-shot job, exited 0)
	completed *gate // exited 0: service_completed_successfully
	needsDone bool  // some dependent waits for completion
}

// Up creates and starts the project: networks, volumes and bind-mount
// directories first, every container created up front in parallel, then each
// started as soon as its depends_on conditions hold, driven by engine events.
func Up(ctx context.Context, cli engine.Engine, o UpOptions) (*UpResult, error) {
	p := o.Project
	report := o.Report
	observeProbes := report != nil // per-probe progress costs an inspect per probe
	if report == nil {
		report = func(Event) {}
	}
	emit := func(svc, state, detail string) {
		report(Event{Time: time.Now(), Service: svc, State: state, Detail: detail})
	}
	res := &UpResult{}

	selected, levels, notes, err := selectServices(p, o.Services)
	if err != nil {
		return nil, err
	}
	res.Notes = notes

	existing, err := projectContainers(ctx, cli, p.Name)
	if err != nil {
		return nil, err
	}
	runs := map[string]*svcRun{}
	envFile := envFileLabel(p.WorkingDir)
	for _, name := range selected {
		s := p.Services[name]
		hash, err := ServiceHash(s)
		if err != nil {
			return nil, err
		}
		spec, err := Convert(p, s, serviceLabels(p, s, hash, envFile, o))
		if err != nil {
			return nil, err
		}
		spec.ConfigHash = hash
		r := &svcRun{spec: spec, started: newGate(), ready: newGate(), completed: newGate(), oneShot: s.Restart == "" || s.Restart == "no"}
		r.action, r.reason, r.existing = decide(existing[name], hash, r.oneShot, o.Recreate)
		runs[name] = r
	}
	for _, name := range selected {
		for dep, d := range p.Services[name].DependsOn {
			if dr, ok := runs[dep]; ok && health.Condition(d.Condition) == health.CompletedSuccessfully {
				dr.needsDone = true
			}
		}
	}
	for _, name := range selected { // already in plan order: level, then name
		r := runs[name]
		res.Plan = append(res.Plan, PlanItem{Service: name, Action: r.action, Reason: r.reason, Level: levels[name]})
	}
	if o.DryRun {
		return res, nil
	}

	// Images first: a missing image stops up before anything is created.
	if err := ensureImages(ctx, cli, runs, o.RegistryAuth, emit); err != nil {
		return res, err
	}
	if err := ensureNetworks(ctx, cli, p, runs, o.Version); err != nil {
		return res, err
	}
	if err := ensureVolumes(ctx, cli, p, runs, o.Version); err != nil {
		return res, err
	}
	if err := ensureBindDirs(runs); err != nil {
		return res, err
	}

	// Create (and recreate) every container up front, in parallel.
	var wg sync.WaitGroup
	var createErrs errList
	for name, r := range runs {
		if r.action != "create" && r.action != "recreate" {
			r.id = r.existing.ID
			continue
		}
		wg.Add(1)
		go func(name string, r *svcRun) {
			defer wg.Done()
			if err := r.create(ctx, cli, name, emit); err != nil {
				createErrs.add(fmt.Errorf("service %s: %w", name, err))
			}
		}(name, r)
	}
	wg.Wait()
	if err := createErrs.join(); err != nil {
		return res, err
	}

	// Start each service when its dependencies allow, all in parallel.
	waitCtx := ctx
	if o.WaitTimeout > 0 {
		var cancel context.CancelFunc
		waitCtx, cancel = context.WithTimeout(ctx, o.WaitTimeout)
		defer cancel()
	}
	failures := make([]*Failure, 0)
	var fmu sync.Mutex
	fail := func(name, reason string, st *health.State) {
		f := &Failure{Service: name, Reason: reason}
		if st != nil {
			f.Probes = st.Probes
		}
		fmu.Lock()
		failures = append(failures, f)
		fmu.Unlock()
		emit(name, StateFailed, reason)
	}
	for _, name := range selected {
		wg.Add(1)
		go func(name string, r *svcRun) {
			defer wg.Done()
			s := r.spec.Service
			restartAfter := false
			deps := make([]string, 0, len(s.DependsOn))
			for dep := range s.DependsOn {
				deps = append(deps, dep)
			}
			sort.Strings(deps)
			for _, dep := range deps {
				d := s.DependsOn[dep]
				dr, ok := runs[dep]
				if !ok {
					continue // not selected: inactive profile and not required (see selectServices)
				}
				emit(name, StateWaiting, dep+" "+conditionWord(d.Condition))
				var err error
				switch health.Condition(d.Condition) {
				case health.CompletedSuccessfully:
					err = dr.completed.wait(waitCtx)
				case health.Healthy:
					err = dr.ready.wait(waitCtx)
				default:
					err = dr.started.wait(waitCtx)
				}
				if err != nil {
					reason := fmt.Sprintf("not started: dependency %s failed", dep)
					if ctx.Err() != nil {
						reason = "not started: interrupted"
					} else if waitCtx.Err() != nil {
						reason = fmt.Sprintf("not started: timed out waiting for %s", dep)
					}
					emit(name, StateSkipped, reason)
					r.abort(errors.New(reason))
					if (r.action == "create" || r.action == "recreate") && r.id != "" {
						// Created for this run and never started: remove it, so a failed
						// dependency leaves no half-made dependents behind.
						rmCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
						_, _ = cli.ContainerRemove(rmCtx, r.id, client.ContainerRemoveOptions{Force: true})
						cancel()
					}
					return
				}
				if d.Restart && (dr.action == "recreate" || dr.action == "create") && r.action == "unchanged" {
					restartAfter = true
				}
			}
			switch {
			case r.action == "done":
				emit(name, StateCompleted, "exited 0 earlier; configuration unchanged, not run again")
				r.started.done(nil)
				r.ready.done(nil)
				r.completed.done(nil)
				return
			case r.action == "unchanged" && restartAfter:
				emit(name, StateRestarting, "a dependency with restart: true was recreated")
				if _, err := cli.ContainerRestart(ctx, r.id, client.ContainerRestartOptions{}); err != nil {
					fail(name, "restart: "+err.Error(), nil)
					r.abort(err)
					return
				}
			case r.action == "unchanged":
				emit(name, StateUnchanged, "")
			default:
				emit(name, StateStarting, "")
				if _, err := cli.ContainerStart(ctx, r.id, client.ContainerStartOptions{}); err != nil {
					fail(name, "start: "+err.Error(), nil)
					r.abort(err)
					return
				}
			}
			r.started.done(nil)
			emit(name, StateStarted, "")
			if r.needsDone {
				// A dependent waits for this job to finish: watch for it, and count
				// a non-zero exit as this service's failure.
				wg.Add(1)
				go func() {
					defer wg.Done()
					st, err := health.Wait(waitCtx, cli, r.id, health.CompletedSuccessfully)
					if err != nil {
						reason := health.Reason(waitCtx, err, "timed out waiting to complete")
						if r.ready.wait(context.Background()) == nil { // not already reported
							fail(name, reason, &st)
						}
					}
					r.completed.done(err)
				}()
			}
			cond := health.Healthy
			if r.oneShot {
				cond = health.Ready
			}
			retries := 3
			if hc := r.spec.Config.Healthcheck; hc != nil && hc.Retries > 0 {
				retries = hc.Retries
			}
			lastProbes := -1
			var observe func(health.State)
			if observeProbes {
				observe = func(st health.State) {
					if st.Health == "" || len(st.Probes) == 0 || len(st.Probes) == lastProbes {
						return
					}
					lastProbes = len(st.Probes)
					detail := fmt.Sprintf("probe %d, %d/%d failed", len(st.Probes), st.Failing, retries)
					if n := len(st.Probes); n > 0 && st.Probes[n-1].Output != "" {
						detail += ": " + firstLine(st.Probes[n-1].Output)
					}
					emit(name, StateHealth, detail)
				}
			}
			st, err := health.WaitObserved(waitCtx, cli, r.id, cond, observe)
			if err != nil {
				timedOut := "timed out waiting to be ready"
				if cond == health.Healthy && st.Health != "" {
					timedOut = fmt.Sprintf("timed out waiting to be healthy (health: %s)", st.Health)
				}
				reason := health.Reason(waitCtx, err, timedOut)
				fail(name, reason, &st)
				r.ready.done(errors.New(reason))
				r.completed.done(errors.New(reason))
				return
			}
			if st.Status == container.StateExited {
				emit(name, StateCompleted, "exited 0")
				r.completed.done(nil)
			} else if r.oneShot && st.Health == "" {
				emit(name, StateStarted, "one-shot job running; dependents that need it completed wait for its exit")
			} else {
				emit(name, StateHealthy, healthDetail(st))
			}
			r.ready.done(nil)
		}(name, runs[name])
	}
	wg.Wait()
	if len(failures) > 0 {
		diagCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		sort.Slice(failures, func(i, j int) bool { return failures[i].Service < failures[j].Service })
		for _, f := range failures {
			if r := runs[f.Service]; r != nil && r.id != "" {
				f.Logs = lastLogs(diagCtx, cli, r.id, diagnosisLogLines)
			}
			res.Failures = append(res.Failures, *f)
		}
		return res, &FailedError{Failures: res.Failures}
	}
	if ctx.Err() != nil {
		return res, ctx.Err()
	}
	return res, nil
}

// create makes the service's container, first stopping (the way it asks to
// be stopped: its stop_signal, then its stop_grace_period, 10 s by default)
// and removing the old one when recreating, so that a database being
// recreated shuts down cleanly instead of being killed.
func (r *svcRun) create(ctx context.Context, cli engine.Engine, name string, emit func(string, string, string)) error {
	if r.action == "recreate" {
		emit(name, StateRecreating, r.reason)
		if _, err := cli.ContainerStop(ctx, r.existing.ID, client.ContainerStopOptions{}); err != nil && !cerrdefs.IsNotFound(err) {
			return fmt.Errorf("stopping the old container: %w", err)
		}
		if _, err := cli.ContainerRemove(ctx, r.existing.ID, client.ContainerRemoveOptions{Force: true}); err != nil && !cerrdefs.IsNotFound(err) {
			return fmt.Errorf("removing the old container: %w", err)
		}
	}
	emit(name, StateCreating, r.spec.Name)
	id, err := createContainer(ctx, cli, r.spec)
	if err != nil {
		emit(name, StateFailed, err.Error())
		return err
	}
	r.id = id
	emit(name, StateCreated, "")
	return nil
}

// abort fails every gate of a service that will not run.
func (r *svcRun) abort(err error) {
	r.started.done(err)
	r.ready.done(err)
	r.completed.done(err)
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
	return fmt.Sprintf("after %d probe(s)", len(st.Probes))
}

// decide what to do with a service given its existing container.
func decide(c *ProjectContainer, hash string, oneShot bool, recreate string) (action, reason string, existing *ProjectContainer) {
	if c == nil {
		return "create", "", nil
	}
	same := c.ConfigHash == hash
	switch {
	case recreate == "force":
		return "recreate", "--force-recreate", c
	case !same && recreate != "never":
		return "recreate", "configuration changed", c
	case c.State == string(container.StateRunning):
		return "unchanged", "", c
	case oneShot && c.State == string(container.StateExited) && strings.Contains(c.Status, "Exited (0)"):
		return "done", "completed earlier", c
	}
	return "start", "stopped", c
}

// selectServices returns the services to run in dependency order: the
// requested ones (all when none) and what they depend on. A dependency on a
// service that is not in the project (its profile is inactive) is skipped
// with a note when it is required: false, and is an error otherwise.
func selectServices(p *types.Project, requested []string) (names []string, levels map[string]int, notes []string, err error) {
	skipped := map[string][]string{} // inactive optional dependency -> who named it
	want := map[string]bool{}
	var visit func(name string, from string) error
	visit = func(name, from string) error {
		s, ok := p.Services[name]
		if !ok {
			if from == "" {
				return fmt.Errorf("no service %q in the project (its profile may be inactive)", name)
			}
			return fmt.Errorf("service %s depends on %s, which is not active; enable its profile or mark the dependency required: false", from, name)
		}
		if want[name] {
			return nil
		}
		want[name] = true
		for dep, d := range s.DependsOn {
			if _, ok := p.Services[dep]; !ok && !d.Required {
				skipped[dep] = append(skipped[dep], name)
				continue
			}
			if err := visit(dep, name); err != nil {
				return err
			}
		}
		return nil
	}
	if len(requested) == 0 {
		for name := range p.Services {
			requested = append(requested, name)
		}
	}
	for _, n := range requested {
		if err := visit(n, ""); err != nil {
			return nil, nil, nil, err
		}
	}
	// Disabled services compose-go kept aside also count as inactive.
	out := make([]string, 0, len(want))
	for n := range want {
		out = append(out, n)
	}
	levels = dependencyLevels(p, out)
	sort.Slice(out, func(i, j int) bool {
		if levels[out[i]] != levels[out[j]] {
			return levels[out[i]] < levels[out[j]]
		}
		return out[i] < out[j]
	})
	// One note per inactive dependency, naming who would have used it.
	for dep, by := range skipped {
		sort.Strings(by)
		notes = append(notes, fmt.Sprintf("optional dependency %s is not active (its profile is off), skipped for %s", dep, strings.Join(by, ", ")))
	}
	sort.Strings(notes)
	return out, levels, notes, nil
}

// dependencyLevels gives each service its depth in the dependency graph.
func dependencyLevels(p *types.Project, names []string) map[string]int {
	levels := map[string]int{}
	var depth func(string, int) int
	depth = func(n string, guard int) int {
		if l, ok := levels[n]; ok {
			return l
		}
		if guard > len(p.Services) {
			return 0 // a cycle; compose-go rejects those at load
		}
		l := 0
		for dep := range p.Services[n].DependsOn {
			if _, ok := p.Services[dep]; ok {
				l = max(l, depth(dep, guard+1)+1)
			}
		}
		levels[n] = l
		return l
	}
	for _, n := range names {
		depth(n, 0)
	}
	return levels
}

func serviceLabels(p *types.Project, s types.ServiceConfig, hash, envFile string, o UpOptions) map[string]string {
	return map[string]string{
		LabelProject:         p.Name,
		LabelService:         s.Name,
		LabelNumber:          "1",
		LabelOneoff:          "False",
		LabelConfigHash:      hash,
		LabelWorkingDir:      p.WorkingDir,
		LabelConfigFiles:     strings.Join(o.ConfigFiles, ","),
		LabelEnvironmentFile: envFile,
		LabelDependencies:    dependsOnLabel(s),
		LabelImage:           s.Image,
		LabelVersion:         o.Version,
	}
}

// envFileLabel is the project's .env when it has one (compose's
// environment_file label).
func envFileLabel(dir string) string {
	path := filepath.Join(dir, ".env")
	if _, err := os.Stat(path); err == nil {
		return path
	}
	return ""
}

// projectContainers maps service → its (non one-off) container.
func projectContainers(ctx context.Context, cli engine.Engine, project string) (map[string]*ProjectContainer, error) {
	cs, err := List(ctx, cli, project, true)
	if err != nil {
		return nil, err
	}
	out := map[string]*ProjectContainer{}
	for i := range cs {
		if !cs[i].Oneoff {
			out[cs[i].Service] = &cs[i]
		}
	}
	return out, nil
}

func ensureNetworks(ctx context.Context, cli engine.Engine, p *types.Project, runs map[string]*svcRun, version string) error {
	used := map[string]bool{}
	for _, r := range runs {
		for key := range r.spec.Service.Networks {
			used[key] = true
		}
	}
	for key := range used {
		n := p.Networks[key]
		name := NetworkName(p, key)
		if _, err := cli.NetworkInspect(ctx, name, client.NetworkInspectOptions{}); err == nil {
			continue
		} else if !cerrdefs.IsNotFound(err) {
			return fmt.Errorf("network %s: %w", name, err)
		}
		if bool(n.External) {
			return fmt.Errorf("external network %s does not exist; create it (docker network create %s)", name, name)
		}
		labels := map[string]string{LabelProject: p.Name, LabelNetwork: key, LabelVersion: version}
		for k, v := range n.Labels {
			labels[k] = v
		}
		driver := n.Driver
		if driver == "" {
			driver = "bridge"
		}
		if _, err := cli.NetworkCreate(ctx, name, client.NetworkCreateOptions{Driver: driver, Internal: n.Internal, Options: n.DriverOpts, Labels: labels, Attachable: n.Attachable}); err != nil && !cerrdefs.IsConflict(err) {
			return fmt.Errorf("creating network %s: %w", name, err)
		}
	}
	return nil
}

func ensureVolumes(ctx context.Context, cli engine.Engine, p *types.Project, runs map[string]*svcRun, version string) error {
	used := map[string]bool{}
	for _, r := range runs {
		for _, v := range r.spec.Service.Volumes {
			if v.Type == types.VolumeTypeVolume && v.Source != "" {
				used[v.Source] = true
			}
		}
	}
	for key := range used {
		v := p.Volumes[key]
		name := VolumeName(p, key)
		if _, err := cli.VolumeInspect(ctx, name, client.VolumeInspectOptions{}); err == nil {
			continue
		} else if !cerrdefs.IsNotFound(err) {
			return fmt.Errorf("volume %s: %w", name, err)
		}
		if bool(v.External) {
			return fmt.Errorf("external volume %s does not exist; create it (docker volume create %s)", name, name)
		}
		labels := map[string]string{LabelProject: p.Name, LabelVolume: key, LabelVersion: version}
		for k, val := range v.Labels {
			labels[k] = val
		}
		if _, err := cli.VolumeCreate(ctx, client.VolumeCreateOptions{Name: name, Driver: v.Driver, DriverOpts: v.DriverOpts, Labels: labels}); err != nil {
			return fmt.Errorf("creating volume %s: %w", name, err)
		}
	}
	return nil
}

// ensureBindDirs creates missing bind-mount sources as directories, as
// docker compose does.
func ensureBindDirs(runs map[string]*svcRun) error {
	for name, r := range runs {
		for _, m := range r.spec.Host.Mounts {
			if m.Type != mount.TypeBind {
				continue
			}
			if _, err := os.Stat(m.Source); os.IsNotExist(err) {
				if err := os.MkdirAll(m.Source, 0o755); err != nil {
					return fmt.Errorf("service %s: creating bind-mount directory %s: %w", name, m.Source, err)
				}
			}
		}
	}
	return nil
}

// ensureImages pulls the images that are not present, all at once (the
// engine bounds concurrent layer downloads itself), and reports each
// failure with the image and the services that use it.
func ensureImages(ctx context.Context, cli engine.Engine, runs map[string]*svcRun,
	auth func(context.Context, string) (string, error), emit func(string, string, string)) error {
	byImage := map[string][]string{}
	for name, r := range runs {
		if r.action == "create" || r.action == "recreate" {
			byImage[r.spec.Config.Image] = append(byImage[r.spec.Config.Image], name)
		}
	}
	var (
		errs errList
		wg   sync.WaitGroup
	)
	for img, services := range byImage {
		sort.Strings(services)
		if _, err := cli.ImageInspect(ctx, img); err == nil {
			continue
		} else if !cerrdefs.IsNotFound(err) {
			return fmt.Errorf("image %s: %w", img, err)
		}
		wg.Add(1)
		go func(img string, services []string) {
			defer wg.Done()
			var registryAuth string
			if auth != nil {
				a, err := auth(ctx, img)
				if err != nil {
					errs.add(fmt.Errorf("image %s: finding registry credentials: %w", img, err))
					return
				}
				registryAuth = a
			}
			if err := pullImage(ctx, cli, img, registryAuth, func(detail string) {
				for _, s := range services {
					emit(s, StatePulling, detail)
				}
			}); err != nil {
				who := "service " + services[0]
				if len(services) > 1 {
					who = "services " + strings.Join(services, ", ")
				}
				errs.add(fmt.Errorf("image %s (%s) is not present and could not be pulled: %v", img, who, err))
			}
		}(img, services)
	}
	wg.Wait()
	return errs.join()
}

// pullImage pulls img, reporting the sum of its layers' progress at most
// twice a second.
func pullImage(ctx context.Context, cli engine.Engine, img, registryAuth string, progress func(detail string)) error {
	progress(img)
	resp, err := cli.ImagePull(ctx, img, client.ImagePullOptions{RegistryAuth: registryAuth})
	if err != nil {
		return err
	}
	defer resp.Close()
	layers := map[string][2]int64{}
	last := time.Time{}
	for msg, err := range resp.JSONMessages(ctx) {
		if err != nil {
			return err
		}
		if msg.Error != nil {
			return errors.New(msg.Error.Message)
		}
		if msg.Progress != nil && msg.ID != "" && msg.Progress.Total > 0 {
			layers[msg.ID] = [2]int64{msg.Progress.Current, msg.Progress.Total}
		}
		if time.Since(last) > 500*time.Millisecond && len(layers) > 0 {
			var cur, total int64
			for _, l := range layers {
				cur, total = cur+l[0], total+l[1]
			}
			progress(fmt.Sprintf("%s %s/%s (%d layers)", img, units.BytesSize(float64(cur)), units.BytesSize(float64(total)), len(layers)))
			last = time.Now()
		}
	}
	// The engine ends a pull it could not finish with an error message;
	// make sure the image is really there.
	if _, err := cli.ImageInspect(ctx, img); err != nil {
		return fmt.Errorf("pull ended but the image is not present: %w", err)
	}
	return nil
}

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

// lastLogs returns the last n log lines of a container.
func lastLogs(ctx context.Context, cli engine.Engine, id string, n int) []string {
	rc, err := cli.ContainerLogs(ctx, id, client.ContainerLogsOptions{ShowStdout: true, ShowStderr: true, Tail: fmt.Sprint(n)})
	if err != nil {
		return []string{"(logs unavailable: " + err.Error() + ")"}
	}
	defer rc.Close()
	var b bytes.Buffer
	if _, err := stdcopyDemux(&b, rc); err != nil {
		return []string{"(logs unreadable: " + err.Error() + ")"}
	}
	lines := strings.Split(strings.TrimRight(b.String(), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return lines
}
