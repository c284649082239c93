package compose

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/client"

	"github.com/difyctl/difyctl/health"
	"github.com/difyctl/difyctl/internal/engine"
)

// ProjectContainer is one container of a project, whoever created it.
type ProjectContainer struct {
	ID        string   `json:"id"`
	Name      string   `json:"name"`
	Service   string   `json:"service"`
	State     string   `json:"state"`
	Health    string   `json:"health,omitempty"`
	Status    string   `json:"status"`
	Uptime    string   `json:"uptime,omitempty"`  // running containers: "5 minutes"
	Release   string   `json:"release,omitempty"` // the Dify release it was created for (LabelDifyRelease)
	Ports     []string `json:"ports,omitempty"`
	Image     string   `json:"image"`
	Created   int64    `json:"created"`
	DependsOn []string `json:"dependsOn,omitempty"`
	// Conditions holds the depends_on condition on each of DependsOn.
	Conditions map[string]string `json:"-"`
	ConfigHash string            `json:"configHash,omitempty"`
	Oneoff     bool              `json:"oneoff,omitempty"`
	// Anonymous names the anonymous volumes it mounts (an image's VOLUME;
	// after a replacement, the ones it took over from the old container).
	Anonymous []string `json:"-"`
}

// List returns the project's containers (labels only: works on what docker
// compose created too), sorted by service.
func List(ctx context.Context, cli engine.Engine, project string, all bool) ([]ProjectContainer, error) {
	res, err := cli.ContainerList(ctx, client.ContainerListOptions{All: all, Filters: make(client.Filters).Add("label", ProjectFilter(project))})
	if err != nil {
		return nil, fmt.Errorf("listing containers of project %s: %w", project, err)
	}
	var out []ProjectContainer
	for _, c := range res.Items {
		pc := ProjectContainer{ID: c.ID, Service: c.Labels[LabelService], State: string(c.State), Status: c.Status, Image: c.Image, Created: c.Created,
			ConfigHash: c.Labels[LabelConfigHash], Oneoff: c.Labels[LabelOneoff] == "True", Release: c.Labels[LabelDifyRelease]}
		pc.DependsOn, pc.Conditions = parseDependsOnLabel(c.Labels[LabelDependencies])
		for _, m := range c.Mounts {
			if m.Type == mount.TypeVolume && isAnonymous(m.Name) {
				pc.Anonymous = append(pc.Anonymous, m.Name)
			}
		}
		if len(c.Names) > 0 {
			pc.Name = strings.TrimPrefix(c.Names[0], "/")
		}
		if c.Health != nil {
			pc.Health = string(c.Health.Status)
		} else { // engines before API 1.52 report health only in the status text
			for _, h := range []string{"healthy", "unhealthy", "starting"} {
				if strings.Contains(c.Status, "("+h+")") || strings.Contains(c.Status, "(health: "+h+")") {
					pc.Health = h
				}
			}
		}
		for _, p := range c.Ports {
			if p.PublicPort != 0 {
				ip := ""
				if p.IP.IsValid() {
					ip = p.IP.String() + ":"
				}
				pc.Ports = append(pc.Ports, fmt.Sprintf("%s%d->%d/%s", ip, p.PublicPort, p.PrivatePort, p.Type))
			}
		}
		if up, ok := strings.CutPrefix(c.Status, "Up "); ok {
			up, _, _ = strings.Cut(up, " (")
			pc.Uptime = up
		}
		sort.Strings(pc.Ports)
		pc.Ports = dedupe(pc.Ports)
		out = append(out, pc)
	}
	sort.Slice(out, func(i, j int) bool {
		return out[i].Service < out[j].Service || out[i].Service == out[j].Service && out[i].Name < out[j].Name
	})
	return out, nil
}

func dedupe(ss []string) []string {
	var out []string
	for i, s := range ss {
		if i == 0 || s != ss[i-1] {
			out = append(out, s)
		}
	}
	return out
}

// DownOptions for Down.
type DownOptions struct {
	Project string
	Volumes bool
	// Timeout bounds each container's stop; nil: the container's own
	// stop_grace_period (10 s when it has none), as docker compose does.
	Timeout *time.Duration
	Report  Reporter
}

// Down stops and removes the project's containers, dependents first, then
// its networks, and its volumes when asked. As docker compose down, a
// container's anonymous volumes go with it only with Volumes (without,
// they stay: compose keeps them); with Volumes, the ones a replacement took
// over from the old container go too (the engine keeps a volume mounted
// by name on a removal with volumes, which leaves those behind with
// compose's -v), unless another container still uses one.
func Down(ctx context.Context, cli engine.Engine, o DownOptions) error {
	cs, err := List(ctx, cli, o.Project, true)
	if err != nil {
		return err
	}
	// Stop dependents first; a container is removed right after it stopped,
	// without holding back what it depends on.
	err = stopWalk(ctx, cli, cs, o.Timeout, o.Report, func(c ProjectContainer) error {
		if _, err := cli.ContainerRemove(ctx, c.ID, client.ContainerRemoveOptions{Force: true, RemoveVolumes: o.Volumes}); err != nil && !cerrdefs.IsNotFound(err) {
			return err
		}
		o.Report.emit(c.Service, StateRemoved, c.Name)
		return nil
	})
	if err != nil {
		return err
	}
	f := make(client.Filters).Add("label", ProjectFilter(o.Project))
	nets, err := cli.NetworkList(ctx, client.NetworkListOptions{Filters: f})
	if err != nil {
		return err
	}
	var errs []error
	for _, n := range nets.Items {
		if _, err := cli.NetworkRemove(ctx, n.ID, client.NetworkRemoveOptions{}); err != nil && !cerrdefs.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("network %s: %w", n.Name, err))
		} else {
			o.Report.emit("network "+n.Name, StateRemoved, "")
		}
	}
	if o.Volumes {
		for _, c := range cs {
			for _, v := range c.Anonymous {
				_, err := cli.VolumeRemove(ctx, v, client.VolumeRemoveOptions{})
				switch {
				case err == nil:
					o.Report.emit("volume "+v, StateRemoved, "")
				case !cerrdefs.IsNotFound(err) && !cerrdefs.IsConflict(err): // gone with its container, or still used elsewhere
					errs = append(errs, fmt.Errorf("anonymous volume %s of %s: %w", v, c.Name, err))
				}
			}
		}
		vols, err := cli.VolumeList(ctx, client.VolumeListOptions{Filters: f})
		if err != nil {
			return err
		}
		for _, v := range vols.Items {
			if _, err := cli.VolumeRemove(ctx, v.Name, client.VolumeRemoveOptions{}); err != nil && !cerrdefs.IsNotFound(err) {
				errs = append(errs, fmt.Errorf("volume %s: %w", v.Name, err))
			} else {
				o.Report.emit("volume "+v.Name, StateRemoved, "")
			}
		}
	}
	return errors.Join(errs...)
}

// stopWalk stops containers, dependents first, each service once every
// service depending on it has stopped (all of them, even when some fail);
// then, when set, runs right after a container stopped without holding
// anything back. The errors are joined, each naming its container.
func stopWalk(ctx context.Context, cli engine.Engine, cs []ProjectContainer, timeout *time.Duration, report Reporter, then func(ProjectContainer) error) error {
	nodes, edges := containerEdges(cs)
	groups := byService(cs)
	var errs errList
	var wg sync.WaitGroup
	reversed(nodes, edges).walk(ctx, true, func(svc string, own gates, _ *blocked) {
		each(groups[svc], func(c ProjectContainer) {
			report.emit(c.Service, StateStopping, c.Name)
			if c.State == string(container.StateRunning) || c.State == string(container.StateRestarting) || then == nil {
				if _, err := cli.ContainerStop(ctx, c.ID, stopOptions(timeout)); err != nil && !(then != nil && cerrdefs.IsNotFound(err)) {
					errs.add(fmt.Errorf("%s: %w", c.Name, err))
					return
				}
				report.emit(c.Service, StateStopped, c.Name)
			}
		})
		own.open(health.Started, nil)
		if then != nil {
			for _, c := range groups[svc] {
				wg.Add(1)
				go func() {
					defer wg.Done()
					if err := then(c); err != nil {
						errs.add(fmt.Errorf("%s: %w", c.Name, err))
					}
				}()
			}
		}
	})
	wg.Wait()
	return errs.join()
}

// each runs f on every container at once and waits.
func each(cs []ProjectContainer, f func(ProjectContainer)) {
	var wg sync.WaitGroup
	for _, c := range cs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f(c)
		}()
	}
	wg.Wait()
}

// Select keeps the containers of the named services (all when none).
func Select(cs []ProjectContainer, services []string) ([]ProjectContainer, error) {
	if len(services) == 0 {
		return cs, nil
	}
	want := map[string]bool{}
	for _, s := range services {
		want[s] = true
	}
	var out []ProjectContainer
	for _, c := range cs {
		if want[c.Service] {
			out = append(out, c)
			delete(want, c.Service)
		}
	}
	if len(want) > 0 {
		var missing []string
		for s := range want {
			missing = append(missing, s)
		}
		sort.Strings(missing)
		return nil, fmt.Errorf("no container for service(s) %s", strings.Join(missing, ", "))
	}
	return out, nil
}

// stopOptions bounds a stop by timeout, or leaves it to the container's
// own stop_grace_period when timeout is nil.
func stopOptions(timeout *time.Duration) client.ContainerStopOptions {
	if timeout == nil {
		return client.ContainerStopOptions{}
	}
	t := int(timeout.Seconds())
	return client.ContainerStopOptions{Timeout: &t}
}

// Stop stops containers, dependents first; timeout as DownOptions.Timeout.
func Stop(ctx context.Context, cli engine.Engine, cs []ProjectContainer, timeout *time.Duration, report Reporter) error {
	return stopWalk(ctx, cli, cs, timeout, report, nil)
}

// Start starts containers, dependencies first, and gates each service on
// its depends_on conditions as up does, edge by edge: a service starts once
// what it depends on is started, healthy or completed successfully, as its
// own depends_on label says (a dependent asking only for started does not
// wait for health because a sibling asks for it). A service whose
// dependency fails is not started. ctx bounds the waiting.
//
// When a service fails, the error is a *FailedError with its diagnosis
// (reason, probes, last log lines); the services not started because of it
// are named in the error it wraps.
func Start(ctx context.Context, cli engine.Engine, cs []ProjectContainer, report Reporter) error {
	return StartWith(ctx, cli, cs, report, StartOptions{})
}

// StartOptions for StartWith.
type StartOptions struct {
	// ProbeInterval as UpOptions.ProbeInterval.
	ProbeInterval time.Duration
}

// StartWith is Start with options.
func StartWith(ctx context.Context, cli engine.Engine, cs []ProjectContainer, report Reporter, o StartOptions) error {
	nodes, edges := containerEdges(cs)
	st := &starter{ctx: ctx, cli: cli, report: report, needs: map[string]map[health.Condition]bool{},
		ready: readiness{cli: cli, report: report, probeInterval: o.ProbeInterval}}
	for _, es := range edges {
		for _, e := range es {
			if st.needs[e.to] == nil {
				st.needs[e.to] = map[health.Condition]bool{}
			}
			st.needs[e.to][e.cond] = true
		}
	}
	groups := byService(cs)
	g := newGraph(nodes, edges)
	starts := map[string]int{}
	for svc, cs := range groups {
		starts[svc] = len(cs)
	}
	st.slots = newStartSlots(engineCPUs(ctx, cli), g.priorities(nil), starts, nil)
	g.walk(ctx, false, func(svc string, own gates, b *blocked) {
		if b != nil {
			st.slots.skip(svc, len(groups[svc]))
			for _, c := range groups[svc] {
				st.errs.add(fmt.Errorf("%s: not started: dependency %s failed", c.Name, b.dep))
			}
			return
		}
		st.service(svc, groups[svc], own)
	})
	if fe := st.fails.report(ctx, cli, st.errs.join()); fe != nil {
		return fe
	}
	return st.errs.join()
}

// starter is one run of Start.
type starter struct {
	ctx    context.Context // bounds the waiting
	cli    engine.Engine
	report Reporter
	needs  map[string]map[health.Condition]bool // what dependents wait for, per service
	errs   errList
	fails  failures
	ready  readiness
	slots  *startSlots
}

// service starts a service's containers, then waits for what its
// dependents wait for (health, completion), opening its gates as it goes.
func (st *starter) service(svc string, cs []ProjectContainer, own gates) {
	var failed sync.Once
	var anyFailed atomic.Bool
	fail := func(c ProjectContainer, reason string, hs *health.State) {
		anyFailed.Store(true)
		st.report.emit(c.Service, StateFailed, reason)
		st.errs.add(fmt.Errorf("%s: %s", c.Name, reason))
		if hs != nil {
			st.fails.add(c.Service, c.ID, reason, hs)
		}
		failed.Do(func() { own.settle(errors.New(reason)) })
	}
	each(cs, func(c ProjectContainer) {
		// ctx bounds the waiting, not the start itself: a busy engine
		// taking longer than --wait-timeout to start a container is not a
		// dependency that never became ready.
		// The slot is awaited on ctx (a queue is waiting, Ctrl-C ends it);
		// the start's own bound begins when the engine is asked.
		release, err := st.slots.acquire(st.ctx, svc)
		if err == nil {
			st.report.emit(c.Service, StateStarting, c.Name)
			startCtx, cancel := context.WithTimeout(context.WithoutCancel(st.ctx), 2*time.Minute)
			_, err = st.cli.ContainerStart(startCtx, c.ID, client.ContainerStartOptions{})
			cancel()
			release()
		}
		if err != nil {
			fail(c, err.Error(), nil)
			return
		}
		st.report.emit(c.Service, StateStarted, c.Name)
	})
	if anyFailed.Load() {
		return
	}
	own.open(health.Started, nil)
	for _, cond := range []health.Condition{health.Healthy, health.CompletedSuccessfully} {
		if !st.needs[svc][cond] || cond == health.Healthy && st.needs[svc][health.CompletedSuccessfully] {
			continue // nobody waits for it; completion implies health
		}
		each(cs, func(c ProjectContainer) {
			hs, err := st.ready.wait(st.ctx, c.Service, c.ID, cond, nil)
			if err != nil {
				fail(c, health.Reason(st.ctx, err, "timed out waiting for it "+conditionWord(string(cond))), &hs)
			} else if cond == health.CompletedSuccessfully {
				st.report.emit(c.Service, StateCompleted, "exited 0")
			} else {
				st.report.emit(c.Service, StateHealthy, healthDetail(hs))
			}
		})
		if anyFailed.Load() {
			return
		}
		own.open(cond, nil)
		own.open(health.Healthy, nil) // completed implies healthy
	}
}

// LogsOptions for Logs.
type LogsOptions struct {
	Follow bool
	Tail   string
	Since  string
	// Escape shows control characters escaped (stdout is a terminal); the
	// raw stream otherwise.
	Escape bool
	JSON   bool // one JSON object a line: {"service", "container", "line"}
}

// Logs writes the containers' logs to w, each line prefixed with its service.
func Logs(ctx context.Context, cli engine.Engine, cs []ProjectContainer, o LogsOptions, w io.Writer) error {
	width := 0
	for _, c := range cs {
		width = max(width, len(c.Service))
	}
	out := newLogOut(w, o.Follow) // one line at a time on w, buffered (logline.go)
	defer out.close()
	var wg sync.WaitGroup
	var errs errList
	for _, c := range cs {
		wg.Add(1)
		go func(c ProjectContainer) {
			defer wg.Done()
			rc, err := cli.ContainerLogs(ctx, c.ID, client.ContainerLogsOptions{ShowStdout: true, ShowStderr: true, Follow: o.Follow, Tail: o.Tail, Since: o.Since})
			if err != nil {
				errs.add(fmt.Errorf("%s: %w", c.Name, err))
				return
			}
			defer rc.Close()
			var pw *lineWriter
			if o.JSON {
				pw = newJSONLineWriter(out, c.Service, c.Name)
			} else {
				pw = newLineWriter(out, fmt.Sprintf("%-*s | ", width, c.Service), o.Escape)
			}
			if _, err := stdcopyDemux(pw, rc); err != nil && ctx.Err() == nil {
				errs.add(fmt.Errorf("%s: %w", c.Name, err))
			}
			pw.flush()
		}(c)
	}
	wg.Wait()
	return errs.join()
}

// stdcopyDemux merges a container's multiplexed stdout and stderr into w.
func stdcopyDemux(w io.Writer, r io.Reader) (int64, error) { return stdcopy.StdCopy(w, w, r) }
