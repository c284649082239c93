// Command upgrade measures `difyctl upgrade` of the stand-in deployment
// from Dify 1.15.0 to 1.16.0 beside the manual path on the same project:
//
//   - difyctl: `difyctl init --release 1.15.0` and `difyctl up`, then the
//     timed `difyctl upgrade --to 1.16.0 --yes` (with its safety bundle);
//     its wall time split as the command reports it (plan, pull, bundle,
//     apply, health wait, downtime), and the downtime seen from outside:
//     from the first container of the project seen not ready to every
//     container of 1.16.0 seen ready (polled every 100 ms);
//   - manual: `difyctl rollback` puts the project back on 1.15.0 (database
//     from the bundle, revision r1), then the documented upgrade by hand in
//     the same project directory: upstream 1.16.0's docker-compose.yaml and
//     envs/ written beside the same 1.16.0 .env difyctl produced, and the
//     timed `docker compose down && docker compose up -d --wait`, whose
//     downtime is seen the same way (from the start of `down`).
//
// Both paths start from 1.15.0 running with every image present (nothing is
// pulled), on the same data: the PostgreSQL fixture as Dify's db_postgres,
// migrated by the api stand-in (internal/standin/migrate.go: the 1.15.0 api
// brings it to revision r1, the 1.16.0 one to r2 on start), the real Redis
// fixture, the stand-ins for every other image under Dify's real names for
// the run only (testenv.AcquireStandins), each ready after the delay below
// (the same figures as bench/upready).
//
// Target: difyctl's downtime <= 0.5 x the manual path's. Figures are
// printed, not asserted.
//
//	go run ./bench/upgrade [-compose BIN] [-difyctl BIN] [-runs N]
//
// Needs the engine and the fixture images (make engine fixtures); docker
// compose is the binary -compose or DIFYCTL_COMPOSE_BIN names, else
// /root/.cache/difyctl-tools/docker-compose, else `docker compose`, else
// the comparison is skipped, saying so.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"

	"github.com/difyctl/difyctl/compose"
	"github.com/difyctl/difyctl/internal/testenv"
)

const from, to = "1.15.0", "1.16.0"

// readyAfter is each stand-in's ready delay (bench/upready's figures).
var readyAfter = map[string]time.Duration{
	"weaviate":      2 * time.Second,
	"sandbox":       1 * time.Second,
	"local_sandbox": 1 * time.Second,
	"plugin_daemon": 3 * time.Second,
	"agent_backend": 2 * time.Second,
	"api":           6 * time.Second,
	"worker":        5 * time.Second,
	"worker_beat":   2 * time.Second,
	"api_websocket": 4 * time.Second,
	"web":           3 * time.Second,
	"ssrf_proxy":    1 * time.Second,
	"nginx":         500 * time.Millisecond,
}

// overrideFile: the PostgreSQL fixture as db_postgres, the api migrating
// it, every stand-in's ready delay. docker compose reads the same file.
func overrideFile() string {
	names := make([]string, 0, len(readyAfter))
	for n := range readyAfter {
		names = append(names, n)
	}
	sort.Strings(names)
	var b strings.Builder
	b.WriteString("# bench/upgrade\nservices:\n  db_postgres:\n    image: " + testenv.ImagePostgres + "\n")
	for _, n := range names {
		fmt.Fprintf(&b, "  %s:\n    environment:\n      STANDIN_READY_AFTER: %s\n", n, readyAfter[n])
		if n == "api" {
			b.WriteString("      STANDIN_MIGRATE: \"1\"\n")
		}
	}
	return b.String()
}

func main() {
	composeFlag := flag.String("compose", os.Getenv("DIFYCTL_COMPOSE_BIN"), "docker compose v2 binary (default: /root/.cache/difyctl-tools/docker-compose, else docker compose)")
	bin := flag.String("difyctl", "", "difyctl binary (default: build one)")
	runs := flag.Int("runs", 1, "measure this many times")
	flag.Parse()
	if err := run(*composeFlag, *bin, *runs); err != nil {
		fmt.Fprintln(os.Stderr, "upgrade:", err)
		os.Exit(1)
	}
}

type bench struct {
	*testenv.Bench
	compose []string
}

func findCompose(flagged string) []string {
	var cands [][]string
	if flagged != "" {
		cands = append(cands, []string{flagged})
	}
	cands = append(cands, []string{"/root/.cache/difyctl-tools/docker-compose"}, []string{"docker", "compose"})
	for _, c := range cands {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		err := exec.CommandContext(ctx, c[0], append(c[1:], "version")...).Run()
		cancel()
		if err == nil {
			return c
		}
	}
	return nil
}

func run(composeBin, bin string, runs int) error {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	tb, err := testenv.NewBench(ctx, bin)
	if err != nil {
		return err
	}
	defer tb.Close()
	var refs []string
	for _, rel := range []string{from, to} {
		r, err := testenv.StandinReleaseImages(rel)
		if err != nil {
			return err
		}
		refs = append(refs, r...)
	}
	release, err := testenv.AcquireStandins(ctx, tb.Cli, os.Stderr, dedupe(refs), testenv.StandinOptions{})
	if err != nil {
		return err
	}
	defer func() {
		if err := release(); err != nil {
			fmt.Fprintln(os.Stderr, "upgrade: untagging the stand-ins:", err)
		}
	}()
	b := &bench{Bench: tb, compose: findCompose(composeBin)}
	if b.compose == nil {
		fmt.Println("docker compose v2 not found: the manual path is skipped (../shared/tools/build-docker-compose builds one)")
	}
	fmt.Printf("Dify %s -> %s, default deployment (postgresql + weaviate + collaboration): PostgreSQL fixture, real Redis, stand-ins ready after: %s\n", from, to, delays())
	for i := 1; i <= runs; i++ {
		fmt.Printf("\nrun %d of %d\n", i, runs)
		if err := b.once(ctx); err != nil {
			return err
		}
	}
	return nil
}

func dedupe(ss []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, s := range ss {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

func delays() string {
	var parts []string
	for n, d := range readyAfter {
		parts = append(parts, fmt.Sprintf("%s %s", n, d))
	}
	sort.Strings(parts)
	return strings.Join(parts, ", ")
}

func (b *bench) cmd(ctx context.Context, dir string, name string, args ...string) *exec.Cmd {
	c := exec.CommandContext(ctx, name, args...)
	c.Dir = dir
	c.Cancel = func() error { return c.Process.Signal(syscall.SIGINT) }
	c.WaitDelay = 30 * time.Second
	return c
}

// must runs a command bounded by limit.
func (b *bench) must(ctx context.Context, limit time.Duration, dir string, name string, args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	c := b.cmd(ctx, dir, name, args...)
	var stderr strings.Builder
	c.Stderr = &stderr
	out, err := c.Output()
	if err != nil {
		return out, fmt.Errorf("%s %s: %v\n%s%s", filepath.Base(name), strings.Join(args, " "), err, tail(string(out), 10), tail(stderr.String(), 20))
	}
	return out, nil
}

func freePort() (string, error) {
	ln, err := net.Listen("tcp", ":0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return fmt.Sprint(ln.Addr().(*net.TCPAddr).Port), nil
}

// upgradeResult is what `difyctl -o json upgrade` prints.
type upgradeResult struct {
	Plan struct {
		Recreate []string `json:"recreate"`
		Running  []string `json:"running"`
	} `json:"plan"`
	Bundle  string `json:"bundle"`
	Timings struct {
		Plan, Pull, Bundle, Apply, Health, Downtime time.Duration
	} `json:"timings"`
}

func (b *bench) once(ctx context.Context) error {
	project := b.Project()
	dir := filepath.Join(b.Dir, project)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	dfy := func(limit time.Duration, args ...string) ([]byte, error) {
		return b.must(ctx, limit, dir, b.Bin, append([]string{"--project-dir", dir, "-p", project}, args...)...)
	}
	if _, err := dfy(time.Minute, "init", "--release", from); err != nil {
		return err
	}
	for _, k := range []string{"EXPOSE_NGINX_PORT", "EXPOSE_NGINX_SSL_PORT", "EXPOSE_PLUGIN_DEBUGGING_PORT"} {
		p, err := freePort()
		if err != nil {
			return err
		}
		if _, err := dfy(time.Minute, "env", "set", k+"="+p); err != nil {
			return err
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "docker-compose.override.yaml"), []byte(overrideFile()), 0o644); err != nil {
		return err
	}
	t := time.Now()
	if _, err := dfy(10*time.Minute, "up", "--progress", "quiet", "--wait-timeout", "8m"); err != nil {
		return err
	}
	fmt.Printf("Dify %s up with difyctl in %s (not timed below)\n", from, r(time.Since(t)))
	want, err := b.services(dfy)
	if err != nil {
		return err
	}

	// difyctl upgrade, timed.
	var res upgradeResult
	var out []byte
	w := b.watch(ctx, project, want, time.Now(), func() error {
		var err error
		out, err = dfy(15*time.Minute, "-o", "json", "upgrade", "--to", to, "--yes", "--wait-timeout", "8m")
		return err
	})
	if w.err != nil {
		return fmt.Errorf("difyctl upgrade: %w", w.err)
	}
	if err := json.Unmarshal(out, &res); err != nil {
		return fmt.Errorf("difyctl upgrade -o json: %w\n%s", err, out)
	}
	tm := res.Timings
	fmt.Printf("difyctl upgrade %s -> %s:      %s wall (the command's own split: plan %s, pull %s, bundle %s, apply %s of which health wait %s)\n",
		from, to, r(w.exit), r(tm.Plan), r(tm.Pull), r(tm.Bundle), r(tm.Apply), r(tm.Health))
	fmt.Printf("  recreated %d of %d running services: %s\n", len(res.Plan.Recreate), len(res.Plan.Running), strings.Join(res.Plan.Recreate, ", "))
	fmt.Printf("  downtime: %s as the command reports it (first container stopped -> all healthy); %s seen from outside (first container not ready -> all %d ready)\n",
		r(tm.Downtime), seen(w.downtime), want)
	newEnv, err := os.ReadFile(filepath.Join(dir, ".env"))
	if err != nil {
		return err
	}
	t = time.Now()
	if _, err := dfy(10*time.Minute, "rollback", "--yes", "--wait-timeout", "8m"); err != nil {
		return err
	}
	fmt.Printf("difyctl rollback to %s:       %s (database from the bundle; not compared)\n", from, r(time.Since(t)))
	if b.compose == nil {
		return nil
	}

	// The manual path in the same directory, on the same data.
	up := filepath.Join(repoRoot(), "..", "shared", "upstream", to)
	if _, err := os.Stat(filepath.Join(up, "docker-compose.yaml")); err != nil {
		return fmt.Errorf("upstream %s: %w (../shared/upstream holds upstream's files)", to, err)
	}
	if err := copyTree(filepath.Join(up, "docker-compose.yaml"), filepath.Join(dir, "docker-compose.yaml")); err != nil {
		return err
	}
	if err := copyTree(filepath.Join(up, "envs"), filepath.Join(dir, "envs")); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, ".env"), newEnv, 0o600); err != nil {
		return err
	}
	dc := func(limit time.Duration, args ...string) ([]byte, error) {
		return b.must(ctx, limit, dir, b.compose[0], append(append(append([]string{}, b.compose[1:]...), "-p", project), args...)...)
	}
	var upErr error
	m := b.watch(ctx, project, want, time.Now(), func() error {
		if _, err := dc(5*time.Minute, "down"); err != nil {
			return err
		}
		_, upErr = dc(10*time.Minute, "up", "-d", "--wait")
		return nil
	})
	if m.err != nil {
		return fmt.Errorf("docker compose down: %w", m.err)
	}
	how := "exited 0"
	if upErr != nil {
		how = "up failed: " + oneLine(upErr.Error())
		if m.downtime == 0 {
			return fmt.Errorf("docker compose up -d --wait %s, and the project never became ready", how)
		}
	}
	fmt.Printf("docker compose down && up -d --wait: %s wall (%s); downtime seen from outside %s\n", r(m.exit), how, seen(m.downtime))
	if m.downtime > 0 && w.downtime > 0 {
		fmt.Printf("downtime difyctl / manual:       %.2fx seen from outside, %.2fx with the command's own figure (target <= 0.50x)\n",
			ratio(w.downtime, m.downtime), ratio(tm.Downtime, m.downtime))
	}
	if _, err := dc(5*time.Minute, "down", "-v"); err != nil {
		return err
	}
	return nil
}

// services counts the containers the target release's project runs (one
// per service of the upgrade's plan, one-shot jobs included).
func (b *bench) services(dfy func(time.Duration, ...string) ([]byte, error)) (int, error) {
	out, err := dfy(2*time.Minute, "-o", "json", "upgrade", "--to", to, "--dry-run")
	if err != nil {
		return 0, err
	}
	var p struct {
		Plan struct {
			ComposePlan []json.RawMessage `json:"composePlan"`
		} `json:"plan"`
	}
	if err := json.Unmarshal(out, &p); err != nil || len(p.Plan.ComposePlan) == 0 {
		return 0, fmt.Errorf("difyctl upgrade --dry-run -o json: no plan (%v)", err)
	}
	return len(p.Plan.ComposePlan), nil
}

// watched is one timed path.
type watched struct {
	exit     time.Duration // until fn returned
	downtime time.Duration // first container not ready -> all ready again; 0: never seen
	err      error
}

// watch runs fn and polls the project's containers every 100 ms: the
// downtime runs from the first poll with a container not ready (stopped,
// gone, starting, unhealthy) to the first poll after it with want
// containers all ready; polling goes on after fn returns until then (at
// most 2 minutes).
func (b *bench) watch(ctx context.Context, project string, want int, start time.Time, fn func() error) watched {
	var w watched
	done := make(chan error, 1)
	go func() { done <- fn() }()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	var down time.Time
	var after <-chan time.Time
	finished := false
	for {
		select {
		case err := <-done:
			w.exit, w.err, finished = time.Since(start), err, true
			if err != nil {
				return w
			}
			after = time.After(2 * time.Minute)
		case <-tick.C:
			ok := b.ready(ctx, project, want)
			switch {
			case !ok && down.IsZero():
				down = time.Now()
			case ok && !down.IsZero() && w.downtime == 0:
				w.downtime = time.Since(down)
			}
			if finished && w.downtime > 0 {
				return w
			}
		case <-after:
			return w
		case <-ctx.Done():
			w.err = ctx.Err()
			return w
		}
	}
}

// ready: want containers of the project, each running (healthy where it
// has a healthcheck) or, for a one-shot job, exited 0.
func (b *bench) ready(ctx context.Context, project string, want int) bool {
	cs, err := b.Cli.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: make(client.Filters).Add("label", compose.ProjectFilter(project))})
	if err != nil {
		return false
	}
	n := 0
	for _, c := range cs.Items {
		if c.Labels[compose.LabelOneoff] == "True" {
			continue
		}
		n++
		switch {
		case c.State == container.StateExited && strings.HasPrefix(c.Status, "Exited (0)"):
		case c.State == container.StateRunning && !strings.Contains(c.Status, "(health: starting)") && !strings.Contains(c.Status, "(unhealthy)"):
		case c.State == container.StatePaused:
			// The safety bundle pauses the vector store for its file copy
			// (seconds): slower answers, not a stopped container.
		default:
			return false
		}
	}
	return n >= want
}

func repoRoot() string {
	root, err := testenv.RepoRoot()
	if err != nil {
		return "."
	}
	return root
}

func copyTree(src, dst string) error {
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		target := filepath.Join(dst, rel)
		info, err := d.Info()
		if err != nil {
			return err
		}
		if d.IsDir() {
			return os.MkdirAll(target, info.Mode().Perm()|0o700)
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(target, data, info.Mode().Perm())
	})
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n") + "\n"
}

func oneLine(s string) string {
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, "healthcheck") || strings.Contains(l, "rror") {
			return strings.TrimSpace(l)
		}
	}
	l, _, _ := strings.Cut(s, "\n")
	return l
}

func seen(d time.Duration) string {
	if d == 0 {
		return "never"
	}
	return r(d)
}

func r(d time.Duration) string { return d.Round(10 * time.Millisecond).String() }

func ratio(a, b time.Duration) float64 { return float64(a) / float64(b) }
