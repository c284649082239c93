package upgrade

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/compose-spec/compose-go/v2/types"
	"github.com/moby/moby/api/types/container"

	"github.com/difyctl/difyctl/compose"
	"github.com/difyctl/difyctl/envgen"
	"github.com/difyctl/difyctl/internal/catalog"
	"github.com/difyctl/difyctl/internal/engine"
	"github.com/difyctl/difyctl/internal/engine/enginefake"
	"github.com/difyctl/difyctl/internal/journal"
	"github.com/difyctl/difyctl/internal/release"
	"github.com/difyctl/difyctl/profiles"
	"github.com/difyctl/difyctl/templates"
)

// fakeSafety stands in for backup/bundle in unit tests: it records calls.
type fakeSafety struct {
	taken, restored []string
	// atRestore: the release the project directory recorded, and whether
	// its .env still had 1.16.0's variables, each time Restore ran (the
	// restore starts services from the project's files: they must be the
	// previous release's by then).
	atRestore []string
	takeErr   error
	releases  map[string]string
}

func (s *fakeSafety) Take(_ context.Context, dir, project, rel string) (string, error) {
	if s.takeErr != nil {
		return "", s.takeErr
	}
	b := filepath.Join(dir, "backups", "bundle-"+rel)
	s.taken = append(s.taken, b)
	return b, nil
}

func (s *fakeSafety) Restore(_ context.Context, dir, project, bundle string) error {
	s.restored = append(s.restored, bundle)
	rec, _ := release.Read(dir)
	env, _ := os.ReadFile(filepath.Join(dir, ".env"))
	s.atRestore = append(s.atRestore, fmt.Sprintf("%s new-env=%v", rec.Release, strings.Contains(string(env), "DIFY_AGENT")))
	return nil
}

func (s *fakeSafety) Release(bundle string) (string, error) {
	if r, ok := s.releases[bundle]; ok {
		return r, nil
	}
	return "", errors.New("no such bundle")
}

const project = "upg"

// deployed writes a 1.15.0 project and runs it on a fake engine that has
// every image of both releases, every service healthy.
func deployed(t *testing.T) (string, *enginefake.Engine) {
	t.Helper()
	dir := t.TempDir()
	writeProject(t, dir, "1.15.0")
	e := enginefake.New()
	n := 0
	for _, r := range templates.Releases() {
		svcs, _ := catalog.Services(r)
		for name, s := range svcs {
			n++
			e.AddImage(s.Image, enginefake.Image{ID: "sha256:" + strings.Repeat("0", 60) + string(rune('a'+n%26)) + string(rune('a'+n/26%26)) + "00"})
			if name == "init_permissions" {
				e.Behave(name, enginefake.Behaviour{Exit: enginefake.Exit(0)})
			} else {
				e.Behave(name, enginefake.Behaviour{Health: "healthy"})
			}
		}
	}
	p, err := compose.Load(context.Background(), compose.LoadOptions{ProjectDir: dir, ProjectName: project})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := compose.Up(context.Background(), e, compose.UpOptions{Project: p, WaitTimeout: 10 * time.Second, Release: "1.15.0"}); err != nil {
		t.Fatal(err)
	}
	return dir, e
}

func containers(t *testing.T, e *enginefake.Engine) map[string]compose.ProjectContainer {
	cs, err := compose.List(context.Background(), e, project, true)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]compose.ProjectContainer{}
	for _, c := range cs {
		out[c.Service] = c
	}
	return out
}

func options(dir string, e *enginefake.Engine, s Safety) *Options {
	return &Options{Target: Target{Dir: dir, Project: project, To: "1.16.0"}, Engine: e, Safety: s, WaitTimeout: 10 * time.Second,
		Free: func(string) (uint64, error) { return 1 << 40, nil }}
}

func plan(t *testing.T, dir string, e *enginefake.Engine, to string) *Plan {
	t.Helper()
	p, err := MakePlan(context.Background(), e, Target{Dir: dir, Project: project, To: to})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func read(t *testing.T, p string) string {
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestPlanChangesNothing(t *testing.T) {
	dir, e := deployed(t)
	env := read(t, filepath.Join(dir, ".env"))
	calls := len(e.Calls())
	p := plan(t, dir, e, "")
	if p.From != "1.15.0" || p.To != "1.16.0" || p.FromSource != "recorded" || p.Downgrade {
		t.Fatalf("plan %s -> %s (%s)", p.From, p.To, p.FromSource)
	}
	for _, svc := range []string{"api", "worker", "worker_beat", "web", "agent_backend", "local_sandbox"} {
		if !contains(p.Recreate, svc) {
			t.Errorf("%s not among the services to recreate: %v", svc, p.Recreate)
		}
	}
	for _, svc := range []string{"db_postgres", "redis", "nginx", "weaviate", "sandbox"} {
		if contains(p.Recreate, svc) {
			t.Errorf("unchanged %s would be recreated", svc)
		}
	}
	if !contains(p.EnvAdded, "DIFY_AGENT_SERVER_SECRET_KEY") || len(p.EnvRenamed) != 1 {
		t.Errorf("env added %v renamed %v", p.EnvAdded, p.EnvRenamed)
	}
	if len(p.Files) != 1 || p.Files[0] != (File{Path: "volumes/sandbox/conf/config.yaml", Action: FileReplace}) {
		t.Errorf("files %+v", p.Files)
	}
	if read(t, filepath.Join(dir, ".env")) != env {
		t.Fatal("planning changed .env")
	}
	for _, c := range e.Calls()[calls:] {
		if !strings.HasPrefix(c, "inspect") && !strings.HasPrefix(c, "list") && !strings.HasPrefix(c, "image") {
			t.Errorf("planning called %s", c)
		}
	}
}

func TestUpgradeApplies(t *testing.T) {
	dir, e := deployed(t)
	before := containers(t, e)
	// The operator edited nginx's config: it must survive, the new one beside it.
	os.WriteFile(filepath.Join(dir, "volumes", "sandbox", "conf", "config.yaml"), []byte("mine\n"), 0o644)
	s := &fakeSafety{}
	p := plan(t, dir, e, "1.16.0")
	o := options(dir, e, s)
	if err := Preflight(o, p); err != nil {
		t.Fatal(err)
	}
	res := &Result{Plan: p}
	if err := Run(context.Background(), o, p, res); err != nil {
		t.Fatal(err)
	}
	if rec, _ := release.Read(dir); rec.Release != "1.16.0" || rec.Previous != "1.15.0" || rec.Source != release.SourceUpgrade {
		t.Fatalf("record %+v", rec)
	}
	after := containers(t, e)
	if after["api"].Image != "langgenius/dify-api:1.16.0" || after["agent_backend"].ID == "" {
		t.Fatalf("api %s, agent_backend %q", after["api"].Image, after["agent_backend"].ID)
	}
	for _, svc := range []string{"db_postgres", "redis", "nginx"} {
		if after[svc].ID != before[svc].ID {
			t.Errorf("%s was recreated", svc)
		}
	}
	env := read(t, filepath.Join(dir, ".env"))
	if !strings.Contains(env, "DIFY_AGENT_SERVER_SECRET_KEY=") || !strings.Contains(env, "NEXT_PUBLIC_ENABLE_AGENT_V2=false") {
		t.Fatal(".env not upgraded (new secret, renamed variable with the old value)")
	}
	if read(t, filepath.Join(dir, "volumes", "sandbox", "conf", "config.yaml")) != "mine\n" {
		t.Fatal("the operator's edit was overwritten")
	}
	if !strings.Contains(read(t, filepath.Join(dir, "volumes", "sandbox", "conf", "config.yaml.dify-1.16.0")), "max_workers") || len(res.Notes) != 1 {
		t.Fatalf("the new file was not written beside the edited one (notes %v)", res.Notes)
	}
	if len(s.taken) != 1 || res.Bundle != s.taken[0] {
		t.Fatalf("bundle %v %q", s.taken, res.Bundle)
	}
	if j, _ := journal.Load(dir, project); j != nil {
		t.Fatal("journal left after a completed upgrade")
	}
	if last, _ := ReadLast(dir); last == nil || last.To != "1.16.0" {
		t.Fatal("no record for rollback")
	}
	// Same release again: refused.
	if err := Preflight(o, plan(t, dir, e, "1.16.0")); err == nil || !strings.Contains(err.Error(), "already runs") {
		t.Fatalf("same release: %v", err)
	}

	// rollback after the completed upgrade
	if _, err := Rollback(context.Background(), RollbackOptions{Dir: dir, Project: project, Engine: e, Safety: s, WaitTimeout: 10 * time.Second}); err != nil {
		t.Fatal(err)
	}
	back := containers(t, e)
	if back["api"].Image != "langgenius/dify-api:1.15.0" || back["agent_backend"].ID != "" {
		t.Fatalf("after rollback: api %s, agent_backend %q", back["api"].Image, back["agent_backend"].ID)
	}
	if len(s.restored) != 1 {
		t.Fatalf("database not restored from the bundle: %v", s.restored)
	}
	if s.atRestore[0] != "1.15.0 new-env=false" {
		t.Fatalf("the bundle was restored while the project's files were %s: the restore would start the new release's api on the restored database", s.atRestore[0])
	}
	if rec, _ := release.Read(dir); rec.Release != "1.15.0" {
		t.Fatalf("record after rollback %+v", rec)
	}
	if strings.Contains(read(t, filepath.Join(dir, ".env")), "DIFY_AGENT") {
		t.Fatal(".env not put back")
	}
	if _, err := os.Stat(filepath.Join(dir, "volumes", "sandbox", "conf", "config.yaml.dify-1.16.0")); err == nil {
		t.Fatal("the file written beside was left")
	}
}

// A failure at each step of apply puts everything back; the database is
// restored from the bundle only once containers changed.
func TestFailureRollsBack(t *testing.T) {
	for _, c := range []struct {
		step    string
		restore bool
	}{{StepBundle, false}, {StepConfig, false}, {StepContainers, true}} {
		t.Run(c.step, func(t *testing.T) {
			dir, e := deployed(t)
			env := read(t, filepath.Join(dir, ".env"))
			conf := read(t, filepath.Join(dir, "volumes", "sandbox", "conf", "config.yaml"))
			before := containers(t, e)
			s := &fakeSafety{}
			o := options(dir, e, s)
			o.FailAfter = c.step
			p := plan(t, dir, e, "1.16.0")
			err := Run(context.Background(), o, p, &Result{})
			if err == nil || !strings.Contains(err.Error(), "rolled back: the deployment runs Dify 1.15.0") {
				t.Fatalf("error %v", err)
			}
			if read(t, filepath.Join(dir, ".env")) != env || read(t, filepath.Join(dir, "volumes", "sandbox", "conf", "config.yaml")) != conf {
				t.Fatal(".env or support file not put back")
			}
			if rec, _ := release.Read(dir); rec.Release != "1.15.0" {
				t.Fatalf("record %+v", rec)
			}
			if (len(s.restored) == 1) != c.restore {
				t.Fatalf("database restored %v, want %v", s.restored, c.restore)
			}
			if c.restore && s.atRestore[0] != "1.15.0 new-env=false" {
				t.Fatalf("the bundle was restored while the project's files were %s", s.atRestore[0])
			}
			after := containers(t, e)
			if after["api"].Image != "langgenius/dify-api:1.15.0" || after["agent_backend"].ID != "" {
				t.Fatalf("containers not put back: api %s agent_backend %q", after["api"].Image, after["agent_backend"].ID)
			}
			if !c.restore && after["api"].ID != before["api"].ID {
				t.Fatal("a failure before the containers changed touched them")
			}
			if j, _ := journal.Load(dir, project); j != nil {
				t.Fatal("journal left after a rollback")
			}
		})
	}
}

// A SIGKILL leaves a journal: settling undoes an uncommitted upgrade and
// finishes a committed one.
func TestSettleAfterKill(t *testing.T) {
	for _, c := range []struct {
		name      string
		steps     []string
		commit    bool
		restored  bool
		wantRel   string
		wantAgent bool
	}{
		{"after-config", []string{StepSaved, StepBundle, StepConfig}, false, false, "1.15.0", false},
		{"during-containers", []string{StepSaved, StepBundle, StepConfig, StepContainers}, false, true, "1.15.0", false},
		{"committed", []string{StepSaved, StepBundle, StepConfig, StepContainers}, true, false, "1.16.0", true},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir, e := deployed(t)
			env := read(t, filepath.Join(dir, ".env"))
			s := &fakeSafety{}
			NewSafety = func(_ engine.Engine, _ func(string, ...any)) Safety { return s }
			defer func() { NewSafety = nil }()
			p := plan(t, dir, e, "1.16.0")
			// What Run does up to the kill.
			prev, _ := release.Read(dir)
			data := &Data{From: p.From, To: p.To, SaveDir: filepath.Join(dir, SaveDirName, "x"), Running: p.Running, Recreate: p.Recreate, PrevRecord: prev, Bundle: "b"}
			h, err := journal.Begin(dir, project, Op, data)
			if err != nil {
				t.Fatal(err)
			}
			if err := save(p, data); err != nil {
				t.Fatal(err)
			}
			h.SetData(data)
			for _, st := range c.steps {
				h.Step(st)
				if st == StepConfig {
					if _, err := writeConfig(p, time.Now()); err != nil {
						t.Fatal(err)
					}
				}
				if st == StepContainers {
					proj, _ := compose.Load(context.Background(), compose.LoadOptions{ProjectDir: dir, ProjectName: project, Release: "1.16.0"})
					if _, err := compose.Up(context.Background(), e, compose.UpOptions{Project: proj, WaitTimeout: 10 * time.Second, RemoveOrphans: true}); err != nil {
						t.Fatal(err)
					}
				}
			}
			if c.commit {
				release.Write(dir, release.Record{Release: "1.16.0", Previous: "1.15.0", Source: release.SourceUpgrade})
				h.Commit()
			}
			var out bytes.Buffer
			o, err := journal.Settle(context.Background(), journal.Env{Engine: e, Out: &out}, dir, project)
			if err != nil {
				t.Fatal(err)
			}
			if o == nil || (o.Action == journal.Finished) != c.commit {
				t.Fatalf("outcome %+v", o)
			}
			if rec, _ := release.Read(dir); rec.Release != c.wantRel {
				t.Fatalf("record %+v", rec)
			}
			if (containers(t, e)["agent_backend"].ID != "") != c.wantAgent {
				t.Fatal("containers not settled")
			}
			if (len(s.restored) == 1) != c.restored {
				t.Fatalf("restored %v", s.restored)
			}
			if !c.commit && read(t, filepath.Join(dir, ".env")) != env {
				t.Fatal(".env not put back")
			}
			if c.commit {
				if last, _ := ReadLast(dir); last == nil {
					t.Fatal("a finished upgrade keeps its record for rollback")
				}
			}
		})
	}
}

func TestDowngradeRefused(t *testing.T) {
	dir, e := deployed(t)
	release.Write(dir, release.Record{Release: "1.16.0", Source: release.SourceInit})
	p := plan(t, dir, e, "1.15.0")
	if !p.Downgrade {
		t.Fatal("1.16.0 -> 1.15.0 is not a downgrade")
	}
	s := &fakeSafety{releases: map[string]string{"/b/115": "1.15.0", "/b/116": "1.16.0"}}
	o := options(dir, e, s)
	if err := Preflight(o, p); err == nil || !strings.Contains(err.Error(), "downgrade") {
		t.Fatalf("downgrade: %v", err)
	}
	o.AllowDowngrade = true
	if err := Preflight(o, p); err == nil || !strings.Contains(err.Error(), "--bundle") {
		t.Fatalf("downgrade without a bundle: %v", err)
	}
	o.DowngradeFrom = "/b/116"
	if err := Preflight(o, p); err == nil || !strings.Contains(err.Error(), "taken on Dify 1.16.0") {
		t.Fatalf("downgrade with a bundle of another release: %v", err)
	}
	o.DowngradeFrom = "/b/115"
	if err := Preflight(o, p); err != nil {
		t.Fatal(err)
	}
	// No safety net at all: refused unless --no-bundle.
	o2 := options(dir, e, nil)
	release.Write(dir, release.Record{Release: "1.15.0", Source: release.SourceInit})
	if err := Preflight(o2, plan(t, dir, e, "1.16.0")); err == nil || !strings.Contains(err.Error(), "--no-bundle") {
		t.Fatalf("no safety: %v", err)
	}
	o2.Free = func(string) (uint64, error) { return 1 << 20, nil }
	o2.NoBundle = true
	if err := Preflight(o2, plan(t, dir, e, "1.16.0")); err == nil || !strings.Contains(err.Error(), "free") {
		t.Fatalf("no space: %v", err)
	}
}

// An imported deployment with no record is recognised from its images.
func TestCurrentFromImages(t *testing.T) {
	dir, e := deployed(t)
	os.Remove(release.Path(dir))
	rel, src, err := Current(context.Background(), e, dir, project)
	if err != nil || rel.Version != "1.15.0" || !strings.Contains(src, "detected") {
		t.Fatalf("%v %q %v", rel, src, err)
	}
	if _, _, err := Current(context.Background(), enginefake.New(), t.TempDir(), "none"); err == nil || !strings.Contains(err.Error(), "cannot tell") {
		t.Fatalf("nothing running: %v", err)
	}
}

// writeProject writes what init writes for a release (deploy.WriteRelease,
// which this package cannot import: deploy settles journals through it).
func writeProject(t *testing.T, dir, version string) {
	t.Helper()
	rel, err := templates.Lookup(version)
	if err != nil {
		t.Fatal(err)
	}
	sel, err := profiles.Select(nil, false)
	if err != nil {
		t.Fatal(err)
	}
	d, err := envgen.Generate(envgen.SchemaFor(rel), sel, rand.Reader, time.Unix(0, 0))
	if err != nil {
		t.Fatal(err)
	}
	d.Set("COMPOSE_PROJECT_NAME", project)
	if err := envgen.WriteFile(filepath.Join(dir, ".env"), d); err != nil {
		t.Fatal(err)
	}
	if _, err := rel.WriteSupportFiles(dir); err != nil {
		t.Fatal(err)
	}
	if err := release.Write(dir, release.Record{Release: version, Source: release.SourceInit}); err != nil {
		t.Fatal(err)
	}
}

// A service the upgrade adds starts early when every dependency it
// declares runs now (replaced later or not) or starts early too: sandbox
// (on kept redis), agent (on the plugin, replaced later, and sandbox),
// lonely; not late (on a stopped dependency), nor bound (restart: true on
// the replaced plugin), nor atop (on bound), nor api (replaced, not new).
func TestEarlyServices(t *testing.T) {
	dep := func(names ...string) types.DependsOnConfig {
		d := types.DependsOnConfig{}
		for _, n := range names {
			d[n] = types.ServiceDependency{Condition: types.ServiceConditionStarted}
		}
		return d
	}
	restartOn := dep("plugin")
	restartOn["plugin"] = types.ServiceDependency{Condition: types.ServiceConditionStarted, Restart: true}
	proj := &types.Project{Services: types.Services{
		"redis":   {Name: "redis"},
		"stopped": {Name: "stopped"},
		"plugin":  {Name: "plugin", WorkloadSpec: types.WorkloadSpec{DependsOn: dep("redis")}},
		"sandbox": {Name: "sandbox", WorkloadSpec: types.WorkloadSpec{DependsOn: dep("redis", "mysql")}}, // mysql: an inactive optional dependency
		"agent":   {Name: "agent", WorkloadSpec: types.WorkloadSpec{DependsOn: dep("plugin", "sandbox")}},
		"late":    {Name: "late", WorkloadSpec: types.WorkloadSpec{DependsOn: dep("stopped")}},
		"bound":   {Name: "bound", WorkloadSpec: types.WorkloadSpec{DependsOn: restartOn}},
		"atop":    {Name: "atop", WorkloadSpec: types.WorkloadSpec{DependsOn: dep("bound")}},
		"api":     {Name: "api", WorkloadSpec: types.WorkloadSpec{DependsOn: dep("agent")}},
		"lonely":  {Name: "lonely"},
	}}
	running := string(container.StateRunning)
	p := &Plan{ComposePlan: []compose.PlanItem{
		{Service: "redis", Action: compose.ActionKeep, State: running},
		{Service: "stopped", Action: compose.ActionStart, State: string(container.StateExited)},
		{Service: "plugin", Action: compose.ActionRecreate, State: running},
		{Service: "sandbox", Action: compose.ActionCreate},
		{Service: "agent", Action: compose.ActionCreate},
		{Service: "late", Action: compose.ActionCreate},
		{Service: "bound", Action: compose.ActionCreate},
		{Service: "atop", Action: compose.ActionCreate},
		{Service: "api", Action: compose.ActionRecreate, State: running},
		{Service: "lonely", Action: compose.ActionCreate},
	}}
	if got, want := p.earlyServices(proj), []string{"agent", "lonely", "sandbox"}; !slices.Equal(got, want) {
		t.Fatalf("early services %v, want %v", got, want)
	}
}
