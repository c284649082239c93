package compose

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/compose-spec/compose-go/v2/types"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"

	"github.com/difyctl/difyctl/internal/engine/enginefake"
)

// project loads a compose file written to a fresh directory.
func project(t *testing.T, yaml string, profiles ...string) *types.Project {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "compose.yaml"), []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	p, err := Load(context.Background(), LoadOptions{ProjectDir: dir, ProjectName: "p", Files: []string{"compose.yaml"}, Profiles: profiles})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// events records what up reported.
type events struct {
	mu  sync.Mutex
	all []Event
}

func (e *events) report(ev Event) {
	e.mu.Lock()
	e.all = append(e.all, ev)
	e.mu.Unlock()
}

func (e *events) has(svc, state, detail string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, ev := range e.all {
		if ev.Service == svc && ev.State == state && strings.Contains(ev.Detail, detail) {
			return true
		}
	}
	return false
}

func fakeEngine() *enginefake.Engine {
	e := enginefake.New()
	e.AddImage("app:1", enginefake.Image{ID: "sha256:aaaa000000000001"})
	e.AddImage("cache:1", enginefake.Image{ID: "sha256:cccc000000000001", Volumes: []string{"/vdata"}})
	return e
}

func up(t *testing.T, e *enginefake.Engine, p *types.Project, mod ...func(*UpOptions)) (*UpResult, *events, error) {
	t.Helper()
	var ev events
	o := UpOptions{Project: p, Recreate: RecreateDiverged, Report: ev.report, WaitTimeout: 5 * time.Second}
	for _, m := range mod {
		m(&o)
	}
	res, err := Up(context.Background(), e, o)
	return res, &ev, err
}

const twoTier = `
services:
  init:
    image: app:1
  db:
    image: app:1
    restart: always
    healthcheck: {test: ["CMD", "probe"]}
  cache:
    image: cache:1
    restart: always
  api:
    image: app:1
    restart: always
    environment: {V: "1"}
    depends_on:
      init: {condition: service_completed_successfully}
      db: {condition: service_healthy}
      cache: {condition: service_started}
`

func healthyTwoTier(e *enginefake.Engine) {
	e.Behave("init", enginefake.Behaviour{Exit: enginefake.Exit(0)})
	e.Behave("db", enginefake.Behaviour{Health: "healthy"})
}

func TestUpCreatesInOrderThenConverges(t *testing.T) {
	e := fakeEngine()
	healthyTwoTier(e)
	p := project(t, twoTier)
	res, ev, err := up(t, e, p)
	if err != nil {
		t.Fatal(err)
	}
	want := "level 0  cache                  create\nlevel 0  db                     create\nlevel 0  init                   create\nlevel 1  api                    create\n"
	if got := res.PlanText(); got != want {
		t.Fatalf("plan:\n%s\nwant:\n%s", got, want)
	}
	calls := e.Calls()
	if i, j := slices.Index(calls, "start p-api-1"), slices.Index(calls, "start p-db-1"); i < j || j < 0 {
		t.Fatalf("api started before db: %v", calls)
	}
	if !ev.has("init", StateCompleted, "exited 0") || !ev.has("api", StateHealthy, "") {
		t.Fatalf("events: %+v", ev.all)
	}

	// Nothing changed: nothing is touched, and the completed job is not run again.
	before := len(e.Calls())
	res, _, err = up(t, e, p)
	if err != nil {
		t.Fatal(err)
	}
	want = "level 0  cache                  unchanged\nlevel 0  db                     unchanged\nlevel 0  init                   done (completed earlier)\nlevel 1  api                    unchanged\n"
	if got := res.PlanText(); got != want {
		t.Fatalf("second plan:\n%s", got)
	}
	if extra := e.Calls()[before:]; len(extra) != 0 {
		t.Fatalf("an unchanged up changed things: %v", extra)
	}
}

// A service without restart stopped by hand is started again; only a
// one-shot job by its role (a dependency with
// service_completed_successfully) is left completed.
func TestUpStartsStoppedServiceAndKeepsCompletedJob(t *testing.T) {
	e := fakeEngine()
	healthyTwoTier(e)
	p := project(t, twoTier+`
  web:
    image: app:1
`)
	if _, _, err := up(t, e, p); err != nil {
		t.Fatal(err)
	}
	e.SetState("p-web-1", container.StateExited, 0)
	res, _, err := up(t, e, p)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(res.PlanText(), "web                    start (stopped)") || !strings.Contains(res.PlanText(), "init                   done") {
		t.Fatalf("plan:\n%s", res.PlanText())
	}
	if c := e.Container("p-web-1"); c.Status != container.StateRunning {
		t.Fatalf("web: %s", c.Status)
	}
}

// A container left paused (a backup killed during its paused copy) is
// unpaused by up, not started (the engine refuses to start a paused one)
// nor kept paused.
func TestUpUnpausesPausedContainer(t *testing.T) {
	e := fakeEngine()
	healthyTwoTier(e)
	p := project(t, twoTier)
	if _, _, err := up(t, e, p); err != nil {
		t.Fatal(err)
	}
	if _, err := e.ContainerPause(context.Background(), "p-cache-1", client.ContainerPauseOptions{}); err != nil {
		t.Fatal(err)
	}
	res, ev, err := up(t, e, p)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(res.PlanText(), "cache                  unpause (paused)") {
		t.Fatalf("plan:\n%s", res.PlanText())
	}
	if c := e.Container("p-cache-1"); c.Status != container.StateRunning {
		t.Fatalf("cache: %s", c.Status)
	}
	if !ev.has("cache", StateStarting, "unpausing") {
		t.Fatal("no unpausing event")
	}
}

// A replacement is created first under a temporary name, takes over the
// old container's anonymous volumes, then the old one is stopped and
// removed; the new one has the name.
func TestUpRecreateCarriesAnonymousVolumes(t *testing.T) {
	e := fakeEngine()
	healthyTwoTier(e)
	p := project(t, twoTier)
	if _, _, err := up(t, e, p); err != nil {
		t.Fatal(err)
	}
	old := e.Container("p-cache-1")
	var vol string
	for _, m := range old.Mounts {
		if m.Destination == "/vdata" {
			vol = m.Name
		}
	}
	if vol == "" {
		t.Fatal("the fake gave cache no anonymous volume")
	}
	setEnv(p, "cache", "CHANGED", "1")
	res, _, err := up(t, e, p)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(res.PlanText(), "cache                  recreate (configuration changed)") {
		t.Fatalf("plan:\n%s", res.PlanText())
	}
	now := e.Container("p-cache-1")
	if now == nil || now.ID == old.ID {
		t.Fatal("cache was not replaced")
	}
	if !slices.ContainsFunc(now.Mounts, func(m container.MountPoint) bool { return m.Name == vol && m.Destination == "/vdata" }) {
		t.Fatalf("the replacement does not have the old anonymous volume %s: %+v", vol, now.Mounts)
	}
	if !e.Volume(vol) {
		t.Fatal("the anonymous volume was removed")
	}
	calls := strings.Join(e.Calls(), "\n")
	iCreate := strings.Index(calls, "create "+tempName(old.ID, "p-cache-1"))
	iStop := strings.Index(calls, "stop p-cache-1")
	iRemove := strings.Index(calls, "remove p-cache-1_replaced_")
	if iCreate < 0 || iStop < iCreate || iRemove < iStop {
		t.Fatalf("not create, then stop, then remove:\n%s", calls)
	}
	if e.Container("p-api-1").StartCount != 1 {
		t.Fatal("api was restarted although it has no restart: true on cache")
	}
}

func setEnv(p *types.Project, svc, k, v string) {
	s := p.Services[svc]
	env := types.MappingWithEquals{}
	for kk, vv := range s.Environment {
		env[kk] = vv
	}
	env[k] = &v
	s.Environment = env
	p.Services[svc] = s
}

// A replacement that cannot be created changes nothing: every old
// container keeps running.
func TestUpCreateFailureChangesNothing(t *testing.T) {
	e := fakeEngine()
	healthyTwoTier(e)
	p := project(t, twoTier)
	if _, _, err := up(t, e, p); err != nil {
		t.Fatal(err)
	}
	before := e.Containers()
	setEnv(p, "api", "V", "2")
	setEnv(p, "db", "V", "2")
	e.FailCreate("db", errors.New("range of CPUs is from 0.01 to 2.00"))
	_, _, err := up(t, e, p)
	if err == nil || !strings.Contains(err.Error(), "service db") || !strings.Contains(err.Error(), "nothing was changed") {
		t.Fatalf("error: %v", err)
	}
	after := e.Containers()
	if len(after) != len(before) {
		t.Fatalf("containers before %d, after %d", len(before), len(after))
	}
	for name, c := range before {
		if a := after[name]; a == nil || a.ID != c.ID || a.Status != c.Status {
			t.Fatalf("%s changed", name)
		}
	}
}

// A replacement that fails to start is removed and the old container runs
// again under its name; dependents not yet replaced are left running.
func TestUpRollsBackFailedReplacement(t *testing.T) {
	e := fakeEngine()
	healthyTwoTier(e)
	p := project(t, twoTier)
	if _, _, err := up(t, e, p); err != nil {
		t.Fatal(err)
	}
	oldDB, oldAPI := e.Container("p-db-1"), e.Container("p-api-1")
	setEnv(p, "db", "V", "2")
	setEnv(p, "api", "V", "2")
	e.Behave("db", enginefake.Behaviour{StartErr: errors.New("port is already allocated")})
	res, ev, err := up(t, e, p)
	var fe *FailedError
	if !errors.As(err, &fe) || len(fe.Failures) != 1 || fe.Failures[0].Service != "db" || !strings.Contains(fe.Failures[0].Reason, "the old container runs again") {
		t.Fatalf("error: %v", err)
	}
	db := e.Container("p-db-1")
	if db == nil || db.ID != oldDB.ID || db.Status != container.StateRunning {
		t.Fatalf("old db not back: %+v", db)
	}
	api := e.Container("p-api-1")
	if api == nil || api.ID != oldAPI.ID || api.Status != container.StateRunning {
		t.Fatalf("api should be left as it was: %+v", api)
	}
	if n := len(e.Containers()); n != 4 {
		t.Fatalf("%d containers left, want the 4 old ones: %v", n, e.Containers())
	}
	if !ev.has("api", StateSkipped, "its old container is left as it was") {
		t.Fatalf("events: %+v", ev.all)
	}
	for _, it := range res.Plan {
		if it.Service == "api" && it.Outcome != OutcomeNotReplaced || it.Service == "db" && it.Outcome != OutcomeRolledBack {
			t.Fatalf("outcome of %s: %q", it.Service, it.Outcome)
		}
	}
}

// An image tag now naming another image, a lost network connection: both
// are divergences that recreate.
func TestPlanImageAndNetworkDivergence(t *testing.T) {
	e := fakeEngine()
	healthyTwoTier(e)
	p := project(t, twoTier)
	if _, _, err := up(t, e, p); err != nil {
		t.Fatal(err)
	}
	e.AddImage("cache:1", enginefake.Image{ID: "sha256:cccc000000000002", Volumes: []string{"/vdata"}})
	e.Disconnect("p-api-1", "p_default")
	res, _, err := up(t, e, p, func(o *UpOptions) { o.DryRun = true })
	if err != nil {
		t.Fatal(err)
	}
	text := res.PlanText()
	if !strings.Contains(text, "cache                  recreate (image cache:1 now is") || !strings.Contains(text, "api                    recreate (not connected to network p_default)") {
		t.Fatalf("plan:\n%s", text)
	}
	if !strings.Contains(text, "db                     unchanged") {
		t.Fatalf("plan:\n%s", text)
	}
}

func TestUpPullPolicies(t *testing.T) {
	e := fakeEngine()
	p := project(t, "services:\n  web:\n    image: remote:1\n")
	if _, _, err := up(t, e, p, func(o *UpOptions) { o.Pull = PullNever }); err == nil || !strings.Contains(err.Error(), "image remote:1 (service web) is not present and the pull policy is never") {
		t.Fatalf("never: %v", err)
	}
	if _, _, err := up(t, e, p); err == nil || !strings.Contains(err.Error(), "image remote:1 (service web) is not present and could not be pulled") {
		t.Fatalf("missing, no remote: %v", err)
	}
	e.SetRemote("remote:1", enginefake.Image{ID: "sha256:r1"})
	if _, _, err := up(t, e, p); err != nil {
		t.Fatal(err)
	}
	// A newer image under the same tag: missing does not pull; always
	// does, and the container is recreated on it.
	e.SetRemote("remote:1", enginefake.Image{ID: "sha256:r2"})
	res, _, err := up(t, e, p)
	if err != nil || !strings.Contains(res.PlanText(), "unchanged") {
		t.Fatalf("missing: %v\n%s", err, res.PlanText())
	}
	res, _, err = up(t, e, p, func(o *UpOptions) { o.Pull = PullAlways })
	if err != nil || !strings.Contains(res.PlanText(), "web                    recreate (image remote:1 now is r2, the container runs r1)") {
		t.Fatalf("always: %v\n%s", err, res.PlanText())
	}
	if e.Container("p-web-1").ImageID != "sha256:r2" {
		t.Fatal("not recreated on the new image")
	}
	// pull_policy of the service is honoured when --pull is not given.
	p2 := project(t, "services:\n  web:\n    image: remote:1\n    pull_policy: always\n")
	e.SetRemote("remote:1", enginefake.Image{ID: "sha256:r3"})
	res, _, err = up(t, e, p2)
	if err != nil || !strings.Contains(res.PlanText(), "now is r3") {
		t.Fatalf("pull_policy always: %v\n%s", err, res.PlanText())
	}
}

func TestUpOrphans(t *testing.T) {
	e := fakeEngine()
	p := project(t, "services:\n  app:\n    image: app:1\n    ports: [\"8080:80\"]\n  vec:\n    image: app:1\n    profiles: [vec]\n", "vec")
	if _, _, err := up(t, e, p); err != nil {
		t.Fatal(err)
	}
	// app renamed app2 with the same port, the vec profile switched off.
	p2 := project(t, "services:\n  app2:\n    image: app:1\n    ports: [\"8080:80\"]\n  vec:\n    image: app:1\n    profiles: [vec]\n")
	res, _, err := up(t, e, p2)
	if err == nil || !strings.Contains(err.Error(), "service app2 publishes port 8080, which container p-app-1 (project p, service app) holds; it is an orphan of this project: run \"difyctl up --remove-orphans\"") {
		t.Fatalf("port clash: %v", err)
	}
	if len(res.Warnings) != 2 || !strings.Contains(res.Warnings[0], "(app)") || !strings.Contains(res.Warnings[1], "(vec)") {
		t.Fatalf("warnings: %v", res.Warnings)
	}
	if e.Container("p-app2-1") != nil {
		t.Fatal("app2 was created although the pre-flight failed")
	}
	res, _, err = up(t, e, p2, func(o *UpOptions) { o.RemoveOrphans = true })
	if err != nil {
		t.Fatal(err)
	}
	if e.Container("p-app-1") != nil || e.Container("p-vec-1") != nil || e.Container("p-app2-1") == nil {
		t.Fatalf("containers: %v", e.Containers())
	}
	if !strings.Contains(res.PlanText(), "orphan   app                    remove (not in the project's files)") {
		t.Fatalf("plan:\n%s", res.PlanText())
	}
}

// A dependency that fails: its dependents are not started, the containers
// made for them are removed, and independent services still come up.
func TestUpFailureCascade(t *testing.T) {
	e := fakeEngine()
	e.Behave("init", enginefake.Behaviour{Exit: enginefake.Exit(2), Logs: "boom\n"})
	e.Behave("db", enginefake.Behaviour{Health: "healthy"})
	p := project(t, twoTier)
	_, ev, err := up(t, e, p)
	var fe *FailedError
	if !errors.As(err, &fe) || len(fe.Failures) != 1 || fe.Failures[0].Reason != "exited with code 2" || strings.Join(fe.Failures[0].Logs, "") != "boom" {
		t.Fatalf("error %v %+v", err, fe)
	}
	if e.Container("p-api-1") != nil {
		t.Fatal("api's container was left behind")
	}
	if !ev.has("api", StateSkipped, "dependency init failed") || e.Container("p-db-1").Status != container.StateRunning {
		t.Fatalf("events %+v", ev.all)
	}
}

func TestUpDataDirectoryOfAnotherProject(t *testing.T) {
	e := fakeEngine()
	p := project(t, "services:\n  db:\n    image: app:1\n    volumes: [\"./volumes/db:/data\"]\n")
	if _, _, err := up(t, e, p); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(filepath.Join(p.WorkingDir, "volumes")); err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("volumes/: %v %v", fi.Mode(), err)
	}
	other := *p
	other.Name = "q"
	_, _, err := up(t, e, &other)
	if err == nil || !strings.Contains(err.Error(), "is in use by container p-db-1 (project p, service db)") {
		t.Fatalf("second project: %v", err)
	}
}

// A container made for a service whose dependency failed is removed; when
// that removal fails, the report says so instead of dropping the error.
func TestUpReportsFailedRemoval(t *testing.T) {
	e := fakeEngine()
	e.Behave("init", enginefake.Behaviour{Exit: enginefake.Exit(1)})
	e.Behave("db", enginefake.Behaviour{Health: "healthy"})
	e.FailRemove("api", errors.New("device or resource busy"))
	_, ev, err := up(t, e, project(t, twoTier))
	if err == nil || !ev.has("api", StateSkipped, "removing the container made for it failed: device or resource busy") {
		t.Fatalf("%v %+v", err, ev.all)
	}
}

// NoStart (docker compose create) creates the containers of services that
// have none and starts nothing; a container a service already has is left
// as it is, even when its configuration changed; a later up starts the
// created ones.
func TestUpNoStartCreatesOnly(t *testing.T) {
	e := fakeEngine()
	healthyTwoTier(e)
	p := project(t, twoTier)
	if _, _, err := up(t, e, p, func(o *UpOptions) { o.Services = []string{"cache"} }); err != nil {
		t.Fatal(err)
	}
	cacheID := e.Container("p-cache-1").ID
	changed := project(t, strings.Replace(twoTier, "image: cache:1\n    restart: always", "image: cache:1\n    restart: always\n    environment: {NEW: \"1\"}", 1))
	before := len(e.Calls())
	if _, _, err := up(t, e, changed, func(o *UpOptions) { o.NoStart = true }); err != nil {
		t.Fatal(err)
	}
	for _, c := range e.Calls()[before:] {
		if strings.HasPrefix(c, "start ") || strings.HasPrefix(c, "stop ") || strings.HasPrefix(c, "remove ") {
			t.Errorf("NoStart asked %q", c)
		}
	}
	for _, name := range []string{"p-db-1", "p-init-1", "p-api-1"} {
		c := e.Container(name)
		if c == nil || c.Status != container.StateCreated {
			t.Fatalf("%s after NoStart: %+v", name, c)
		}
	}
	if c := e.Container("p-cache-1"); c == nil || c.ID != cacheID || c.Status != container.StateRunning {
		t.Fatalf("cache was touched: %+v", c)
	}
	if _, _, err := up(t, e, changed); err != nil {
		t.Fatal(err)
	}
	if c := e.Container("p-api-1"); c.Status != container.StateRunning {
		t.Fatalf("api after up: %s", c.Status)
	}
}

// NoDeps converges the named services only: their dependencies are taken
// as they run (db's changed configuration is not applied, its container
// and init's are left as they are) and still waited on; a dependency with
// no container fails the plan, naming it, before anything changes.
func TestUpNoDepsTakesDependenciesAsTheyRun(t *testing.T) {
	e := fakeEngine()
	healthyTwoTier(e)
	p := project(t, twoTier)
	if _, _, err := up(t, e, p, func(o *UpOptions) { o.Services = []string{"db", "init", "cache"} }); err != nil {
		t.Fatal(err)
	}
	dbID, initID := e.Container("p-db-1").ID, e.Container("p-init-1").ID
	changed := project(t, strings.Replace(twoTier, "    healthcheck: {test: [\"CMD\", \"probe\"]}", "    healthcheck: {test: [\"CMD\", \"probe\"]}\n    environment: {NEW: \"1\"}", 1))
	before := len(e.Calls())
	res, _, err := up(t, e, changed, func(o *UpOptions) { o.Services = []string{"api"}; o.NoDeps = true })
	if err != nil {
		t.Fatal(err)
	}
	want := "level 0  cache                  unchanged (a dependency of api, taken as it runs: no-deps)\n" +
		"level 0  db                     unchanged (a dependency of api, taken as it runs: no-deps)\n" +
		"level 0  init                   done (completed earlier; no-deps)\n" +
		"level 1  api                    create\n"
	if got := res.PlanText(); got != want {
		t.Fatalf("plan:\n%s\nwant:\n%s", got, want)
	}
	for _, c := range e.Calls()[before:] {
		if strings.Contains(c, "p-db-1") && !strings.HasPrefix(c, "inspect") || strings.Contains(c, "p-init-1") && !strings.HasPrefix(c, "inspect") {
			t.Errorf("no-deps touched a dependency: %q", c)
		}
	}
	if e.Container("p-db-1").ID != dbID || e.Container("p-init-1").ID != initID || e.Container("p-api-1").Status != container.StateRunning {
		t.Fatal("no-deps replaced a dependency, or api does not run")
	}

	e2 := fakeEngine()
	healthyTwoTier(e2)
	_, _, err = up(t, e2, p, func(o *UpOptions) { o.Services = []string{"api"}; o.NoDeps = true })
	if err == nil || !strings.Contains(err.Error(), "no container") || !strings.Contains(err.Error(), "no-deps") {
		t.Fatalf("no-deps with dependencies that have no container: %v", err)
	}
	if len(e2.Containers()) != 0 {
		t.Fatal("a failed no-deps plan created containers")
	}
}

// A service left as it runs waits for nothing: what its dependents need
// of it (it runs) holds already, so they are not held back by its own
// dependencies' replacements. front is replaced although db's replacement
// fails (mid, unchanged between them, runs all along); when mid declares
// restart: true on db, it has to wait for db's replacement and restart
// after it, so front, after mid, is not replaced.
func TestUpKeptServiceDoesNotWaitForItsDependencies(t *testing.T) {
	const chain = `
services:
  db: {image: app:1, restart: always, environment: {V: "1"}}
  mid:
    image: app:1
    restart: always
    depends_on: {db: {condition: service_started}}
  front:
    image: app:1
    restart: always
    environment: {V: "1"}
    depends_on: {mid: {condition: service_started}}
`
	for _, restart := range []bool{false, true} {
		e := fakeEngine()
		src := chain
		if restart {
			src = strings.Replace(src, "{db: {condition: service_started}}", "{db: {condition: service_started, restart: true}}", 1)
		}
		if _, _, err := up(t, e, project(t, src)); err != nil {
			t.Fatal(err)
		}
		midID, frontID := e.Container("p-mid-1").ID, e.Container("p-front-1").ID
		e.Behave("db", enginefake.Behaviour{StartErr: errors.New("no space left on device")})
		changed := project(t, strings.ReplaceAll(src, `V: "1"`, `V: "2"`))
		_, _, err := up(t, e, changed)
		if err == nil || !strings.Contains(err.Error(), "db") {
			t.Fatalf("restart %v: db's replacement failed, up said %v", restart, err)
		}
		if c := e.Container("p-mid-1"); c.ID != midID || c.Status != container.StateRunning {
			t.Fatalf("restart %v: mid %+v", restart, c)
		}
		front := e.Container("p-front-1")
		if replaced := front.ID != frontID; replaced == restart || front.Status != container.StateRunning {
			t.Fatalf("restart %v: front replaced %v (%s)", restart, replaced, front.Status)
		}
	}
}
