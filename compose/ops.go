package compose

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"

	"github.com/difyctl/difyctl/health"
)

// ProjectContainer is one container of a project, whoever created it.
type ProjectContainer struct {
	ID        string   `json:"id"`
	Name      string   `json:"name"`
	Service   string   `json:"service"`
	State     string   `json:"state"`
	Health    string   `json:"health,omitempty"`
	Status    string   `json:"status"`
	Uptime    string   `json:"uptime,omitempty"` // running containers: "5 minutes"
	Ports     []string `json:"ports,omitempty"`
	Image     string   `json:"image"`
	Created   int64    `json:"created"`
	DependsOn []string `json:"dependsOn,omitempty"`
	// Conditions holds the depends_on condition on each of DependsOn.
	Conditions map[string]string `json:"-"`
	ConfigHash string            `json:"configHash,omitempty"`
	Oneoff     bool              `json:"oneoff,omitempty"`
}

// List returns the project's containers (labels only: works on what docker
// compose created too), sorted by service.
func List(ctx context.Context, cli *client.Client, project string, all bool) ([]ProjectContainer, error) {
	res, err := cli.ContainerList(ctx, client.ContainerListOptions{All: all, Filters: make(client.Filters).Add("label", ProjectFilter(project))})
	if err != nil {
		return nil, fmt.Errorf("listing containers of project %s: %w", project, err)
	}
	var out []ProjectContainer
	for _, c := range res.Items {
		pc := ProjectContainer{ID: c.ID, Service: c.Labels[LabelService], State: string(c.State), Status: c.Status, Image: c.Image, Created: c.Created,
			ConfigHash: c.Labels[LabelConfigHash], Oneoff: c.Labels[LabelOneoff] == "True"}
		pc.DependsOn, pc.Conditions = parseDependsOnLabel(c.Labels[LabelDependencies])
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
// its networks, and its volumes when asked.
func Down(ctx context.Context, cli *client.Client, o DownOptions) error {
	report := o.Report
	if report == nil {
		report = func(Event) {}
	}
	cs, err := List(ctx, cli, o.Project, true)
	if err != nil {
		return err
	}
	// Stop dependents first; a container is removed right after it stopped,
	// without holding back what it depends on.
	err = walk(cs, dependentsFirst, func(c ProjectContainer) error {
		report(Event{Time: time.Now(), Service: c.Service, State: StateStopping, Detail: c.Name})
		if c.State == string(container.StateRunning) || c.State == string(container.StateRestarting) {
			if _, err := cli.ContainerStop(ctx, c.ID, stopOptions(o.Timeout)); err != nil && !cerrdefs.IsNotFound(err) {
				return err
			}
			report(Event{Time: time.Now(), Service: c.Service, State: StateStopped, Detail: c.Name})
		}
		return nil
	}, func(c ProjectContainer) error {
		if _, err := cli.ContainerRemove(ctx, c.ID, client.ContainerRemoveOptions{Force: true, RemoveVolumes: o.Volumes}); err != nil && !cerrdefs.IsNotFound(err) {
			return err
		}
		report(Event{Time: time.Now(), Service: c.Service, State: StateRemoved, Detail: c.Name})
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
			report(Event{Time: time.Now(), Service: "network " + n.Name, State: StateRemoved})
		}
	}
	if o.Volumes {
		vols, err := cli.VolumeList(ctx, client.VolumeListOptions{Filters: f})
		if err != nil {
			return err
		}
		for _, v := range vols.Items {
			if _, err := cli.VolumeRemove(ctx, v.Name, client.VolumeRemoveOptions{}); err != nil && !cerrdefs.IsNotFound(err) {
				errs = append(errs, fmt.Errorf("volume %s: %w", v.Name, err))
			} else {
				report(Event{Time: time.Now(), Service: "volume " + v.Name, State: StateRemoved})
			}
		}
	}
	return errors.Join(errs...)
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
func Stop(ctx context.Context, cli *client.Client, cs []ProjectContainer, timeout *time.Duration, report Reporter) error {
	return walk(cs, dependentsFirst, func(c ProjectContainer) error {
		report(Event{Time: time.Now(), Service: c.Service, State: StateStopping, Detail: c.Name})
		if _, err := cli.ContainerStop(ctx, c.ID, stopOptions(timeout)); err != nil {
			return err
		}
		report(Event{Time: time.Now(), Service: c.Service, State: StateStopped, Detail: c.Name})
		return nil
	}, nil)
}

// Start starts containers, dependencies first, and gates each service on
// its depends_on conditions as up does: a service starts once what it
// depends on is started, healthy or completed successfully, as its
// depends_on label says. A service whose dependency fails is not started.
// ctx bounds the waiting.
//
// When a service fails, the error is a *FailedError with its diagnosis
// (reason, probes, last log lines); the services not started because of it
// are named in the error it wraps.
func Start(ctx context.Context, cli *client.Client, cs []ProjectContainer, report Reporter) error {
	need := neededConditions(cs)
	var (
		mu       sync.Mutex
		failures []Failure
	)
	err := walk(cs, dependenciesFirst, func(c ProjectContainer) error {
		report(Event{Time: time.Now(), Service: c.Service, State: StateStarting, Detail: c.Name})
		if _, err := cli.ContainerStart(ctx, c.ID, client.ContainerStartOptions{}); err != nil {
			report(Event{Time: time.Now(), Service: c.Service, State: StateFailed, Detail: err.Error()})
			return err
		}
		report(Event{Time: time.Now(), Service: c.Service, State: StateStarted, Detail: c.Name})
		cond := need[c.Service]
		if cond == health.Started {
			return nil
		}
		st, err := health.Wait(ctx, cli, c.ID, cond)
		if err != nil {
			reason := health.Reason(ctx, err, "timed out waiting for it "+conditionWord(string(cond)))
			report(Event{Time: time.Now(), Service: c.Service, State: StateFailed, Detail: reason})
			diagCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			f := Failure{Service: c.Service, Reason: reason, Probes: st.Probes, Logs: lastLogs(diagCtx, cli, c.ID, diagnosisLogLines)}
			cancel()
			mu.Lock()
			failures = append(failures, f)
			mu.Unlock()
			return errors.New(reason)
		}
		if cond == health.CompletedSuccessfully {
			report(Event{Time: time.Now(), Service: c.Service, State: StateCompleted, Detail: "exited 0"})
		} else {
			report(Event{Time: time.Now(), Service: c.Service, State: StateHealthy, Detail: healthDetail(st)})
		}
		return nil
	}, nil)
	if len(failures) > 0 {
		sort.Slice(failures, func(i, j int) bool { return failures[i].Service < failures[j].Service })
		return &FailedError{Failures: failures, Err: err}
	}
	return err
}

// neededConditions is, per service, what the services depending on it wait
// for: completed successfully over healthy over started.
func neededConditions(cs []ProjectContainer) map[string]health.Condition {
	rank := map[health.Condition]int{health.Started: 0, health.Healthy: 1, health.CompletedSuccessfully: 2}
	need := map[string]health.Condition{}
	for _, c := range cs {
		for dep, cond := range c.Conditions {
			hc := health.Condition(cond)
			if _, known := rank[hc]; !known {
				hc = health.Started
			}
			if cur, ok := need[dep]; !ok || rank[hc] > rank[cur] {
				need[dep] = hc
			}
		}
	}
	for _, c := range cs {
		if _, ok := need[c.Service]; !ok {
			need[c.Service] = health.Started
		}
	}
	return need
}

// LogsOptions for Logs.
type LogsOptions struct {
	Follow bool
	Tail   string
	Since  string
	// Escape shows control characters escaped (stdout is a terminal); the
	// raw stream otherwise.
	Escape bool
}

// Logs writes the containers' logs to w, each line prefixed with its service.
func Logs(ctx context.Context, cli *client.Client, cs []ProjectContainer, o LogsOptions, w io.Writer) error {
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
			pw := newLineWriter(out, fmt.Sprintf("%-*s | ", width, c.Service), o.Escape)
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
