package e2e

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moby/moby/client"

	"github.com/difyctl/difyctl/backup"
	"github.com/difyctl/difyctl/compose"
	"github.com/difyctl/difyctl/internal/testenv"
)

// chain is a fixture project: a one-shot init job, a database healthy after
// 500 ms, an API that needs both (and an optional service whose profile is
// off), and a web front that needs the API started.
const chain = `
services:
  init:
    image: difyctl-test/testsvc:latest
    command: ["--exit-after", "200ms", "--write-file", "/data/initialised"]
    restart: "no"
    volumes: ["./data:/data"]
  db:
    image: difyctl-test/testsvc:latest
    command: ["--healthy-after", "500ms"]
    restart: always
    healthcheck: {test: ["CMD", "/testsvc", "probe"], interval: 250ms, retries: 20}
    volumes: ["dbdata:/var/lib/db"]
    networks: [default, internal]
  api:
    image: difyctl-test/testsvc:latest
    command: ["--healthy-after", "300ms", "--name", "API_VERSION_1"]
    restart: always
    depends_on:
      init: {condition: service_completed_successfully}
      db: {condition: service_healthy}
      extra: {condition: service_started, required: false}
    healthcheck: {test: ["CMD", "/testsvc", "probe"], interval: 250ms, retries: 20}
    networks:
      default:
      internal: {aliases: [backend]}
  web:
    image: difyctl-test/testsvc:latest
    restart: always
    depends_on: [api]
  extra:
    image: difyctl-test/testsvc:latest
    profiles: [extra]
networks:
  internal: {internal: true}
volumes:
  dbdata:
`

func writeProject(t *testing.T, content string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "compose.yaml"), []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func events(t *testing.T, stderr string) []compose.Event {
	t.Helper()
	var out []compose.Event
	sc := bufio.NewScanner(strings.NewReader(stderr))
	for sc.Scan() {
		var e compose.Event
		if json.Unmarshal(sc.Bytes(), &e) == nil && e.State != "" {
			out = append(out, e)
		}
	}
	return out
}

func firstAt(evs []compose.Event, svc, state string) time.Time {
	for _, e := range evs {
		if e.Service == svc && e.State == state {
			return e.Time
		}
	}
	return time.Time{}
}

// Ctrl-C while up waits: it stops waiting, says what runs, exits 130, and
// leaves the containers as they are.
func TestUpInterrupted(t *testing.T) {
	cli := testenv.Fixtures(t)
	project := testenv.ProjectName(t, cli)
	dir := writeProject(t, `
services:
  slowdb:
    image: difyctl-test/testsvc:latest
    command: ["--never-healthy"]
    healthcheck: {test: ["CMD", "/testsvc", "probe"], interval: 200ms, retries: 1000}
  app:
    image: difyctl-test/testsvc:latest
    depends_on: {slowdb: {condition: service_healthy}}
`)
	cmd := exec.Command(testenv.Difyctl(t), "--project-dir", dir, "-p", project, "up", "-f", filepath.Join(dir, "compose.yaml"), "--progress", "json")
	var stderr syncBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Interrupt once up is waiting on slowdb's health.
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(stderr.String(), `"state":"health"`) {
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatalf("up never reached the health wait:\n%s", stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	// Meanwhile another command changing the project is refused at once,
	// naming who holds it, instead of racing up.
	if r := run(t, nil, "--project-dir", dir, "-p", project, "down"); r.code != 4 ||
		!strings.Contains(r.stderr, fmt.Sprintf("another difyctl command on project %s is already running (process %d holds", project, cmd.Process.Pid)) {
		t.Fatalf("down while up runs: exit %d\n%s", r.code, r.stderr)
	}
	if r := run(t, nil, "--project-dir", dir, "-p", project, "ps"); r.code != 0 {
		t.Fatalf("ps takes no lock: exit %d\n%s", r.code, r.stderr)
	}
	cmd.Process.Signal(os.Interrupt)
	err := cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 130 {
		t.Fatalf("exit: %v, want 130\n%s", err, stderr.String())
	}
	out := stderr.String()
	if !strings.Contains(out, "interrupted; containers of project "+project) || !regexp.MustCompile(`slowdb\s+running`).MatchString(out) {
		t.Fatalf("no list of what runs:\n%s", out)
	}
	// Progress says what was interrupted, with each container's real state,
	// and the JSON stream ends with a JSON event.
	evs := events(t, out)
	var slow, app bool
	for _, e := range evs {
		slow = slow || e.Service == "slowdb" && e.State == compose.StateInterrupted && strings.Contains(e.Detail, "container running")
		app = app || e.Service == "app" && e.State == compose.StateInterrupted && strings.Contains(e.Detail, "waiting for slowdb to be healthy")
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	var last compose.Event
	if !slow || !app || json.Unmarshal([]byte(lines[len(lines)-1]), &last) != nil || last.State != compose.StateError {
		t.Fatalf("interrupted progress (slowdb %v, app %v, last line %q):\n%s", slow, app, lines[len(lines)-1], out)
	}
	cs := containerIDs(t, cli, project)
	if cs["slowdb"] == "" {
		t.Fatalf("slowdb was removed on interrupt: %v", cs)
	}
}

// start gives up on a dependency that does not become healthy in time and
// leaves its dependents stopped.
func TestStartDependencyTimesOut(t *testing.T) {
	cli := testenv.Fixtures(t)
	project := testenv.ProjectName(t, cli)
	dir := writeProject(t, `
services:
  db:
    image: difyctl-test/testsvc:latest
    command: ["--healthy-after", "3s"]
    healthcheck: {test: ["CMD", "/testsvc", "probe"], interval: 200ms, retries: 100}
  app:
    image: difyctl-test/testsvc:latest
    depends_on: {db: {condition: service_healthy}}
`)
	args := []string{"--project-dir", dir, "-p", project}
	if r := run(t, nil, append(args, "up", "-f", filepath.Join(dir, "compose.yaml"))...); r.code != 0 {
		t.Fatalf("up: %s", r.stderr)
	}
	if r := run(t, nil, append(args, "stop")...); r.code != 0 {
		t.Fatalf("stop: %s", r.stderr)
	}
	r := run(t, nil, append(args, "start", "--wait-timeout", "1s", "--progress", "plain")...)
	if r.code != 1 || !strings.Contains(r.stderr, "db failed: timed out waiting for it to be healthy") || !strings.Contains(r.stderr, "log lines:") ||
		!strings.Contains(r.stderr, "not started: dependency db failed") {
		t.Fatalf("start: exit %d\n%s", r.code, r.stderr)
	}
	// The diagnosis shows this run's probes only: the passing ones of the
	// run before (the engine keeps them) would mislead.
	if strings.Contains(r.stderr, "(exit 0)") {
		t.Fatalf("diagnosis lists probes of the earlier run:\n%s", r.stderr)
	}
	cs, err := compose.List(context.Background(), cli, project, true)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cs {
		if c.Service == "app" && c.State == "running" {
			t.Fatal("app was started although db never became healthy")
		}
	}
}

// up pulls an image that is not present, with progress, from a registry
// (the test's own, on loopback: the engine pushes an image there first,
// which is then removed locally) that needs a login: the credentials come
// from the docker CLI's config.json, as they would for docker compose.
func TestUpPullsMissingImage(t *testing.T) {
	cli := testenv.Fixtures(t)
	ctx := context.Background()
	reg := testenv.StartRegistry(t)
	reg.RequireBasicAuth("operator", "pull-s3cret")
	auth, _ := json.Marshal(map[string]string{"username": "operator", "password": "pull-s3cret", "serveraddress": reg.Host})
	stamp := make([]byte, 512<<10) // a layer of its own, so the pull downloads something
	rand.Read(stamp)
	ref := reg.Host + "/difyctl-e2e/pulled:" + hex.EncodeToString(stamp[:4])
	if err := testenv.BuildImage(ctx, cli, ref, "FROM "+testenv.ImageTestsvc+"\nCOPY stamp /stamp\n", map[string][]byte{"stamp": stamp}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cli.ImageRemove(context.Background(), ref, client.ImageRemoveOptions{Force: true, PruneChildren: true})
	})
	push, err := cli.ImagePush(ctx, ref, client.ImagePushOptions{RegistryAuth: base64.URLEncoding.EncodeToString(auth)})
	if err != nil {
		t.Fatal(err)
	}
	for msg, err := range push.JSONMessages(ctx) {
		if err == nil && msg.Error != nil {
			err = errors.New(msg.Error.Message)
		}
		if err != nil {
			t.Fatalf("push to the test registry: %v", err)
		}
	}
	push.Close()
	if _, err := cli.ImageRemove(ctx, ref, client.ImageRemoveOptions{Force: true, PruneChildren: true}); err != nil {
		t.Fatal(err)
	}

	project := testenv.ProjectName(t, cli)
	dir := writeProject(t, "services:\n  app:\n    image: "+ref+"\n")
	args := []string{"--project-dir", dir, "-p", project, "up", "-f", filepath.Join(dir, "compose.yaml"), "--progress", "json"}

	// No credentials: the pull is refused, and the error names the image
	// and the service.
	anonymous := t.TempDir()
	r := run(t, []string{"DOCKER_CONFIG=" + anonymous}, args...)
	if r.code != 1 || !strings.Contains(r.stderr, "image "+ref+" (service app) is not present and could not be pulled") {
		t.Fatalf("anonymous up: exit %d\n%s", r.code, r.stderr)
	}

	// The operator's login, in config.json.
	cfgDir := t.TempDir()
	login := base64.StdEncoding.EncodeToString([]byte("operator:pull-s3cret"))
	if err := os.WriteFile(filepath.Join(cfgDir, "config.json"), []byte(`{"auths":{"`+reg.Host+`":{"auth":"`+login+`"}}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	r = run(t, []string{"DOCKER_CONFIG=" + cfgDir}, args...)
	if r.code != 0 {
		t.Fatalf("up: exit %d\n%s", r.code, r.stderr)
	}
	if strings.Contains(r.stderr, "pull-s3cret") || strings.Contains(r.stdout, "pull-s3cret") {
		t.Fatal("the registry password appeared in difyctl's output")
	}
	if firstAt(events(t, r.stderr), "app", compose.StatePulling).IsZero() {
		t.Fatalf("no pulling progress:\n%s", r.stderr)
	}
	if reg.BlobGets() == 0 {
		t.Fatal("the registry served no blob: nothing was pulled")
	}
	if _, err := cli.ImageInspect(ctx, ref); err != nil {
		t.Fatalf("image not present after up: %v", err)
	}
	if cs := containerIDs(t, cli, project); cs["app"] == "" {
		t.Fatal("app not created")
	}
}

// syncBuffer is a buffer a running command writes while the test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// down gives each container its own stop_grace_period unless --timeout says
// otherwise: sleep as PID 1 ignores SIGTERM, so the engine kills it when the
// grace period ends.
func TestDownHonoursStopGracePeriod(t *testing.T) {
	cli := testenv.Fixtures(t)
	project := testenv.ProjectName(t, cli)
	dir := writeProject(t, `
services:
  slow:
    image: difyctl-test/busybox:latest
    command: ["sleep", "1000"]
    stop_grace_period: 2s
`)
	args := []string{"--project-dir", dir, "-p", project}
	if r := run(t, nil, append(args, "up", "-f", filepath.Join(dir, "compose.yaml"))...); r.code != 0 {
		t.Fatalf("up: %s", r.stderr)
	}
	id := containerIDs(t, cli, project)["slow"]
	since := time.Now()
	r := run(t, nil, append(args, "down")...)
	took := time.Since(since)
	if r.code != 0 {
		t.Fatalf("down: %s", r.stderr)
	}
	if sigs := killSignals(t, cli, id, since); len(sigs) != 2 || sigs[0] != "15" || sigs[1] != "9" {
		t.Fatalf("kill signals %v, want SIGTERM then SIGKILL", sigs)
	}
	// The grace period, not the engine's 10 s default.
	if took < 2*time.Second || took > 8*time.Second {
		t.Fatalf("down took %s; the container's stop_grace_period is 2s", took)
	}
}

// killSignals lists the signals the engine sent the container since t, in
// order, from its kill events.
func killSignals(t *testing.T, cli *client.Client, id string, since time.Time) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ev := cli.Events(ctx, client.EventsListOptions{
		Since: since.Add(-time.Second).Format(time.RFC3339Nano), Until: time.Now().Add(time.Second).Format(time.RFC3339Nano),
		Filters: make(client.Filters).Add("container", id).Add("event", "kill"),
	})
	var sigs []string
	for {
		select {
		case m := <-ev.Messages:
			sigs = append(sigs, m.Actor.Attributes["signal"])
		case err := <-ev.Err:
			if err != nil && !strings.Contains(err.Error(), "EOF") {
				t.Fatalf("events: %v", err)
			}
			return sigs
		}
	}
}

func containerIDs(t *testing.T, cli *client.Client, project string) map[string]string {
	t.Helper()
	cs, err := compose.List(context.Background(), cli, project, true)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, c := range cs {
		out[c.Service] = c.ID
	}
	return out
}

func TestUpDependencyOrderIdempotenceDown(t *testing.T) {
	cli := testenv.Fixtures(t)
	project := testenv.ProjectName(t, cli)
	dir := writeProject(t, chain)
	args := []string{"--project-dir", dir, "-p", project}
	up := func(flags ...string) []string {
		return append(append(append([]string{}, args...), "up", "-f", filepath.Join(dir, "compose.yaml")), flags...)
	}

	r := run(t, nil, up("--progress", "json")...)
	if r.code != 0 {
		t.Fatalf("up: exit %d\n%s", r.code, r.stderr)
	}
	evs := events(t, r.stderr)
	// api starts only after db is healthy and init completed; web only after api started.
	apiStart := firstAt(evs, "api", compose.StateStarting)
	if apiStart.IsZero() || apiStart.Before(firstAt(evs, "db", compose.StateHealthy)) || apiStart.Before(firstAt(evs, "init", compose.StateCompleted)) {
		t.Fatalf("api started too early:\n%s", r.stderr)
	}
	if firstAt(evs, "web", compose.StateStarting).Before(firstAt(evs, "api", compose.StateStarted)) {
		t.Fatalf("web started before api:\n%s", r.stderr)
	}
	// db and init have no dependencies: neither waits for the other. db is
	// on the critical path (api waits for it to be healthy): its start is
	// asked first, alone, and init's right after it returned, without
	// waiting for db's health.
	dbStart, initStart := firstAt(evs, "db", compose.StateStarting), firstAt(evs, "init", compose.StateStarting)
	if dbStart.IsZero() || initStart.IsZero() || initStart.Before(dbStart) {
		t.Fatalf("db (the critical path) did not start first:\n%s", r.stderr)
	}
	if d := initStart.Sub(dbStart); d > 5*time.Second {
		t.Fatalf("init started %s after db: independent services were serialised\n%s", d, r.stderr)
	}
	for _, e := range evs {
		if e.Service == "init" && e.State == compose.StateWaiting {
			t.Fatalf("init waited for %s although it has no dependencies:\n%s", e.Detail, r.stderr)
		}
	}
	if !strings.Contains(r.stderr, "optional dependency extra is not active (its profile is off), skipped for api") {
		t.Fatalf("no note about the inactive optional dependency:\n%s", r.stderr)
	}
	if _, err := os.Stat(filepath.Join(dir, "data", "initialised")); err != nil {
		t.Fatalf("init job did not write into its bind mount: %v", err)
	}

	ps := run(t, nil, append(args, "ps", "-o", "json")...)
	var cs []compose.ProjectContainer
	if err := json.Unmarshal([]byte(ps.stdout), &cs); err != nil || len(cs) != 4 {
		t.Fatalf("ps: %v %s", err, ps.stdout)
	}
	for _, c := range cs {
		if c.Service == "init" && c.State != "exited" || c.Service != "init" && c.State != "running" {
			t.Fatalf("ps: %+v", c)
		}
		if (c.Service == "api" || c.Service == "db") && c.Health != "healthy" {
			t.Fatalf("ps health: %+v", c)
		}
	}
	// Names, aliases and labels as compose makes them.
	ins, err := cli.ContainerInspect(context.Background(), project+"-api-1", client.ContainerInspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	labels := ins.Container.Config.Labels
	for _, l := range []string{compose.LabelProject, compose.LabelService, compose.LabelNumber, compose.LabelOneoff, compose.LabelConfigHash, compose.LabelWorkingDir, compose.LabelConfigFiles, compose.LabelDependencies, compose.LabelImage, compose.LabelVersion} {
		if labels[l] == "" && l != compose.LabelVersion {
			t.Errorf("label %s missing", l)
		}
	}
	ep := ins.Container.NetworkSettings.Networks[project+"_internal"]
	if ep == nil || !strings.Contains(strings.Join(ep.Aliases, ","), "backend") {
		t.Errorf("internal network alias missing: %+v", ins.Container.NetworkSettings.Networks)
	}

	// A second up with nothing changed recreates nothing and does not re-run init.
	before := containerIDs(t, cli, project)
	initIns, _ := cli.ContainerInspect(context.Background(), before["init"], client.ContainerInspectOptions{})
	r = run(t, nil, up("--progress", "json")...)
	if r.code != 0 {
		t.Fatalf("second up: %s", r.stderr)
	}
	after := containerIDs(t, cli, project)
	for s, id := range before {
		if after[s] != id {
			t.Errorf("%s recreated on an unchanged up", s)
		}
	}
	initIns2, _ := cli.ContainerInspect(context.Background(), before["init"], client.ContainerInspectOptions{})
	if initIns.Container.State.StartedAt != initIns2.Container.State.StartedAt {
		t.Error("the completed init job ran again")
	}

	// A changed service is recreated; the others stay.
	os.WriteFile(filepath.Join(dir, "compose.yaml"), []byte(strings.Replace(chain, "API_VERSION_1", "API_VERSION_2", 1)), 0o644)
	r = run(t, nil, up("--dry-run")...)
	if r.code != 0 || !strings.Contains(r.stdout, "api") || !strings.Contains(r.stdout, "recreate (configuration changed)") {
		t.Fatalf("dry run: %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if ids := containerIDs(t, cli, project); ids["api"] != before["api"] {
		t.Fatal("--dry-run changed something")
	}
	since := time.Now()
	r = run(t, nil, up("--progress", "plain")...)
	if r.code != 0 {
		t.Fatalf("up after change: %s", r.stderr)
	}
	changed := containerIDs(t, cli, project)
	if changed["api"] == before["api"] || changed["db"] != before["db"] || changed["web"] != before["web"] {
		t.Fatalf("recreate: before %v after %v", before, changed)
	}
	// The old api container was stopped with SIGTERM (gracefully), not killed.
	if sigs := killSignals(t, cli, before["api"], since); len(sigs) == 0 || sigs[0] != "15" {
		t.Fatalf("old api container: kill signals %v, want SIGTERM (15) first", sigs)
	}

	// logs with service prefixes.
	lg := run(t, nil, append(args, "logs", "--tail", "5", "api")...)
	if lg.code != 0 || !strings.Contains(lg.stdout, "api | ") || !strings.Contains(lg.stdout, "API_VERSION_2") {
		t.Fatalf("logs: %s %s", lg.stdout, lg.stderr)
	}
	// logs -o json: one JSON object a line.
	lg = run(t, nil, append(args, "-o", "json", "logs", "--tail", "3", "api")...)
	for _, line := range strings.Split(strings.TrimSpace(lg.stdout), "\n") {
		var l compose.LogLine
		if err := json.Unmarshal([]byte(line), &l); err != nil || l.Service != "api" || l.Container != project+"-api-1" {
			t.Fatalf("logs -o json line %q: %v", line, err)
		}
	}

	// stop, then start: start gates on the depends_on conditions as up does.
	if r = run(t, nil, append(args, "stop", "--progress", "plain")...); r.code != 0 {
		t.Fatalf("stop: %s", r.stderr)
	}
	if r = run(t, nil, append(args, "start", "--progress", "json")...); r.code != 0 {
		t.Fatalf("start: %s", r.stderr)
	}
	evs = events(t, r.stderr)
	apiStart = firstAt(evs, "api", compose.StateStarting)
	if dbHealthy, initDone := firstAt(evs, "db", compose.StateHealthy), firstAt(evs, "init", compose.StateCompleted); apiStart.IsZero() || dbHealthy.IsZero() || initDone.IsZero() ||
		apiStart.Before(dbHealthy) || apiStart.Before(initDone) {
		t.Fatalf("start: api started before db was healthy and init had completed:\n%s", r.stderr)
	}
	if web := firstAt(evs, "web", compose.StateStarting); web.IsZero() || web.Before(firstAt(evs, "api", compose.StateStarted)) {
		t.Fatalf("start: web started before api:\n%s", r.stderr)
	}

	// down leaves nothing but the named volume; --volumes removes it too.
	if r = run(t, nil, append(args, "down", "--progress", "json")...); r.code != 0 {
		t.Fatalf("down: %s", r.stderr)
	}
	// Dependents first: a service stops only once what depends on it stopped.
	evs = events(t, r.stderr)
	for _, o := range [][2]string{{"web", "api"}, {"api", "db"}} {
		stopped, next := firstAt(evs, o[0], compose.StateStopped), firstAt(evs, o[1], compose.StateStopping)
		if stopped.IsZero() || next.IsZero() || next.Before(stopped) {
			t.Fatalf("down: %s began stopping before %s had stopped:\n%s", o[1], o[0], r.stderr)
		}
	}
	f := make(client.Filters).Add("label", compose.ProjectFilter(project))
	if left, _ := cli.ContainerList(context.Background(), client.ContainerListOptions{All: true, Filters: f}); len(left.Items) != 0 {
		t.Fatalf("containers left: %d", len(left.Items))
	}
	if nets, _ := cli.NetworkList(context.Background(), client.NetworkListOptions{Filters: f}); len(nets.Items) != 0 {
		t.Fatalf("networks left: %d", len(nets.Items))
	}
	if vols, _ := cli.VolumeList(context.Background(), client.VolumeListOptions{Filters: f}); len(vols.Items) != 1 {
		t.Fatalf("volume should stay without --volumes: %d", len(vols.Items))
	}
	if r = run(t, nil, append(args, "down", "--volumes")...); r.code != 2 {
		t.Fatalf("down --volumes without a terminal or --yes: exit %d", r.code)
	}
	if r = run(t, nil, append(args, "down", "--volumes", "--yes")...); r.code != 0 {
		t.Fatalf("down --volumes --yes: %s", r.stderr)
	}
	if vols, _ := cli.VolumeList(context.Background(), client.VolumeListOptions{Filters: f}); len(vols.Items) != 0 {
		t.Fatalf("volumes left: %d", len(vols.Items))
	}
}

const failing = `
services:
  stuck:
    image: difyctl-test/testsvc:latest
    command: ["--never-healthy"]
    healthcheck: {test: ["CMD", "/testsvc", "probe"], interval: 100ms, retries: 3}
  needs_stuck:
    image: difyctl-test/testsvc:latest
    depends_on: {stuck: {condition: service_healthy}}
  crash:
    image: difyctl-test/testsvc:latest
    command: ["--exit-after", "300ms", "--exit-code", "1"]
    restart: "no"
  needs_crash:
    image: difyctl-test/testsvc:latest
    depends_on: {crash: {condition: service_completed_successfully}}
  fine:
    image: difyctl-test/testsvc:latest
`

func TestUpFailureDiagnosis(t *testing.T) {
	cli := testenv.Fixtures(t)
	project := testenv.ProjectName(t, cli)
	dir := writeProject(t, failing)
	r := run(t, nil, "--project-dir", dir, "-p", project, "up", "-f", filepath.Join(dir, "compose.yaml"), "--progress", "plain", "--wait-timeout", "60s")
	if r.code != 1 {
		t.Fatalf("up with failing services: exit %d\n%s", r.code, r.stderr)
	}
	for _, want := range []string{"stuck failed: unhealthy", "probe: not healthy yet", "crash failed: exited with code 1", "exiting with code 1", "last "} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("diagnosis lacks %q:\n%s", want, r.stderr)
		}
	}
	ids := containerIDs(t, cli, project)
	if _, ok := ids["needs_stuck"]; ok {
		t.Error("a dependent of the unhealthy service was left created")
	}
	if _, ok := ids["needs_crash"]; ok {
		t.Error("a dependent of the crashed job was left created")
	}
	if _, ok := ids["fine"]; !ok {
		t.Error("an unrelated service was not left running")
	}
}

// The Redis fixture, started from the real Dify redis service definition of
// the embedded templates, then backed up.
func TestDifyRedisServiceFromTemplates(t *testing.T) {
	cli := testenv.Fixtures(t)
	project := testenv.ProjectName(t, cli)
	dir := t.TempDir()
	// Dify's real redis service, with only its image pointed at the fixture
	// through the project's override file, as an operator overrides it: no
	// test image ever carries the real name redis:6-alpine.
	override := "services:\n  redis:\n    image: " + testenv.ImageRedis + "\n"
	if err := os.WriteFile(filepath.Join(dir, "docker-compose.override.yaml"), []byte(override), 0o644); err != nil {
		t.Fatal(err)
	}
	r := run(t, nil, "--project-dir", dir, "-p", project, "up", "redis", "--progress", "plain", "--wait-timeout", "60s")
	if r.code != 0 {
		t.Fatalf("up redis: exit %d\n%s", r.code, r.stderr)
	}
	if !strings.Contains(r.stderr, "wrote "+filepath.Join(dir, ".env")) {
		t.Fatalf("up did not write .env first:\n%s", r.stderr)
	}
	ins, err := cli.ContainerInspect(context.Background(), project+"-redis-1", client.ContainerInspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{}
	for _, kv := range ins.Container.Config.Env {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	pw := env["REDISCLI_AUTH"]
	if len(pw) < 16 || strings.Contains(strings.Join(ins.Container.Config.Cmd, " "), pw) || strings.Contains(strings.Join(ins.Container.Config.Healthcheck.Test, " "), pw) {
		t.Fatalf("password missing or on a command line: cmd %v health %v", ins.Container.Config.Cmd, ins.Container.Config.Healthcheck.Test)
	}
	if _, err := os.Stat(filepath.Join(dir, "volumes", "redis", "data")); err != nil {
		t.Fatalf("bind-mount directory not created: %v", err)
	}
	b := run(t, nil, "--project-dir", dir, "-p", project, "backup", "redis", "-o", "json")
	var res backup.Result
	if b.code != 0 || json.Unmarshal([]byte(b.stdout), &res) != nil {
		t.Fatalf("backup of the Dify redis: %d %s", b.code, b.stderr)
	}
	if filepath.Dir(res.Path) != filepath.Join(dir, "backups", "redis") {
		t.Fatalf("backup landed in %s", res.Path)
	}
	// A .env that contradicts --profile is refused and nothing changes.
	r = run(t, nil, "--project-dir", dir, "-p", project, "up", "redis", "--profile", "mysql")
	if r.code != 2 || !strings.Contains(r.stderr, "DB_TYPE=postgresql") {
		t.Fatalf("contradicting profile: exit %d %s", r.code, r.stderr)
	}
}

// composeBin finds docker compose v2 for the interop tests.
func composeBin(t *testing.T) []string {
	t.Helper()
	if b := os.Getenv("DIFYCTL_COMPOSE_BIN"); b != "" {
		return []string{b}
	}
	if exec.Command("docker", "compose", "version").Run() == nil {
		return []string{"docker", "compose"}
	}
	if p, err := exec.LookPath("docker-compose"); err == nil {
		if out, _ := exec.Command(p, "version").Output(); strings.Contains(string(out), "v2") {
			return []string{p}
		}
	}
	t.Skip("no docker compose v2 here (DIFYCTL_COMPOSE_BIN, docker compose, docker-compose); ../shared/tools/build-docker-compose builds one")
	return nil
}

func runCompose(t *testing.T, bin []string, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command(bin[0], append(bin[1:], args...)...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%v %v: %v\n%s", bin, args, err, out)
	}
	return string(out)
}

func TestInteropWithDockerCompose(t *testing.T) {
	cli := testenv.Fixtures(t)
	bin := composeBin(t)
	dir := writeProject(t, chain)

	// difyctl up → docker compose ps and down.
	p1 := testenv.ProjectName(t, cli)
	if r := run(t, nil, "--project-dir", dir, "-p", p1, "up", "-f", filepath.Join(dir, "compose.yaml"), "--progress", "plain"); r.code != 0 {
		t.Fatalf("up: %s", r.stderr)
	}
	out := runCompose(t, bin, dir, "-p", p1, "ps", "--format", "{{.Service}}")
	for _, s := range []string{"api", "db", "web"} {
		if !strings.Contains(out, s) {
			t.Fatalf("docker compose ps does not list %s:\n%s", s, out)
		}
	}
	runCompose(t, bin, dir, "-p", p1, "down")
	if ids := containerIDs(t, cli, p1); len(ids) != 0 {
		t.Fatalf("docker compose down left %v", ids)
	}

	// docker compose up → difyctl ps and down.
	p2 := testenv.ProjectName(t, cli)
	runCompose(t, bin, dir, "-p", p2, "-f", "compose.yaml", "up", "-d", "--wait")
	r := run(t, nil, "-p", p2, "ps", "-o", "json")
	var cs []compose.ProjectContainer
	if err := json.Unmarshal([]byte(r.stdout), &cs); err != nil || len(cs) != 4 {
		t.Fatalf("difyctl ps on compose's project: %v %s", err, r.stdout)
	}
	if r = run(t, nil, "-p", p2, "down", "--progress", "plain"); r.code != 0 {
		t.Fatalf("difyctl down on compose's project: %s", r.stderr)
	}
	if ids := containerIDs(t, cli, p2); len(ids) != 0 {
		t.Fatalf("difyctl down left %v", ids)
	}
	f := make(client.Filters).Add("label", compose.ProjectFilter(p2))
	if nets, _ := cli.NetworkList(context.Background(), client.NetworkListOptions{Filters: f}); len(nets.Items) != 0 {
		t.Fatalf("networks left: %d", len(nets.Items))
	}
}

const restartChain = `
services:
  db:
    image: difyctl-test/testsvc:latest
    command: ["--name", "DB_V1"]
  api:
    image: difyctl-test/testsvc:latest
    depends_on:
      db: {condition: service_started, restart: true}
  web:
    image: difyctl-test/testsvc:latest
    depends_on:
      db: {condition: service_started}
`

// A recreated dependency restarts the dependents that declare restart: true,
// and only those.
func TestUpRestartsDependentsOnRecreate(t *testing.T) {
	cli := testenv.Fixtures(t)
	project := testenv.ProjectName(t, cli)
	dir := writeProject(t, restartChain)
	up := []string{"--project-dir", dir, "-p", project, "up", "-f", filepath.Join(dir, "compose.yaml"), "--progress", "plain"}
	if r := run(t, nil, up...); r.code != 0 {
		t.Fatalf("up: %s", r.stderr)
	}
	started := func(svc string) string {
		ins, err := cli.ContainerInspect(context.Background(), project+"-"+svc+"-1", client.ContainerInspectOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return ins.Container.State.StartedAt
	}
	apiBefore, webBefore := started("api"), started("web")
	os.WriteFile(filepath.Join(dir, "compose.yaml"), []byte(strings.Replace(restartChain, "DB_V1", "DB_V2", 1)), 0o644)
	r := run(t, nil, up...)
	if r.code != 0 || !strings.Contains(r.stderr, "api                  restarting") {
		t.Fatalf("second up: %d\n%s", r.code, r.stderr)
	}
	if started("api") == apiBefore {
		t.Error("api (restart: true) was not restarted")
	}
	if started("web") != webBefore {
		t.Error("web (no restart: true) was restarted")
	}
}
