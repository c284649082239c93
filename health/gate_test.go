package health

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"os"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
)

func TestLoopbackHTTPPort(t *testing.T) {
	for _, c := range []struct {
		test []string
		want int
	}{
		{[]string{"CMD", "curl", "-f", "http://localhost:5001/health"}, 5001},
		{[]string{"CMD", "/usr/bin/wget", "-q", "--spider", "http://127.0.0.1:8194/health"}, 8194},
		{[]string{"CMD", "curl", "-s", "http://localhost:9200/_cluster/health?pretty"}, 9200},
		{[]string{"CMD", "curl", "-f", "https://[::1]/x"}, 443},
		{[]string{"CMD", "curl", "http://localhost/"}, 80},
		{[]string{"CMD-SHELL", "curl -s http://localhost:5601 >/dev/null || exit 1"}, 5601},
		{[]string{"CMD-SHELL", "curl -f http://localhost:3000"}, 3000},
		// Not a lone request to the loopback: a closed port does not decide it.
		{[]string{"CMD-SHELL", "curl -f http://localhost:3000 || true"}, 0},
		{[]string{"CMD-SHELL", "curl -f http://localhost:3000 || exit 0"}, 0},
		{[]string{"CMD-SHELL", "test -f /ready && curl http://localhost:1"}, 0},
		{[]string{"CMD-SHELL", "curl http://localhost:$PORT/health"}, 0},
		{[]string{"CMD", "curl", "-f", "http://api:5001/health"}, 0},
		{[]string{"CMD", "curl", "http://localhost:1/", "http://localhost:2/"}, 0},
		{[]string{"CMD", "curl", "-x", "http://proxy:3128", "http://localhost:5001/"}, 0},
		{[]string{"CMD", "curl", "-xhttp://proxy:3128", "http://localhost:5001/"}, 0},
		{[]string{"CMD", "curl", "--unix-socket", "/run/app.sock", "http://localhost/health"}, 0},
		{[]string{"CMD", "curl", "--resolve", "localhost:80:10.0.0.5", "http://localhost/"}, 0},
		{[]string{"CMD", "curl", "--socks5", "127.0.0.1:1080", "http://localhost/"}, 0},
		{[]string{"CMD", "wget", "-e", "use_proxy=yes", "http://localhost/"}, 0},
		{[]string{"CMD", "curl", "-fsS", "--max-time", "3", "http://localhost:5001/"}, 5001},
		{[]string{"CMD", "pg_isready"}, 0},
		{[]string{"CMD-SHELL", "redis-cli ping | grep -q PONG"}, 0},
		{[]string{"CMD", "nc", "-z", "localhost", "80"}, 0},
		{[]string{"NONE"}, 0},
		{nil, 0},
	} {
		if got := LoopbackHTTPPort(c.test); got != c.want {
			t.Errorf("%q: port %d, want %d", c.test, got, c.want)
		}
	}
}

func TestContainerAddr(t *testing.T) {
	c := container.InspectResponse{NetworkSettings: &container.NetworkSettings{Networks: map[string]*network.EndpointSettings{
		"p_ssrf":    {IPAddress: netip.MustParseAddr("172.20.0.3")},
		"p_default": {IPAddress: netip.MustParseAddr("172.19.0.4")},
		"none":      {},
	}}}
	if got := ContainerAddr(c); got != "172.19.0.4" {
		t.Fatalf("%q, want the first network's by name", got)
	}
	if got := ContainerAddr(container.InspectResponse{}); got != "" {
		t.Fatalf("%q for a container with no network", got)
	}
}

// fakeDial answers from a script: each call takes the next error (nil:
// accepted), the last one repeating.
func fakeDial(errs ...error) (func(context.Context, string, string) (net.Conn, error), *int) {
	n := 0
	return func(context.Context, string, string) (net.Conn, error) {
		err := errs[min(n, len(errs)-1)]
		n++
		if err != nil {
			return nil, err
		}
		a, b := net.Pipe()
		b.Close()
		return a, nil
	}, &n
}

var refused = &net.OpError{Op: "dial", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}

func TestPortGateStandsInWhileRefused(t *testing.T) {
	ctx := context.Background()
	dial, calls := fakeDial(refused)
	g := &portGate{port: 5001, dial: dial}
	for i := 1; i <= gateMaxSkips; i++ {
		start := time.Now()
		skip, forced := g.stands(ctx, "172.19.0.4", 250*time.Millisecond)
		if !skip || forced {
			t.Fatalf("probe %d: skip %v forced %v, want the gate to stand in", i, skip, forced)
		}
		if took := time.Since(start); took < 200*time.Millisecond {
			t.Fatalf("probe %d: the gate gave up after %s, not its budget", i, took)
		}
	}
	if *calls < 2*gateMaxSkips {
		t.Fatalf("%d connects in %d budgets of 250ms: not polled every %s", *calls, gateMaxSkips, gatePoll)
	}
	// The next probe runs the test whatever the connect says.
	if skip, forced := g.stands(ctx, "172.19.0.4", 50*time.Millisecond); skip || !forced {
		t.Fatalf("after %d skips: skip %v forced %v, want the test run", gateMaxSkips, skip, forced)
	}
	if skip, _ := g.stands(ctx, "172.19.0.4", 50*time.Millisecond); !skip {
		t.Fatal("the count of skips did not start again after the forced test")
	}
	r := g.skippedRun("172.19.0.4", time.Second)
	if !r.Skipped || r.Passed || r.Probe.ExitCode != -1 || r.Probe.Output == "" {
		t.Fatalf("skipped run %+v", r)
	}
}

func TestPortGateOpensAsSoonAsThePortDoes(t *testing.T) {
	dial, calls := fakeDial(refused, refused, nil)
	g := &portGate{port: 5001, dial: dial, skipped: 3}
	start := time.Now()
	if skip, forced := g.stands(context.Background(), "172.19.0.4", 5*time.Second); skip || forced {
		t.Fatalf("skip %v forced %v once the port accepted", skip, forced)
	}
	if took := time.Since(start); took > time.Second || *calls != 3 {
		t.Fatalf("open seen after %s and %d connects, want the third connect, %s apart", took, *calls, gatePoll)
	}
	if g.skipped != 0 {
		t.Fatal("an open port did not reset the skips")
	}
}

func TestPortGateTurnsOffWhereItSaysNothing(t *testing.T) {
	ctx := context.Background()
	// No answer at all (a rootless engine's addresses): off at once.
	dial, _ := fakeDial(context.DeadlineExceeded)
	g := &portGate{port: 5001, dial: dial}
	if skip, forced := g.stands(ctx, "172.19.0.4", time.Second); skip || forced || !g.off {
		t.Fatalf("unreachable: skip %v forced %v off %v", skip, forced, g.off)
	}
	dial, _ = fakeDial(errors.New("connect: no route to host"))
	g = &portGate{port: 5001, dial: dial}
	if skip, _ := g.stands(ctx, "172.19.0.4", time.Second); skip || !g.off {
		t.Fatal("no route: the gate stood in")
	}
	// No address, no gate, an off gate: the test runs.
	dial, calls := fakeDial(refused)
	g = &portGate{port: 5001, dial: dial}
	if skip, _ := g.stands(ctx, "", time.Second); skip || *calls != 0 {
		t.Fatal("a container without an address was gated")
	}
	var none *portGate
	if skip, forced := none.stands(ctx, "172.19.0.4", time.Second); skip || forced {
		t.Fatal("a nil gate stood in")
	}
}

type hoster string

func (h hoster) DaemonHost() string { return string(h) }

func TestLocalEngine(t *testing.T) {
	if !localEngine(hoster("unix:///var/run/docker.sock")) || localEngine(hoster("tcp://10.0.0.2:2376")) || localEngine(hoster("http://docker.example.com")) || localEngine(struct{}{}) {
		t.Fatal("localEngine")
	}
}

// PortRefused connects once to the port a loopback HTTP healthcheck asks
// for at the container's address: refused, accepted, another kind of test.
func TestPortRefused(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	c := func(test ...string) container.InspectResponse {
		return container.InspectResponse{
			Config: &container.Config{Healthcheck: &container.HealthConfig{Test: test}},
			NetworkSettings: &container.NetworkSettings{Networks: map[string]*network.EndpointSettings{
				"p_default": {IPAddress: netip.MustParseAddr("127.0.0.1")}}},
		}
	}
	url := "http://localhost:" + strconv.Itoa(port) + "/health"
	ctx := context.Background()
	if PortRefused(ctx, c("CMD", "curl", "-f", url)) {
		t.Fatal("a listening port read as refused")
	}
	if PortRefused(ctx, c("CMD", "pg_isready")) || PortRefused(ctx, container.InspectResponse{}) {
		t.Fatal("a test of another kind, or no healthcheck, read as refused")
	}
	ln.Close()
	if !PortRefused(ctx, c("CMD", "curl", "-f", url)) {
		t.Fatal("a closed port not read as refused")
	}
}
