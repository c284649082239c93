// Package doctor implements `difyctl doctor`: host checks before and while
// running Dify, each with a status and a fix.
package doctor

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/difyctl/difyctl/envgen"
	"github.com/difyctl/difyctl/internal/cmdutil"
	"github.com/difyctl/difyctl/internal/dockerclient"
	"github.com/difyctl/difyctl/internal/iostreams"
	"github.com/difyctl/difyctl/internal/netcheck"
	"github.com/difyctl/difyctl/internal/project"
)

// Status of one check.
type Status string

// Statuses, in increasing severity.
const (
	OK   Status = "ok"
	Warn Status = "warn"
	Fail Status = "fail"
)

// Check is one line of the report.
type Check struct {
	Name   string `json:"name"`
	Status Status `json:"status"`
	Detail string `json:"detail"`
	Hint   string `json:"hint,omitempty"`
}

// Thresholds. Dify documents 2 CPUs and 4 GiB of memory as its minimum; its
// images take several GiB.
const (
	MinAPIVersion  = "1.41" // Docker 20.10
	diskFailBytes  = 2 << 30
	diskWarnBytes  = 10 << 30
	memWarnBytes   = 4 << 30
	minCPUs        = 2
	engineTimeout  = 5 * time.Second
	overcommitPath = "/proc/sys/vm/overcommit_memory"
	meminfoPath    = "/proc/meminfo"
)

// Options for the doctor command. The host probes are fields so tests can
// replace them.
type Options struct {
	IO         *iostreams.IOStreams
	JSON       bool
	ProjectDir string

	Engine    func(ctx context.Context) (dockerclient.EngineInfo, error)
	FreeDisk  func(dir string) (uint64, error)
	ReadFile  func(path string) ([]byte, error)
	PortInUse func(port int) (bool, error)
	NumCPU    func() int
	Getenv    func(string) string // the engine's variables (DOCKER_HOST, ...); nil: none
}

// NewCmd returns the doctor command; runF, when not nil, runs instead of
// Run (tests check the flag mapping through it).
func NewCmd(f *cmdutil.Factory, runF func(context.Context, *Options) error) *cobra.Command {
	return &cobra.Command{
		Use:   "doctor",
		Short: "Check this host for running Dify: engine, disk, memory, kernel settings, ports",
		Long: `Check this host for running Dify. Each check prints one line, ok / warn / fail,
with a fix for anything that is not ok. Exits 1 when any check fails.`,
		Args: cmdutil.Args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			dir, err := project.ResolveDir(f.ProjectDir)
			if err != nil {
				return cmdutil.WithExitCode(cmdutil.ExitUsage, err)
			}
			opts := &Options{
				IO: f.IOStreams, JSON: f.JSON(), ProjectDir: dir,
				Engine: func(ctx context.Context) (dockerclient.EngineInfo, error) {
					cli, ep, err := f.Docker()
					if err != nil {
						return dockerclient.EngineInfo{}, err
					}
					defer cli.Close()
					return dockerclient.Probe(ctx, cli, ep, engineTimeout)
				},
				FreeDisk:  freeDisk,
				ReadFile:  os.ReadFile,
				PortInUse: netcheck.PortInUse,
				NumCPU:    runtime.NumCPU,
				Getenv:    f.Getenv,
			}
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return Run(cmd.Context(), opts)
		},
	}
}

// Run performs every check, prints them, and fails when any check failed.
func Run(ctx context.Context, opts *Options) error {
	checks := Checks(ctx, opts)
	failed := 0
	for _, c := range checks {
		if c.Status == Fail {
			failed++
		}
	}
	if opts.JSON {
		if err := cmdutil.WriteJSON(opts.IO.Out, struct {
			OK     bool    `json:"ok"`
			Checks []Check `json:"checks"`
		}{failed == 0, checks}); err != nil {
			return err
		}
	} else {
		cs := opts.IO.ColorScheme()
		width := 0
		for _, c := range checks {
			width = max(width, len(c.Name))
		}
		for _, c := range checks {
			status := map[Status]func(string) string{OK: cs.Green, Warn: cs.Yellow, Fail: cs.Red}[c.Status](fmt.Sprintf("%-4s", c.Status))
			fmt.Fprintf(opts.IO.Out, "%s  %-*s  %s\n", status, width, c.Name, c.Detail)
			if c.Hint != "" {
				fmt.Fprintf(opts.IO.Out, "      %*s  %s\n", width, "", cs.Gray("fix: "+c.Hint))
			}
		}
	}
	if failed > 0 {
		return cmdutil.WithExitCode(cmdutil.ExitFailure, fmt.Errorf("%d check(s) failed", failed))
	}
	return nil
}

// Checks runs every check in order.
func Checks(ctx context.Context, opts *Options) []Check {
	checks := []Check{checkEngine(ctx, opts), checkDisk(opts), checkCPU(opts), checkMemory(opts), checkOvercommit(opts)}
	checks = append(checks, checkPorts(opts)...)
	return append(checks, securityChecks(opts)...) // security.go
}

func checkEngine(ctx context.Context, opts *Options) Check {
	c := Check{Name: "docker engine"}
	info, err := opts.Engine(ctx)
	if err != nil {
		c.Status, c.Detail, c.Hint = Fail, err.Error(), dockerclient.Hint(err)
		if errors.Is(err, os.ErrPermission) || strings.Contains(err.Error(), "permission denied") {
			c.Hint = "run as root or add your user to the docker group (usermod -aG docker $USER), then log in again"
		}
		return c
	}
	c.Detail = fmt.Sprintf("Docker %s, API %s (difyctl uses %s) at %s", info.Version, info.APIVersion, info.ClientAPI, info.Host)
	if compareAPI(info.APIVersion, MinAPIVersion) < 0 {
		c.Status, c.Hint = Fail, "upgrade the engine to Docker 20.10 (API "+MinAPIVersion+") or newer"
		return c
	}
	c.Status = OK
	return c
}

// compareAPI compares "major.minor" API versions.
func compareAPI(a, b string) int {
	pa, pb := strings.SplitN(a, ".", 2), strings.SplitN(b, ".", 2)
	for i := 0; i < 2; i++ {
		var x, y int
		if i < len(pa) {
			x, _ = strconv.Atoi(pa[i])
		}
		if i < len(pb) {
			y, _ = strconv.Atoi(pb[i])
		}
		if x != y {
			if x < y {
				return -1
			}
			return 1
		}
	}
	return 0
}

func checkDisk(opts *Options) Check {
	c := Check{Name: "disk space"}
	free, err := opts.FreeDisk(opts.ProjectDir)
	if err != nil {
		c.Status, c.Detail, c.Hint = Warn, fmt.Sprintf("cannot read free space of %s: %v", opts.ProjectDir, err), "check the project directory exists and is readable"
		return c
	}
	c.Detail = fmt.Sprintf("%s free in %s", humanBytes(free), opts.ProjectDir)
	switch {
	case free < diskFailBytes:
		c.Status, c.Hint = Fail, fmt.Sprintf("free at least %s: Dify's images and data need room (docker system prune removes unused images)", humanBytes(diskWarnBytes))
	case free < diskWarnBytes:
		c.Status, c.Hint = Warn, fmt.Sprintf("under %s free: images, logs and Redis backups will fill it; free space or move --project-dir", humanBytes(diskWarnBytes))
	default:
		c.Status = OK
	}
	return c
}

func checkCPU(opts *Options) Check {
	n := opts.NumCPU()
	c := Check{Name: "cpus", Status: OK, Detail: fmt.Sprintf("%d", n)}
	if n < minCPUs {
		c.Status, c.Hint = Warn, fmt.Sprintf("Dify asks for at least %d CPUs", minCPUs)
	}
	return c
}

func checkMemory(opts *Options) Check {
	c := Check{Name: "memory"}
	b, err := opts.ReadFile(meminfoPath)
	if err != nil {
		c.Status, c.Detail = Warn, fmt.Sprintf("cannot read %s: %v", meminfoPath, err)
		return c
	}
	total := uint64(0)
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "MemTotal:" {
			kb, _ := strconv.ParseUint(f[1], 10, 64)
			total = kb << 10
		}
	}
	c.Detail = humanBytes(total) + " total"
	c.Status = OK
	if total < memWarnBytes {
		c.Status, c.Hint = Warn, "Dify asks for at least 4 GiB of memory"
	}
	return c
}

func checkOvercommit(opts *Options) Check {
	c := Check{Name: "vm.overcommit_memory"}
	b, err := opts.ReadFile(overcommitPath)
	if err != nil {
		c.Status, c.Detail = Warn, fmt.Sprintf("cannot read %s: %v", overcommitPath, err)
		return c
	}
	v := strings.TrimSpace(string(b))
	c.Detail = v
	if v == "1" {
		c.Status = OK
		return c
	}
	c.Status = Warn
	c.Detail = v + " (Redis BGSAVE can fail with fork errors under memory pressure)"
	c.Hint = "sysctl -w vm.overcommit_memory=1 && echo vm.overcommit_memory=1 > /etc/sysctl.d/60-redis.conf"
	return c
}

// ports returns the host ports Dify's nginx publishes: EXPOSE_NGINX_PORT and
// EXPOSE_NGINX_SSL_PORT from the project's .env, else 80 and 443.
func ports(dir string) []struct {
	Var  string
	Port int
} {
	// The one .env reader (compose's rules); an unreadable .env leaves the
	// defaults (env validate reports it).
	env := map[string]string{}
	if d, err := envgen.ReadFile(filepath.Join(dir, project.EnvFile)); err == nil {
		env = d.Map()
	}
	out := []struct {
		Var  string
		Port int
	}{{"EXPOSE_NGINX_PORT", 80}, {"EXPOSE_NGINX_SSL_PORT", 443}}
	for i := range out {
		if p, err := strconv.Atoi(env[out[i].Var]); err == nil && p > 0 && p < 65536 {
			out[i].Port = p
		}
	}
	return out
}

func checkPorts(opts *Options) []Check {
	var checks []Check
	for _, p := range ports(opts.ProjectDir) {
		c := Check{Name: fmt.Sprintf("port %d", p.Port)}
		inUse, err := opts.PortInUse(p.Port)
		switch {
		case err != nil:
			c.Status, c.Detail = Warn, fmt.Sprintf("cannot tell whether port %d is free: %v", p.Port, err)
		case inUse:
			c.Status = Warn
			c.Detail = fmt.Sprintf("in use (%s)", p.Var)
			c.Hint = fmt.Sprintf("if it is not this project's nginx, stop what listens there (ss -ltnp 'sport = :%d') or set %s in .env", p.Port, p.Var)
		default:
			c.Status, c.Detail = OK, "free"
		}
		checks = append(checks, c)
	}
	return checks
}

func freeDisk(dir string) (uint64, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return 0, err
	}
	return st.Bavail * uint64(st.Bsize), nil
}

func humanBytes(n uint64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := uint64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
