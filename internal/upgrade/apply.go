package upgrade

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/difyctl/difyctl/compose"
	"github.com/difyctl/difyctl/envgen"
	"github.com/difyctl/difyctl/internal/atomicfile"
	"github.com/difyctl/difyctl/internal/engine"
	"github.com/difyctl/difyctl/internal/journal"
	"github.com/difyctl/difyctl/internal/release"
	"github.com/difyctl/difyctl/templates"
)

// Op is the journal operation of an upgrade (and of a rollback, which
// records the same data with Rollback set).
const Op = "upgrade"

// Journal steps, in order.
const (
	StepSaved      = "saved"      // .env and the files to change copied under SaveDir
	StepBundle     = "bundle"     // the safety bundle taken and verified
	StepConfig     = "config"     // the target's .env, support files and release record written
	StepContainers = "containers" // recreation started: the api may be migrating the database
)

// Safety is the safety net: a verified full bundle of the deployment
// (`backup all`, package backup/bundle) taken before anything changes, and
// put back when the upgrade must be undone after migrations may have run.
type Safety interface {
	// Take writes and verifies a bundle of the running deployment and
	// returns its path.
	Take(ctx context.Context, dir, project, release string) (string, error)
	// Restore puts the deployment's data (the database first) back from a
	// bundle Take wrote.
	Restore(ctx context.Context, dir, project, bundle string) error
	// Release is the Dify release a bundle was taken on.
	Release(bundle string) (string, error)
}

// SaveDirName holds, per upgrade, the copies of what it changed.
const SaveDirName = ".difyctl-upgrade"

// LastFile records the last completed upgrade (its Data): what rollback
// undoes.
const LastFile = "last.json"

// Data is what the journal (and LastFile) records.
type Data struct {
	From       string          `json:"from"`
	To         string          `json:"to"`
	PrevRecord *release.Record `json:"prevRecord,omitempty"` // nil: the directory recorded none
	SaveDir    string          `json:"saveDir"`
	Files      []SavedFile     `json:"files"`
	Bundle     string          `json:"bundle,omitempty"` // "" : taken without one (--no-bundle)
	Running    []string        `json:"running"`
	Recreate   []string        `json:"recreate"`
	Rollback   bool            `json:"rollback,omitempty"` // this journal is a rollback's
}

// SavedFile is a file the upgrade writes: its copy, or none when it created it.
type SavedFile struct {
	Path  string `json:"path"`            // relative to the project directory
	Saved string `json:"saved,omitempty"` // the copy under SaveDir; "" : created by the upgrade
}

// Options for Run.
type Options struct {
	Target
	Engine         engine.Engine
	Safety         Safety // nil with NoBundle
	NoBundle       bool   // no safety bundle: a failure after migrations started cannot restore the database
	AllowDowngrade bool
	DowngradeFrom  string // with AllowDowngrade: a bundle taken on the target release
	WaitTimeout    time.Duration
	Version        string // difyctl's, for labels
	Progress       io.Writer
	Now            func() time.Time
	// Free reports free bytes under dir (nil: statfs).
	Free func(dir string) (uint64, error)
	// FailAfter, for tests, makes Run fail right after that step.
	FailAfter string
}

func (o *Options) printf(format string, a ...any) {
	if o.Progress != nil {
		fmt.Fprintf(o.Progress, format+"\n", a...)
	}
}

func (o *Options) now() time.Time {
	if o.Now == nil {
		return time.Now()
	}
	return o.Now()
}

// Timings split an upgrade's wall time.
type Timings struct {
	Plan     time.Duration `json:"plan"`
	Pull     time.Duration `json:"pull"`
	Bundle   time.Duration `json:"bundle"`
	Apply    time.Duration `json:"apply"`  // config written, containers recreated
	Health   time.Duration `json:"health"` // of Apply: from the first container replaced to all healthy
	Downtime time.Duration `json:"downtime"`
}

// Result is what Run did.
type Result struct {
	Plan    *Plan    `json:"plan"`
	Bundle  string   `json:"bundle,omitempty"`
	Timings Timings  `json:"timings"`
	Notes   []string `json:"notes,omitempty"`
}

// Preflight checks what must hold before anything changes: a downgrade is
// refused unless allowed with a bundle of the target release; the safety
// bundle has room.
func Preflight(o *Options, p *Plan) error {
	if p.From == p.To {
		return fmt.Errorf("project %s already runs Dify %s: nothing to upgrade (see `difyctl releases`)", p.Project, p.To)
	}
	if p.Downgrade {
		if !o.AllowDowngrade {
			return fmt.Errorf("Dify %s -> %s is a downgrade: newer releases migrate the database forward and an older api cannot read it; nothing was changed. Restore a bundle taken on %s instead (`difyctl restore all`), or pass --allow-downgrade --bundle PATH with such a bundle", p.From, p.To, p.To)
		}
		if o.DowngradeFrom == "" || o.Safety == nil {
			return fmt.Errorf("--allow-downgrade needs --bundle PATH: a bundle taken on Dify %s, whose database is restored after the containers change; nothing was changed", p.To)
		}
		rel, err := o.Safety.Release(o.DowngradeFrom)
		if err != nil {
			return fmt.Errorf("reading the bundle %s: %w; nothing was changed", o.DowngradeFrom, err)
		}
		if rel != p.To {
			return fmt.Errorf("the bundle %s was taken on Dify %s, not %s: its database would not fit the older api; nothing was changed", o.DowngradeFrom, rel, p.To)
		}
	}
	if o.Safety == nil && !o.NoBundle {
		return errors.New("no safety bundle is available in this build: pass --no-bundle to upgrade without one (a failure after the database migrations started then cannot restore the database), after a backup of your own")
	}
	free := o.Free
	if free == nil {
		free = statfsFree
	}
	if n, err := free(p.Dir); err == nil && n < 256<<20 {
		return fmt.Errorf("only %d MiB free under %s: the safety bundle and the saved copies need room; free some space (nothing was changed)", n>>20, p.Dir)
	}
	return nil
}

func statfsFree(dir string) (uint64, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return 0, err
	}
	return st.Bavail * uint64(st.Bsize), nil
}

// Pull pulls every target image the host lacks, before anything stops.
func Pull(ctx context.Context, o *Options, p *Plan) error {
	if len(p.Pull) == 0 {
		return nil
	}
	o.printf("pulling %d image(s) of Dify %s before anything stops: %v", len(p.Pull), p.To, p.Pull)
	var reqs []compose.ImageRequest
	for _, img := range p.Pull {
		reqs = append(reqs, compose.ImageRequest{Image: img})
	}
	auth := engine.RegistryAuth(func(k string) string { return envLookup(o.Environ, k) })
	if err := compose.PullImages(ctx, o.Engine, reqs, auth, nil); err != nil {
		return fmt.Errorf("pulling Dify %s's images (nothing was changed; the deployment runs %s as before): %w", p.To, p.From, err)
	}
	return nil
}

func envLookup(environ []string, k string) string {
	for _, kv := range environ {
		if len(kv) > len(k) && kv[:len(k)] == k && kv[len(k)] == '=' {
			return kv[len(k)+1:]
		}
	}
	return ""
}

// Run upgrades: the caller holds the project lock and has settled any
// pending journal. On a failure after the first change it rolls back and
// returns the failure (the deployment then runs p.From as before).
func Run(ctx context.Context, o *Options, p *Plan, res *Result) error {
	t0 := time.Now()
	if err := Pull(ctx, o, p); err != nil {
		return err
	}
	res.Timings.Pull = time.Since(t0)

	stamp := o.now().UTC().Format("20060102T150405Z")
	data := &Data{From: p.From, To: p.To, SaveDir: filepath.Join(p.Dir, SaveDirName, p.From+"-to-"+p.To+"-"+stamp),
		Running: p.Running, Recreate: p.Recreate}
	if rec, err := release.Read(p.Dir); err == nil {
		data.PrevRecord = rec
	}
	h, err := journal.Begin(p.Dir, p.Project, Op, data)
	if err != nil {
		return err
	}
	fail := func(step string, cause error) error {
		o.printf("upgrade failed at %s: %v; rolling back to Dify %s", step, cause, p.From)
		if rerr := undo(ctx, o.rollbackEnv(), h.Journal().Did(StepContainers), data); rerr != nil {
			return fmt.Errorf("upgrade to Dify %s failed at %s: %w; rolling back also failed: %v (the journal %s is kept: the next `difyctl upgrade` or `difyctl rollback` finishes the rollback)", p.To, step, cause, rerr, h.Path())
		}
		if derr := h.Done(); derr != nil {
			o.printf("warning: removing the journal: %v", derr)
		}
		return fmt.Errorf("upgrade to Dify %s failed at %s: %w; rolled back: the deployment runs Dify %s as before", p.To, step, cause, p.From)
	}
	inject := func(step string) error {
		if o.FailAfter == step {
			return fmt.Errorf("injected failure after %s", step)
		}
		return nil
	}

	// Saved copies first: what every later step can be undone from.
	if err := save(p, data); err != nil {
		return fail(StepSaved, err)
	}
	if err := h.SetData(data); err != nil {
		return fail(StepSaved, err)
	}
	if err := h.Step(StepSaved); err != nil {
		return fail(StepSaved, err)
	}

	t1 := time.Now()
	if o.Safety != nil && !o.NoBundle {
		o.printf("taking the safety bundle (backup all) of Dify %s", p.From)
		b, err := o.Safety.Take(ctx, p.Dir, p.Project, p.From)
		if err != nil {
			return fail(StepBundle, fmt.Errorf("safety bundle: %w", err))
		}
		data.Bundle, res.Bundle = b, b
		if err := h.SetData(data); err != nil {
			return fail(StepBundle, err)
		}
	}
	if err := h.Step(StepBundle); err != nil {
		return fail(StepBundle, err)
	}
	res.Timings.Bundle = time.Since(t1)
	if err := inject(StepBundle); err != nil {
		return fail(StepBundle, err)
	}

	t2 := time.Now()
	notes, err := writeConfig(p, o.now())
	res.Notes = append(res.Notes, notes...)
	if err != nil {
		return fail(StepConfig, err)
	}
	if err := h.Step(StepConfig); err != nil {
		return fail(StepConfig, err)
	}
	if err := inject(StepConfig); err != nil {
		return fail(StepConfig, err)
	}

	if err := h.Step(StepContainers); err != nil {
		return fail(StepContainers, err)
	}
	proj, err := compose.Load(ctx, compose.LoadOptions{ProjectDir: p.Dir, ProjectName: p.Project, Release: p.To, Environ: o.Environ})
	if err != nil {
		return fail(StepContainers, err)
	}
	o.printf("recreating %d service(s) for Dify %s in dependency order, health-gated: %v", len(p.Recreate), p.To, p.Recreate)
	var firstStop, lastReady time.Time
	var reportMu sync.Mutex // compose.Up reports from its walk's goroutines
	report := func(e compose.Event) {
		reportMu.Lock()
		defer reportMu.Unlock()
		switch e.State {
		case compose.StateRecreating, compose.StateStopping:
			if firstStop.IsZero() {
				firstStop = e.Time
			}
		case compose.StateHealthy, compose.StateCompleted:
			lastReady = e.Time
		}
		if o.Progress != nil && e.Detail != "" {
			fmt.Fprintf(o.Progress, "  %s: %s %s\n", e.Service, e.State, e.Detail)
		} else if o.Progress != nil {
			fmt.Fprintf(o.Progress, "  %s: %s\n", e.Service, e.State)
		}
	}
	files := compose.ConfigFileNames(compose.LoadOptions{ProjectDir: p.Dir})
	if early := p.earlyServices(proj); len(early) > 0 {
		// New services whose dependencies run now start while the old
		// release still serves: their start is not downtime. No-deps:
		// a dependency the upgrade replaces is replaced below, with the rest.
		o.printf("starting the new service(s) %v first, while Dify %s still serves", early, p.From)
		_, err = compose.Up(ctx, o.Engine, compose.UpOptions{Project: proj, ConfigFiles: files, Services: early, NoDeps: true,
			WaitTimeout: o.WaitTimeout, Version: o.Version, Release: p.To, Report: report})
		if err != nil {
			return fail(StepContainers, err)
		}
	}
	_, err = compose.Up(ctx, o.Engine, compose.UpOptions{Project: proj, ConfigFiles: files,
		WaitTimeout: o.WaitTimeout, RemoveOrphans: true, Version: o.Version, Release: p.To, Report: report})
	if err == nil {
		err = inject(StepContainers)
	}
	if err != nil {
		return fail(StepContainers, err)
	}
	res.Timings.Apply = time.Since(t2)
	if !firstStop.IsZero() && lastReady.After(firstStop) {
		res.Timings.Downtime = lastReady.Sub(firstStop)
		res.Timings.Health = res.Timings.Downtime
	}

	// Done: the point of no return.
	if err := release.Write(p.Dir, release.Record{Release: p.To, Previous: p.From, Source: release.SourceUpgrade, At: o.now().UTC()}); err != nil {
		return fail("record", err)
	}
	if err := h.Commit(); err != nil {
		return err
	}
	if err := finish(p.Dir, data); err != nil {
		return err
	}
	return h.Done()
}

// save copies .env and every support file the plan replaces under SaveDir.
func save(p *Plan, data *Data) error {
	if err := os.MkdirAll(data.SaveDir, 0o700); err != nil {
		return err
	}
	copyIn := func(rel string) (string, error) {
		src := filepath.Join(p.Dir, filepath.FromSlash(rel))
		b, err := os.ReadFile(src)
		if err != nil {
			return "", err
		}
		dst := filepath.Join(data.SaveDir, "files", filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
			return "", err
		}
		return dst, atomicfile.WriteFile(dst, b, 0o600)
	}
	s, err := copyIn(".env")
	if err != nil {
		return fmt.Errorf("saving a copy of .env: %w", err)
	}
	data.Files = append(data.Files, SavedFile{Path: ".env", Saved: s})
	for _, f := range p.Files {
		switch f.Action {
		case FileReplace:
			s, err := copyIn(f.Path)
			if err != nil {
				return fmt.Errorf("saving a copy of %s: %w", f.Path, err)
			}
			data.Files = append(data.Files, SavedFile{Path: f.Path, Saved: s})
		case FileWrite:
			data.Files = append(data.Files, SavedFile{Path: f.Path})
		case FileBeside:
			data.Files = append(data.Files, SavedFile{Path: f.Beside})
		}
	}
	return nil
}

// writeConfig writes the target's .env, support files and release record.
func writeConfig(p *Plan, now time.Time) ([]string, error) {
	var notes []string
	if err := envgen.WriteFile(filepath.Join(p.Dir, ".env"), p.env); err != nil {
		return nil, fmt.Errorf("writing the upgraded .env: %w", err)
	}
	for _, f := range p.Files {
		b, err := fs.ReadFile(p.to.SupportFiles(), f.Path)
		if err != nil {
			return notes, err
		}
		target := f.Path
		if f.Action == FileBeside {
			target = f.Beside
			notes = append(notes, fmt.Sprintf("%s was edited: kept as it is; Dify %s's version written beside it as %s: merge what you need, then remove it", f.Path, p.To, f.Beside))
		}
		dst := filepath.Join(p.Dir, filepath.FromSlash(target))
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return notes, err
		}
		if err := atomicfile.WriteFile(dst, b, templates.FileMode(f.Path)); err != nil {
			return notes, fmt.Errorf("writing %s: %w", target, err)
		}
	}
	return notes, nil
}

// finish keeps what rollback needs (LastFile) once the upgrade is done.
func finish(dir string, data *Data) error {
	b, err := json.MarshalIndent(data, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(filepath.Join(dir, SaveDirName, LastFile), b, 0o600)
}

// ReadLast returns the last completed upgrade, or nil.
func ReadLast(dir string) (*Data, error) {
	b, err := os.ReadFile(filepath.Join(dir, SaveDirName, LastFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var d Data
	if err := json.Unmarshal(b, &d); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dir, SaveDirName, LastFile), err)
	}
	return &d, nil
}
