package backup

import (
	"context"
	"fmt"
	"path"
	"time"

	"github.com/moby/moby/client"

	"github.com/difyctl/difyctl/compose"
	"github.com/difyctl/difyctl/health"
	"github.com/difyctl/difyctl/internal/engine"
	"github.com/difyctl/difyctl/internal/journal"
)

func init() { journal.Register(OpRestoreRedis, settleRestore) }

// settleRestore settles the journal of a restore that did not finish: one
// before its point of no return is rolled back to the safety copy, one past
// it is finished. It first waits for what the interrupted run asked of the
// engine (a stop, a helper container renaming files). When the rollback
// needs the safety copy and it is missing or fails verification, it changes
// nothing and says so.
func settleRestore(ctx context.Context, env journal.Env, j *journal.Journal) (journal.Outcome, error) {
	var rec restoreRecord
	if err := j.Decode(&rec); err != nil {
		return journal.Outcome{}, err
	}
	files := []string{rec.File, rec.SafetyCopy}
	if !j.Committed && !j.Did(stepStopping) {
		return journal.Outcome{Action: journal.RolledBack, Files: files,
			Detail: fmt.Sprintf("the restore of %s into %s had not changed anything yet", rec.File, rec.Name)}, nil
	}
	var safety *Verified
	if !j.Committed && j.Did(stepReplacing) {
		var err error
		if safety, err = OpenVerified(rec.SafetyCopy); err != nil {
			return journal.Outcome{}, fmt.Errorf("the restore of %s into %s was interrupted after it began replacing Redis's data, and the safety copy %s of the previous data cannot be used: %w; nothing was changed: find a good copy of the data and restore it with difyctl restore redis FILE after moving the journal away", rec.File, rec.Name, rec.SafetyCopy, err)
		}
		defer safety.Close()
	}
	r, err := settleTarget(ctx, env.Engine, &rec, j)
	if err != nil {
		return journal.Outcome{}, err
	}
	env.Printf("waiting for what the interrupted restore asked of the engine (a stop, a rename in the volume)")
	if err := waitHelpers(ctx, env.Engine, rec.Container); err != nil {
		return journal.Outcome{}, err
	}
	if j.Committed {
		return finishRestore(ctx, env, r, &rec, files)
	}
	return rollbackRestore(ctx, env, r, &rec, safety, files)
}

// settleTarget finds the Redis container of the journal: its own, or, when
// that one was removed since, the service's container in any state.
func settleTarget(ctx context.Context, cli engine.Engine, rec *restoreRecord, j *journal.Journal) (*Redis, error) {
	pw := ""
	if env, err := compose.Environment(j.Dir, nil); err == nil {
		pw = env["REDIS_PASSWORD"]
	}
	r, err := redisByID(ctx, cli, rec.Container, pw)
	if err == nil || !isGone(err) {
		return r, err
	}
	f := make(client.Filters).Add("label", compose.ProjectFilter(j.Project), compose.LabelService+"="+rec.Service)
	res, lerr := cli.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: f})
	if lerr != nil || len(res.Items) == 0 {
		return nil, fmt.Errorf("the Redis container %s of the interrupted restore of %s is gone and project %s has no other %s container: nothing was changed; move the journal away, run difyctl up, and if Redis does not load its data restore the safety copy %s", rec.Name, rec.File, j.Project, rec.Service, rec.SafetyCopy)
	}
	if r, err = redisByID(ctx, cli, res.Items[0].ID, pw); err == nil {
		rec.Container, rec.Name = r.ID, r.Name
		if r.inspected.Image != "" {
			rec.Image = r.inspected.Image
		}
	}
	return r, err
}

// rollbackRestore puts Redis back as it was before the restore: when the
// replacing had begun, the safety copy renamed over the dump and the old
// AOF moved back; in every case the temporaries removed; then Redis
// started and checked.
func rollbackRestore(ctx context.Context, env journal.Env, r *Redis, rec *restoreRecord, safety *Verified, files []string) (journal.Outcome, error) {
	env.Printf("stopping %s (waiting for a stop already under way)", r.Name)
	if err := stopWait(ctx, env.Engine, r.ID, rec.StopTimeout); err != nil {
		return journal.Outcome{}, err
	}
	mode := "clean"
	if safety != nil {
		mode = "put"
		env.Printf("putting the safety copy %s back as %s in %s", rec.SafetyCopy, rec.target(), r.Name)
		if err := putFiles(ctx, env.Engine, r.ID, rec.DataDir, rec.Header, upload{Name: path.Base(rec.tempDump()), From: safety}); err != nil {
			return journal.Outcome{}, err
		}
	}
	if err := runInVolume(ctx, env.Engine, rec, "rolling back "+rec.target(), rollbackScript, append(rec.scriptArgs(), mode)...); err != nil {
		return journal.Outcome{}, err
	}
	keys, err := startRedis(ctx, env, r, rec)
	if err != nil {
		return journal.Outcome{}, err
	}
	if safety != nil && rec.AOF == nil {
		if low, high := keyBounds(safety.Info); keys < low || keys > high {
			return journal.Outcome{}, fmt.Errorf("after putting the safety copy %s back, %s holds %d keys, not the %d the copy holds", rec.SafetyCopy, r.Name, keys, safety.Info.Keys)
		}
	}
	what := "nothing had been replaced yet"
	if safety != nil {
		what = "the safety copy " + rec.SafetyCopy + " was put back"
	}
	return journal.Outcome{Action: journal.RolledBack, Files: files,
		Detail: fmt.Sprintf("%s holds its previous data again (%d keys; %s); %s was not restored", r.Name, keys, what, rec.File)}, nil
}

// finishRestore carries a restore past its point of no return to its end:
// Redis running, healthy, its key count checked.
func finishRestore(ctx context.Context, env journal.Env, r *Redis, rec *restoreRecord, files []string) (journal.Outcome, error) {
	keys, err := startRedis(ctx, env, r, rec)
	if err != nil {
		return journal.Outcome{}, err
	}
	note := ""
	if keys < rec.KeysLow || keys > rec.KeysHigh {
		note = fmt.Sprintf("; the backup held %d keys: the difference was written or expired since it was loaded", rec.Keys)
	}
	return journal.Outcome{Action: journal.Finished, Files: files,
		Detail: fmt.Sprintf("%s holds the restored data of %s (%d keys%s); the previous data is in the safety copy %s", r.Name, rec.File, keys, note, rec.SafetyCopy)}, nil
}

// startRedis starts Redis unless it runs (waiting out a stop in flight
// first), waits until it is healthy and counts its keys.
func startRedis(ctx context.Context, env journal.Env, r *Redis, rec *restoreRecord) (int64, error) {
	ins, err := env.Engine.ContainerInspect(ctx, r.ID, client.ContainerInspectOptions{})
	if err != nil {
		return 0, err
	}
	if st := ins.Container.State; st == nil || !st.Running || st.Restarting {
		if err := stopWait(ctx, env.Engine, r.ID, rec.StopTimeout); err != nil {
			return 0, err
		}
		env.Printf("starting %s", r.Name)
		if _, err := env.Engine.ContainerStart(ctx, r.ID, client.ContainerStartOptions{}); err != nil {
			return 0, fmt.Errorf("starting %s: %w", r.Name, err)
		}
	}
	wait := rec.WaitTimeout
	if wait <= 0 {
		wait = 5 * time.Minute
	}
	wctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	if _, err := health.Wait(wctx, env.Engine, r.ID, health.Healthy); err != nil {
		return 0, fmt.Errorf("%s did not become healthy: %w", r.Name, err)
	}
	return r.KeyCount(ctx)
}
