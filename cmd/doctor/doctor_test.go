package doctor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/difyctl/difyctl/internal/cmdutil"
	"github.com/difyctl/difyctl/internal/dockerclient"
	"github.com/difyctl/difyctl/internal/iostreams"
)

func healthyOpts(t *testing.T) *Options {
	io, _, _, _ := iostreams.Test()
	return &Options{
		IO: io, ProjectDir: t.TempDir(),
		Engine: func(context.Context) (dockerclient.EngineInfo, error) {
			return dockerclient.EngineInfo{Version: "20.10.24", APIVersion: "1.41", ClientAPI: "1.41", Host: "unix:///var/run/docker.sock"}, nil
		},
		FreeDisk: func(string) (uint64, error) { return 50 << 30, nil },
		ReadFile: func(p string) ([]byte, error) {
			switch p {
			case overcommitPath:
				return []byte("1\n"), nil
			case meminfoPath:
				return []byte("MemTotal:       25165824 kB\nMemFree: 1 kB\n"), nil
			}
			return nil, os.ErrNotExist
		},
		PortInUse: func(int) (bool, error) { return false, nil },
		NumCPU:    func() int { return 4 },
	}
}

func byName(checks []Check) map[string]Check {
	m := map[string]Check{}
	for _, c := range checks {
		m[c.Name] = c
	}
	return m
}

func TestAllOK(t *testing.T) {
	opts := healthyOpts(t)
	if err := Run(context.Background(), opts); err != nil {
		t.Fatalf("healthy host failed: %v", err)
	}
	out := opts.IO.Out.(interface{ String() string }).String()
	for _, want := range []string{"ok    docker engine", "Docker 20.10.24, API 1.41", "port 80", "port 443", "vm.overcommit_memory"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

func TestEngineDownFailsWithHint(t *testing.T) {
	opts := healthyOpts(t)
	opts.Engine = func(context.Context) (dockerclient.EngineInfo, error) {
		return dockerclient.EngineInfo{}, errors.New("docker engine unreachable at unix:///var/run/docker.sock: connection refused")
	}
	err := Run(context.Background(), opts)
	if cmdutil.ExitCode(err) != cmdutil.ExitFailure {
		t.Fatalf("want exit 1, got %v", err)
	}
	c := byName(Checks(context.Background(), opts))["docker engine"]
	if c.Status != Fail || !strings.Contains(c.Hint, "dockerd") {
		t.Fatalf("got %+v", c)
	}
}

func TestOldEngineFails(t *testing.T) {
	opts := healthyOpts(t)
	opts.Engine = func(context.Context) (dockerclient.EngineInfo, error) {
		return dockerclient.EngineInfo{Version: "19.03", APIVersion: "1.40"}, nil
	}
	if c := byName(Checks(context.Background(), opts))["docker engine"]; c.Status != Fail {
		t.Fatalf("API 1.40 accepted: %+v", c)
	}
}

func TestWarnings(t *testing.T) {
	opts := healthyOpts(t)
	opts.FreeDisk = func(string) (uint64, error) { return 5 << 30, nil }
	opts.ReadFile = func(p string) ([]byte, error) {
		if p == overcommitPath {
			return []byte("0\n"), nil
		}
		return []byte("MemTotal: 2097152 kB\n"), nil
	}
	opts.PortInUse = func(p int) (bool, error) { return p == 80, nil }
	opts.NumCPU = func() int { return 1 }
	checks := byName(Checks(context.Background(), opts))
	for _, name := range []string{"disk space", "vm.overcommit_memory", "port 80", "memory", "cpus"} {
		if checks[name].Status != Warn || checks[name].Hint == "" {
			t.Errorf("%s: want warn with a hint, got %+v", name, checks[name])
		}
	}
	if checks["port 443"].Status != OK {
		t.Errorf("port 443: %+v", checks["port 443"])
	}
	if !strings.Contains(checks["vm.overcommit_memory"].Hint, "vm.overcommit_memory=1") {
		t.Errorf("overcommit hint: %q", checks["vm.overcommit_memory"].Hint)
	}
	// Warnings alone do not fail the command.
	if err := Run(context.Background(), opts); err != nil {
		t.Fatalf("warnings failed the run: %v", err)
	}
	opts.FreeDisk = func(string) (uint64, error) { return 1 << 30, nil }
	if err := Run(context.Background(), opts); cmdutil.ExitCode(err) != 1 {
		t.Fatalf("1 GiB free should fail, got %v", err)
	}
}

func TestPortsFromEnv(t *testing.T) {
	opts := healthyOpts(t)
	os.WriteFile(filepath.Join(opts.ProjectDir, ".env"), []byte("EXPOSE_NGINX_PORT=8080\nEXPOSE_NGINX_SSL_PORT=8443\n"), 0o600)
	checks := byName(Checks(context.Background(), opts))
	if _, ok := checks["port 8080"]; !ok {
		t.Fatalf("port from .env not checked: %v", checks)
	}
	if _, ok := checks["port 8443"]; !ok {
		t.Fatalf("ssl port from .env not checked: %v", checks)
	}
}

func TestJSON(t *testing.T) {
	opts := healthyOpts(t)
	opts.JSON = true
	if err := Run(context.Background(), opts); err != nil {
		t.Fatal(err)
	}
	var rep struct {
		OK     bool
		Checks []Check
	}
	if err := json.Unmarshal([]byte(opts.IO.Out.(interface{ String() string }).String()), &rep); err != nil {
		t.Fatal(err)
	}
	if !rep.OK || len(rep.Checks) != 8 { // 7 + project files (security.go)
		t.Fatalf("got %+v", rep)
	}
}

func TestHumanBytes(t *testing.T) {
	for n, want := range map[uint64]string{512: "512 B", 2048: "2.0 KiB", 5 << 30: "5.0 GiB"} {
		if got := humanBytes(n); got != want {
			t.Errorf("humanBytes(%d) = %q, want %q", n, got, want)
		}
	}
}

func TestFlagsToOptions(t *testing.T) {
	f, _, _ := cmdutil.NewTestFactory(t.TempDir(), map[string]string{"DOCKER_HOST": "unix:///x.sock"})
	var got *Options
	cmd := NewCmd(f, func(_ context.Context, o *Options) error { got = o; return nil })
	cmd.SetArgs(nil)
	if err := cmd.Execute(); err != nil {
		t.Fatal(err)
	}
	if got.ProjectDir != f.ProjectDir || got.JSON || got.Engine == nil || got.FreeDisk == nil || got.ReadFile == nil || got.PortInUse == nil || got.NumCPU == nil || got.Getenv("DOCKER_HOST") != "unix:///x.sock" {
		t.Fatalf("%+v", got)
	}
	// The project directory must exist (exit 2).
	f, _, _ = cmdutil.NewTestFactory(filepath.Join(t.TempDir(), "missing"), nil)
	cmd = NewCmd(f, func(_ context.Context, o *Options) error { got = o; return nil })
	cmd.SilenceErrors, cmd.SilenceUsage = true, true
	if err := cmd.Execute(); cmdutil.ExitCode(err) != cmdutil.ExitUsage {
		t.Fatalf("%v", err)
	}
}

// The engine's "permission denied" reaches doctor as text (Probe keeps the
// cause's first line, not the error chain); the hint still names the docker
// group (found on the way in #12: the check matched only the chain).
func TestEnginePermissionDeniedHint(t *testing.T) {
	opts := healthyOpts(t)
	opts.Engine = func(context.Context) (dockerclient.EngineInfo, error) {
		return dockerclient.EngineInfo{}, fmt.Errorf("%w at unix:///var/run/docker.sock: %s", dockerclient.ErrUnreachable,
			"permission denied while trying to connect to the docker API at unix:///var/run/docker.sock")
	}
	c := checkEngine(context.Background(), opts)
	if c.Status != Fail || !strings.Contains(c.Hint, "usermod -aG docker") {
		t.Fatalf("%+v", c)
	}
	opts.Engine = func(context.Context) (dockerclient.EngineInfo, error) {
		return dockerclient.EngineInfo{}, fmt.Errorf("%w at unix:///var/run/docker.sock: connection refused", dockerclient.ErrUnreachable)
	}
	if c := checkEngine(context.Background(), opts); strings.Contains(c.Hint, "usermod") {
		t.Fatalf("a refused connection is not a permission problem: %+v", c)
	}
}
