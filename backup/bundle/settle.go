package bundle

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"

	"github.com/difyctl/difyctl/compose"
	"github.com/difyctl/difyctl/internal/journal"
)

// The steps a restore records in its journal, besides "restored <part>",
// "started" and "rolled back": "...ing" before the action is asked of the
// engine (which may carry it out after a kill), "...ed" once it is done.
const (
	stepSafety      = "taking the safety bundle"
	stepSafetyTaken = "safety bundle taken"
	stepStopping    = "stopping the application services"
	stepStopped     = "application services stopped"
)

// labelHelper marks the helper container that puts a restore's files back
// (its value is the project).
const labelHelper = "difyctl.restore-helper"

// settle settles the journal of a restore that was killed.
//
// Into the same deployment: killed while the safety bundle was taken,
// nothing had changed (a vector store the copy paused is unpaused); killed
// later and not committed, the safety bundle is verified (nothing is
// changed when it is missing or fails), then put back and what ran is
// started; committed, the services are started. Into a new project, the
// half-made project's containers are removed (its files stay).
//
// Before a rollback or a finish, what the killed run left in flight is
// settled first: the Redis restore's own journal (its stop, its helper
// containers, its half-renamed files), the helper container that swapped
// the files, a vector store paused for the safety bundle's copy.
func settle(ctx context.Context, env journal.Env, j *journal.Journal) (journal.Outcome, error) {
	return settleWith(ctx, env, j, nil)
}

// settleWith is settle with the function that starts the services replaced
// when up is not nil (unit tests through the fake engine).
func settleWith(ctx context.Context, env journal.Env, j *journal.Journal, up func(context.Context, []string) error) (journal.Outcome, error) {
	var jd JournalData
	if err := j.Decode(&jd); err != nil {
		return journal.Outcome{}, err
	}
	out := journal.Outcome{Op: OpRestoreAll, Project: j.Project, Files: []string{jd.Bundle}}
	if jd.SafetyBundle != "" {
		out.Files = append(out.Files, jd.SafetyBundle)
	}
	o := RestoreOptions{Project: j.Project, ProjectDir: j.Dir, BackupDir: jd.BackupDir, Progress: env.Progress, Up: up,
		Load: compose.LoadOptions{ProjectDir: j.Dir, ProjectName: j.Project, Files: jd.Files, Environ: env.Environ}}
	if e, err := compose.Environment(j.Dir, nil); err == nil {
		o.RedisPassword = e["REDIS_PASSWORD"]
	}
	o.defaults(env.Engine)
	switch {
	case jd.Mode == ModeNew:
		if err := o.clearInFlight(ctx, env, false); err != nil {
			return out, err
		}
		if err := compose.Down(ctx, env.Engine, compose.DownOptions{Project: j.Project}); err != nil {
			return out, fmt.Errorf("removing the containers of the interrupted restore into %s: %w", j.Project, err)
		}
		out.Action = journal.RolledBack
		out.Detail = fmt.Sprintf("the interrupted restore of %s into the new project %s was undone: its containers are removed, its files remain in %s (remove them, then restore again)", jd.Bundle, j.Project, j.Dir)
	case j.Committed:
		if err := o.clearInFlight(ctx, env, true); err != nil {
			return out, err
		}
		if err := o.Up(ctx, jd.Services); err != nil {
			return out, fmt.Errorf("starting %s after its restore: %w", j.Project, err)
		}
		out.Action = journal.Finished
		out.Detail = fmt.Sprintf("the restore of %s had finished; %s is started with the restored data", jd.Bundle, j.Project)
		if jd.SafetyBundle != "" {
			out.Detail += fmt.Sprintf(" (the previous data is in the safety bundle %s)", jd.SafetyBundle)
		}
	case jd.SafetyBundle == "" && !j.Did(stepStopping):
		// Killed while the safety bundle was being taken: nothing of the
		// deployment had changed but a pause for the copy.
		if err := o.clearInFlight(ctx, env, false); err != nil {
			return out, err
		}
		out.Action = journal.RolledBack
		out.Detail = fmt.Sprintf("the restore of %s was interrupted while it took the safety bundle, before any change: %s keeps its data (no safety bundle was completed; the next backup all removes the incomplete one)", jd.Bundle, j.Project)
	case jd.SafetyBundle == "":
		return out, fmt.Errorf("the interrupted restore of %s had begun changing %s and recorded no safety bundle to roll back to: nothing was changed; check the deployment (difyctl ps, logs), restore a bundle you trust with difyctl restore all, then remove %s", jd.Bundle, j.Project, journal.Path(j.Dir, j.Project))
	default:
		// Verified before anything changes: a settler that cannot settle
		// leaves everything as it is.
		if _, err := Verify(jd.SafetyBundle, nil); err != nil {
			return out, fmt.Errorf("the safety bundle of the interrupted restore of %s cannot be used, nothing was changed: %w; the deployment may hold a mix of both: restore a bundle you trust with difyctl restore all, then remove %s", jd.Bundle, err, journal.Path(j.Dir, j.Project))
		}
		if err := o.clearInFlight(ctx, env, true); err != nil {
			return out, err
		}
		env.Printf("putting the safety bundle %s back", jd.SafetyBundle)
		if err := Rollback(ctx, env.Engine, o, jd.SafetyBundle, jd.Running); err != nil {
			return out, err
		}
		out.Action = journal.RolledBack
		out.Detail = fmt.Sprintf("the interrupted restore of %s was undone: %s holds its previous data again (from the safety bundle %s)", jd.Bundle, j.Project, jd.SafetyBundle)
	}
	return out, nil
}

// clearInFlight settles what a killed restore left asked of the engine or
// half-done: a vector store paused for the safety bundle's copy is
// unpaused, the helper container that swapped the files is removed (a
// swap it was running is undone or redone by the rollback, which replaces
// the whole tree again), and the Redis restore's own journal, in its
// working directory, is settled (settleRedis; a new project's containers
// are removed instead) before that directory is removed.
func (o *RestoreOptions) clearInFlight(ctx context.Context, env journal.Env, settleRedis bool) error {
	if err := unpauseVector(ctx, env, o.Project); err != nil {
		return err
	}
	if err := removeHelpers(ctx, env, o.Project); err != nil {
		return err
	}
	if o.BackupDir == "" {
		return nil
	}
	for _, d := range globStale(o.BackupDir, o.Project) {
		if settleRedis {
			if _, err := journal.Settle(ctx, env, d, o.Project); err != nil {
				return fmt.Errorf("settling the interrupted restore's Redis: %w", err)
			}
		}
		if err := os.RemoveAll(d); err != nil {
			return fmt.Errorf("removing the interrupted restore's working directory %s: %w", d, err)
		}
	}
	return nil
}

// unpauseVector unpauses the project's vector-store containers that are
// paused: a bundle pauses one for the copy of its files and a kill leaves
// it paused.
func unpauseVector(ctx context.Context, env journal.Env, project string) error {
	cs, err := compose.List(ctx, env.Engine, project, true)
	if err != nil {
		return err
	}
	vec := vectorServices()
	for _, c := range cs {
		if c.State != string(container.StatePaused) || vec[c.Service] == "" {
			continue
		}
		env.Printf("unpausing %s (the interrupted restore paused it for the safety bundle's copy)", c.Name)
		if _, err := env.Engine.ContainerUnpause(ctx, c.ID, client.ContainerUnpauseOptions{}); err != nil {
			return fmt.Errorf("unpausing %s, which the interrupted restore paused: %w; run docker unpause %s", c.Name, err, c.Name)
		}
	}
	return nil
}

// removeHelpers removes the helper containers of project's restores (with
// their anonymous volumes).
func removeHelpers(ctx context.Context, env journal.Env, project string) error {
	res, err := env.Engine.ContainerList(ctx, client.ContainerListOptions{All: true,
		Filters: make(client.Filters).Add("label", labelHelper+"="+project)})
	if err != nil {
		return fmt.Errorf("listing the helper containers of project %s: %w", project, err)
	}
	for _, c := range res.Items {
		name := c.ID
		if len(c.Names) > 0 {
			name = c.Names[0]
		}
		env.Printf("removing the helper container %s the interrupted restore left", name)
		if _, err := env.Engine.ContainerRemove(ctx, c.ID, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true}); err != nil && !cerrdefs.IsNotFound(err) {
			return fmt.Errorf("removing the helper container %s the interrupted restore left: %w", name, err)
		}
	}
	return nil
}

// globStale are the working directories a killed restore of project left
// in the backup directory (the Redis restore's, with its journal).
func globStale(dir, project string) []string {
	m, _ := filepath.Glob(filepath.Join(dir, ".restore-redis-"+project+"-*"))
	return m
}
