package health

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
)

// DefaultProbeInterval is how often difyctl runs a starting container's
// healthcheck itself (--probe-interval's default).
const DefaultProbeInterval = time.Second

// Docker's healthcheck defaults (daemon/health.go): a probe's timeout, and
// how much of its output the engine keeps.
const (
	defaultProbeTimeout = 30 * time.Second
	maxProbeOutput      = 4096
)

// Execer is what running a probe needs: an exec, its output, its exit code.
type Execer interface {
	ExecCreate(ctx context.Context, containerID string, options client.ExecCreateOptions) (client.ExecCreateResult, error)
	ExecAttach(ctx context.Context, execID string, options client.ExecAttachOptions) (client.ExecAttachResult, error)
	ExecInspect(ctx context.Context, execID string, options client.ExecInspectOptions) (client.ExecInspectResult, error)
}

// ProbeRun is one probe difyctl ran itself, for progress views.
type ProbeRun struct {
	N       int           `json:"n"` // 1 for the first of this wait
	Passed  bool          `json:"passed"`
	Probe   Probe         `json:"probe"`
	Took    time.Duration `json:"took"`
	Problem string        `json:"problem,omitempty"` // the exec could not be run, or timed out
	// Skipped: the test was not run, the port it asks for refused every
	// connect from here (see portGate); a failed probe.
	Skipped bool `json:"skipped,omitempty"`
}

// probeCommand is the command the engine runs for a healthcheck test, as
// daemon/health.go builds it: CMD's arguments as they are, CMD-SHELL's one
// string through the container's shell (SHELL, else /bin/sh -c). Nil when
// the test runs nothing (NONE, empty).
func probeCommand(hc *container.HealthConfig, shell []string) []string {
	if hc == nil || len(hc.Test) < 2 {
		return nil
	}
	switch hc.Test[0] {
	case "CMD":
		return append([]string(nil), hc.Test[1:]...)
	case "CMD-SHELL":
		if len(shell) == 0 {
			shell = []string{"/bin/sh", "-c"}
		}
		return append(append([]string(nil), shell...), hc.Test[1:]...)
	}
	return nil
}

// prober runs a container's healthcheck test the way the engine does: the
// same command, user and working directory (the exec inherits the
// container's environment, as the engine's own probe does), bounded by the
// healthcheck's timeout, its output cut where the engine cuts it.
type prober struct {
	cli     Execer
	id      string
	cmd     []string
	user    string
	dir     string
	timeout time.Duration
	// lingering is a probe that timed out: its process may still run in
	// the container, and no other starts before it has ended.
	lingering string
	// gate puts the test off while the port it asks for is closed; nil:
	// none (another kind of test, or an engine on another host).
	gate *portGate
}

func newProber(cli Execer, c container.InspectResponse) *prober {
	if c.Config == nil {
		return nil
	}
	cmd := probeCommand(c.Config.Healthcheck, c.Config.Shell)
	if cmd == nil {
		return nil
	}
	p := &prober{cli: cli, id: c.ID, cmd: cmd, user: c.Config.User, dir: c.Config.WorkingDir, timeout: c.Config.Healthcheck.Timeout}
	if p.timeout <= 0 {
		p.timeout = defaultProbeTimeout
	}
	if localEngine(cli) {
		p.gate = newPortGate(c.Config.Healthcheck.Test)
	}
	return p
}

// busy tells whether a probe that timed out is still running.
func (p *prober) busy(ctx context.Context) bool {
	if p.lingering == "" {
		return false
	}
	ins, err := p.cli.ExecInspect(ctx, p.lingering, client.ExecInspectOptions{})
	if err == nil && ins.Running {
		return true
	}
	p.lingering = ""
	return false
}

// run runs the test once. A probe that cannot be run (the container
// stopped, the engine refused) or that times out is a failed probe, as it
// is for the engine.
func (p *prober) run(ctx context.Context) ProbeRun {
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	r := ProbeRun{Probe: Probe{ExitCode: -1}}
	done := func(problem string) ProbeRun {
		r.Problem, r.Took = problem, time.Since(start)
		if problem != "" && r.Probe.Output == "" {
			r.Probe.Output = problem
		}
		return r
	}
	ex, err := p.cli.ExecCreate(ctx, p.id, client.ExecCreateOptions{Cmd: p.cmd, User: p.user, WorkingDir: p.dir, AttachStdout: true, AttachStderr: true})
	if err != nil {
		return done("exec: " + err.Error())
	}
	att, err := p.cli.ExecAttach(ctx, ex.ID, client.ExecAttachOptions{})
	if err != nil {
		return done("exec: " + err.Error())
	}
	out := &capped{max: maxProbeOutput}
	copied := make(chan error, 1)
	go func() {
		_, err := stdcopy.StdCopy(out, out, att.Reader)
		copied <- err
	}()
	select {
	case err = <-copied:
		att.Close()
	case <-ctx.Done():
		att.Close()
		<-copied
		p.lingering = ex.ID
		r.Probe.Output = strings.TrimSpace(out.String())
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return done(fmt.Sprintf("probe exceeded its timeout (%s)", p.timeout))
		}
		return done("probe cancelled")
	}
	r.Probe.Output = strings.TrimSpace(out.String())
	if err != nil && !errors.Is(err, io.EOF) {
		return done("reading the probe's output: " + err.Error())
	}
	ins, err := p.cli.ExecInspect(ctx, ex.ID, client.ExecInspectOptions{})
	if err != nil {
		return done("exec: " + err.Error())
	}
	r.Probe.ExitCode, r.Passed = ins.ExitCode, ins.ExitCode == 0
	return done("")
}

// capped keeps the first max bytes written to it and drops the rest.
type capped struct {
	bytes.Buffer
	max int
}

func (c *capped) Write(b []byte) (int, error) {
	if room := c.max - c.Len(); room > 0 {
		c.Buffer.Write(b[:min(room, len(b))])
	}
	return len(b), nil
}

// Versioned is an engine client that knows the API version it speaks (the
// Moby client, after negotiation).
type Versioned interface{ ClientVersion() string }

// EngineStartInterval tells whether the engine behind cli honours a
// healthcheck's start_interval (API 1.44, Docker 25, and later): then the
// engine itself probes at start_interval during the start period.
func EngineStartInterval(cli any) bool {
	v, ok := cli.(Versioned)
	return ok && apiAtLeast(v.ClientVersion(), 1, 44)
}

func apiAtLeast(v string, major, minor int) bool {
	a, b, ok := strings.Cut(v, ".")
	if !ok {
		return false
	}
	ma, err1 := strconv.Atoi(a)
	mi, err2 := strconv.Atoi(b)
	if err1 != nil || err2 != nil {
		return false
	}
	return ma > major || ma == major && mi >= minor
}

// ProbeIntervalUsage describes --probe-interval.
const ProbeIntervalUsage = "while a service starts, run its healthcheck every this long through the engine and count the first pass as healthy for its dependents; 0: the engine's own health status only (as docker compose)"

// ProbeIntervalOption maps --probe-interval to Options.ProbeInterval: 0
// (or less) turns difyctl's probes off.
func ProbeIntervalOption(flag time.Duration) time.Duration {
	if flag <= 0 {
		return ProbesOff
	}
	return flag
}
