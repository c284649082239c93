// Command updown measures `difyctl up` and `down` on a fixture project of
// 12 services in 4 dependency levels (each level service_healthy on every
// service of the level before; each service healthy ~1 s after start, probed
// every 250 ms by an exec-form healthcheck) and prints, from one run:
// difyctl's time to all-healthy, the critical-path bound (4 × difyctl's own
// time to bring one such service to healthy alone), docker compose v2's
// `up -d --wait` on the same file, and both tools' `down`.
//
//	go run ./bench/updown [-compose BIN] [-difyctl BIN]
//
// Needs the engine and the fixture images (make engine fixtures); docker
// compose is found as DIFYCTL_COMPOSE_BIN, `docker compose`, or skipped.
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/difyctl/difyctl/internal/testenv"
)

const levels, width = 4, 3

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

func chainFile() string {
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
	flag.Parse()
	if err := run(*composeFlag, *bin); err != nil {
		fmt.Fprintln(os.Stderr, "updown:", err)
		os.Exit(1)
	}
}

func timed(dir string, name string, args ...string) (time.Duration, error) {
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	t := time.Now()
	out, err := cmd.CombinedOutput()
	if err != nil {
		return 0, fmt.Errorf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return time.Since(t), nil
}

func project() string {
	b := make([]byte, 4)
	rand.Read(b)
	return "difyctl-bench-" + hex.EncodeToString(b)
}

func run(composeBin, bin string) error {
	ctx := context.Background()
	cli, err := testenv.Connect(ctx)
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "difyctl-bench-updown-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	if bin == "" {
		if bin, err = testenv.BuildDifyctl(dir); err != nil {
			return err
		}
	}
	os.WriteFile(filepath.Join(dir, "chain.yaml"), []byte(chainFile()), 0o644)
	os.WriteFile(filepath.Join(dir, "one.yaml"), []byte("services:\n"+service("solo", nil)), 0o644)
	var cleanup []string
	defer func() {
		for _, p := range cleanup {
			testenv.RemoveProject(context.Background(), cli, p)
		}
	}()
	up := func(file string) (time.Duration, string, error) {
		p := project()
		cleanup = append(cleanup, p)
		d, err := timed(dir, bin, "-p", p, "--project-dir", dir, "up", "-f", file, "--progress", "quiet")
		return d, p, err
	}

	single, p, err := up("one.yaml")
	if err != nil {
		return err
	}
	testenv.RemoveProject(ctx, cli, p)
	bound := time.Duration(levels) * single
	dUp, dProject, err := up("chain.yaml")
	if err != nil {
		return err
	}
	dDown, err := timed(dir, bin, "-p", dProject, "--project-dir", dir, "down", "--progress", "quiet")
	if err != nil {
		return err
	}
	fmt.Printf("fixture: %d services in %d levels, each healthy ~1s after start, exec probe every 250ms\n\n", levels*width, levels)
	fmt.Printf("difyctl, one service to healthy:       %s\n", r(single))
	fmt.Printf("critical-path bound (%d x that):        %s\n", levels, r(bound))
	fmt.Printf("difyctl up (12 services):               %s   (%.2fx the bound; target <= 1.10x)\n", r(dUp), ratio(dUp, bound))
	fmt.Printf("difyctl down:                           %s\n", r(dDown))

	cmdline := []string{"docker", "compose"}
	if composeBin != "" {
		cmdline = []string{composeBin}
	}
	if exec.Command(cmdline[0], append(cmdline[1:], "version")...).Run() != nil {
		fmt.Println("\ndocker compose v2 not found: comparison skipped (../shared/tools/build-docker-compose builds one)")
		return nil
	}
	cp := project()
	cleanup = append(cleanup, cp)
	cUp, err := timed(dir, cmdline[0], append(cmdline[1:], "-p", cp, "-f", "chain.yaml", "up", "-d", "--wait")...)
	if err != nil {
		return err
	}
	cDown, err := timed(dir, cmdline[0], append(cmdline[1:], "-p", cp, "-f", "chain.yaml", "down")...)
	if err != nil {
		return err
	}
	fmt.Printf("docker compose up -d --wait:            %s   (difyctl takes %.2fx of it; target <= 0.70x)\n", r(cUp), ratio(dUp, cUp))
	fmt.Printf("docker compose down:                    %s   (difyctl down takes %.2fx of it; target <= 1.00x)\n", r(cDown), ratio(dDown, cDown))
	return nil
}

func r(d time.Duration) string { return d.Round(10 * time.Millisecond).String() }

func ratio(a, b time.Duration) float64 { return float64(a) / float64(b) }
