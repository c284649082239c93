package health

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"path"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/moby/moby/api/types/container"
)

// A port gate stands in for the exec of a healthcheck that is an HTTP
// request to the container's own loopback (curl or wget of
// http://localhost:PORT/...) while nothing listens on PORT: difyctl, on the
// engine's host, connects to PORT at the container's address first, and
// runs the test only once the connect is accepted. A connect costs the
// engine nothing; an exec costs it a process in the container, on a small
// host as much as a container's start, and a service that needs seconds to
// come up is otherwise probed through the engine every interval for
// nothing. The connect is tried every gatePoll within the probe's
// interval, so the test runs soon after the port opens.
//
// The gate only ever puts a test off, never passes one. It lets every
// gateMaxSkips+1-th probe run the test whatever the connect said, and
// turns itself off for the container when such a test passes (the test
// does not need the port as seen from here: a server listening on the
// container's loopback only, a proxy in the environment) or when the
// address cannot be reached from here at all (a timeout or no route
// rather than a refusal: a rootless engine, a VM).
const (
	gatePoll        = 100 * time.Millisecond
	gateDialTimeout = 250 * time.Millisecond
	gateMaxSkips    = 4
)

// DaemonHoster is an engine client that says where its engine is (the
// Moby client).
type DaemonHoster interface{ DaemonHost() string }

// localEngine: the engine listens on a unix socket of this host, so its
// containers' bridge addresses are this host's to connect to.
func localEngine(cli any) bool {
	d, ok := cli.(DaemonHoster)
	return ok && strings.HasPrefix(d.DaemonHost(), "unix://")
}

// portGate is one container's gate; used by one probe at a time.
type portGate struct {
	port    int
	dial    func(ctx context.Context, network, addr string) (net.Conn, error)
	off     bool // the connect says nothing about the test here
	skipped int  // probes in a row the gate stood in for
}

type gateVerdict int

const (
	gateOpen        gateVerdict = iota // the port accepted a connect: run the test
	gateClosed                         // refused all along the interval: the test would fail
	gateUnreachable                    // no answer from the address: the gate is no use here
)

// newPortGate returns the gate for a healthcheck command, nil when the
// command is not a lone HTTP request to the container's loopback.
func newPortGate(test []string) *portGate {
	port := LoopbackHTTPPort(test)
	if port == 0 {
		return nil
	}
	var d net.Dialer
	return &portGate{port: port, dial: d.DialContext}
}

// LoopbackHTTPPort is the port of a healthcheck test that is one curl or
// wget of an http(s) URL on localhost, 127.0.0.1 or [::1]: CMD with the
// tool as its program, or CMD-SHELL with nothing else than the command,
// output redirections and a final "|| exit 1". 0 for anything else (a
// test whose outcome a closed port does not decide).
func LoopbackHTTPPort(test []string) int {
	if len(test) < 2 {
		return 0
	}
	var words []string
	switch test[0] {
	case "CMD":
		words = test[1:]
	case "CMD-SHELL":
		if len(test) != 2 {
			return 0
		}
		words = strings.Fields(test[1])
		if n := len(words); n >= 3 && words[n-3] == "||" && words[n-2] == "exit" && words[n-1] != "0" {
			words = words[:n-3]
		}
		kept := words[:0:0]
		for _, w := range words {
			switch {
			case w == ">/dev/null" || w == "2>/dev/null" || w == "2>&1" || w == "&>/dev/null":
				continue
			case strings.ContainsAny(w, ";&|`$<>()"):
				return 0
			}
			kept = append(kept, w)
		}
		words = kept
	default:
		return 0
	}
	if len(words) < 2 {
		return 0
	}
	if tool := path.Base(words[0]); tool != "curl" && tool != "wget" {
		return 0
	}
	port := 0
	for _, w := range words[1:] {
		if reroutes(w) {
			return 0 // the request goes elsewhere than the URL says
		}
		u, err := url.Parse(strings.Trim(w, `"'`))
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") {
			continue
		}
		if port != 0 {
			return 0 // more than one URL: not one request
		}
		switch u.Hostname() {
		case "localhost", "127.0.0.1", "::1":
		default:
			return 0
		}
		p := u.Port()
		switch {
		case p != "":
			n, err := strconv.Atoi(p)
			if err != nil || n <= 0 || n > 65535 {
				return 0
			}
			port = n
		case u.Scheme == "https":
			port = 443
		default:
			port = 80
		}
	}
	return port
}

// reroutes: a curl or wget option that sends the request somewhere else
// than the URL's host and port (a proxy, a socket, a fixed resolution).
func reroutes(opt string) bool {
	for _, o := range []string{"-x", "--proxy", "--preproxy", "--socks", "--unix-socket", "--abstract-unix-socket", "--resolve", "--connect-to", "-e", "--execute"} {
		if opt == o || strings.HasPrefix(opt, o+"=") || strings.HasPrefix(o, "--") && strings.HasPrefix(opt, o) {
			return true
		}
	}
	return strings.HasPrefix(opt, "-x") && !strings.HasPrefix(opt, "--")
}

// PortRefused: c's healthcheck is a loopback HTTP request
// (LoopbackHTTPPort) and its port refuses a connect at c's address now,
// so the test would fail; false when it accepts, does not answer, or the
// check is of another kind (run the test). One connect, as the gate's.
func PortRefused(ctx context.Context, c container.InspectResponse) bool {
	if c.Config == nil || c.Config.Healthcheck == nil {
		return false
	}
	g, addr := newPortGate(c.Config.Healthcheck.Test), ContainerAddr(c)
	return g != nil && addr != "" && g.await(ctx, addr, 0) == gateClosed
}

// ContainerAddr is the container's address on its first network by name,
// "" when it has none (not started, network_mode host or none): where
// this host reaches it when the engine runs here.
func ContainerAddr(c container.InspectResponse) string {
	if c.NetworkSettings == nil {
		return ""
	}
	names := make([]string, 0, len(c.NetworkSettings.Networks))
	for n, ep := range c.NetworkSettings.Networks {
		if ep != nil && ep.IPAddress.IsValid() {
			names = append(names, n)
		}
	}
	if len(names) == 0 {
		return ""
	}
	sort.Strings(names)
	return c.NetworkSettings.Networks[names[0]].IPAddress.String()
}

// await connects to the port at addr every gatePoll until a connect is
// accepted, budget runs out (gateClosed), or the address does not answer.
func (g *portGate) await(ctx context.Context, addr string, budget time.Duration) gateVerdict {
	target := net.JoinHostPort(addr, strconv.Itoa(g.port))
	end := time.Now().Add(budget)
	for {
		dctx, cancel := context.WithTimeout(ctx, gateDialTimeout)
		conn, err := g.dial(dctx, "tcp", target)
		cancel()
		switch {
		case err == nil:
			conn.Close()
			return gateOpen
		case ctx.Err() != nil:
			return gateClosed
		case !errors.Is(err, syscall.ECONNREFUSED):
			return gateUnreachable
		}
		wait := min(gatePoll, time.Until(end))
		if wait <= 0 {
			return gateClosed
		}
		select {
		case <-ctx.Done():
			return gateClosed
		case <-time.After(wait):
		}
	}
}

// stands decides whether this probe's test runs: skip when the gate
// stands in for it (the port at addr refused every connect during budget,
// and the gate has not stood in gateMaxSkips times in a row). forced
// tells the caller that the test runs although the port refused: its
// pass turns the gate off (schedule.start).
func (g *portGate) stands(ctx context.Context, addr string, budget time.Duration) (skip, forced bool) {
	if g == nil || g.off || addr == "" {
		return false, false
	}
	switch g.await(ctx, addr, budget) {
	case gateOpen:
		g.skipped = 0
		return false, false
	case gateUnreachable:
		g.off = true
		return false, false
	}
	if g.skipped < gateMaxSkips {
		g.skipped++
		return true, false
	}
	g.skipped = 0
	return false, true
}

// skippedRun is the probe the gate stood in for.
func (g *portGate) skippedRun(addr string, took time.Duration) ProbeRun {
	return ProbeRun{
		Probe:   Probe{ExitCode: -1, Output: fmt.Sprintf("nothing listens on port %d yet (refused at %s; the test was not run)", g.port, addr)},
		Took:    took,
		Skipped: true,
	}
}
