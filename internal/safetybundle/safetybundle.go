// Package safetybundle is the upgrade's safety net (internal/upgrade.Safety)
// made of whole-deployment bundles (backup/bundle): the bundle `backup all`
// takes, verified, before an upgrade changes anything, and put back by
// `restore all`'s same-deployment path when the upgrade is undone after the
// database migrations may have run. Importing the package installs it as
// upgrade.NewSafety.
package safetybundle

import (
	"context"
	"fmt"
	"time"

	"github.com/difyctl/difyctl/backup"
	"github.com/difyctl/difyctl/backup/bundle"
	"github.com/difyctl/difyctl/compose"
	"github.com/difyctl/difyctl/internal/buildinfo"
	"github.com/difyctl/difyctl/internal/engine"
	"github.com/difyctl/difyctl/internal/upgrade"
)

func init() { upgrade.NewSafety = New }

// Safety takes and restores the upgrade's bundles in the project's bundle
// directory (bundle.DefaultDir).
type Safety struct {
	eng      engine.Engine
	progress func(format string, a ...any)
	now      func() time.Time
}

// New returns the bundle safety net on eng, reporting progress lines.
func New(eng engine.Engine, progress func(format string, a ...any)) upgrade.Safety {
	return &Safety{eng: eng, progress: progress, now: time.Now}
}

// redisPassword is REDIS_PASSWORD from the project's .env (the fallback
// when the Redis container has no REDISCLI_AUTH); "" when unreadable.
func redisPassword(dir string) string {
	env, err := compose.Environment(dir, nil)
	if err != nil {
		return ""
	}
	return env["REDIS_PASSWORD"]
}

// Take writes and verifies a bundle of the running deployment under the
// bundle directory's lock. It prunes nothing: an upgrade never deletes the
// operator's bundles.
func (s *Safety) Take(ctx context.Context, dir, project, release string) (string, error) {
	bdir := bundle.DefaultDir(dir)
	unlock, err := backup.Lock(bdir, project)
	if err != nil {
		return "", err
	}
	defer unlock()
	bundle.CleanTemps(bdir, project)
	res, err := bundle.Take(ctx, s.eng, bundle.Options{Project: project, ProjectDir: dir, Dir: bdir,
		RedisPassword: redisPassword(dir), Reason: fmt.Sprintf("pre-upgrade safety bundle (Dify %s)", release),
		Version: buildinfo.Get().Version, Now: s.now, Progress: s.progress})
	if err != nil {
		return "", err
	}
	return res.Path, nil
}

// Restore puts the bundle's database, files, Redis and vector data back
// into the deployment as its files now describe it (the rollback has put
// the previous .env and release back first). The upgrade's journal covers
// it: a kill during it is settled by restoring the bundle again.
func (s *Safety) Restore(ctx context.Context, dir, project, b string) error {
	_, err := bundle.Restore(ctx, s.eng, bundle.RestoreOptions{Bundle: b, Project: project, ProjectDir: dir,
		BackupDir: bundle.DefaultDir(dir), RedisPassword: redisPassword(dir),
		Load:    compose.LoadOptions{ProjectDir: dir, ProjectName: project},
		Version: buildinfo.Get().Version, Now: s.now, Progress: s.progress,
		NoSafety: true, NoJournal: true, StopTimeout: 30 * time.Second, WaitTimeout: 10 * time.Minute})
	return err
}

// Release is the Dify release the bundle was taken on.
func (s *Safety) Release(b string) (string, error) {
	m, err := bundle.ReadManifest(b)
	if err != nil {
		return "", err
	}
	if m.DifyVersion == "" {
		return "", fmt.Errorf("%s: the manifest names no Dify release", b)
	}
	return m.DifyVersion, nil
}
