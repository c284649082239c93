// Package enginefake is an in-memory Docker engine for unit tests: images,
// containers (created, started, stopped, renamed, removed, with their
// networks, aliases and anonymous volumes), networks, volumes and the
// container events health waits on. A test says how each service's
// container behaves once started (runs, becomes healthy or unhealthy,
// exits with a code, fails to start) and reads back what was called.
//
// It stands in for the engine in unit tests only; end-to-end tests run the
// real engine.
package enginefake

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"iter"
	"sort"
	"strings"
	"sync"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/api/types/image"
	"github.com/moby/moby/api/types/jsonstream"
	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/api/types/volume"
	"github.com/moby/moby/client"

	"github.com/difyctl/difyctl/internal/engine"
)

// Behaviour is what a service's container does once started.
type Behaviour struct {
	StartErr error // ContainerStart fails with this, for containers created after Behave
	since    int
	Exit     *int   // exits right away with this code
	Health   string // with a healthcheck: "healthy" or "unhealthy" right after start; "" stays "starting"
	Logs     string // what its log holds
	// Restarts: the engine restarts an exiting container as its restart
	// policy says (always, unless-stopped, on-failure), RestartCount
	// counting, each exit a die event: a crash loop (see ready.go).
	Restarts bool
	// Exec answers an exec in the container (difyctl's probes); nil: exec
	// is not modelled (see ready.go).
	Exec func(cmd []string, user string) ExecResult
}

// Exit is a helper for Behaviour.Exit.
func Exit(code int) *int { return &code }

// Container is one container of the fake engine.
type Container struct {
	ID, Name   string
	Config     *container.Config
	Host       *container.HostConfig
	ImageID    string
	Networks   map[string][]string // network name -> aliases
	Mounts     []container.MountPoint
	Status     container.ContainerState
	ExitCode   int
	Health     container.HealthStatus
	StartedAt  time.Time
	StartCount int
	// RestartCount is how often the engine restarted it since its last
	// start by hand.
	RestartCount int
	probes       []*container.HealthcheckResult
	seq          int
}

// Service is the compose service label of the container.
func (c *Container) Service() string { return c.Config.Labels["com.docker.compose.service"] }

// Image is a fake image: its ID and the paths it declares as VOLUME.
type Image struct {
	ID      string
	Volumes []string
}

// Engine is the fake. Its zero value is not usable: call New.
type Engine struct {
	mu         sync.Mutex
	images     map[string]Image // reference or ID -> image
	remote     map[string]Image // what a pull of the reference gets
	containers map[string]*Container
	networks   map[string]network.Inspect
	volumes    map[string]volume.Volume
	behaviour  map[string]Behaviour // by service
	failCreate map[string]error     // by service
	failRemove map[string]error     // by service
	subs       map[*sub]struct{}
	history    []events.Message // every event sent, oldest first
	execs      map[string]*execState
	execIDs    []string
	conc       map[string]int // execs running, by container name
	maxConc    map[string]int
	apiVersion string
	calls      []string
	archives   map[string][]byte // container ID:path -> tar stream (SetArchive)
	seq        int
	execFn     ExecFunc
	startFn    StartFunc
	runs       map[string]*execRun          // execs answered by execFn (exec.go)
	files      map[string]map[string][]byte // by container ID: path -> content
	cpus       int                          // what Info says (SetCPUs; default 64)
}

var _ engine.Engine = (*Engine)(nil)

// New returns an empty engine.
func New() *Engine {
	return &Engine{images: map[string]Image{}, remote: map[string]Image{}, containers: map[string]*Container{},
		networks: map[string]network.Inspect{}, volumes: map[string]volume.Volume{}, behaviour: map[string]Behaviour{},
		failCreate: map[string]error{}, failRemove: map[string]error{}, subs: map[*sub]struct{}{}}
}

// SetCPUs sets the CPUs Info reports (the bound on parallel starts).
func (e *Engine) SetCPUs(n int) {
	e.mu.Lock()
	e.cpus = n
	e.mu.Unlock()
}

// Info reports the engine host's CPUs (64 unless SetCPUs said otherwise).
func (e *Engine) Info(_ context.Context, _ client.InfoOptions) (client.SystemInfoResult, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	var r client.SystemInfoResult
	r.Info.NCPU = e.cpus
	if r.Info.NCPU == 0 {
		r.Info.NCPU = 64
	}
	return r, nil
}

// AddImage makes ref present locally.
func (e *Engine) AddImage(ref string, img Image) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.images[ref] = img
	e.images[img.ID] = img
}

// SetRemote says what a pull of ref gets (an error when not set).
func (e *Engine) SetRemote(ref string, img Image) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.remote[ref] = img
}

// Behave sets how service's containers behave once started.
func (e *Engine) Behave(service string, b Behaviour) {
	e.mu.Lock()
	defer e.mu.Unlock()
	b.since = e.seq
	e.behaviour[service] = b
}

// FailCreate makes creating service's container fail with err.
func (e *Engine) FailCreate(service string, err error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.failCreate[service] = err
}

// FailRemove makes removing service's containers fail with err.
func (e *Engine) FailRemove(service string, err error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.failRemove[service] = err
}

// Calls is every state-changing call so far, "verb name" each, in order.
func (e *Engine) Calls() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]string(nil), e.calls...)
}

// Container returns the container with that name or ID (nil when none).
func (e *Engine) Container(nameOrID string) *Container {
	e.mu.Lock()
	defer e.mu.Unlock()
	c, _ := e.find(nameOrID)
	if c == nil {
		return nil
	}
	cp := *c
	return &cp
}

// Containers returns every container, by name.
func (e *Engine) Containers() map[string]*Container {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := map[string]*Container{}
	for _, c := range e.containers {
		cp := *c
		out[c.Name] = &cp
	}
	return out
}

// SetState changes a container's state by hand (docker stop, a crash),
// with the event the engine would send.
func (e *Engine) SetState(name string, st container.ContainerState, exitCode int) {
	e.mu.Lock()
	c, _ := e.find(name)
	c.Status, c.ExitCode = st, exitCode
	id := c.ID
	e.mu.Unlock()
	e.emit(id, events.ActionDie)
}

// SetHealth changes a running container's health status by hand (the
// engine's probe passed or failed), with the event the engine would send.
func (e *Engine) SetHealth(name string, h container.HealthStatus) {
	e.mu.Lock()
	c, _ := e.find(name)
	c.Health = h
	id := c.ID
	e.mu.Unlock()
	e.emit(id, events.Action(string(events.ActionHealthStatus)+": "+string(h)))
}

// Disconnect removes a container from a network (docker network disconnect).
func (e *Engine) Disconnect(name, net string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	c, _ := e.find(name)
	delete(c.Networks, net)
}

func notFound(what string) error { return fmt.Errorf("%s: %w", what, cerrdefs.ErrNotFound) }

func (e *Engine) id(kind string) string {
	e.seq++
	sum := sha256.Sum256(fmt.Appendf(nil, "%s%d", kind, e.seq))
	return hex.EncodeToString(sum[:])
}

func (e *Engine) record(format string, a ...any) {
	e.calls = append(e.calls, fmt.Sprintf(format, a...))
}

// find looks a container up by ID, ID prefix or name; e.mu is held.
func (e *Engine) find(ref string) (*Container, error) {
	ref = strings.TrimPrefix(ref, "/")
	if c, ok := e.containers[ref]; ok {
		return c, nil
	}
	for _, c := range e.containers {
		if c.Name == ref || len(ref) >= 12 && strings.HasPrefix(c.ID, ref) {
			return c, nil
		}
	}
	return nil, notFound("No such container: " + ref)
}

func matchLabels(f client.Filters, labels map[string]string) bool {
	for want := range f["label"] {
		k, v, hasV := strings.Cut(want, "=")
		got, ok := labels[k]
		if !ok || hasV && got != v {
			return false
		}
	}
	return true
}

// ContainerList lists containers matching the label filters.
func (e *Engine) ContainerList(_ context.Context, o client.ContainerListOptions) (client.ContainerListResult, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	var res client.ContainerListResult
	for _, c := range e.containers {
		if !o.All && c.Status != container.StateRunning || !matchLabels(o.Filters, c.Config.Labels) {
			continue
		}
		s := container.Summary{ID: c.ID, Names: []string{"/" + c.Name}, Image: c.Config.Image, ImageID: c.ImageID, Labels: c.Config.Labels,
			State: c.Status, Status: statusText(c), Mounts: c.Mounts, NetworkSettings: &container.NetworkSettingsSummary{Networks: endpoints(c)}}
		if c.Health != "" {
			s.Health = &container.HealthSummary{Status: c.Health}
		}
		if c.Status == container.StateRunning {
			for port, bs := range c.Host.PortBindings {
				for _, b := range bs {
					var n uint16
					fmt.Sscan(b.HostPort, &n)
					s.Ports = append(s.Ports, container.PortSummary{IP: b.HostIP, PublicPort: n, PrivatePort: port.Num(), Type: string(port.Proto())})
				}
			}
		}
		res.Items = append(res.Items, s)
	}
	sort.Slice(res.Items, func(i, j int) bool { return res.Items[i].Names[0] < res.Items[j].Names[0] })
	return res, nil
}

func statusText(c *Container) string {
	switch c.Status {
	case container.StateRunning:
		if c.Health != "" {
			return "Up 1 second (" + string(c.Health) + ")"
		}
		return "Up 1 second"
	case container.StateExited:
		return fmt.Sprintf("Exited (%d) 1 second ago", c.ExitCode)
	}
	return "Created"
}

func endpoints(c *Container) map[string]*network.EndpointSettings {
	out := map[string]*network.EndpointSettings{}
	for n, a := range c.Networks {
		out[n] = &network.EndpointSettings{Aliases: append([]string(nil), a...)}
	}
	return out
}

// ContainerInspect describes a container.
func (e *Engine) ContainerInspect(_ context.Context, ref string, _ client.ContainerInspectOptions) (client.ContainerInspectResult, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	c, err := e.find(ref)
	if err != nil {
		return client.ContainerInspectResult{}, err
	}
	st := &container.State{Status: c.Status, Running: c.Status == container.StateRunning, ExitCode: c.ExitCode,
		StartedAt: c.StartedAt.Format(time.RFC3339Nano)}
	if c.Health != "" {
		st.Health = &container.Health{Status: c.Health, Log: append([]*container.HealthcheckResult(nil), c.probes...)}
	}
	return client.ContainerInspectResult{Container: container.InspectResponse{ID: c.ID, Name: "/" + c.Name, Image: c.ImageID, State: st, RestartCount: c.RestartCount,
		Config: c.Config, HostConfig: c.Host, Mounts: c.Mounts, NetworkSettings: &container.NetworkSettings{Networks: endpoints(c)}}}, nil
}

// ContainerCreate creates a container: its image must be present, its
// name free; the image's VOLUMEs not mounted otherwise get anonymous
// volumes.
func (e *Engine) ContainerCreate(_ context.Context, o client.ContainerCreateOptions) (client.ContainerCreateResult, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	svc := o.Config.Labels["com.docker.compose.service"]
	if err := e.failCreate[svc]; err != nil {
		return client.ContainerCreateResult{}, err
	}
	img, ok := e.images[o.Config.Image]
	if !ok {
		return client.ContainerCreateResult{}, notFound("No such image: " + o.Config.Image)
	}
	if _, err := e.find(o.Name); err == nil {
		return client.ContainerCreateResult{}, fmt.Errorf("Conflict. The container name %q is already in use: %w", "/"+o.Name, cerrdefs.ErrConflict)
	}
	c := &Container{ID: e.id("container"), seq: e.seq, Name: o.Name, Config: o.Config, Host: o.HostConfig, ImageID: img.ID,
		Networks: map[string][]string{}, Status: container.StateCreated}
	if o.NetworkingConfig != nil {
		for n, ep := range o.NetworkingConfig.EndpointsConfig {
			if _, ok := e.networks[n]; !ok {
				return client.ContainerCreateResult{}, notFound("network " + n)
			}
			c.Networks[n] = append([]string(nil), ep.Aliases...)
		}
	}
	mounted := map[string]bool{}
	for _, m := range o.HostConfig.Mounts {
		mounted[m.Target] = true
		mp := container.MountPoint{Type: m.Type, Source: m.Source, Destination: m.Target, RW: !m.ReadOnly}
		if m.Type == mount.TypeVolume {
			if m.Source == "" {
				m.Source = e.id("volume")
			}
			mp.Name = m.Source
			e.ensureVolume(m.Source)
		}
		c.Mounts = append(c.Mounts, mp)
	}
	for _, v := range img.Volumes {
		if !mounted[v] {
			name := e.id("volume")
			e.ensureVolume(name)
			c.Mounts = append(c.Mounts, container.MountPoint{Type: mount.TypeVolume, Name: name, Destination: v, RW: true})
		}
	}
	e.containers[c.ID] = c
	e.record("create %s", c.Name)
	return client.ContainerCreateResult{ID: c.ID}, nil
}

// mounted reports whether a container mounts volume name (e.mu held).
func (e *Engine) mounted(name string) bool {
	for _, c := range e.containers {
		for _, m := range c.Mounts {
			if m.Type == mount.TypeVolume && m.Name == name {
				return true
			}
		}
	}
	return false
}

func (e *Engine) ensureVolume(name string) {
	if _, ok := e.volumes[name]; !ok {
		e.volumes[name] = volume.Volume{Name: name, Labels: map[string]string{}}
	}
}

// ContainerStart starts a container as its service's Behaviour says.
func (e *Engine) ContainerStart(_ context.Context, ref string, _ client.ContainerStartOptions) (client.ContainerStartResult, error) {
	e.mu.Lock()
	c, err := e.find(ref)
	if err != nil {
		e.mu.Unlock()
		return client.ContainerStartResult{}, err
	}
	e.record("start %s", c.Name)
	if c.Status == container.StateRunning {
		// As the engine: starting a running container changes nothing.
		e.mu.Unlock()
		return client.ContainerStartResult{}, nil
	}
	b := e.behaviour[c.Service()]
	if b.StartErr != nil && c.seq > b.since {
		e.mu.Unlock()
		return client.ContainerStartResult{}, b.StartErr
	}
	id := c.ID
	c.RestartCount = 0
	acts := e.run(c, b)
	loop := b.Restarts && c.Status == container.StateRestarting
	fn, cp := e.startFn, *c
	e.mu.Unlock()
	if fn != nil {
		fn(&cp)
	}
	for _, a := range acts {
		e.emit(id, a)
	}
	if loop {
		go e.crashLoop(id, b)
	}
	return client.ContainerStartResult{}, nil
}

// run moves c to its state after a start; e.mu is held.
func (e *Engine) run(c *Container, b Behaviour) []events.Action {
	c.Status, c.ExitCode, c.Health, c.StartedAt = container.StateRunning, 0, "", time.Now()
	c.StartCount++
	acts := []events.Action{events.ActionStart}
	if hc := c.Config.Healthcheck; hc != nil && len(hc.Test) > 0 && hc.Test[0] != "NONE" {
		c.Health = container.Starting
		if b.Health != "" {
			c.Health = container.HealthStatus(b.Health)
			acts = append(acts, events.Action(string(events.ActionHealthStatus)+": "+b.Health))
		}
	}
	c.probes = nil
	if b.Exit != nil {
		c.Status, c.ExitCode = container.StateExited, *b.Exit
		if b.Restarts && restarts(c.Host, *b.Exit) {
			c.Status = container.StateRestarting
			c.RestartCount++
		}
		acts = append(acts, events.ActionDie)
	}
	return acts
}

// ContainerStop stops a running container.
func (e *Engine) ContainerStop(_ context.Context, ref string, _ client.ContainerStopOptions) (client.ContainerStopResult, error) {
	e.mu.Lock()
	c, err := e.find(ref)
	if err != nil {
		e.mu.Unlock()
		return client.ContainerStopResult{}, err
	}
	e.record("stop %s", c.Name)
	running := c.Status == container.StateRunning || c.Status == container.StateRestarting
	if running {
		c.Status, c.ExitCode = container.StateExited, 143
	}
	id := c.ID
	e.mu.Unlock()
	if running {
		e.emitAttrs(id, events.ActionKill, map[string]string{"signal": "15"})
		e.emit(id, events.ActionDie)
	}
	return client.ContainerStopResult{}, nil
}

// ContainerRestart stops and starts a container.
func (e *Engine) ContainerRestart(ctx context.Context, ref string, _ client.ContainerRestartOptions) (client.ContainerRestartResult, error) {
	if _, err := e.ContainerStop(ctx, ref, client.ContainerStopOptions{}); err != nil {
		return client.ContainerRestartResult{}, err
	}
	_, err := e.ContainerStart(ctx, ref, client.ContainerStartOptions{})
	return client.ContainerRestartResult{}, err
}

// ContainerRemove removes a container (running ones only with Force), and
// its anonymous volumes with RemoveVolumes, as the engine does: not one it
// mounted by name (a replacement's inherited volume) nor one another
// container still mounts.
func (e *Engine) ContainerRemove(_ context.Context, ref string, o client.ContainerRemoveOptions) (client.ContainerRemoveResult, error) {
	e.mu.Lock()
	c, err := e.find(ref)
	if err != nil {
		e.mu.Unlock()
		return client.ContainerRemoveResult{}, err
	}
	if err := e.failRemove[c.Service()]; err != nil {
		e.mu.Unlock()
		return client.ContainerRemoveResult{}, err
	}
	if c.Status == container.StateRunning && !o.Force {
		e.mu.Unlock()
		return client.ContainerRemoveResult{}, fmt.Errorf("container %s is running: %w", c.Name, cerrdefs.ErrConflict)
	}
	e.record("remove %s", c.Name)
	delete(e.containers, c.ID)
	if o.RemoveVolumes {
		byName := map[string]bool{}
		if c.Host != nil {
			for _, m := range c.Host.Mounts {
				byName[m.Source] = m.Source != ""
			}
		}
		for _, m := range c.Mounts {
			if m.Type == mount.TypeVolume && len(m.Name) == 64 && !byName[m.Name] && !e.mounted(m.Name) {
				delete(e.volumes, m.Name)
			}
		}
	}
	id := c.ID
	e.mu.Unlock()
	e.emit(id, events.ActionDestroy)
	return client.ContainerRemoveResult{}, nil
}

// ContainerRename renames a container; the new name must be free.
func (e *Engine) ContainerRename(_ context.Context, ref string, o client.ContainerRenameOptions) (client.ContainerRenameResult, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	c, err := e.find(ref)
	if err != nil {
		return client.ContainerRenameResult{}, err
	}
	if other, err := e.find(o.NewName); err == nil && other != c {
		return client.ContainerRenameResult{}, fmt.Errorf("name %s is in use: %w", o.NewName, cerrdefs.ErrConflict)
	}
	e.record("rename %s %s", c.Name, o.NewName)
	c.Name = o.NewName
	return client.ContainerRenameResult{}, nil
}

// ContainerLogs returns the container's Behaviour.Logs, multiplexed as the
// engine sends them.
func (e *Engine) ContainerLogs(_ context.Context, ref string, _ client.ContainerLogsOptions) (client.ContainerLogsResult, error) {
	e.mu.Lock()
	c, err := e.find(ref)
	var logs string
	if err == nil {
		logs = e.behaviour[c.Service()].Logs
	}
	e.mu.Unlock()
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	if logs != "" {
		// One stdout frame: stream, three zero bytes, big-endian length.
		n := len(logs)
		b.Write([]byte{byte(stdcopy.Stdout), 0, 0, 0, byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)})
		b.WriteString(logs)
	}
	return io.NopCloser(&b), nil
}

// NetworkList lists networks matching the label filters.
func (e *Engine) NetworkList(_ context.Context, o client.NetworkListOptions) (client.NetworkListResult, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	var res client.NetworkListResult
	for _, n := range e.networks {
		if matchLabels(o.Filters, n.Labels) {
			res.Items = append(res.Items, network.Summary{Network: n.Network})
		}
	}
	return res, nil
}

// NetworkInspect describes a network.
func (e *Engine) NetworkInspect(_ context.Context, name string, _ client.NetworkInspectOptions) (client.NetworkInspectResult, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	n, ok := e.networks[name]
	if !ok {
		return client.NetworkInspectResult{}, notFound("network " + name)
	}
	return client.NetworkInspectResult{Network: n}, nil
}

// NetworkCreate creates a network.
func (e *Engine) NetworkCreate(_ context.Context, name string, o client.NetworkCreateOptions) (client.NetworkCreateResult, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if _, ok := e.networks[name]; ok {
		return client.NetworkCreateResult{}, fmt.Errorf("network %s exists: %w", name, cerrdefs.ErrConflict)
	}
	n := network.Inspect{}
	n.Name, n.ID, n.Labels, n.Driver, n.Internal = name, name, o.Labels, o.Driver, o.Internal
	e.networks[name] = n
	e.record("network-create %s", name)
	return client.NetworkCreateResult{ID: name}, nil
}

// NetworkConnect connects a container to a network.
func (e *Engine) NetworkConnect(_ context.Context, name string, o client.NetworkConnectOptions) (client.NetworkConnectResult, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if _, ok := e.networks[name]; !ok {
		return client.NetworkConnectResult{}, notFound("network " + name)
	}
	c, err := e.find(o.Container)
	if err != nil {
		return client.NetworkConnectResult{}, err
	}
	var aliases []string
	if o.EndpointConfig != nil {
		aliases = o.EndpointConfig.Aliases
	}
	c.Networks[name] = append([]string(nil), aliases...)
	return client.NetworkConnectResult{}, nil
}

// NetworkRemove removes a network.
func (e *Engine) NetworkRemove(_ context.Context, name string, _ client.NetworkRemoveOptions) (client.NetworkRemoveResult, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if _, ok := e.networks[name]; !ok {
		return client.NetworkRemoveResult{}, notFound("network " + name)
	}
	delete(e.networks, name)
	e.record("network-remove %s", name)
	return client.NetworkRemoveResult{}, nil
}

// VolumeList lists volumes matching the label filters.
func (e *Engine) VolumeList(_ context.Context, o client.VolumeListOptions) (client.VolumeListResult, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	var res client.VolumeListResult
	for _, v := range e.volumes {
		if matchLabels(o.Filters, v.Labels) {
			res.Items = append(res.Items, v)
		}
	}
	return res, nil
}

// VolumeInspect describes a volume.
func (e *Engine) VolumeInspect(_ context.Context, name string, _ client.VolumeInspectOptions) (client.VolumeInspectResult, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	v, ok := e.volumes[name]
	if !ok {
		return client.VolumeInspectResult{}, notFound("volume " + name)
	}
	return client.VolumeInspectResult{Volume: v}, nil
}

// VolumeCreate creates a named volume.
func (e *Engine) VolumeCreate(_ context.Context, o client.VolumeCreateOptions) (client.VolumeCreateResult, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	v := volume.Volume{Name: o.Name, Driver: o.Driver, Labels: o.Labels}
	e.volumes[o.Name] = v
	e.record("volume-create %s", o.Name)
	return client.VolumeCreateResult{Volume: v}, nil
}

// VolumeRemove removes a volume; one a container mounts is in use (a
// conflict), as the engine says.
func (e *Engine) VolumeRemove(_ context.Context, name string, _ client.VolumeRemoveOptions) (client.VolumeRemoveResult, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if _, ok := e.volumes[name]; !ok {
		return client.VolumeRemoveResult{}, notFound("volume " + name)
	}
	if e.mounted(name) {
		return client.VolumeRemoveResult{}, fmt.Errorf("remove %s: volume is in use: %w", name, cerrdefs.ErrConflict)
	}
	delete(e.volumes, name)
	e.record("volume-remove %s", name)
	return client.VolumeRemoveResult{}, nil
}

// Volume tells whether a volume exists.
func (e *Engine) Volume(name string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	_, ok := e.volumes[name]
	return ok
}

// ImageInspect finds a local image by reference or ID.
func (e *Engine) ImageInspect(_ context.Context, ref string, _ ...client.ImageInspectOption) (client.ImageInspectResult, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	img, ok := e.images[ref]
	if !ok {
		return client.ImageInspectResult{}, notFound("No such image: " + ref)
	}
	return client.ImageInspectResult{InspectResponse: image.InspectResponse{ID: img.ID}}, nil
}

// ImagePull makes ref point to what SetRemote said, or fails.
func (e *Engine) ImagePull(_ context.Context, ref string, _ client.ImagePullOptions) (client.ImagePullResponse, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.record("pull %s", ref)
	img, ok := e.remote[ref]
	if !ok {
		return &pullResponse{err: fmt.Errorf("pull access denied for %s, repository does not exist", ref)}, nil
	}
	e.images[ref] = img
	e.images[img.ID] = img
	return &pullResponse{}, nil
}

type pullResponse struct {
	io.Reader
	err error
}

func (p *pullResponse) Read([]byte) (int, error) { return 0, io.EOF }
func (p *pullResponse) Close() error             { return nil }
func (p *pullResponse) Wait(context.Context) error {
	return p.err
}
func (p *pullResponse) JSONMessages(context.Context) iter.Seq2[jsonstream.Message, error] {
	return func(yield func(jsonstream.Message, error) bool) {
		if p.err != nil {
			yield(jsonstream.Message{Error: &jsonstream.Error{Message: p.err.Error()}}, nil)
			return
		}
		yield(jsonstream.Message{Status: "Pull complete"}, nil)
	}
}

type sub struct {
	ids     map[string]bool
	actions map[string]bool // nil: all
	msgs    chan events.Message
}

// Events streams the container events of the containers filtered on; with
// Since, those of the log since then first; with Until, only the log's up
// to then, the stream then ending (io.EOF), as the engine does.
func (e *Engine) Events(ctx context.Context, o client.EventsListOptions) client.EventsResult {
	e.mu.Lock()
	past := e.past(o)
	s := &sub{ids: o.Filters["container"], actions: o.Filters["event"], msgs: make(chan events.Message, 64+len(past))}
	for _, m := range past {
		s.msgs <- m
	}
	errs := make(chan error, 1)
	if o.Until != "" {
		e.mu.Unlock()
		errs <- io.EOF
		return client.EventsResult{Messages: s.msgs, Err: errs}
	}
	e.subs[s] = struct{}{}
	e.mu.Unlock()
	go func() {
		<-ctx.Done()
		e.mu.Lock()
		delete(e.subs, s)
		e.mu.Unlock()
		errs <- ctx.Err()
	}()
	return client.EventsResult{Messages: s.msgs, Err: errs}
}

func (e *Engine) emit(id string, a events.Action) { e.emitAttrs(id, a, nil) }

func (e *Engine) emitAttrs(id string, a events.Action, attrs map[string]string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	now := time.Now()
	m := events.Message{Type: events.ContainerEventType, Action: a, Actor: events.Actor{ID: id, Attributes: attrs}, Time: now.Unix(), TimeNano: now.UnixNano()}
	e.history = append(e.history, m)
	for s := range e.subs {
		if s.wants(m) {
			select {
			case s.msgs <- m:
			default:
			}
		}
	}
}

var errExec = errors.New("enginefake: exec and copy are not modelled unless the test sets HandleExec / files; test them end to end")

// ExecCreate is modelled for containers whose Behaviour has Exec (ready.go),
// else answered by the HandleExec function (exec.go).
func (e *Engine) ExecCreate(ctx context.Context, ref string, o client.ExecCreateOptions) (client.ExecCreateResult, error) {
	if res, ok, err := e.execCreate(ref, o); ok {
		return res, err
	}
	return e.handlerExecCreate(ref, o)
}

// ExecAttach runs an exec made by ExecCreate and returns its output.
func (e *Engine) ExecAttach(ctx context.Context, id string, _ client.ExecAttachOptions) (client.ExecAttachResult, error) {
	if res, ok := e.execAttach(ctx, id); ok {
		return res, nil
	}
	return e.handlerExecAttach(id)
}

// ExecInspect returns the exit code of an exec that ran.
func (e *Engine) ExecInspect(_ context.Context, id string, _ client.ExecInspectOptions) (client.ExecInspectResult, error) {
	if res, ok := e.execInspect(id); ok {
		return res, nil
	}
	return e.handlerExecInspect(id)
}

// CopyToContainer extracts a tar archive into the container's files.
func (e *Engine) CopyToContainer(_ context.Context, ref string, o client.CopyToContainerOptions) (client.CopyToContainerResult, error) {
	return client.CopyToContainerResult{}, e.copyTo(ref, o)
}

// SetArchive makes CopyFromContainer of path in the container (name or ID)
// answer with the tar stream archive, as the engine's archive API does.
func (e *Engine) SetArchive(ref, path string, archive []byte) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.archives == nil {
		e.archives = map[string][]byte{}
	}
	c, err := e.find(ref)
	if err != nil {
		panic(err)
	}
	e.archives[c.ID+":"+path] = archive
}

// CopyFromContainer answers with what SetArchive set for the path (the
// container may be in any state, as with the engine), else with the file
// of the container's filesystem (exec.go), else fails.
func (e *Engine) CopyFromContainer(_ context.Context, ref string, o client.CopyFromContainerOptions) (client.CopyFromContainerResult, error) {
	e.mu.Lock()
	c, err := e.find(ref)
	if err != nil {
		e.mu.Unlock()
		return client.CopyFromContainerResult{}, err
	}
	e.record("copy-from %s %s (%s)", c.Name, o.SourcePath, c.Status)
	a, ok := e.archives[c.ID+":"+o.SourcePath]
	e.mu.Unlock()
	if !ok {
		return e.copyFrom(ref, o)
	}
	return client.CopyFromContainerResult{Content: io.NopCloser(bytes.NewReader(a)), Stat: container.PathStat{Name: o.SourcePath}}, nil
}

// ContainerPause freezes a running container.
func (e *Engine) ContainerPause(_ context.Context, ref string, _ client.ContainerPauseOptions) (client.ContainerPauseResult, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	c, err := e.find(ref)
	if err != nil {
		return client.ContainerPauseResult{}, err
	}
	e.record("pause %s", c.Name)
	if c.Status != container.StateRunning {
		return client.ContainerPauseResult{}, fmt.Errorf("container %s is not running", c.Name)
	}
	c.Status = container.StatePaused
	return client.ContainerPauseResult{}, nil
}

// ContainerUnpause thaws a paused container.
func (e *Engine) ContainerUnpause(_ context.Context, ref string, _ client.ContainerUnpauseOptions) (client.ContainerUnpauseResult, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	c, err := e.find(ref)
	if err != nil {
		return client.ContainerUnpauseResult{}, err
	}
	e.record("unpause %s", c.Name)
	if c.Status != container.StatePaused {
		return client.ContainerUnpauseResult{}, fmt.Errorf("container %s is not paused", c.Name)
	}
	c.Status = container.StateRunning
	return client.ContainerUnpauseResult{}, nil
}

// Close does nothing.
func (e *Engine) Close() error { return nil }
