// Command upready measures how long Dify 1.16.0's default deployment
// (postgresql + weaviate, and the collaboration extra: 15 containers) takes
// to be up and ready, with difyctl and with docker compose v2, in one run:
//
//   - difyctl: `difyctl init` in a fresh project directory, then
//     `difyctl up` on the embedded template;
//   - docker compose: `docker compose up -d --wait` in an upstream-shaped
//     copy of the same project: upstream's own docker-compose.yaml and
//     envs/ (../shared/upstream/1.16.0), the same .env, and difyctl's
//     support files (nginx/, ssrf_proxy/, volumes/sandbox/conf: upstream
//     ships its own in its docker/ folder, which is not kept here).
//
// Every image is the stand-in (internal/standin; Redis is the real Redis
// fixture) under Dify's real image names, for the run only
// (testenv.AcquireStandins: removed at the end, also on Ctrl-C). Each
// stand-in becomes ready (listens, passes its healthcheck) after a realistic
// delay set by STANDIN_READY_AFTER in both projects' override file
// (benchkit.ReadyAfter below: the database 3 s, the api 6 s, ...).
//
// It prints both times, their ratio, when each project was first seen with
// every container running and every healthcheck passing (polled every
// 200 ms: docker compose v2.40 ends `up --wait` on upstream 1.16.0 with an
// error as soon as it meets the worker, whose healthcheck is disabled, so
// its own exit time is not a readiness time), and the critical-path bound:
// the longest dependency chain, adding a service's ready delay where a
// dependent waits for it to be healthy (and at the end, where `up` waits for
// every healthcheck), plus one container start per level (measured here:
// create and start of one stand-in container, median of 3).
//
//	go run ./bench/upready [-compose BIN] [-difyctl BIN] [-runs N]
//
// Needs the engine and the fixture images (make engine fixtures); docker
// compose is the binary -compose or DIFYCTL_COMPOSE_BIN names, else `docker
// compose`, else the comparison is skipped, saying so.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
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

	"github.com/difyctl/difyctl/bench/internal/benchkit"
	"github.com/difyctl/difyctl/compose"
	"github.com/difyctl/difyctl/internal/testenv"
)

const release = "1.16.0"

func overrideFile() string {
	names := make([]string, 0, len(benchkit.ReadyAfter))
	for n := range benchkit.ReadyAfter {
		names = append(names, n)
	}
	sort.Strings(names)
	var b strings.Builder
	b.WriteString("# bench/upready: each stand-in's ready delay\nservices:\n")
	for _, n := range names {
		if n == "redis" {
			continue // the real Redis fixture
		}
		fmt.Fprintf(&b, "  %s:\n    environment:\n      STANDIN_READY_AFTER: %s\n", n, benchkit.ReadyAfter[n])
	}
	return b.String()
}

func main() {
	composeFlag := flag.String("compose", os.Getenv("DIFYCTL_COMPOSE_BIN"), "docker compose v2 binary (default: docker compose)")
	bin := flag.String("difyctl", "", "difyctl binary (default: build one)")
	runs := flag.Int("runs", 1, "measure this many times")
	trace := flag.String("trace", "", "write each tool's output to this file, every line stamped with the time since the tool started")
	flag.Parse()
	tw, closeTrace, err := benchkit.OpenTrace(*trace)
	if err == nil {
		err = run(*composeFlag, *bin, *runs, tw)
		closeTrace()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "upready:", err)
		os.Exit(1)
	}
}

type bench struct {
	*testenv.Bench
	compose []string
	refs    []string
	trace   io.Writer // nil: no trace
}

// withNames gives the stand-ins the real names while fn runs, and takes
// them away after, also when fn fails or the run is interrupted (the
// context's cancel ends the tool first). Held per tool run, the names are
// on the host for the shortest time.
func (b *bench) withNames(ctx context.Context, fn func() error) error {
	rel, err := testenv.AcquireStandinsBuilt(ctx, b.Cli, b.refs, testenv.StandinOptions{})
	if err != nil {
		return err
	}
	ferr := fn()
	if err := rel(); err != nil {
		return errors.Join(ferr, fmt.Errorf("untagging the stand-ins: %w", err))
	}
	return ferr
}

func run(composeBin, bin string, runs int, trace io.Writer) error {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	tb, err := testenv.NewBench(ctx, bin)
	if err != nil {
		return err
	}
	defer tb.Close()
	refs, err := testenv.StandinReleaseImages(release)
	if err != nil {
		return err
	}
	// The images are built (and the names checked free) once here; each
	// tool's run then holds the names only while it runs (withNames).
	rel, err := testenv.AcquireStandins(ctx, tb.Cli, os.Stderr, refs, testenv.StandinOptions{})
	if err != nil {
		return err
	}
	if err := rel(); err != nil {
		return fmt.Errorf("untagging the stand-ins: %w", err)
	}
	b := &bench{Bench: tb, refs: refs, trace: trace}
	if b.compose = benchkit.FindCompose(composeBin); b.compose == nil {
		fmt.Println("docker compose v2 not found: comparison skipped (../shared/tools/build-docker-compose builds one)")
	}
	fmt.Printf("Dify %s default deployment (postgresql + weaviate + collaboration), stand-in images; ready delays: %s\n", release, benchkit.Delays())
	for i := 1; i <= runs; i++ {
		fmt.Printf("\nrun %d of %d\n", i, runs)
		if err := b.once(ctx); err != nil {
			return err
		}
	}
	return nil
}

func (b *bench) cmd(ctx context.Context, dir string, env []string, name string, args ...string) *exec.Cmd {
	c := exec.CommandContext(ctx, name, args...)
	c.Dir = dir
	c.Env = append(os.Environ(), env...)
	c.Cancel = func() error { return c.Process.Signal(syscall.SIGINT) }
	c.WaitDelay = 30 * time.Second
	return c
}

func (b *bench) must(ctx context.Context, dir string, name string, args ...string) ([]byte, error) {
	out, err := b.cmd(ctx, dir, nil, name, args...).CombinedOutput()
	if err != nil {
		return out, fmt.Errorf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return out, nil
}

// prepare makes the difyctl project and its upstream-shaped copy.
func (b *bench) prepare(ctx context.Context, project string) (dDir, uDir string, err error) {
	dDir = filepath.Join(b.Dir, project, "difyctl")
	uDir = filepath.Join(b.Dir, project, "upstream")
	for _, d := range []string{dDir, uDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return "", "", err
		}
	}
	if _, err := b.must(ctx, dDir, b.Bin, "--project-dir", dDir, "init"); err != nil {
		return "", "", err
	}
	for _, k := range []string{"EXPOSE_NGINX_PORT", "EXPOSE_NGINX_SSL_PORT", "EXPOSE_PLUGIN_DEBUGGING_PORT"} {
		p, err := benchkit.FreePort()
		if err != nil {
			return "", "", err
		}
		if _, err := b.must(ctx, dDir, b.Bin, "--project-dir", dDir, "env", "set", k+"="+p); err != nil {
			return "", "", err
		}
	}
	if err := os.WriteFile(filepath.Join(dDir, "docker-compose.override.yaml"), []byte(overrideFile()), 0o644); err != nil {
		return "", "", err
	}
	// The upstream copy: upstream's compose file and envs/, the same .env
	// and override, difyctl's support files.
	up := filepath.Join(benchkit.RepoRoot(), "..", "shared", "upstream", release)
	if _, err := os.Stat(filepath.Join(up, "docker-compose.yaml")); err != nil {
		return "", "", fmt.Errorf("upstream %s: %w (../shared/upstream is where the project keeps upstream's files)", release, err)
	}
	if err := benchkit.CopyTree(filepath.Join(up, "docker-compose.yaml"), filepath.Join(uDir, "docker-compose.yaml")); err != nil {
		return "", "", err
	}
	for _, d := range []string{"envs"} {
		if err := benchkit.CopyTree(filepath.Join(up, d), filepath.Join(uDir, d)); err != nil {
			return "", "", err
		}
	}
	for _, f := range []string{".env", "docker-compose.override.yaml", "nginx", "ssrf_proxy", "volumes"} {
		if err := benchkit.CopyTree(filepath.Join(dDir, f), filepath.Join(uDir, f)); err != nil {
			return "", "", err
		}
	}
	return dDir, uDir, nil
}

// result of one tool.
type result struct {
	exit     time.Duration // until the tool exited
	ready    time.Duration // first poll with every container ready; 0: never seen
	err      error         // the tool's failure, if any
	notReady string        // at exit: the containers not ready
	readyAt  map[string]time.Duration
}

// lastReady lists the n services seen ready last, with when.
func (res result) lastReady(n int) string {
	type at struct {
		svc string
		d   time.Duration
	}
	var all []at
	for s, d := range res.readyAt {
		all = append(all, at{s, d})
	}
	sort.Slice(all, func(i, j int) bool { return all[i].d > all[j].d })
	var parts []string
	for i := 0; i < len(all) && i < n; i++ {
		parts = append(parts, fmt.Sprintf("%s %s", all[i].svc, benchkit.R(all[i].d)))
	}
	return strings.Join(parts, ", ")
}

// timed runs a tool and polls the project's containers every 200 ms until
// the tool exits and every container is ready (or 2 minutes after exit).
func (b *bench) timed(ctx context.Context, project string, want int, c *exec.Cmd) result {
	var out strings.Builder
	start := time.Now()
	c.Stdout, c.Stderr = &out, &out
	if b.trace != nil {
		tw := benchkit.NewStampWriter(b.trace, start)
		c.Stdout, c.Stderr = io.MultiWriter(&out, tw), io.MultiWriter(&out, tw)
		fmt.Fprintf(b.trace, "== %s\n", strings.Join(c.Args, " "))
	}
	if err := c.Start(); err != nil {
		return result{err: err}
	}
	done := make(chan error, 1)
	go func() { done <- c.Wait() }()
	var r result
	exited := false
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	var deadline <-chan time.Time
	for !exited || r.ready == 0 {
		select {
		case err := <-done:
			r.exit = time.Since(start)
			exited = true
			if err != nil {
				r.err = fmt.Errorf("%v\n%s", err, benchkit.Tail(out.String(), 6))
			}
			_, r.notReady = b.allReady(ctx, project, want)
			deadline = time.After(2 * time.Minute)
		case <-tick.C:
			if r.ready == 0 {
				ok, _, ready := b.readiness(ctx, project, want)
				for _, svc := range ready {
					if _, seen := r.readyAt[svc]; !seen {
						if r.readyAt == nil {
							r.readyAt = map[string]time.Duration{}
						}
						r.readyAt[svc] = time.Since(start)
					}
				}
				if ok {
					r.ready = time.Since(start)
				}
			}
		case <-deadline:
			return r
		case <-ctx.Done():
			return result{err: ctx.Err()}
		}
	}
	return r
}

// allReady: want containers of the project, each running (healthy where it
// has a healthcheck) or, for a one-shot job, exited 0.
func (b *bench) allReady(ctx context.Context, project string, want int) (bool, string) {
	ok, not, _ := b.readiness(ctx, project, want)
	return ok, not
}

// readiness also returns the services ready now.
func (b *bench) readiness(ctx context.Context, project string, want int) (bool, string, []string) {
	cs, err := b.Cli.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: make(client.Filters).Add("label", compose.ProjectFilter(project))})
	if err != nil {
		return false, err.Error(), nil
	}
	var not, ready []string
	for _, c := range cs.Items {
		svc := c.Labels[compose.LabelService]
		switch {
		case c.State == container.StateExited && strings.HasPrefix(c.Status, "Exited (0)"):
			ready = append(ready, svc)
		case c.State == container.StateRunning && !strings.Contains(c.Status, "(health: starting)") && !strings.Contains(c.Status, "(unhealthy)"):
			ready = append(ready, svc)
		default:
			not = append(not, svc+": "+c.Status)
		}
	}
	if len(cs.Items) < want {
		not = append(not, fmt.Sprintf("%d of %d containers exist", len(cs.Items), want))
	}
	sort.Strings(not)
	return len(not) == 0, strings.Join(not, "; "), ready
}

// configService is what the bound needs of `difyctl config -o json`.
type configService struct {
	DependsOn map[string]struct {
		Condition string `json:"condition"`
	} `json:"depends_on"`
	Healthcheck *struct {
		Disable bool `json:"disable"`
	} `json:"healthcheck"`
}

// criticalPath is the bound: start(s) = max over dependencies (healthy:
// the dependency's ready time; started or completed: its start) + one
// container start; ready(s) = start(s) + its delay when it has an enabled
// healthcheck; the bound is the latest ready(s). It returns the bound, the
// chain and the number of levels on it.
func criticalPath(svcs map[string]configService, start time.Duration) (time.Duration, []string, int) {
	st, rd := map[string]time.Duration{}, map[string]time.Duration{}
	prev := map[string]string{}
	var visit func(s string) time.Duration
	visit = func(s string) time.Duration {
		if v, ok := rd[s]; ok {
			return v
		}
		rd[s] = 0 // a cycle cannot happen in a loadable project
		var at time.Duration
		for d, dep := range svcs[s].DependsOn {
			if _, ok := svcs[d]; !ok {
				continue // required: false, not in the project
			}
			visit(d)
			t := st[d]
			if dep.Condition == "service_healthy" {
				t = rd[d]
			}
			if t > at || prev[s] == "" {
				at, prev[s] = t, d
			}
		}
		st[s] = at + start
		rd[s] = st[s]
		if hc := svcs[s].Healthcheck; hc != nil && !hc.Disable {
			rd[s] += benchkit.ReadyAfter[s]
		}
		return rd[s]
	}
	var last string
	var bound time.Duration
	for s := range svcs {
		if v := visit(s); v > bound || last == "" {
			bound, last = v, s
		}
	}
	var chain []string
	for s := last; s != ""; s = prev[s] {
		chain = append([]string{s}, chain...)
	}
	return bound, chain, len(chain)
}

// containerStart measures create + start of one stand-in container until it
// runs (median of 3).
func (b *bench) containerStart(ctx context.Context) (time.Duration, error) {
	var ds []time.Duration
	for i := 0; i < 3; i++ {
		t := time.Now()
		c, err := b.Cli.ContainerCreate(ctx, client.ContainerCreateOptions{
			Config: &container.Config{Image: testenv.StandinImage("dify-web"), Labels: map[string]string{compose.LabelProject: b.Project()}},
		})
		if err != nil {
			return 0, err
		}
		_, err = b.Cli.ContainerStart(ctx, c.ID, client.ContainerStartOptions{})
		d := time.Since(t)
		b.Cli.ContainerRemove(ctx, c.ID, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true})
		if err != nil {
			return 0, err
		}
		ds = append(ds, d)
	}
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	return ds[1], nil
}

func (b *bench) once(ctx context.Context) error {
	project := b.Project()
	dDir, uDir, err := b.prepare(ctx, project)
	if err != nil {
		return err
	}
	cfg, err := b.must(ctx, dDir, b.Bin, "--project-dir", dDir, "config", "-o", "json")
	if err != nil {
		return err
	}
	var p struct {
		Services map[string]configService `json:"services"`
	}
	if err := json.Unmarshal(cfg, &p); err != nil {
		return fmt.Errorf("difyctl config -o json: %w", err)
	}
	want := len(p.Services)
	cstart, err := b.containerStart(ctx)
	if err != nil {
		return fmt.Errorf("measuring a container start: %w", err)
	}
	bound, chain, levels := criticalPath(p.Services, cstart)

	var d result
	if err := b.withNames(ctx, func() error {
		d = b.timed(ctx, project, want, b.cmd(ctx, dDir, nil, b.Bin, "--project-dir", dDir, "-p", project, "up", "--progress", "plain"))
		return nil
	}); err != nil {
		return err
	}
	if d.err != nil {
		return fmt.Errorf("difyctl up: %w", d.err)
	}
	if _, err := b.must(ctx, dDir, b.Bin, "--project-dir", dDir, "-p", project, "down", "-v", "--yes", "--progress", "quiet"); err != nil {
		return err
	}
	fmt.Printf("containers: %d; one container start (create + start, median of 3): %s\n", want, benchkit.R(cstart))
	fmt.Printf("critical-path bound:            %s  (%d levels: %s)\n", benchkit.R(bound), levels, strings.Join(chain, " -> "))
	fmt.Printf("difyctl up:                     %s  (%.2fx the bound; target <= 1.30x); all ready seen at %s\n", benchkit.R(d.exit), benchkit.Ratio(d.exit, bound), benchkit.Seen(d.ready))
	fmt.Printf("  seen ready last: %s\n", d.lastReady(5))
	if b.compose == nil {
		return nil
	}
	cproject := b.Project()
	args := append(append([]string{}, b.compose[1:]...), "-p", cproject, "up", "-d", "--wait")
	var c result
	if err := b.withNames(ctx, func() error {
		c = b.timed(ctx, cproject, want, b.cmd(ctx, uDir, nil, b.compose[0], args...))
		return nil
	}); err != nil {
		return err
	}
	if _, err := b.must(ctx, uDir, b.compose[0], append(append([]string{}, b.compose[1:]...), "-p", cproject, "down", "-v")...); err != nil {
		return err
	}
	cfig := c.exit
	how := "exited 0"
	if c.err != nil {
		how = "failed: " + benchkit.OneLine(c.err.Error())
		if c.ready == 0 {
			return fmt.Errorf("docker compose up -d --wait %s, and the project never became ready (%s)", how, c.notReady)
		}
		cfig = c.ready // the comparison uses when the project was ready
	}
	fmt.Printf("docker compose up -d --wait:    %s, %s; all ready seen at %s\n", benchkit.R(c.exit), how, benchkit.Seen(c.ready))
	fmt.Printf("  seen ready last: %s\n", c.lastReady(5))
	if c.err != nil && c.notReady != "" {
		fmt.Printf("  not ready when compose exited: %s\n", c.notReady)
	}
	fmt.Printf("difyctl / compose:              %.2fx  (target <= 0.50x; compose's figure: %s)\n", benchkit.Ratio(d.exit, cfig), map[bool]string{true: "its exit", false: "all ready seen"}[c.err == nil])
	return nil
}
