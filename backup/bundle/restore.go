package bundle

import (
	"archive/tar"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"filippo.io/age"
	"github.com/compose-spec/compose-go/v2/types"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/client"

	"github.com/difyctl/difyctl/backup"
	"github.com/difyctl/difyctl/compose"
	"github.com/difyctl/difyctl/envgen"
	"github.com/difyctl/difyctl/internal/atomicfile"
	"github.com/difyctl/difyctl/internal/cmdutil"
	"github.com/difyctl/difyctl/internal/engine"
	"github.com/difyctl/difyctl/internal/journal"
	"github.com/difyctl/difyctl/templates"
)

// OpRestoreAll is the journal operation of a bundle restore.
const OpRestoreAll = "restore-all"

func init() { journal.Register(OpRestoreAll, settle) }

// RestoreOptions for a restore.
type RestoreOptions struct {
	Bundle        string // a verified bundle directory
	Identities    []age.Identity
	Project       string
	ProjectDir    string
	BackupDir     string // where the safety bundle is written
	RedisPassword string
	// Up converges and starts services of the project from its files
	// (after the config is written), gated on health; nil: UpWith(Load).
	Up func(ctx context.Context, services []string) error
	// Create makes the networks, volumes and containers of services (and
	// their dependencies) without starting any (a restore into a new
	// project fills the volumes of services that do not run yet); nil:
	// UpWith(Load) with NoStart.
	Create func(ctx context.Context, services []string) error
	// Load is how the project's compose files load (Up and Model default to
	// it; recorded in the journal for settling).
	Load compose.LoadOptions
	// Model loads the project's compose files: where a service without a
	// container yet mounts its files.
	Model       func(ctx context.Context) (*types.Project, error)
	StopTimeout time.Duration
	WaitTimeout time.Duration // for Redis to come back healthy
	journal     *journal.Handle
	timings     *timings  // the steps' wall times, for RestoreResult.Timings
	tidy        *tidyList // what is cleared away while the services start
	Version     string
	Now         func() time.Time
	Progress    func(format string, a ...any)
	// NoSafety skips the safety bundle (the rollback itself restores one).
	NoSafety bool
	// NoJournal writes no journal: the caller's own covers this restore
	// (an upgrade's rollback, whose settler restores the bundle again).
	NoJournal bool
}

func (o *RestoreOptions) progress(format string, a ...any) {
	if o.Progress != nil {
		o.Progress(format, a...)
	}
}

// stepMu orders the journal's steps of the parts restored at once.
var stepMu sync.Mutex

func (o *RestoreOptions) step(name string) {
	stepMu.Lock()
	defer stepMu.Unlock()
	if o.journal != nil {
		if err := o.journal.Step(name); err != nil {
			o.progress("warning: recording step %s in the journal: %v", name, err)
		}
	}
}

// Restored is what one part put back.
type Restored struct {
	Part   string           `json:"part"`
	Into   string           `json:"into"`
	Counts map[string]int64 `json:"counts,omitempty"`
}

// RestoreResult says what a restore did.
type RestoreResult struct {
	Bundle       string     `json:"bundle"`
	Project      string     `json:"project"`
	Mode         string     `json:"mode"` // "same deployment" or "new deployment"
	SafetyBundle string     `json:"safetyBundle,omitempty"`
	Restored     []Restored `json:"restored"`
	Services     []string   `json:"services"`
	Duration     string     `json:"duration"`
	// Timings are the restore's steps (safety bundle, config, data services
	// started, application stopped, each part, everything started), wall
	// time each; the parts run at once, so theirs overlap.
	Timings []Timing `json:"timings,omitempty"`
}

// JournalData is what a restore records in the journal.
type JournalData struct {
	Bundle       string   `json:"bundle"`
	Mode         string   `json:"mode"`
	SafetyBundle string   `json:"safetyBundle,omitempty"`
	Running      []string `json:"running,omitempty"`  // services running before the restore
	Services     []string `json:"services,omitempty"` // services to start when finished
	BackupDir    string   `json:"backupDir,omitempty"`
	Files        []string `json:"files,omitempty"` // the project's -f files
}

// Modes of a restore.
const (
	ModeSame = "same deployment"
	ModeNew  = "new deployment"
)

// Check refuses a bundle that this difyctl must not restore: from a newer
// Dify release than the one it deploys, or for another database type than
// the target runs ("" when the target has none yet).
func Check(m *Manifest, targetDBType string) error {
	if NewerRelease(m.DifyVersion, templates.DifyVersion()) {
		return fmt.Errorf("the bundle is of Dify %s, newer than the %s this difyctl deploys: its database schema would not match; restore it with a difyctl that embeds %s or newer", m.DifyVersion, templates.DifyVersion(), m.DifyVersion)
	}
	if targetDBType != "" && targetDBType != m.DBType {
		return fmt.Errorf("the bundle holds a %s database, the project runs %s: a dump does not load into another database type", m.DBType, targetDBType)
	}
	return nil
}

// TargetDBType is the database type project runs, from its containers, or
// from .env in projectDir; "" when neither says.
func TargetDBType(ctx context.Context, e engine.Engine, project, projectDir string) (string, error) {
	cs, err := compose.List(ctx, e, project, true)
	if err != nil {
		return "", err
	}
	for _, c := range cs {
		switch c.Service {
		case ServicePostgres:
			return "postgresql", nil
		case ServiceMySQL:
			return "mysql", nil
		}
	}
	if env, err := compose.Environment(projectDir, nil); err == nil && env["DB_TYPE"] != "" {
		if _, err := os.Stat(filepath.Join(projectDir, ".env")); err == nil {
			return env["DB_TYPE"], nil
		}
	}
	return "", nil
}

// Restore puts a bundle back into the project. The caller verified the
// bundle (Verify), checked it (Check) and holds the project's locks.
//
// Into a project with containers (the same deployment): a safety bundle is
// taken first, the application services are stopped while the data
// services keep running, the database is loaded into a fresh database that
// replaces the old one only once complete, the files, Redis and the vector
// store are put back, and everything that ran is started, gated on health.
// Any failure after the stop puts the safety bundle back the same way and
// starts the deployment as it was.
//
// Into a new project (another directory or name, another host): .env and
// the support files are written, only the data services are started, the
// dump is loaded, the files and Redis restored, then everything is started.
func Restore(ctx context.Context, e engine.Engine, o RestoreOptions) (*RestoreResult, error) {
	start := time.Now()
	m, err := ReadManifest(o.Bundle)
	if err != nil {
		return nil, err
	}
	o.defaults(e)
	o.timings = &timings{}
	o.tidy = &tidyList{}
	cs, err := compose.List(ctx, e, o.Project, true)
	if err != nil {
		return nil, err
	}
	res := &RestoreResult{Bundle: o.Bundle, Project: o.Project, Mode: ModeNew}
	jd := JournalData{Bundle: o.Bundle, Mode: ModeNew, BackupDir: o.BackupDir, Files: o.Load.Files, Services: m.Services}
	if len(cs) > 0 {
		res.Mode, jd.Mode = ModeSame, ModeSame
	}
	if res.Mode == ModeNew {
		if err := o.restoreNew(ctx, e, m, res, jd); err != nil {
			return nil, err
		}
	} else if err := o.restoreSame(ctx, e, m, cs, res, jd); err != nil {
		return nil, err
	}
	res.Duration = time.Since(start).Round(time.Millisecond).String()
	res.Timings = o.timings.list()
	return res, nil
}

// restoreNew restores bundle m into a new project: writes its config,
// creates every container without starting it, then at once: starts the
// database and loads the dump into it; unpacks the files into the volumes
// of services that do not run yet (the vector store's data included) and
// puts Redis's dump where Redis reads it on its first start. Then it starts
// everything, health-gated, and checks that Redis loaded the dump (if it
// did not, the dump is restored into the running Redis as into the same
// deployment).
func (o *RestoreOptions) restoreNew(ctx context.Context, e engine.Engine, m *Manifest, res *RestoreResult, jd JournalData) error {
	if err := o.begin(jd); err != nil {
		return err
	}
	// A failure leaves the new project for the operator to remove (the
	// error says how); only a kill leaves the journal to settle.
	defer o.done()
	t0 := time.Now()
	if err := o.writeConfig(m); err != nil {
		return err
	}
	o.timings.since("write .env and project files", t0)
	o.step("config written")
	o.progress("creating the containers, networks and volumes of %s (nothing started yet)", o.Project)
	t0 = time.Now()
	if err := o.Create(ctx, m.Services); err != nil {
		return fmt.Errorf("creating the containers of %s: %w", o.Project, err)
	}
	o.timings.since("create the containers", t0)
	o.step("containers created")
	t0 = time.Now()
	placed, err := o.applyNew(ctx, e, m, res)
	if err != nil {
		return o.newFailed(err)
	}
	o.timings.since("parts (all at once)", t0)
	o.progress("starting every service")
	t0 = time.Now()
	if err := o.startAndTidy(ctx, m.Services); err != nil {
		return fmt.Errorf("the data is restored, but starting %s failed: %w; see difyctl ps and logs", o.Project, err)
	}
	o.timings.since("start every service (health-gated)", t0)
	if placed != nil {
		t0 = time.Now()
		r, err := o.checkRedisLoaded(ctx, e, m, *placed)
		if err != nil {
			return o.newFailed(err)
		}
		res.Restored = append(res.Restored, r)
		o.timings.since("check redis", t0)
	}
	res.Services = m.Services
	o.step("started")
	return nil
}

// newFailed is the error of a restore into a new project that failed after
// it created the project: what to remove before running it again.
func (o *RestoreOptions) newFailed(err error) error {
	return fmt.Errorf("restoring into the new project %s failed: %w; its files are in %s: remove the project (difyctl down -v) and the directory, then run the restore again", o.Project, err, o.ProjectDir)
}

// loadedThrough are the services a part is loaded through (the database,
// pgvector): the services a restore into a new project starts first.
func loadedThrough(m *Manifest) []string {
	var svcs []string
	for _, p := range m.Parts {
		if (p.Kind == KindDatabase || p.Kind == KindVector) && !slices.Contains(svcs, p.Service) {
			svcs = append(svcs, p.Service)
		}
	}
	return svcs
}

// applyNew is apply into a new project whose containers are created and
// not started: the database parts once their services run, beside the
// files and Redis's dump written into the volumes before their services
// first start. placed is the Redis part when its dump was placed so (nil:
// it was restored into the running Redis).
func (o *RestoreOptions) applyNew(ctx context.Context, e engine.Engine, m *Manifest, res *RestoreResult) (placed *Part, err error) {
	through := loadedThrough(m)
	files := m.filesParts()
	rdb, ok := m.Part("redis")
	var dump *target
	if ok {
		if dump = o.redisDumpTarget(ctx, e, *rdb); dump != nil {
			placed = rdb
		}
	}
	var jobs []restoreJob
	if len(through) > 0 {
		jobs = append(jobs, restoreJob{"database", func() ([]Restored, error) {
			o.progress("starting %s", strings.Join(through, ", "))
			t0 := time.Now()
			if err := o.Up(ctx, through); err != nil {
				return nil, fmt.Errorf("starting %s: %w", strings.Join(through, ", "), err)
			}
			o.timings.since("start "+strings.Join(through, ", ")+" (health-gated)", t0)
			return o.runJobs(o.dbJobs(ctx, e, o.Bundle, m))
		}})
	}
	if len(files) > 0 || placed != nil {
		jobs = append(jobs, restoreJob{"files", func() ([]Restored, error) { return o.restoreFiles(ctx, e, o.Bundle, m, files, dump) }})
	}
	if ok && placed == nil {
		// Restored into the running Redis: started by itself, as it would
		// be for the same deployment.
		jobs = append(jobs, restoreJob{"redis", func() ([]Restored, error) {
			if err := o.Up(ctx, []string{ServiceRedis}); err != nil {
				return nil, fmt.Errorf("part redis: starting redis: %w", err)
			}
			return o.redisJob(ctx, e, o.Bundle, m, *rdb)()
		}})
	}
	out, err := o.runJobs(jobs)
	if err != nil {
		return nil, err
	}
	res.Restored = append(res.Restored, out...)
	return placed, nil
}

// redisDataDir is where Redis's image keeps its dump (the official image's
// working directory, Redis's default dir) under its default name.
const redisDataDir, redisDumpName = "/data", "dump.rdb"

// redisDumpTarget is where the Redis part p goes as the dump Redis loads
// on its first start (the data directory it mounts at redisDataDir), when
// the new project's Redis container was created and never started and its
// command sets neither dir, dbfilename nor the AOF; nil otherwise.
func (o *RestoreOptions) redisDumpTarget(ctx context.Context, e engine.Engine, p Part) *target {
	c, err := findService(ctx, e, o.Project, ServiceRedis, false)
	if err != nil || c.State != string(container.StateCreated) {
		return nil
	}
	ins, err := e.ContainerInspect(ctx, c.ID, client.ContainerInspectOptions{})
	if err != nil || ins.Container.Config == nil {
		return nil
	}
	t := &target{part: p, mount: "/restore/redis"}
	if t.bind, t.vol = containerMount(ins.Container.Mounts, redisDataDir); t.bind == "" && t.vol == "" {
		return nil
	}
	cmd := strings.Join(append(slices.Clone(ins.Container.Config.Entrypoint), ins.Container.Config.Cmd...), " ")
	for _, setting := range []string{"dir", "dbfilename", "appendonly", "appendfilename", "appenddirname"} {
		if strings.Contains(cmd, "--"+setting) {
			return nil
		}
	}
	return t
}

// checkRedisLoaded checks that the started Redis read the dump put in its
// data directory (it reads dir/dbfilename with AOF off) and counts its
// keys; a Redis that reads its data elsewhere gets the part restored into
// it as into the same deployment.
func (o *RestoreOptions) checkRedisLoaded(ctx context.Context, e engine.Engine, m *Manifest, p Part) (Restored, error) {
	r, err := backup.FindRedis(ctx, e, o.Project, ServiceRedis, o.RedisPassword)
	if err != nil {
		return Restored{}, fmt.Errorf("part redis: %w", err)
	}
	_, dir, file, err := r.DumpLocation(ctx)
	if err != nil {
		return Restored{}, fmt.Errorf("part redis: %w", err)
	}
	aof, err := r.Config(ctx, "appendonly")
	if err != nil {
		return Restored{}, fmt.Errorf("part redis: %w", err)
	}
	if dir != redisDataDir || file != redisDumpName || aof != "no" {
		o.progress("redis: it reads %s/%s (appendonly %s), not the dump put in %s; restoring the part into the running Redis", dir, file, aof, redisDataDir)
		counts, into, err := o.restoreRedis(ctx, e, o.Bundle, m, p)
		if err != nil {
			return Restored{}, err
		}
		return Restored{Part: p.Name, Into: into, Counts: counts}, nil
	}
	keys, err := r.KeyCount(ctx)
	if err != nil {
		return Restored{}, fmt.Errorf("part redis: counting the keys Redis loaded: %w", err)
	}
	o.progress("redis: loaded the dump on its first start: %d keys", keys)
	return Restored{Part: p.Name, Into: "redis", Counts: map[string]int64{"keys": keys, "rdbKeys": p.Counts["keys"]}}, nil
}

// restoreSame restores bundle m over the deployment whose containers are
// cs: its .env and project files stay as they are. A safety bundle is
// taken first (unless NoSafety) and put back on any failure after the stop.
func (o *RestoreOptions) restoreSame(ctx context.Context, e engine.Engine, m *Manifest, cs []compose.ProjectContainer, res *RestoreResult, jd JournalData) error {
	o.warnSecretKey(m)
	running := runningServices(cs)
	jd.Running = running
	jd.Services = union(running, m.Services)
	// The journal comes first: the safety bundle pauses a vector store for
	// the copy of its files, and a kill then leaves it paused.
	if err := o.begin(jd); err != nil {
		return err
	}
	var safety *Result
	if !o.NoSafety {
		o.step(stepSafety)
		var err error
		t0 := time.Now()
		if safety, err = o.takeSafety(ctx, e); err != nil {
			o.done()
			return err
		}
		o.timings.since("safety bundle", t0)
		res.SafetyBundle, jd.SafetyBundle = safety.Path, safety.Path
		if o.journal != nil {
			// Without the safety bundle in the journal a kill past this
			// point could not be undone: no change before it is recorded.
			if err := o.journal.SetData(jd); err != nil {
				o.done()
				return fmt.Errorf("recording the safety bundle %s in the journal failed, nothing changed: %w", safety.Path, err)
			}
		}
		o.step(stepSafetyTaken)
	}
	o.step(stepStopping)
	t0 := time.Now()
	if _, err := o.stopApp(ctx, e, m); err != nil {
		return o.rollback(ctx, e, safety, running, fmt.Errorf("stopping the application services: %w", err))
	}
	o.timings.since("stop the application services", t0)
	o.step(stepStopped)
	t0 = time.Now()
	if err := o.apply(ctx, e, o.Bundle, m, res); err != nil {
		return o.rollback(ctx, e, safety, running, err)
	}
	o.timings.since("parts (all at once)", t0)
	services := union(running, m.Services)
	o.progress("starting %s", strings.Join(services, ", "))
	t0 = time.Now()
	if err := o.startAndTidy(ctx, services); err != nil {
		return o.rollback(ctx, e, safety, running, fmt.Errorf("starting the restored deployment: %w", err))
	}
	o.timings.since("start what ran (health-gated)", t0)
	o.step("started")
	if o.journal != nil {
		if err := o.journal.Commit(); err == nil {
			if err := o.journal.Done(); err != nil {
				o.progress("warning: removing the journal: %v", err)
			}
		}
	}
	res.Services = services
	return nil
}

// tidyList holds what a restore clears away once the data is in place,
// while the services start: the old database renamed aside (its DROP
// waits for a checkpoint that writes the whole loaded database out, 10-25
// s for a large one, which the start does not need to wait for).
type tidyList struct {
	mu  sync.Mutex
	fns []func(ctx context.Context)
}

func (t *tidyList) add(fn func(ctx context.Context)) {
	if t == nil {
		fn(context.Background())
		return
	}
	t.mu.Lock()
	t.fns = append(t.fns, fn)
	t.mu.Unlock()
}

// startAndTidy starts services (o.Up) and runs the tidy list beside it;
// it returns once both ended, with Up's error.
func (o *RestoreOptions) startAndTidy(ctx context.Context, services []string) error {
	var wg sync.WaitGroup
	if o.tidy != nil {
		o.tidy.mu.Lock()
		fns := o.tidy.fns
		o.tidy.fns = nil
		o.tidy.mu.Unlock()
		for _, fn := range fns {
			wg.Go(func() { fn(ctx) })
		}
	}
	err := o.Up(ctx, services)
	wg.Wait()
	return err
}

// runningServices lists the services with a running (not one-off)
// container in cs, each once, in cs's order.
func runningServices(cs []compose.ProjectContainer) []string {
	var running []string
	seen := map[string]bool{}
	for _, c := range cs {
		if c.State == string(container.StateRunning) && !seen[c.Service] && !c.Oneoff {
			running = append(running, c.Service)
			seen[c.Service] = true
		}
	}
	return running
}

// takeSafety takes the pre-restore safety bundle of the current deployment.
func (o *RestoreOptions) takeSafety(ctx context.Context, e engine.Engine) (*Result, error) {
	o.progress("taking a safety bundle of the current deployment first")
	safety, err := Take(ctx, e, Options{Project: o.Project, ProjectDir: o.ProjectDir, Dir: o.BackupDir, RedisPassword: o.RedisPassword,
		Reason: "pre-restore safety bundle", SafetyCopyOf: filepath.Base(o.Bundle), Version: o.Version, Now: o.Now, Progress: o.Progress})
	if err != nil {
		return nil, fmt.Errorf("the safety bundle failed, nothing changed: %w", err)
	}
	return safety, nil
}

// defaults fills Up and Model from Load.
func (o *RestoreOptions) defaults(e engine.Engine) {
	if o.Up == nil {
		o.Up = func(ctx context.Context, services []string) error {
			return UpWith(ctx, e, o.Load, services, o.WaitTimeout)
		}
	}
	if o.Create == nil {
		o.Create = func(ctx context.Context, services []string) error {
			return upWith(ctx, e, o.Load, services, o.WaitTimeout, true)
		}
	}
	if o.Model == nil {
		o.Model = func(ctx context.Context) (*types.Project, error) { return compose.Load(ctx, o.Load) }
	}
}

// UpWith converges and starts services of the project lo loads, gated on
// health, as up does; the support files the templates mount are written
// where missing first.
func UpWith(ctx context.Context, e engine.Engine, lo compose.LoadOptions, services []string, wait time.Duration) error {
	return upWith(ctx, e, lo, services, wait, false)
}

// upWith is UpWith; noStart only creates (compose.UpOptions.NoStart).
func upWith(ctx context.Context, e engine.Engine, lo compose.LoadOptions, services []string, wait time.Duration, noStart bool) error {
	if len(lo.Files) == 0 {
		if _, err := templates.WriteSupportFiles(lo.ProjectDir); err != nil {
			return err
		}
	}
	p, err := compose.Load(ctx, lo)
	if err != nil {
		return err
	}
	if wait <= 0 {
		wait = 10 * time.Minute
	}
	wctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	lookup := cmdutil.LookupIn(lo.Environ) // the factory's environment, as the load's
	getenv := func(k string) string { v, _ := lookup(k); return v }
	_, err = compose.Up(wctx, e, compose.UpOptions{Project: p, ConfigFiles: compose.ConfigFileNames(lo), Services: services,
		WaitTimeout: wait, Recreate: compose.RecreateDiverged, Version: "", Release: compose.DeployedRelease(lo), RegistryAuth: engine.RegistryAuth(getenv),
		NoStart: noStart})
	return err
}

// Rollback puts the safety bundle back into the same deployment and starts
// the services that ran; the journal's settler calls it after a kill.
func Rollback(ctx context.Context, e engine.Engine, o RestoreOptions, safetyBundle string, running []string) error {
	safety := &Result{Path: safetyBundle}
	if m, err := ReadManifest(safetyBundle); err == nil {
		safety.Manifest = *m
	} else {
		return fmt.Errorf("reading the safety bundle %s: %w", safetyBundle, err)
	}
	return o.rollback(ctx, e, safety, running, nil)
}

// rollback restores the safety bundle after a failure past the stop.
func (o *RestoreOptions) rollback(ctx context.Context, e engine.Engine, safety *Result, running []string, cause error) error {
	if safety == nil {
		return fmt.Errorf("restore failed: %w (no safety bundle was taken)", cause)
	}
	if cause != nil {
		o.progress("restore failed (%v); putting the safety bundle %s back", cause, safety.Path)
	}
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Minute)
	defer cancel()
	m, err := ReadManifest(safety.Path)
	if err == nil {
		var ignored RestoreResult
		if _, err = o.stopApp(rctx, e, m); err == nil {
			// The safety bundle is never encrypted: no identity needed.
			ro := *o
			ro.Identities = nil
			err = ro.apply(rctx, e, safety.Path, m, &ignored)
		}
	}
	if err == nil {
		err = o.Up(rctx, running)
	}
	o.step("rolled back")
	if err == nil && o.journal != nil {
		o.journal.Done()
	}
	if err != nil && cause == nil { // settling a killed restore
		return fmt.Errorf("putting the safety bundle back failed: %w; it is %s (difyctl restore all %s)", err, safety.Path, safety.Path)
	}
	if err != nil {
		return fmt.Errorf("restore failed: %v; putting the safety bundle back ALSO failed: %w; it is %s (difyctl restore all %s)", cause, err, safety.Path, safety.Path)
	}
	if cause == nil {
		return nil
	}
	return fmt.Errorf("restore failed and was rolled back (the deployment runs its previous data again; safety bundle %s): %w", safety.Path, cause)
}

func union(a, b []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, s := range append(append([]string{}, a...), b...) {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	sort.Strings(out)
	return out
}

// stopApp stops the running application services: everything but the data
// services, and a vector store whose files the bundle replaces.
func (o *RestoreOptions) stopApp(ctx context.Context, e engine.Engine, m *Manifest) ([]string, error) {
	cs, err := compose.List(ctx, e, o.Project, false)
	if err != nil {
		return nil, err
	}
	fileSvc := map[string]bool{}
	for _, p := range m.Parts {
		if p.Kind == KindFiles {
			fileSvc[p.Service] = true
		}
	}
	var stop []compose.ProjectContainer
	var names []string
	for _, c := range cs {
		if c.State != string(container.StateRunning) {
			continue
		}
		if IsDataService(c.Service) && !(fileSvc[c.Service] && !pgServices[c.Service] && c.Service != ServiceRedis) {
			continue
		}
		stop = append(stop, c)
		names = append(names, c.Service)
	}
	if len(stop) == 0 {
		return nil, nil
	}
	o.progress("stopping %s (the data services keep running)", strings.Join(names, ", "))
	t := o.StopTimeout
	if t == 0 {
		t = 30 * time.Second
	}
	return names, compose.Stop(ctx, e, stop, &t, nil)
}

// apply puts every part of the bundle in dir back: the database and
// vector dumps, the files and Redis, each into its own container, all at
// once (they do not contend: the database's load runs inside its server,
// the files unpack through the engine into a helper, Redis is replaced in
// its own container). Each part's contents are verified as they stream in
// and put in place only once complete. apply waits for every part, also
// after one failed (none is left half-way for a rollback to meet), and
// returns every failure.
func (o *RestoreOptions) apply(ctx context.Context, e engine.Engine, dir string, m *Manifest, res *RestoreResult) error {
	jobs := o.dbJobs(ctx, e, dir, m)
	if files := m.filesParts(); len(files) > 0 {
		jobs = append(jobs, restoreJob{"files", func() ([]Restored, error) { return o.restoreFiles(ctx, e, dir, m, files, nil) }})
	}
	if p, ok := m.Part("redis"); ok {
		jobs = append(jobs, restoreJob{"redis", o.redisJob(ctx, e, dir, m, *p)})
	}
	out, err := o.runJobs(jobs)
	if err != nil {
		return err
	}
	res.Restored = append(res.Restored, out...)
	return nil
}

// restoreJob is one part (or group of parts) a restore puts back.
type restoreJob struct {
	name string
	run  func() ([]Restored, error)
}

// dbJobs restore the database and vector parts loaded through a server.
func (o *RestoreOptions) dbJobs(ctx context.Context, e engine.Engine, dir string, m *Manifest) []restoreJob {
	var jobs []restoreJob
	for _, p := range m.Parts {
		if p.Kind != KindDatabase && p.Kind != KindVector {
			continue
		}
		jobs = append(jobs, restoreJob{p.Name, func() ([]Restored, error) {
			counts, into, err := o.restoreDB(ctx, e, dir, m, p)
			if err != nil {
				return nil, err
			}
			o.step("restored " + p.Name)
			return []Restored{{Part: p.Name, Into: into, Counts: counts}}, nil
		}})
	}
	return jobs
}

// redisJob restores the Redis part into the running Redis.
func (o *RestoreOptions) redisJob(ctx context.Context, e engine.Engine, dir string, m *Manifest, p Part) func() ([]Restored, error) {
	return func() ([]Restored, error) {
		counts, into, err := o.restoreRedis(ctx, e, dir, m, p)
		if err != nil {
			return nil, err
		}
		o.step("restored redis")
		return []Restored{{Part: p.Name, Into: into, Counts: counts}}, nil
	}
}

// runJobs runs jobs at once, each timed, and returns what they restored,
// in their order, with every error.
func (o *RestoreOptions) runJobs(jobs []restoreJob) ([]Restored, error) {
	out := make([][]Restored, len(jobs))
	errs := make([]error, len(jobs))
	var wg sync.WaitGroup
	for i, j := range jobs {
		wg.Go(func() {
			t0 := time.Now()
			out[i], errs[i] = j.run()
			o.timings.since("restore "+j.name, t0)
		})
	}
	wg.Wait()
	var all []Restored
	for _, rs := range out {
		all = append(all, rs...)
	}
	return all, errors.Join(errs...)
}

// findService returns the project's container of svc (any state).
func findService(ctx context.Context, e engine.Engine, project, svc string, running bool) (compose.ProjectContainer, error) {
	cs, err := compose.List(ctx, e, project, !running)
	if err != nil {
		return compose.ProjectContainer{}, err
	}
	for _, c := range cs {
		if c.Service == svc && !c.Oneoff {
			return c, nil
		}
	}
	state := ""
	if running {
		state = "running "
	}
	return compose.ProjectContainer{}, fmt.Errorf("project %s has no %scontainer of service %s", project, state, svc)
}

func quoteIdent(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }

func quoteMy(s string) string { return "`" + strings.ReplaceAll(s, "`", "``") + "`" }

// restoreDB loads a dump into the service's server. PostgreSQL: into a new
// database <db>_difyctl_restore, which replaces <db> (renamed aside, then
// dropped) only once pg_restore finished without an error. MySQL: the
// database is dropped and created again, then the dump loaded with mysql.
func (o *RestoreOptions) restoreDB(ctx context.Context, e engine.Engine, dir string, m *Manifest, p Part) (map[string]int64, string, error) {
	svc := p.Service
	c, err := findService(ctx, e, o.Project, svc, true)
	if err != nil {
		return nil, "", fmt.Errorf("part %s: %w", p.Name, err)
	}
	ins, err := e.ContainerInspect(ctx, c.ID, client.ContainerInspectOptions{})
	if err != nil {
		return nil, "", err
	}
	env := envMap(ins.Container.Config)
	if m.DBType == "mysql" && p.Kind == KindDatabase {
		return o.restoreMySQL(ctx, e, dir, m, p, c, env)
	}
	pg := pgConn{e: e, id: c.ID, name: c.Name, user: first(env["POSTGRES_USER"], env["PGUSER"], "postgres")}
	db := first(env["POSTGRES_DB"], env["PGDATABASE"], pg.user)
	if pw := env["POSTGRES_PASSWORD"]; pw != "" {
		pg.env = []string{"PGPASSWORD=" + pw}
	}
	tmp, old := db+"_difyctl_restore", db+"_difyctl_old"
	o.progress("%s: loading into a fresh database %s in %s", p.Name, tmp, c.Name)
	// A pg_restore of a killed restore may still be connected to tmp.
	terminate := "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = " + quoteLit(tmp) + " AND pid <> pg_backend_pid()"
	t0 := time.Now()
	if err := pg.psql(ctx, terminate, "DROP DATABASE IF EXISTS "+quoteIdent(tmp), "CREATE DATABASE "+quoteIdent(tmp)+" OWNER "+quoteIdent(pg.user)); err != nil {
		return nil, "", fmt.Errorf("part %s: creating the database %s in %s: %w", p.Name, tmp, c.Name, err)
	}
	o.timings.since(p.Name+": create the fresh database", t0)
	t0 = time.Now()
	err = o.loadDump(ctx, pg, dir, m, p, tmp)
	o.timings.since(p.Name+": pg_restore", t0)
	if err == nil {
		t0 = time.Now()
		err = o.swapDB(ctx, pg, p, db, tmp, old)
		o.timings.since(p.Name+": swap it in", t0)
	}
	if err != nil {
		_ = pg.psql(ctx, "DROP DATABASE IF EXISTS "+quoteIdent(tmp))
		return nil, "", err
	}
	t0 = time.Now()
	counts := restoredCounts(ctx, pg, p, db)
	o.timings.since(p.Name+": count tables and large objects", t0)
	o.progress("%s: restored into %s (%d tables, %d large objects)", p.Name, c.Name, counts["tablesRestored"], counts["largeObjectsRestored"])
	return counts, c.Name + " database " + db, nil
}

// pgConn runs PostgreSQL's clients in a database container.
type pgConn struct {
	e              engine.Engine
	id, name, user string
	env            []string // the password, for the exec's environment
}

// psql runs cmds in the postgres database, stopping at the first error.
func (pg pgConn) psql(ctx context.Context, cmds ...string) error {
	args := []string{"psql", "-v", "ON_ERROR_STOP=1", "-U", pg.user, "-d", "postgres", "-tA"}
	for _, c := range cmds {
		args = append(args, "-c", c)
	}
	_, err := execOutput(ctx, pg.e, pg.id, pg.env, args)
	return err
}

// restoreSettings are pg_restore's session settings: its index builds
// sort in memory up to 256 MB instead of the server's default 64 MB
// (spilling to disk), and its commits (one per object, each large object
// too) do not each wait for the WAL to reach the disk. A crash half-way
// loses nothing: the database being loaded is a fresh one that replaces
// the live one only once pg_restore ended without an error.
const restoreSettings = "-c maintenance_work_mem=256MB -c synchronous_commit=off"

// loadDump streams part p of the bundle in dir into pg_restore, loading
// the database tmp; any error of either side fails it.
func (o *RestoreOptions) loadDump(ctx context.Context, pg pgConn, dir string, m *Manifest, p Part, tmp string) error {
	pr, pw := io.Pipe()
	type verdict struct {
		counts map[string]int64
		err    error
	}
	done := make(chan verdict, 1)
	go func() {
		counts, err := copyPart(dir, p, m.DBType, o.Identities, pw)
		pw.CloseWithError(err)
		done <- verdict{counts, err}
	}()
	env := append(slices.Clip(pg.env), "PGOPTIONS="+restoreSettings)
	r, execErr := execStream(ctx, pg.e, pg.id, env, []string{"pg_restore", "-U", pg.user, "-d", tmp, "--exit-on-error"}, pr, nil)
	pr.CloseWithError(errors.New("pg_restore ended"))
	v := <-done
	switch {
	case execErr != nil:
		return fmt.Errorf("part %s: pg_restore in %s: %w", p.Name, pg.name, execErr)
	case r.Code != 0:
		return fmt.Errorf("part %s: the database refused the dump: pg_restore in %s exited %d: %s", p.Name, pg.name, r.Code, firstLines(r.Stderr, 5))
	case v.err != nil:
		return fmt.Errorf("part %s: %w", p.Name, v.err)
	}
	return nil
}

// swapDB gives the complete new database tmp the name db; the old one is
// renamed old, then dropped while the services start (a failed drop is
// only a warning; a restore killed before it leaves old, which the next
// swap drops first).
func (o *RestoreOptions) swapDB(ctx context.Context, pg pgConn, p Part, db, tmp, old string) error {
	terminate := "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname IN (" + quoteLit(db) + "," + quoteLit(tmp) + ") AND pid <> pg_backend_pid()"
	if err := pg.psql(ctx, "DROP DATABASE IF EXISTS "+quoteIdent(old), terminate, "ALTER DATABASE "+quoteIdent(db)+" RENAME TO "+quoteIdent(old)); err != nil {
		// A database that did not exist (a new project's is created by the
		// entrypoint, but may have been removed) is simply replaced.
		if !strings.Contains(err.Error(), "does not exist") {
			return fmt.Errorf("part %s: moving the old database aside in %s: %w", p.Name, pg.name, err)
		}
	}
	if err := pg.psql(ctx, "ALTER DATABASE "+quoteIdent(tmp)+" RENAME TO "+quoteIdent(db)); err != nil {
		_ = pg.psql(ctx, "ALTER DATABASE "+quoteIdent(old)+" RENAME TO "+quoteIdent(db))
		return fmt.Errorf("part %s: putting the restored database in place in %s: %w", p.Name, pg.name, err)
	}
	o.tidy.add(func(ctx context.Context) {
		t0 := time.Now()
		if err := pg.psql(ctx, terminate, "DROP DATABASE IF EXISTS "+quoteIdent(old)); err != nil {
			o.progress("warning: dropping the old database %s in %s: %v; drop it by hand", old, pg.name, err)
		}
		o.timings.since(p.Name+": drop the old database (beside the start)", t0)
	})
	return nil
}

// restoredCounts is the part's recorded counts beside the tables and large
// objects the restored database db now holds.
func restoredCounts(ctx context.Context, pg pgConn, p Part, db string) map[string]int64 {
	counts := map[string]int64{}
	for _, k := range []string{"tables", "largeObjects"} {
		if n, ok := p.Counts[k]; ok {
			counts[k] = n
		}
	}
	if out, err := execOutput(ctx, pg.e, pg.id, pg.env, []string{"psql", "-U", pg.user, "-d", db, "-tAc",
		"SELECT (SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind IN ('r','p') AND n.nspname NOT IN ('pg_catalog','information_schema')), (SELECT count(*) FROM pg_largeobject_metadata)"}); err == nil {
		var t, l int64
		if _, err := fmt.Sscanf(strings.ReplaceAll(out, "|", " "), "%d %d", &t, &l); err == nil {
			counts["tablesRestored"], counts["largeObjectsRestored"] = t, l
		}
	}
	return counts
}

func quoteLit(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

func (o *RestoreOptions) restoreMySQL(ctx context.Context, e engine.Engine, dir string, m *Manifest, p Part, c compose.ProjectContainer, env map[string]string) (map[string]int64, string, error) {
	db := first(env["MYSQL_DATABASE"], p.Database, "dify")
	menv := []string{"MYSQL_PWD=" + env["MYSQL_ROOT_PASSWORD"]}
	o.progress("%s: dropping and creating %s in %s, then loading the dump", p.Name, db, c.Name)
	if _, err := execOutput(ctx, e, c.ID, menv, []string{"mysql", "-uroot", "-e", "DROP DATABASE IF EXISTS " + quoteMy(db) + "; CREATE DATABASE " + quoteMy(db)}); err != nil {
		return nil, "", fmt.Errorf("part %s: recreating %s in %s: %w", p.Name, db, c.Name, err)
	}
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		_, err := copyPart(dir, p, m.DBType, o.Identities, pw)
		pw.CloseWithError(err)
		done <- err
	}()
	r, execErr := execStream(ctx, e, c.ID, menv, []string{"mysql", "-uroot", db}, pr, nil)
	pr.CloseWithError(errors.New("mysql ended"))
	cerr := <-done
	switch {
	case execErr != nil:
		return nil, "", fmt.Errorf("part %s: mysql in %s: %w", p.Name, c.Name, execErr)
	case r.Code != 0:
		return nil, "", fmt.Errorf("part %s: the database refused the dump: mysql in %s exited %d: %s", p.Name, c.Name, r.Code, firstLines(r.Stderr, 5))
	case cerr != nil:
		return nil, "", fmt.Errorf("part %s: %w", p.Name, cerr)
	}
	return map[string]int64{"bytes": p.RawSize}, c.Name + " database " + db, nil
}

// target is where one files part goes in the project.
type target struct {
	part  Part
	bind  string // bind source
	vol   string // named volume
	mount string // where the helper mounts it
}

// restoreFiles puts the files parts back through a helper container that
// mounts every target (bind mounts and named volumes alike; the engine may
// be remote). For each: the files are unpacked into a new directory beside
// them, complete, then the old entries are moved aside, the new moved in,
// and only then the old removed. dump, when not nil, is where Redis's dump
// goes in a new project (redisDumpTarget): the same helper writes it first.
func (o *RestoreOptions) restoreFiles(ctx context.Context, e engine.Engine, dir string, m *Manifest, parts []Part, dump *target) ([]Restored, error) {
	targets, err := o.fileTargets(ctx, e, parts)
	if err != nil {
		return nil, err
	}
	mounts := targets
	if dump != nil {
		mounts = append(slices.Clip(targets), *dump)
	}
	img, err := o.helperImage(ctx, e)
	if err != nil {
		return nil, err
	}
	id, remove, err := o.startHelper(ctx, e, img, mounts)
	if err != nil {
		return nil, err
	}
	defer remove()
	if dump != nil {
		if err := o.placeDump(ctx, e, id, dir, m, *dump); err != nil {
			return nil, err
		}
	}
	var out []Restored
	for _, t := range targets {
		counts, err := o.replaceTree(ctx, e, id, dir, m, t)
		if err != nil {
			return nil, err
		}
		into := t.part.Service + ":" + t.part.Path
		out = append(out, Restored{Part: t.part.Name, Into: into, Counts: counts})
		o.step("restored " + t.part.Name)
		o.progress("%s: %d files, %s into %s", t.part.Name, counts["files"], human(counts["bytes"]), into)
	}
	return out, nil
}

// fileTargets finds where each files part goes: what the service's
// container mounts at the part's path; for a service without a container
// yet (a new project), what its compose file says.
func (o *RestoreOptions) fileTargets(ctx context.Context, e engine.Engine, parts []Part) ([]target, error) {
	var targets []target
	var model *types.Project
	for i, p := range parts {
		t := target{part: p, mount: fmt.Sprintf("/restore/%d", i)}
		if c, err := findService(ctx, e, o.Project, p.Service, false); err == nil {
			ins, err := e.ContainerInspect(ctx, c.ID, client.ContainerInspectOptions{})
			if err != nil {
				return nil, err
			}
			t.bind, t.vol = containerMount(ins.Container.Mounts, p.Path)
		} else if o.Model != nil {
			if model == nil {
				if model, err = o.Model(ctx); err != nil {
					return nil, fmt.Errorf("part %s: loading the project's compose files: %w", p.Name, err)
				}
			}
			t.bind, t.vol = modelMount(model, p.Service, p.Path)
		}
		if t.bind == "" && t.vol == "" {
			return nil, fmt.Errorf("part %s: the service %s of project %s mounts nothing at %s; the bundle's files have nowhere to go (is the project's compose file the bundle's?)", p.Name, p.Service, o.Project, p.Path)
		}
		targets = append(targets, t)
	}
	return targets, nil
}

// containerMount is the bind source or named volume a container mounts at
// path ("", "" when none).
func containerMount(mounts []container.MountPoint, path string) (bind, vol string) {
	for _, mp := range mounts {
		if mp.Destination != path {
			continue
		}
		switch mp.Type {
		case mount.TypeBind:
			bind = mp.Source
		case mount.TypeVolume:
			vol = mp.Name
		}
	}
	return bind, vol
}

// modelMount is the bind source or named volume the compose model mounts
// in service at path ("", "" when none).
func modelMount(model *types.Project, service, path string) (bind, vol string) {
	svc, ok := model.Services[service]
	if !ok {
		return "", ""
	}
	for _, v := range svc.Volumes {
		if v.Target != path {
			continue
		}
		switch v.Type {
		case types.VolumeTypeBind:
			bind = v.Source
		case types.VolumeTypeVolume:
			vol = compose.VolumeName(model, v.Source)
		}
	}
	return bind, vol
}

// helperImage is the image of a data service's container (running, or
// created and not started yet): it has a shell, mv and rm, and is present
// on this engine.
func (o *RestoreOptions) helperImage(ctx context.Context, e engine.Engine) (string, error) {
	img := ""
	for _, svc := range []string{ServicePostgres, ServiceMySQL, ServiceRedis} {
		if c, err := findService(ctx, e, o.Project, svc, false); err == nil {
			img = c.Image
			break
		}
	}
	if img != "" {
		return img, nil
	}
	return "", fmt.Errorf("restoring files needs a data service's container in %s (its image runs the copy)", o.Project)
}

// startHelper creates and starts the helper container of image img that
// mounts every target, and returns its ID and the function that removes it.
func (o *RestoreOptions) startHelper(ctx context.Context, e engine.Engine, img string, targets []target) (string, func(), error) {
	var binds []string
	var mounts []mount.Mount
	for _, t := range targets {
		if t.bind != "" {
			binds = append(binds, t.bind+":"+t.mount) // created when missing
		} else {
			mounts = append(mounts, mount.Mount{Type: mount.TypeVolume, Source: t.vol, Target: t.mount})
		}
	}
	suffix := make([]byte, 4)
	rand.Read(suffix)
	name := o.Project + "-difyctl-restore-" + hex.EncodeToString(suffix)
	cr, err := e.ContainerCreate(ctx, client.ContainerCreateOptions{Name: name,
		Config: &container.Config{Image: img, Entrypoint: []string{"sleep"}, Cmd: []string{"86400"}, User: "0:0",
			Labels: map[string]string{labelHelper: o.Project}},
		HostConfig: &container.HostConfig{Binds: binds, Mounts: mounts, NetworkMode: "none"}})
	if err != nil {
		return "", nil, fmt.Errorf("creating the helper container that restores the files: %w", err)
	}
	remove := func() {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		e.ContainerRemove(rctx, cr.ID, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true})
	}
	if _, err := e.ContainerStart(ctx, cr.ID, client.ContainerStartOptions{}); err != nil {
		remove()
		return "", nil, fmt.Errorf("starting the helper container that restores the files: %w", err)
	}
	return cr.ID, remove, nil
}

const newDir, oldDir = ".difyctl-restore-new", ".difyctl-restore-old"

// swapScript moves the old entries of $1 aside, the new in, then removes
// the old; $2 $3 $4 are the top directory's owner, group and mode.
const swapScript = `set -e
cd "$1"
rm -rf ` + oldDir + `
mkdir ` + oldDir + `
for f in * .[!.]* ..?*; do
  case "$f" in ` + newDir + `|` + oldDir + `) continue;; esac
  if [ -e "$f" ] || [ -L "$f" ]; then mv "$f" ` + oldDir + `/; fi
done
for f in ` + newDir + `/* ` + newDir + `/.[!.]* ` + newDir + `/..?*; do
  if [ -e "$f" ] || [ -L "$f" ]; then mv "$f" ./; fi
done
rmdir ` + newDir + `
rm -rf ` + oldDir + `
chown "$2:$3" . && chmod "$4" .
`

// replaceTree streams the part, with its top directory stripped, into
// the new directory through the archive API, then swaps.
func (o *RestoreOptions) replaceTree(ctx context.Context, e engine.Engine, helper, dir string, m *Manifest, t target) (map[string]int64, error) {
	p := t.part
	if _, err := execOutput(ctx, e, helper, nil, []string{"sh", "-c", `rm -rf "$1/` + newDir + `" && mkdir "$1/` + newDir + `"`, "sh", t.mount}); err != nil {
		return nil, fmt.Errorf("part %s: preparing %s: %w", p.Name, p.Path, err)
	}
	raw, rawW := io.Pipe()      // the part's raw tar stream
	stripped, outW := io.Pipe() // the same entries without the top directory
	var top *tar.Header
	stripDone := make(chan error, 1)
	go func() {
		err := stripTop(outW, raw, &top)
		outW.CloseWithError(err)
		raw.CloseWithError(err)
		stripDone <- err
	}()
	copyDone := make(chan error, 1)
	var counts map[string]int64
	go func() {
		c, err := copyPart(dir, p, m.DBType, o.Identities, rawW)
		counts = c
		rawW.CloseWithError(err)
		copyDone <- err
	}()
	_, upErr := e.CopyToContainer(ctx, helper, client.CopyToContainerOptions{DestinationPath: path.Join(t.mount, newDir), Content: stripped})
	stripped.CloseWithError(errors.New("upload ended"))
	serr := <-stripDone
	cerr := <-copyDone
	switch {
	case cerr != nil:
		return nil, fmt.Errorf("part %s: %w", p.Name, cerr)
	case serr != nil:
		return nil, fmt.Errorf("part %s: %w", p.Name, serr)
	case upErr != nil:
		return nil, fmt.Errorf("part %s: unpacking into %s: %w", p.Name, p.Path, upErr)
	}
	uid, gid, mode := 0, 0, int64(0o755)
	if top != nil {
		uid, gid, mode = top.Uid, top.Gid, top.Mode&0o7777
	}
	if _, err := execOutput(ctx, e, helper, nil, []string{"sh", "-c", swapScript, "sh", t.mount, fmt.Sprint(uid), fmt.Sprint(gid), fmt.Sprintf("%o", mode)}); err != nil {
		return nil, fmt.Errorf("part %s: swapping the restored files into %s: %w", p.Name, p.Path, err)
	}
	return counts, nil
}

// placeDump writes the Redis part's dump into the data directory of a
// Redis that has not started yet (t: its mount in the helper), 0600,
// through the archive API under a temporary name, renamed redisDumpName
// once its hash checked out (copyPart, as it streams): a dump that failed
// is never where Redis reads one.
func (o *RestoreOptions) placeDump(ctx context.Context, e engine.Engine, helper, dir string, m *Manifest, t target) error {
	p := t.part
	const partial = redisDumpName + ".difyctl-new"
	pr, pw := io.Pipe()
	copyDone := make(chan error, 1)
	go func() {
		tw := tar.NewWriter(pw)
		err := tw.WriteHeader(&tar.Header{Name: partial, Mode: 0o600, Size: p.RawSize, ModTime: time.Now(), Typeflag: tar.TypeReg})
		if err == nil {
			_, err = copyPart(dir, p, m.DBType, o.Identities, tw)
		}
		if err == nil {
			err = tw.Close()
		}
		pw.CloseWithError(err)
		copyDone <- err
	}()
	_, upErr := e.CopyToContainer(ctx, helper, client.CopyToContainerOptions{DestinationPath: t.mount, Content: pr})
	pr.CloseWithError(errors.New("upload ended"))
	if err := <-copyDone; err != nil {
		return fmt.Errorf("part %s: %w", p.Name, err)
	}
	if upErr != nil {
		return fmt.Errorf("part %s: writing %s into Redis's data directory: %w", p.Name, redisDumpName, upErr)
	}
	if _, err := execOutput(ctx, e, helper, nil, []string{"sh", "-c", `cd "$1" && { sync "$2" 2>/dev/null || sync; } && mv "$2" "$3"`, "sh", t.mount, partial, redisDumpName}); err != nil {
		return fmt.Errorf("part %s: renaming %s to %s in Redis's data directory: %w", p.Name, partial, redisDumpName, err)
	}
	o.step("placed redis")
	o.progress("redis: %s (%s) put in its data directory, loaded when it first starts", redisDumpName, human(p.RawSize))
	return nil
}

// stripTop copies a tar stream from r to w without its first path
// component (the engine's archive of /a/b names entries b/...); the top
// directory's own header is kept in *top.
func stripTop(w io.Writer, r io.Reader, top **tar.Header) error {
	tr := tar.NewReader(r)
	tw := tar.NewWriter(w)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		name := strings.TrimPrefix(h.Name, "./")
		_, rest, _ := strings.Cut(name, "/")
		if rest == "" {
			if h.Typeflag == tar.TypeDir && *top == nil {
				hc := *h
				*top = &hc
			}
			continue
		}
		h.Name = rest
		if h.Typeflag == tar.TypeLink {
			_, h.Linkname, _ = strings.Cut(strings.TrimPrefix(h.Linkname, "./"), "/")
		}
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if _, err := io.Copy(tw, tr); err != nil {
			return err
		}
	}
	if _, err := io.Copy(io.Discard, r); err != nil {
		return err
	}
	return tw.Close()
}

// restoreRedis decompresses the RDB to a temporary file (0600) and restores
// it through package backup (stop, replace, start, key count checked).
func (o *RestoreOptions) restoreRedis(ctx context.Context, e engine.Engine, dir string, m *Manifest, p Part) (map[string]int64, string, error) {
	work, err := os.MkdirTemp(o.BackupDir, ".restore-redis-"+o.Project+"-")
	if err != nil {
		return nil, "", fmt.Errorf("part redis: %w", diskErr(err))
	}
	defer os.RemoveAll(work)
	rdbPath := filepath.Join(work, "redis_"+time.Now().UTC().Format(stampLayout)+".rdb")
	f, err := os.OpenFile(rdbPath, os.O_CREATE|os.O_EXCL|os.O_WRONLY, backup.FileMode)
	if err != nil {
		return nil, "", err
	}
	counts, err := copyPart(dir, p, m.DBType, o.Identities, f)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, "", fmt.Errorf("part redis: %w", diskErr(err))
	}
	now := o.Now
	if now == nil {
		now = time.Now
	}
	wt := o.WaitTimeout
	if wt == 0 {
		wt = 5 * time.Minute
	}
	st := o.StopTimeout
	if st == 0 {
		st = 30 * time.Second
	}
	rr, err := backup.Restore(ctx, e, backup.RestoreOptions{
		Options: backup.Options{Project: o.Project, Service: ServiceRedis, Password: o.RedisPassword, Dir: work, Mode: "bgsave",
			Now: now, Reason: backup.SafetyReason, Progress: o.Progress},
		ProjectDir: work, // its own journal, beside the file: this restore's journal covers it
		File:       rdbPath, StopTimeout: st, WaitTimeout: wt})
	if err != nil {
		return nil, "", fmt.Errorf("part redis: %w", err)
	}
	return map[string]int64{"keys": rr.Keys, "rdbKeys": counts["keys"]}, "redis", nil
}

// writeConfig writes the bundle's project files into a new project
// directory: every file through a temporary file and a rename, .env with
// COMPOSE_PROJECT_NAME set to the new project's name.
func (o *RestoreOptions) writeConfig(m *Manifest) error {
	p, ok := m.Part("config")
	if !ok {
		return fmt.Errorf("the bundle has no config part (.env and support files); it cannot make a new deployment")
	}
	if err := os.MkdirAll(o.ProjectDir, 0o755); err != nil {
		return err
	}
	pr, pw := io.Pipe()
	go func() {
		_, err := copyPart(o.Bundle, *p, m.DBType, o.Identities, pw)
		pw.CloseWithError(err)
	}()
	tr := tar.NewReader(pr)
	n := 0
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			pr.CloseWithError(err)
			return fmt.Errorf("part config: %w", err)
		}
		rel := path.Clean(h.Name)
		if rel == "." || strings.HasPrefix(rel, "../") || path.IsAbs(rel) || rel == ".." {
			return fmt.Errorf("part config: entry %q leaves the project directory; refusing it", h.Name)
		}
		dst := filepath.Join(o.ProjectDir, filepath.FromSlash(rel))
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(dst, os.FileMode(h.Mode)&0o777|0o700); err != nil {
				return err
			}
		case tar.TypeSymlink:
			os.Remove(dst)
			if err := os.Symlink(h.Linkname, dst); err != nil {
				return err
			}
		case tar.TypeReg:
			if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
				return err
			}
			mode := os.FileMode(h.Mode) & 0o777
			if rel == ".env" {
				b, err := io.ReadAll(io.LimitReader(tr, 16<<20))
				if err != nil {
					return err
				}
				if b, err = renameProject(b, o.Project); err != nil {
					return err
				}
				if err := atomicfile.WriteFile(dst, b, 0o600); err != nil {
					return err
				}
			} else if err := atomicfile.Write(dst, mode, func(w io.Writer) error { _, err := io.Copy(w, tr); return err }); err != nil {
				return err
			}
			n++
		}
	}
	o.progress("wrote .env and %d project file(s) into %s", n, o.ProjectDir)
	o.Load.DotEnv = nil // the .env just written replaces any read before: the loader reads it
	return nil
}

// renameProject sets COMPOSE_PROJECT_NAME in a .env to project when the
// file names one (difyctl init records it).
func renameProject(b []byte, project string) ([]byte, error) {
	d, err := envgen.Parse(b)
	if err != nil {
		return nil, fmt.Errorf("the bundle's .env: %w", err)
	}
	if v, ok := d.Get("COMPOSE_PROJECT_NAME"); ok && v != project {
		d.Set("COMPOSE_PROJECT_NAME", project)
	}
	return d.Bytes(), nil
}

// warnSecretKey warns when the bundle's .env holds another SECRET_KEY than
// the project's: Dify encrypts provider credentials in the database with
// it, so the restored database needs the bundle's key.
func (o *RestoreOptions) warnSecretKey(m *Manifest) {
	p, ok := m.Part("config")
	if !ok {
		return
	}
	cur, err := compose.Environment(o.ProjectDir, nil)
	if err != nil {
		return
	}
	pr, pw := io.Pipe()
	go func() {
		_, err := copyPart(o.Bundle, *p, m.DBType, o.Identities, pw)
		pw.CloseWithError(err)
	}()
	defer pr.Close()
	tr := tar.NewReader(pr)
	for {
		h, err := tr.Next()
		if err != nil {
			return
		}
		if path.Clean(h.Name) != ".env" {
			continue
		}
		b, err := io.ReadAll(io.LimitReader(tr, 16<<20))
		if err != nil {
			return
		}
		d, err := envgen.Parse(b)
		if err != nil {
			return
		}
		if v, ok := d.Get("SECRET_KEY"); ok && v != cur["SECRET_KEY"] {
			o.progress("WARNING: the bundle's .env has another SECRET_KEY than %s/.env; the restored database's provider credentials were encrypted with the bundle's: set SECRET_KEY to the bundle's (difyctl env set) or re-enter the credentials", o.ProjectDir)
		}
		return
	}
}

// begin writes the restore's journal before its first change (none with
// NoJournal).
func (o *RestoreOptions) begin(jd JournalData) error {
	if o.NoJournal {
		return nil
	}
	var err error
	if o.journal, err = journal.Begin(o.ProjectDir, o.Project, OpRestoreAll, jd); err != nil {
		return fmt.Errorf("restore not started, nothing changed: %w", err)
	}
	return nil
}

// done removes the journal, if one was written.
func (o *RestoreOptions) done() {
	if o.journal != nil {
		o.journal.Done()
	}
}

// DefaultDir is where a project's bundles are kept unless --backup-dir says
// otherwise.
func DefaultDir(projectDir string) string { return filepath.Join(projectDir, "backups", "all") }
