// Command upgrade measures `difyctl upgrade` of the stand-in deployment
// from Dify 1.15.0 to 1.16.0 beside the manual path on the same project:
//
//   - difyctl: `difyctl init --release 1.15.0` and `difyctl up`, then the
//     timed `difyctl upgrade --to 1.16.0 --yes` (with its safety bundle);
//     its wall time split as the command reports it (plan, pull, bundle,
//     apply, health wait, downtime), and the downtime seen from outside:
//     from the first container of the project seen not ready to every
//     container of 1.16.0 seen serving (polled every 100 ms; see ready;
//     a loopback HTTP healthcheck is run only once its port accepts a
//     connect, as difyctl's own probes do, unless -exec-observer);
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
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"

	"github.com/difyctl/difyctl/bench/internal/benchkit"
	"github.com/difyctl/difyctl/compose"
	"github.com/difyctl/difyctl/health"
	"github.com/difyctl/difyctl/internal/testenv"
)

const from, to = "1.15.0", "1.16.0"

// staged are the stand-ins given a ready delay (benchkit.ReadyAfter): the
// services of both releases only (one that 1.15.0 lacks would have no
// image there), so 1.16.0's agent_backend and local_sandbox are ready at
// once; the database is the PostgreSQL fixture and Redis the real one.
var staged = []string{"api", "api_websocket", "nginx", "plugin_daemon", "sandbox", "ssrf_proxy", "weaviate", "web", "worker", "worker_beat"}

// overrideFile: the PostgreSQL fixture as db_postgres, the api migrating
// it, every stand-in's ready delay. docker compose reads the same file.
func overrideFile() string {
	var b strings.Builder
	b.WriteString("# bench/upgrade\nservices:\n  db_postgres:\n    image: " + testenv.ImagePostgres + "\n")
	for _, n := range staged {
		fmt.Fprintf(&b, "  %s:\n    environment:\n      STANDIN_READY_AFTER: %s\n", n, benchkit.ReadyAfter[n])
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
	trace := flag.String("trace", "", "write the progress (stderr) of every difyctl and compose command to this file, each line stamped with the time since the command started")
	execAll := flag.Bool("exec-observer", false, "the observer runs a starting container's healthcheck every poll even while the port it asks for refuses connects (the observer of stop 5 and earlier: a stream of execs on the engine it measures)")
	flag.Parse()
	tw, closeTrace, err := benchkit.OpenTrace(*trace)
	if err == nil {
		err = run(*composeFlag, *bin, *runs, tw, !*execAll)
		closeTrace()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "upgrade:", err)
		os.Exit(1)
	}
}

type bench struct {
	*testenv.Bench
	compose []string
	passed  map[string]bool // containers whose healthcheck passed when run by serving
	trace   io.Writer       // nil: no trace
	// gated: serving connects to the port a loopback HTTP healthcheck
	// asks for first and runs the check only once the port accepts.
	gated bool
}

func run(composeBin, bin string, runs int, trace io.Writer, gated bool) error {
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
	b := &bench{Bench: tb, compose: benchkit.FindCompose(composeBin), trace: trace, gated: gated}
	if b.compose == nil {
		fmt.Println("docker compose v2 not found: the manual path is skipped (../shared/tools/build-docker-compose builds one)")
	}
	fmt.Printf("Dify %s -> %s, default deployment (postgresql + weaviate + collaboration): PostgreSQL fixture, real Redis, stand-ins ready after: %s\n", from, to, benchkit.Delays(staged...))
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
	if b.trace != nil {
		fmt.Fprintf(b.trace, "== %s %s\n", filepath.Base(name), strings.Join(args, " "))
		c.Stderr = io.MultiWriter(&stderr, benchkit.NewStampWriter(b.trace, time.Now()))
	}
	out, err := c.Output()
	if err != nil {
		return out, fmt.Errorf("%s %s: %v\n%s%s", filepath.Base(name), strings.Join(args, " "), err, benchkit.Tail(string(out), 10)+"\n", benchkit.Tail(stderr.String(), 20))
	}
	return out, nil
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
		p, err := benchkit.FreePort()
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
	fmt.Printf("Dify %s up with difyctl in %s (not timed below)\n", from, benchkit.R(time.Since(t)))
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
		from, to, benchkit.R(w.exit), benchkit.R(tm.Plan), benchkit.R(tm.Pull), benchkit.R(tm.Bundle), benchkit.R(tm.Apply), benchkit.R(tm.Health))
	fmt.Printf("  recreated %d of %d running services: %s\n", len(res.Plan.Recreate), len(res.Plan.Running), strings.Join(res.Plan.Recreate, ", "))
	fmt.Printf("  downtime: %s as the command reports it (first container stopped -> all healthy); %s seen from outside (first container not ready -> all %d ready)\n",
		benchkit.R(tm.Downtime), benchkit.Seen(w.downtime), want)
	newEnv, err := os.ReadFile(filepath.Join(dir, ".env"))
	if err != nil {
		return err
	}
	t = time.Now()
	if _, err := dfy(10*time.Minute, "rollback", "--yes", "--wait-timeout", "8m"); err != nil {
		return err
	}
	fmt.Printf("difyctl rollback to %s:       %s (database from the bundle; not compared)\n", from, benchkit.R(time.Since(t)))
	if b.compose == nil {
		return nil
	}

	// The manual path in the same directory, on the same data.
	up := filepath.Join(benchkit.RepoRoot(), "..", "shared", "upstream", to)
	if _, err := os.Stat(filepath.Join(up, "docker-compose.yaml")); err != nil {
		return fmt.Errorf("upstream %s: %w (../shared/upstream holds upstream's files)", to, err)
	}
	if err := benchkit.CopyTree(filepath.Join(up, "docker-compose.yaml"), filepath.Join(dir, "docker-compose.yaml")); err != nil {
		return err
	}
	if err := benchkit.CopyTree(filepath.Join(up, "envs"), filepath.Join(dir, "envs")); err != nil {
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
		how = "up failed: " + benchkit.OneLine(upErr.Error())
		if m.downtime == 0 {
			return fmt.Errorf("docker compose up -d --wait %s, and the project never became ready", how)
		}
	}
	fmt.Printf("docker compose down && up -d --wait: %s wall (%s); downtime seen from outside %s\n", benchkit.R(m.exit), how, benchkit.Seen(m.downtime))
	if m.downtime > 0 && w.downtime > 0 {
		fmt.Printf("downtime difyctl / manual:       %.2fx seen from outside, %.2fx with the command's own figure (target <= 0.50x)\n",
			benchkit.Ratio(w.downtime, m.downtime), benchkit.Ratio(tm.Downtime, m.downtime))
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
// downtime runs from the first poll where a container that served when fn
// started no longer does (stopped, gone, restarting, unhealthy) to the
// first poll after it with want containers all serving; polling goes on
// after fn returns until then (at most 2 minutes).
func (b *bench) watch(ctx context.Context, project string, want int, start time.Time, fn func() error) watched {
	var w watched
	_, before := b.readiness(ctx, project, want)
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
			ok, now := b.readiness(ctx, project, want)
			stopped := false
			for id := range before {
				stopped = stopped || !now[id]
			}
			switch {
			case stopped && down.IsZero():
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

// ready: want containers of the project, each running and serving or,
// for a one-shot job, exited 0. Serving: healthy, or, while the engine's
// status still says "health: starting", its own healthcheck command passes
// when run now (the engine's first probe comes one interval after the
// start, 30 s for the api, whatever the service does; docker compose's
// --wait waits for it, difyctl probes early): the same rule for both paths.
// It also returns the IDs of the containers serving.
func (b *bench) readiness(ctx context.Context, project string, want int) (bool, map[string]bool) {
	serving := map[string]bool{}
	cs, err := b.Cli.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: make(client.Filters).Add("label", compose.ProjectFilter(project))})
	if err != nil {
		return false, serving
	}
	n, all := 0, true
	for _, c := range cs.Items {
		if c.Labels[compose.LabelOneoff] == "True" {
			continue
		}
		n++
		switch {
		case c.State == container.StateExited && strings.HasPrefix(c.Status, "Exited (0)"):
		case c.State == container.StateRunning && !strings.Contains(c.Status, "(health: starting)") && !strings.Contains(c.Status, "(unhealthy)"):
		case c.State == container.StateRunning && strings.Contains(c.Status, "(health: starting)") && b.serving(ctx, c.ID):
		case c.State == container.StatePaused:
			// The safety bundle pauses the vector store for its file copy
			// (seconds): slower answers, not a stopped container.
		default:
			all = false
			continue
		}
		if c.State != container.StateExited {
			serving[c.ID] = true
		}
	}
	return all && n >= want, serving
}

// serving runs the container's healthcheck command now; a pass is
// remembered for the container. Gated, a healthcheck that is an HTTP
// request to the container's loopback runs only once its port accepts a
// connect from here: a refused port fails it without an exec, so polling
// every 100 ms does not keep an exec running on the engine under
// measurement (health.LoopbackHTTPPort, the rule difyctl's probes follow).
func (b *bench) serving(ctx context.Context, id string) bool {
	if b.passed[id] {
		return true
	}
	ins, err := b.Cli.ContainerInspect(ctx, id, client.ContainerInspectOptions{})
	if err != nil || ins.Container.Config == nil || ins.Container.Config.Healthcheck == nil {
		return false
	}
	test := ins.Container.Config.Healthcheck.Test
	if b.gated && health.PortRefused(ctx, ins.Container) {
		return false
	}
	var cmd []string
	switch {
	case len(test) > 1 && test[0] == "CMD":
		cmd = test[1:]
	case len(test) == 2 && test[0] == "CMD-SHELL":
		cmd = []string{"/bin/sh", "-c", test[1]}
	default:
		return false
	}
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	ex, err := b.Cli.ExecCreate(pctx, id, client.ExecCreateOptions{Cmd: cmd, AttachStdout: true, AttachStderr: true})
	if err != nil {
		return false
	}
	att, err := b.Cli.ExecAttach(pctx, ex.ID, client.ExecAttachOptions{})
	if err != nil {
		return false
	}
	io.Copy(io.Discard, att.Reader)
	att.Close()
	r, err := b.Cli.ExecInspect(pctx, ex.ID, client.ExecInspectOptions{})
	if err != nil || r.Running || r.ExitCode != 0 {
		return false
	}
	if b.passed == nil {
		b.passed = map[string]bool{}
	}
	b.passed[id] = true
	return true
}
