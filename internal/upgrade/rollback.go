package upgrade

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/difyctl/difyctl/compose"
	"github.com/difyctl/difyctl/internal/atomicfile"
	"github.com/difyctl/difyctl/internal/engine"
	"github.com/difyctl/difyctl/internal/journal"
	"github.com/difyctl/difyctl/internal/release"
	"github.com/difyctl/difyctl/templates"
)

// NewSafety builds the safety net for the settler and rollback (set by the
// package that provides bundles; nil: none in this build).
var NewSafety func(eng engine.Engine, progress func(format string, a ...any)) Safety

// env is what undoing needs.
type env struct {
	eng         engine.Engine
	safety      Safety
	project     string
	dir         string
	environ     []string
	waitTimeout time.Duration
	version     string
	printf      func(format string, a ...any)
}

func (o *Options) rollbackEnv() env {
	return env{eng: o.Engine, safety: o.Safety, project: o.Project, dir: o.Dir, environ: o.Environ,
		waitTimeout: o.WaitTimeout, version: o.Version, printf: o.printf}
}

// undo puts the deployment back on data.From: the saved .env and support
// files, the release record, and, when containers changed (migrations may
// have run), the database from the bundle and the previous release's
// containers. Each part is idempotent: a killed undo is finished by running
// it again.
func undo(ctx context.Context, e env, containersChanged bool, data *Data) error {
	if containersChanged && data.Bundle != "" && e.safety == nil {
		return fmt.Errorf("the database must be restored from the bundle %s, but this difyctl has no bundle support; nothing was changed", data.Bundle)
	}
	if containersChanged {
		// The new release's app services stop first: nothing may write to
		// the database while it is put back.
		cs, err := compose.List(ctx, e.eng, e.project, false)
		if err != nil {
			return err
		}
		var stop []compose.ProjectContainer
		for _, c := range cs {
			if contains(data.Recreate, c.Service) && !isData(c.Service) {
				stop = append(stop, c)
			}
		}
		if len(stop) > 0 {
			e.printf("stopping %d container(s) of Dify %s", len(stop), data.To)
			if err := compose.Stop(ctx, e.eng, stop, nil, nil); err != nil {
				return fmt.Errorf("stopping Dify %s's containers: %w", data.To, err)
			}
		}
	}
	// The previous .env, support files and record first: the restore
	// starts the services it stopped from the project's files, and they
	// must be the previous release's (the new release's api would migrate the
	// restored database forward again).
	if err := restoreFiles(e.dir, data); err != nil {
		return err
	}
	if data.PrevRecord != nil {
		if err := release.Write(e.dir, *data.PrevRecord); err != nil {
			return err
		}
	} else if err := os.Remove(release.Path(e.dir)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if containersChanged {
		if data.Bundle != "" {
			e.printf("restoring the database and data from the safety bundle %s", data.Bundle)
			if err := e.safety.Restore(ctx, e.dir, e.project, data.Bundle); err != nil {
				return fmt.Errorf("restoring from the bundle %s: %w", data.Bundle, err)
			}
		} else {
			e.printf("warning: no safety bundle (--no-bundle): the database stays as Dify %s's migrations left it", data.To)
		}
		proj, err := compose.Load(ctx, compose.LoadOptions{ProjectDir: e.dir, ProjectName: e.project, Release: data.From, Environ: e.environ})
		if err != nil {
			return fmt.Errorf("loading Dify %s's project: %w", data.From, err)
		}
		e.printf("bringing Dify %s's containers back, health-gated", data.From)
		if _, err := compose.Up(ctx, e.eng, compose.UpOptions{Project: proj, ConfigFiles: compose.ConfigFileNames(compose.LoadOptions{ProjectDir: e.dir}),
			WaitTimeout: e.waitTimeout, RemoveOrphans: true, Version: e.version, Release: data.From}); err != nil {
			return fmt.Errorf("starting Dify %s's containers again: %w", data.From, err)
		}
	}
	return nil
}

// isData reports whether a service holds the deployment's data (never
// stopped by undo before the restore, which needs it).
func isData(svc string) bool {
	switch svc {
	case "db_postgres", "db_mysql", "redis", "oceanbase", "seekdb":
		return true
	}
	return false
}

// restoreFiles puts every saved copy back and removes what the upgrade
// created.
func restoreFiles(dir string, data *Data) error {
	for _, f := range data.Files {
		dst := filepath.Join(dir, filepath.FromSlash(f.Path))
		if f.Saved == "" {
			if err := os.Remove(dst); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("removing %s: %w", f.Path, err)
			}
			continue
		}
		b, err := os.ReadFile(f.Saved)
		if err != nil {
			return fmt.Errorf("reading the saved copy of %s: %w", f.Path, err)
		}
		mode := templates.FileMode(f.Path)
		if f.Path == ".env" {
			mode = 0o600
		}
		if err := atomicfile.WriteFile(dst, b, mode); err != nil {
			return fmt.Errorf("putting %s back: %w", f.Path, err)
		}
	}
	return nil
}

// RollbackOptions for Rollback.
type RollbackOptions struct {
	Dir, Project string
	Environ      []string
	Engine       engine.Engine
	Safety       Safety
	WaitTimeout  time.Duration
	Version      string
	Printf       func(format string, a ...any)
}

// Rollback undoes the last completed upgrade: the previous .env and support
// files, the previous release's containers, and the database from the
// bundle taken before it (what was written since is lost: the caller asks
// first). Journaled: a killed rollback is finished by the next upgrade or
// rollback.
func Rollback(ctx context.Context, o RollbackOptions) (*Data, error) {
	last, err := ReadLast(o.Dir)
	if err != nil {
		return nil, err
	}
	if last == nil {
		return nil, fmt.Errorf("no completed upgrade to roll back in %s (%s/%s is missing)", o.Dir, SaveDirName, LastFile)
	}
	rec, err := release.Read(o.Dir)
	if err != nil {
		return nil, err
	}
	if rec == nil || rec.Release != last.To {
		got := "none"
		if rec != nil {
			got = rec.Release
		}
		return nil, fmt.Errorf("the last upgrade went %s -> %s but the project records release %s: nothing to roll back", last.From, last.To, got)
	}
	data := *last
	data.Rollback = true
	h, err := journal.Begin(o.Dir, o.Project, Op, &data)
	if err != nil {
		return nil, err
	}
	e := env{eng: o.Engine, safety: o.Safety, project: o.Project, dir: o.Dir, environ: o.Environ, waitTimeout: o.WaitTimeout, version: o.Version, printf: o.Printf}
	if e.printf == nil {
		e.printf = func(string, ...any) {}
	}
	if err := undo(ctx, e, true, &data); err != nil {
		return nil, fmt.Errorf("rolling back to Dify %s: %w (the journal %s is kept: `difyctl rollback` again finishes it)", last.From, err, h.Path())
	}
	if err := os.Remove(filepath.Join(o.Dir, SaveDirName, LastFile)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	return &data, h.Done()
}

// settle is the "upgrade" settler: a rollback's journal is finished (its
// steps are idempotent); an upgrade past its commit is finished (its
// record kept for rollback); any other upgrade is undone.
func settle(ctx context.Context, je journal.Env, j *journal.Journal) (journal.Outcome, error) {
	var data Data
	if err := j.Decode(&data); err != nil {
		return journal.Outcome{}, err
	}
	e := env{eng: je.Engine, project: j.Project, dir: j.Dir, environ: je.Environ, waitTimeout: 5 * time.Minute, printf: je.Printf}
	if NewSafety != nil {
		e.safety = NewSafety(je.Engine, je.Printf)
	}
	var files []string
	for _, f := range data.Files {
		files = append(files, f.Path)
	}
	if data.Bundle != "" {
		files = append(files, data.Bundle)
	}
	switch {
	case data.Rollback:
		if err := undo(ctx, e, true, &data); err != nil {
			return journal.Outcome{}, err
		}
		if err := os.Remove(filepath.Join(j.Dir, SaveDirName, LastFile)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return journal.Outcome{}, err
		}
		return journal.Outcome{Action: journal.Finished, Detail: fmt.Sprintf("the rollback to Dify %s was finished", data.From), Files: files}, nil
	case j.Committed:
		if err := finish(j.Dir, &data); err != nil {
			return journal.Outcome{}, err
		}
		return journal.Outcome{Action: journal.Finished, Detail: fmt.Sprintf("the upgrade to Dify %s had completed; its record for rollback is kept", data.To), Files: files}, nil
	default:
		if err := undo(ctx, e, j.Did(StepContainers), &data); err != nil {
			return journal.Outcome{}, err
		}
		return journal.Outcome{Action: journal.RolledBack, Detail: fmt.Sprintf("the interrupted upgrade %s -> %s was undone: the deployment runs Dify %s", data.From, data.To, data.From), Files: files}, nil
	}
}

func init() { journal.Register(Op, settle) }
