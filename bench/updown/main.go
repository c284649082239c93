// Command updown measures `difyctl up` and `down` on a fixture project of
// 12 services in 4 dependency levels (each level service_healthy on every
// service of the level before; each service healthy ~1 s after start, probed
// every 250 ms by an exec-form healthcheck) and prints, from one run:
// difyctl's time to all-healthy, the critical-path bound (4 × difyctl's own
// time to bring one such service to healthy alone), docker compose v2's
// `up -d --wait` on the same file, and both tools' `down`.
//
// To show where the time goes it also prints, per run, how busy the
// machine's CPUs were while difyctl brought the 12 services up (the engine
// runs every probe as an exec: runc, shim, containerd, dockerd), and the
// same figures for a chain of one service per level (4 services), where the
// engine is not loaded by parallel starts and probes.
//
//	go run ./bench/updown [-compose BIN] [-difyctl BIN] [-runs N]
//
// Needs the engine and the fixture images (make engine fixtures); docker
// compose is found as DIFYCTL_COMPOSE_BIN, `docker compose`, or skipped.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/difyctl/difyctl/internal/testenv"
)

const levels = 4

func service(name string, deps []string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "  %s:\n    image: %s\n    command: [\"--healthy-after\", \"1s\"]\n", name, testenv.ImageTestsvc)
	b.WriteString("    healthcheck: {test: [\"CMD\", \"/testsvc\", \"probe\"], interval: 250ms, timeout: 2s, retries: 40}\n")
	if len(deps) > 0 {
		b.WriteString("    depends_on:\n")
		for _, d := range deps {
			fmt.Fprintf(&b, "      %s: {condition: service_healthy}\n", d)
		}
	}
	return b.String()
}

// chainFile is `levels` levels of `width` services, each level
// service_healthy on every service of the one before.
func chainFile(width int) string {
	var b strings.Builder
	b.WriteString("services:\n")
	var prev []string
	for l := 0; l < levels; l++ {
		var cur []string
		for i := 0; i < width; i++ {
			name := fmt.Sprintf("l%d_s%d", l, i)
			b.WriteString(service(name, prev))
			cur = append(cur, name)
		}
		prev = cur
	}
	return b.String()
}

func main() {
	composeFlag := flag.String("compose", os.Getenv("DIFYCTL_COMPOSE_BIN"), "docker compose v2 binary (default: docker compose)")
	bin := flag.String("difyctl", "", "difyctl binary (default: build one)")
	runs := flag.Int("runs", 1, "measure this many times, one block of figures per run")
	flag.Parse()
	if err := run(*composeFlag, *bin, *runs); err != nil {
		fmt.Fprintln(os.Stderr, "updown:", err)
		os.Exit(1)
	}
}

type bench struct {
	*testenv.Bench
	compose []string // nil: no docker compose
}

func (b *bench) timed(name string, args ...string) (time.Duration, error) {
	cmd := exec.Command(name, args...)
	cmd.Dir = b.Dir
	t := time.Now()
	out, err := cmd.CombinedOutput()
	if err != nil {
		return 0, fmt.Errorf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return time.Since(t), nil
}

// figures of one tool on one file.
type figures struct {
	up, down time.Duration
	cpu      float64 // share of all CPUs busy during up; <0 when unknown
}

func (b *bench) difyctl(file string) (figures, error) {
	p := b.Project()
	cpu := startCPU()
	up, err := b.timed(b.Bin, "-p", p, "--project-dir", b.Dir, "up", "-f", file, "--progress", "quiet")
	f := figures{up: up, cpu: cpu()}
	if err != nil {
		return f, err
	}
	f.down, err = b.timed(b.Bin, "-p", p, "--project-dir", b.Dir, "down", "--progress", "quiet")
	return f, err
}

func (b *bench) dockerCompose(file string) (figures, error) {
	p := b.Project()
	args := append(b.compose[1:], "-p", p, "-f", file)
	cpu := startCPU()
	up, err := b.timed(b.compose[0], append(args, "up", "-d", "--wait")...)
	f := figures{up: up, cpu: cpu()}
	if err != nil {
		return f, err
	}
	f.down, err = b.timed(b.compose[0], append(args, "down")...)
	return f, err
}

func run(composeBin, bin string, runs int) error {
	tb, err := testenv.NewBench(context.Background(), bin)
	if err != nil {
		return err
	}
	defer tb.Close()
	b := &bench{Bench: tb}
	cmdline := []string{"docker", "compose"}
	if composeBin != "" {
		cmdline = []string{composeBin}
	}
	if exec.Command(cmdline[0], append(cmdline[1:], "version")...).Run() == nil {
		b.compose = cmdline
	}
	for name, body := range map[string]string{
		"one.yaml":    "services:\n" + service("solo", nil),
		"chain.yaml":  chainFile(3),
		"chain1.yaml": chainFile(1),
	} {
		if err := os.WriteFile(filepath.Join(b.Dir, name), []byte(body), 0o644); err != nil {
			return err
		}
	}

	fmt.Printf("fixture: %d services in %d levels, each healthy ~1s after start, exec probe every 250ms\n", 3*levels, levels)
	if b.compose == nil {
		fmt.Println("docker compose v2 not found: comparison skipped (../shared/tools/build-docker-compose builds one)")
	}
	for i := 1; i <= runs; i++ {
		fmt.Printf("\nrun %d of %d\n", i, runs)
		if err := b.once(); err != nil {
			return err
		}
	}
	return nil
}

func (b *bench) once() error {
	single, err := b.difyctl("one.yaml")
	if err != nil {
		return err
	}
	bound := time.Duration(levels) * single.up
	d, err := b.difyctl("chain.yaml")
	if err != nil {
		return err
	}
	d1, err := b.difyctl("chain1.yaml")
	if err != nil {
		return err
	}
	fmt.Printf("difyctl, one service to healthy:        %s\n", r(single.up))
	fmt.Printf("critical-path bound (%d x that):         %s\n", levels, r(bound))
	fmt.Printf("difyctl up (12 services):                %s   (%.2fx the bound; target <= 1.10x)  CPUs busy %s\n", r(d.up), ratio(d.up, bound), pct(d.cpu))
	fmt.Printf("difyctl down:                            %s\n", r(d.down))
	var c, c1 figures
	if b.compose != nil {
		if c, err = b.dockerCompose("chain.yaml"); err != nil {
			return err
		}
		fmt.Printf("docker compose up -d --wait:             %s   (difyctl takes %.2fx of it; target <= 0.70x)  CPUs busy %s\n", r(c.up), ratio(d.up, c.up), pct(c.cpu))
		fmt.Printf("docker compose down:                     %s   (difyctl down takes %.2fx of it; target <= 1.00x)\n", r(c.down), ratio(d.down, c.down))
	}
	fmt.Printf("diagnostic, one service per level (4):   difyctl %s (%.2fx the bound)  CPUs busy %s", r(d1.up), ratio(d1.up, bound), pct(d1.cpu))
	if b.compose != nil {
		if c1, err = b.dockerCompose("chain1.yaml"); err != nil {
			return err
		}
		fmt.Printf("; compose %s (difyctl %.2fx)", r(c1.up), ratio(d1.up, c1.up))
	}
	fmt.Println()
	return nil
}

// startCPU samples /proc/stat and returns a function giving the share of
// all CPUs busy since (negative where /proc/stat cannot be read).
func startCPU() func() float64 {
	busy0, total0, ok0 := cpuTimes()
	return func() float64 {
		busy1, total1, ok1 := cpuTimes()
		if !ok0 || !ok1 || total1 <= total0 {
			return -1
		}
		return float64(busy1-busy0) / float64(total1-total0)
	}
}

// cpuTimes reads the aggregate line of /proc/stat: busy and total jiffies
// (idle and iowait count as not busy).
func cpuTimes() (busy, total uint64, ok bool) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0, false
	}
	line, _, _ := strings.Cut(string(b), "\n")
	fields := strings.Fields(line)
	if len(fields) < 8 || fields[0] != "cpu" {
		return 0, 0, false
	}
	for i, f := range fields[1:] {
		var v uint64
		fmt.Sscan(f, &v)
		total += v
		if i != 3 && i != 4 { // idle, iowait
			busy += v
		}
	}
	return busy, total, true
}

func pct(f float64) string {
	if f < 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.0f%%", 100*f)
}

func r(d time.Duration) string { return d.Round(10 * time.Millisecond).String() }

func ratio(a, b time.Duration) float64 { return float64(a) / float64(b) }
