package enginefake

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"math"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/client"
)

// What readiness needs of the fake: execs (difyctl's own probes), the
// engine's probes and their log, restart policies (crash loops), stops in
// flight, the event log (since/until) and the API version.

// ExecResult is how an exec in a container ends: its exit code and output,
// after Delay.
type ExecResult struct {
	Exit   int
	Output string
	Delay  time.Duration
}

// Exec is one exec run in a container, as asked.
type Exec struct {
	Container string // its name
	Cmd       []string
	User      string
	Dir       string
}

type execState struct {
	call    Exec
	run     func(cmd []string, user string) ExecResult
	running bool
	started bool
	exit    int
}

// SetAPIVersion sets the API version the fake says it speaks
// (ClientVersion); "1.41" when never set.
func (e *Engine) SetAPIVersion(v string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.apiVersion = v
}

// ClientVersion is the API version, as the Moby client reports it after
// negotiation.
func (e *Engine) ClientVersion() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.apiVersion == "" {
		return "1.41"
	}
	return e.apiVersion
}

// Execs returns the execs run in the container named so far, oldest first.
func (e *Engine) Execs(name string) []Exec {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []Exec
	for _, x := range e.execOrder() {
		if x.call.Container == name {
			out = append(out, x.call)
		}
	}
	return out
}

// MaxConcurrentExecs is the most execs that ran at once in the container
// named.
func (e *Engine) MaxConcurrentExecs(name string) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.maxConc[name]
}

func (e *Engine) execOrder() []*execState {
	out := make([]*execState, len(e.execIDs))
	for i, id := range e.execIDs {
		out[i] = e.execs[id]
	}
	return out
}

func (e *Engine) execCreate(ref string, o client.ExecCreateOptions) (client.ExecCreateResult, bool, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	c, err := e.find(ref)
	if err != nil {
		return client.ExecCreateResult{}, false, nil
	}
	b := e.behaviour[c.Service()]
	if b.Exec == nil {
		return client.ExecCreateResult{}, false, nil
	}
	if c.Status != container.StateRunning {
		return client.ExecCreateResult{}, true, fmt.Errorf("container %s is not running", c.Name)
	}
	id := e.id("exec")
	if e.execs == nil {
		e.execs, e.maxConc, e.conc = map[string]*execState{}, map[string]int{}, map[string]int{}
	}
	e.execs[id] = &execState{call: Exec{Container: c.Name, Cmd: append([]string(nil), o.Cmd...), User: o.User, Dir: o.WorkingDir}, run: b.Exec}
	e.execIDs = append(e.execIDs, id)
	return client.ExecCreateResult{ID: id}, true, nil
}

// execAttach starts the exec: its output arrives after its delay, then the
// stream ends.
func (e *Engine) execAttach(_ context.Context, id string) (client.ExecAttachResult, bool) {
	e.mu.Lock()
	x, ok := e.execs[id]
	if !ok || x.started {
		e.mu.Unlock()
		return client.ExecAttachResult{}, false
	}
	x.started, x.running = true, true
	name := x.call.Container
	e.conc[name]++
	e.maxConc[name] = max(e.maxConc[name], e.conc[name])
	e.mu.Unlock()
	res := x.run(x.call.Cmd, x.call.User)
	local, remote := net.Pipe()
	go func() {
		defer remote.Close()
		// The process runs its course whatever the caller does, as in
		// the engine: a caller that stops reading does not end it.
		time.Sleep(res.Delay)
		var frame bytes.Buffer
		if n := len(res.Output); n > 0 {
			frame.Write([]byte{byte(stdcopy.Stdout), 0, 0, 0, byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)})
			frame.WriteString(res.Output)
		}
		e.mu.Lock()
		x.running, x.exit = false, res.Exit
		e.conc[name]--
		e.mu.Unlock()
		_, _ = remote.Write(frame.Bytes())
	}()
	return client.ExecAttachResult{HijackedResponse: client.HijackedResponse{Conn: local, Reader: bufio.NewReader(local)}}, true
}

func (e *Engine) execInspect(id string) (client.ExecInspectResult, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	x, ok := e.execs[id]
	if !ok {
		return client.ExecInspectResult{}, false
	}
	return client.ExecInspectResult{ID: id, Running: x.running, ExitCode: x.exit}, true
}

// EngineProbe records a probe the engine ran itself in the container named
// (its healthcheck log) and sets its health status, with the health_status
// event when the status changes.
func (e *Engine) EngineProbe(name string, exitCode int, status container.HealthStatus) {
	e.mu.Lock()
	c, _ := e.find(name)
	c.probes = append(c.probes, &container.HealthcheckResult{Start: time.Now(), End: time.Now(), ExitCode: exitCode})
	changed := c.Health != status
	c.Health = status
	id := c.ID
	e.mu.Unlock()
	if changed {
		e.emit(id, events.Action(string(events.ActionHealthStatus)+": "+string(status)))
	}
}

// BeginStop starts a stop that takes a while (a database saving its data
// set on SIGTERM): the kill event is sent, the container keeps running
// until FinishStop.
func (e *Engine) BeginStop(name string) {
	e.mu.Lock()
	c, _ := e.find(name)
	id := c.ID
	e.mu.Unlock()
	e.emitAttrs(id, events.ActionKill, map[string]string{"signal": "15"})
}

// FinishStop ends a stop begun by BeginStop: the container exits with code
// 0 (what a server does on SIGTERM), with the die and stop events.
func (e *Engine) FinishStop(name string) {
	e.mu.Lock()
	c, _ := e.find(name)
	c.Status, c.ExitCode = container.StateExited, 0
	id := c.ID
	e.mu.Unlock()
	e.emit(id, events.ActionDie)
	e.emit(id, events.ActionStop)
}

// restarts tells whether a restart policy restarts a container that exited
// with code.
func restarts(h *container.HostConfig, code int) bool {
	if h == nil {
		return false
	}
	switch h.RestartPolicy.Name {
	case container.RestartPolicyAlways, container.RestartPolicyUnlessStopped:
		return true
	case container.RestartPolicyOnFailure:
		return code != 0
	}
	return false
}

// crashLoop restarts a container that exits at once, as the engine's
// restart manager does (shortened back-off), until it is stopped or
// removed, or 50 restarts.
func (e *Engine) crashLoop(id string, b Behaviour) {
	for range 50 {
		time.Sleep(5 * time.Millisecond)
		e.mu.Lock()
		c, ok := e.containers[id]
		if !ok || c.Status != container.StateRestarting {
			e.mu.Unlock()
			return
		}
		acts := e.run(c, b)
		e.mu.Unlock()
		for _, a := range acts {
			e.emit(id, a)
		}
	}
}

// past is the log's events an Events call with Since asks for; e.mu is held.
func (e *Engine) past(o client.EventsListOptions) []events.Message {
	if o.Since == "" {
		return nil
	}
	since, until := parseTime(o.Since), int64(math.MaxInt64)
	if o.Until != "" {
		until = parseTime(o.Until)
	}
	s := &sub{ids: o.Filters["container"], actions: o.Filters["event"]}
	var out []events.Message
	for _, m := range e.history {
		if m.TimeNano >= since && m.TimeNano <= until && s.wants(m) {
			out = append(out, m)
		}
	}
	return out
}

// parseTime reads seconds[.nanoseconds] as the events API takes it.
func parseTime(v string) int64 {
	sec, frac, _ := strings.Cut(v, ".")
	s, _ := strconv.ParseInt(sec, 10, 64)
	var n int64
	if frac != "" {
		frac = (frac + "000000000")[:9]
		n, _ = strconv.ParseInt(frac, 10, 64)
	}
	return s*1e9 + n
}

// wants: the event is of a container and an action filtered on (the engine
// matches health_status by prefix).
func (s *sub) wants(m events.Message) bool {
	if len(s.ids) > 0 && !s.ids[m.Actor.ID] {
		return false
	}
	if len(s.actions) == 0 || s.actions[string(m.Action)] {
		return true
	}
	a, _, _ := strings.Cut(string(m.Action), ":")
	return s.actions[a]
}
