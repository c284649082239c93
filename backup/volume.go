package backup

import (
	"context"
	"fmt"
	"path"
	"strings"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"

	"github.com/difyctl/difyctl/health"
	"github.com/difyctl/difyctl/internal/engine"
)

// The steps of a restore, recorded in its journal: "...ing" before the
// action is asked of the engine (which may carry it out after a kill),
// "...ed" once it is done.
const (
	stepStopping  = "stopping"
	stepStopped   = "stopped"
	stepUploading = "uploading"
	stepUploaded  = "uploaded"
	stepReplacing = "replacing"
	stepReplaced  = "replaced"
	stepStarting  = "starting"
)

// restoreRecord is a restore's journal data: everything settling it needs.
type restoreRecord struct {
	File        string        `json:"file"`       // the backup being restored
	SafetyCopy  string        `json:"safetyCopy"` // the safety copy of the previous data
	Container   string        `json:"container"`  // Redis's container ID
	Name        string        `json:"name"`
	Image       string        `json:"image"` // its image ID, for the helper containers
	Service     string        `json:"service"`
	DataDir     string        `json:"dataDir"`
	DBFile      string        `json:"dbFile"`
	AOF         *aofConfig    `json:"aof,omitempty"`      // appendonly was on
	AOFAside    string        `json:"aofAside,omitempty"` // where the old AOF goes
	Header      tarHeader     `json:"header"`             // owner and mode of the dump
	Keys        int64         `json:"keys"`               // keys in File
	KeysLow     int64         `json:"keysLow"`            // the key count Redis may show after loading File
	KeysHigh    int64         `json:"keysHigh"`
	StopTimeout time.Duration `json:"stopTimeout"`
	WaitTimeout time.Duration `json:"waitTimeout"`
}

// tempPrefix names the files a restore writes before renaming them.
const tempPrefix = ".difyctl-restore-"

func (rec *restoreRecord) target() string   { return path.Join(rec.DataDir, rec.DBFile) }
func (rec *restoreRecord) tempDump() string { return path.Join(rec.DataDir, tempPrefix+rec.DBFile) }

// aofPaths are the AOF's path, its temporary name and the name the old one
// is moved aside to ("" when appendonly is off).
func (rec *restoreRecord) aofPaths() (aof, temp, aside string) {
	if rec.AOF == nil {
		return "", "", ""
	}
	p := rec.AOF.path(rec.DataDir)
	return p, path.Join(rec.DataDir, tempPrefix+path.Base(p)), rec.AOFAside
}

// uploads are the entries written under temporary names: the dump and,
// with appendonly on, an AOF starting from it.
func (rec *restoreRecord) uploads(vf *Verified) []upload {
	ups := []upload{{Name: path.Base(rec.tempDump()), From: vf}}
	if rec.AOF != nil {
		_, temp, _ := rec.aofPaths()
		ups = append(ups, aofUploads(*rec.AOF, path.Base(temp), vf)...)
	}
	return ups
}

// scriptArgs are the arguments of swapScript and rollbackScript.
func (rec *restoreRecord) scriptArgs() []string {
	aof, temp, aside := rec.aofPaths()
	return []string{rec.DataDir, rec.tempDump(), rec.target(), aof, temp, aside}
}

// fsyncSh syncs the files named (a sync without arguments where sync takes none).
const fsyncSh = `fsync() { sync "$@" 2>/dev/null || sync; }; `

// swapScript puts the uploaded temporaries in place: synced first, then
// renamed over their targets (the old AOF, a directory on Redis 7 that
// rename(2) cannot replace, moved aside first), then the directory synced.
// $1 data dir, $2 temp dump, $3 dump, $4 AOF, $5 temp AOF, $6 AOF aside.
const swapScript = `set -e; ` + fsyncSh + `
fsync "$2"
if [ -n "$4" ]; then
  if [ -d "$5" ]; then fsync "$5"/* "$5"; else fsync "$5"; fi
  if [ -e "$4" ]; then mv "$4" "$6"; fi
  mv "$5" "$4"
fi
mv -f "$2" "$3"
fsync "$1"`

// rollbackScript undoes swapScript, whatever part of it ran: the old AOF
// moved back, the temporaries removed and, when $7 is "put", the safety
// copy uploaded as the temp dump renamed over the dump.
const rollbackScript = `set -e; ` + fsyncSh + `
if [ -n "$4" ] && [ -e "$6" ]; then
  rm -rf "$4.difyctl-failed-restore"
  if [ -e "$4" ]; then mv "$4" "$4.difyctl-failed-restore"; fi
  mv "$6" "$4"
  rm -rf "$4.difyctl-failed-restore"
fi
if [ -n "$5" ]; then rm -rf "$5"; fi
if [ "$7" = put ]; then fsync "$2"; mv -f "$2" "$3"; else rm -f "$2"; fi
fsync "$1"`

// Labels of the helper containers a restore runs.
const (
	labelHelper    = "org.difyctl.helper"
	labelHelperFor = "org.difyctl.helper-for" // the Redis container's ID
)

// runInVolume runs script in a short-lived helper container of Redis's
// image that mounts Redis's volumes (bind mounts and named volumes alike),
// as root and without network, and waits for it to succeed. The helper is
// removed afterwards with its anonymous volumes (the image's VOLUMEs not
// already mounted; Redis's own volumes are in use by Redis and stay); one
// a kill left behind is waited for and removed by waitHelpers.
func runInVolume(ctx context.Context, cli engine.Engine, rec *restoreRecord, what, script string, args ...string) error {
	cfg := &container.Config{
		Image:      rec.Image,
		Entrypoint: []string{"sh", "-c", script, "difyctl-restore"},
		Cmd:        args,
		User:       "0",
		Labels:     map[string]string{labelHelper: "restore", labelHelperFor: rec.Container},
	}
	res, err := cli.ContainerCreate(ctx, client.ContainerCreateOptions{Config: cfg, HostConfig: &container.HostConfig{VolumesFrom: []string{rec.Container}, NetworkMode: "none"}})
	if err != nil {
		return fmt.Errorf("%s: creating a helper container: %w", what, err)
	}
	defer cli.ContainerRemove(context.WithoutCancel(ctx), res.ID, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true})
	if _, err := cli.ContainerStart(ctx, res.ID, client.ContainerStartOptions{}); err != nil {
		return fmt.Errorf("%s: starting a helper container: %w", what, err)
	}
	if _, err := health.Wait(ctx, cli, res.ID, health.CompletedSuccessfully); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}

// waitHelpers waits for the helper containers a killed restore of Redis
// container id left (one may still be renaming files) and removes them.
func waitHelpers(ctx context.Context, cli engine.Engine, id string) error {
	f := make(client.Filters).Add("label", labelHelperFor+"="+id)
	res, err := cli.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: f})
	if err != nil {
		return fmt.Errorf("listing the helper containers of a restore: %w", err)
	}
	for _, c := range res.Items {
		// Only a started helper has work under way: one the killed run
		// created but never started (State "created") would never complete,
		// and did nothing; it is removed without waiting.
		if string(c.State) != "running" && string(c.State) != "restarting" {
			if _, err := cli.ContainerRemove(ctx, c.ID, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true}); err != nil && !cerrdefs.IsNotFound(err) {
				return fmt.Errorf("removing the helper container %s of a restore: %w", short(c.ID), err)
			}
			continue
		}
		if _, err := health.Wait(ctx, cli, c.ID, health.CompletedSuccessfully); err != nil && ctx.Err() != nil {
			return fmt.Errorf("waiting for the helper container %s of a restore: %w", short(c.ID), err)
		}
		if _, err := cli.ContainerRemove(ctx, c.ID, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true}); err != nil && !cerrdefs.IsNotFound(err) {
			return fmt.Errorf("removing the helper container %s of a restore: %w", short(c.ID), err)
		}
	}
	return nil
}

// stopWait makes sure the container is stopped. A stop asked of the engine
// earlier (by a killed or interrupted run) goes on without its caller:
// stopping again waits for it, so nothing is changed under a Redis that is
// still saving its data set on the way down.
func stopWait(ctx context.Context, cli engine.Engine, id string, timeout time.Duration) error {
	ins, err := cli.ContainerInspect(ctx, id, client.ContainerInspectOptions{})
	if err != nil {
		return err
	}
	if st := ins.Container.State; st == nil || (!st.Running && !st.Restarting) {
		return nil
	}
	secs := int(timeout.Seconds())
	if _, err := cli.ContainerStop(ctx, id, client.ContainerStopOptions{Timeout: &secs}); err != nil {
		return fmt.Errorf("stopping %s: %w", short(id), err)
	}
	return nil
}

// redisState says in words what state the container is in, for messages.
func redisState(ctx context.Context, cli engine.Engine, rec *restoreRecord) string {
	ins, err := cli.ContainerInspect(ctx, rec.Container, client.ContainerInspectOptions{})
	switch {
	case cerrdefs.IsNotFound(err):
		return fmt.Sprintf("the Redis container %s is gone", rec.Name)
	case err != nil:
		return fmt.Sprintf("the state of %s is unknown (%v)", rec.Name, err)
	}
	st := health.FromInspect(ins.Container)
	s := fmt.Sprintf("Redis (%s) is %s", rec.Name, st.Status)
	if st.Status == container.StateExited {
		s += fmt.Sprintf(" (code %d)", st.ExitCode)
	}
	return s + "; the safety copy of its previous data is " + rec.SafetyCopy
}

// isGone tells whether err says the container no longer exists.
func isGone(err error) bool {
	return cerrdefs.IsNotFound(err) || (err != nil && strings.Contains(err.Error(), "No such container"))
}
