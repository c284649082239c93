package backup

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strings"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"

	"github.com/difyctl/difyctl/backup/rdb"
	"github.com/difyctl/difyctl/health"
)

// RestoreOptions for a restore.
type RestoreOptions struct {
	Options
	File        string        // the backup to restore
	StopTimeout time.Duration // for stopping Redis
	WaitTimeout time.Duration // for Redis to come back healthy
}

// RestoreResult says what a restore did.
type RestoreResult struct {
	File       string `json:"file"`
	SafetyCopy string `json:"safetyCopy"`
	Keys       int64  `json:"keys"`
	AOFMoved   string `json:"aofMovedTo,omitempty"`
}

// Restore puts a verified backup back into the project's Redis:
//
//  1. verify the file (walk, CRC64, manifest) and refuse an RDB version newer
//     than the running server loads;
//  2. take a safety backup of the current data (kept like any backup);
//  3. stop Redis, replace its dump through the archive API (works for bind
//     mounts and named volumes alike), move an AOF aside when appendonly is
//     on (the AOF would win at start-up), start Redis, wait for it to be
//     healthy, and check its key count against the file;
//  4. if anything fails after the stop, put the safety copy back and start
//     Redis again.
//
// The caller holds the backup lock.
func Restore(ctx context.Context, cli *client.Client, o RestoreOptions) (*RestoreResult, error) {
	info, _, err := VerifyFile(o.File)
	if err != nil {
		return nil, fmt.Errorf("refusing to restore %s: %w", o.File, err)
	}
	r, err := FindRedis(ctx, cli, o.Project, o.Service, o.Password)
	if err != nil {
		return nil, err
	}
	server, err := r.Info(ctx, "server")
	if err != nil {
		return nil, err
	}
	maxV, err := rdb.LoadableBy(server["redis_version"])
	if err != nil {
		return nil, err
	}
	if info.Version > maxV {
		return nil, fmt.Errorf("refusing to restore %s: RDB version %d is newer than Redis %s loads (%d); restore it into a newer Redis", o.File, info.Version, server["redis_version"], maxV)
	}
	dataDir, err := r.Config(ctx, "dir")
	if err != nil {
		return nil, err
	}
	dbfile, err := r.Config(ctx, "dbfilename")
	if err != nil {
		return nil, err
	}
	aof, err := r.aofPath(ctx, dataDir)
	if err != nil {
		return nil, err
	}
	o.progress("taking a safety backup of the current data first")
	safetyOpts := o.Options
	safetyOpts.Reason = "pre-restore safety copy"
	safety, err := Take(ctx, cli, safetyOpts)
	if err != nil {
		return nil, fmt.Errorf("safety backup failed, nothing changed: %w", err)
	}
	res := &RestoreResult{File: o.File, SafetyCopy: safety.Path}
	target := path.Join(dataDir, dbfile)

	o.progress("stopping %s", r.Name)
	timeout := int(o.StopTimeout.Seconds())
	if _, err := cli.ContainerStop(ctx, r.ID, client.ContainerStopOptions{Timeout: &timeout}); err != nil {
		return nil, fmt.Errorf("stopping %s: %w (nothing changed)", r.Name, err)
	}
	// From here on, any failure puts the safety copy back.
	rollback := func(cause error) error {
		o.progress("restore failed (%v); putting the safety copy back", cause)
		rbCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
		defer cancel()
		_, _ = cli.ContainerStop(rbCtx, r.ID, client.ContainerStopOptions{Timeout: &timeout})
		var errs []error
		if err := putFile(rbCtx, cli, r.ID, target, safety.Path, safety.Header); err != nil {
			errs = append(errs, fmt.Errorf("putting the safety copy back: %w", err))
		}
		if res.AOFMoved != "" {
			if err := moveInVolume(rbCtx, cli, r, res.AOFMoved, aof); err != nil {
				errs = append(errs, fmt.Errorf("moving the AOF back: %w", err))
			}
		}
		if _, err := cli.ContainerStart(rbCtx, r.ID, client.ContainerStartOptions{}); err != nil {
			errs = append(errs, fmt.Errorf("starting %s: %w", r.Name, err))
		}
		if len(errs) > 0 {
			return fmt.Errorf("restore failed: %v; rolling back ALSO failed: %w; the safety copy is %s", cause, errors.Join(errs...), safety.Path)
		}
		return fmt.Errorf("restore failed and was rolled back (Redis has its previous data, safety copy %s): %w", safety.Path, cause)
	}
	if aof != "" {
		aside := aof + ".difyctl-aside-" + o.Now().UTC().Format("20060102T150405Z")
		o.progress("appendonly is on: moving %s aside to %s", aof, aside)
		if err := moveInVolume(ctx, cli, r, aof, aside); err != nil {
			return nil, rollback(err)
		}
		res.AOFMoved = aside
	}
	o.progress("replacing %s in %s", target, r.Name)
	if err := putFile(ctx, cli, r.ID, target, o.File, safety.Header); err != nil {
		return nil, rollback(err)
	}
	o.progress("starting %s", r.Name)
	if _, err := cli.ContainerStart(ctx, r.ID, client.ContainerStartOptions{}); err != nil {
		return nil, rollback(err)
	}
	wctx, cancel := context.WithTimeout(ctx, o.WaitTimeout)
	defer cancel()
	if _, err := health.Wait(wctx, cli, r.ID, health.Healthy); err != nil {
		return nil, rollback(fmt.Errorf("%s did not become healthy: %w", r.Name, err))
	}
	keys, err := r.KeyCount(ctx)
	if err != nil {
		return nil, rollback(err)
	}
	res.Keys = keys
	// Keys with an expiry may have lapsed since the backup; no other may be missing.
	if keys > info.Keys || keys < info.Keys-info.Expires {
		return nil, rollback(fmt.Errorf("Redis holds %d keys after loading a file of %d (%d with expiry)", keys, info.Keys, info.Expires))
	}
	return res, nil
}

// aofPath returns the AOF file or directory to move aside, or "" when
// appendonly is off or nothing exists.
func (r *Redis) aofPath(ctx context.Context, dataDir string) (string, error) {
	on, err := r.Config(ctx, "appendonly")
	if err != nil || on != "yes" {
		return "", err
	}
	name, _ := r.Config(ctx, "appenddirname") // Redis 7: a directory of AOF files
	if name == "" {
		if name, err = r.Config(ctx, "appendfilename"); err != nil {
			return "", err
		}
	}
	return path.Join(dataDir, name), nil
}

// putFile writes the local file src to dst inside the (stopped) container
// through the archive API, with the ownership and mode hdr gives.
func putFile(ctx context.Context, cli *client.Client, id, dst, src string, hdr tarHeader) error {
	f, err := os.Open(src)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	mode := hdr.Mode
	if mode == 0 {
		mode = 0o644
	}
	pr, pw := io.Pipe()
	go func() {
		tw := tar.NewWriter(pw)
		err := tw.WriteHeader(&tar.Header{Name: path.Base(dst), Size: st.Size(), Mode: mode, Uid: hdr.UID, Gid: hdr.GID, ModTime: time.Now(), Typeflag: tar.TypeReg})
		if err == nil {
			_, err = io.Copy(tw, f)
		}
		if err == nil {
			err = tw.Close()
		}
		pw.CloseWithError(err)
	}()
	_, err = cli.CopyToContainer(ctx, id, client.CopyToContainerOptions{DestinationPath: path.Dir(dst), Content: pr, CopyUIDGID: true})
	pr.CloseWithError(err)
	if err != nil {
		return fmt.Errorf("writing %s into the container: %w", dst, err)
	}
	return nil
}

// moveInVolume renames a file or directory in the stopped Redis container's
// data with a short-lived helper container of the same image that mounts the
// same volumes (bind mounts and named volumes alike).
func moveInVolume(ctx context.Context, cli *client.Client, r *Redis, from, to string) error {
	cfg := &container.Config{
		Image:      r.inspected.Image,
		Entrypoint: []string{"sh", "-c", `[ ! -e "$1" ] || mv "$1" "$2"`, "difyctl-move"},
		Cmd:        []string{from, to},
		User:       "0",
		Labels:     map[string]string{"org.difyctl.helper": "restore"},
	}
	res, err := cli.ContainerCreate(ctx, client.ContainerCreateOptions{Config: cfg, HostConfig: &container.HostConfig{VolumesFrom: []string{r.ID}, NetworkMode: "none"}})
	if err != nil {
		return fmt.Errorf("helper container: %w", err)
	}
	defer cli.ContainerRemove(context.WithoutCancel(ctx), res.ID, client.ContainerRemoveOptions{Force: true})
	if _, err := cli.ContainerStart(ctx, res.ID, client.ContainerStartOptions{}); err != nil {
		return fmt.Errorf("helper container: %w", err)
	}
	st, err := health.Wait(ctx, cli, res.ID, health.CompletedSuccessfully)
	if err != nil {
		return fmt.Errorf("moving %s to %s: %w", from, to, err)
	}
	_ = st
	return nil
}

// Latest returns the newest backup in dir.
func Latest(dir string) (string, error) {
	entries, err := List(dir)
	if err != nil {
		return "", err
	}
	if len(entries) == 0 {
		return "", fmt.Errorf("no backups in %s", dir)
	}
	return entries[len(entries)-1].Path, nil
}

// IsOurs reports whether a path names a difyctl backup.
func IsOurs(p string) bool {
	_, ok := ParseName(path.Base(strings.ReplaceAll(p, "\\", "/")))
	return ok
}
