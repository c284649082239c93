package backup

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
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
	Verified    *Verified     // File already opened and verified (nil: Restore does it)
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
//  1. verify the file (walk, CRC-64, manifest) once, unless the caller
//     already did, and refuse an RDB version newer than the running server
//     loads; the upload reads the same open descriptor;
//  2. take a safety backup of the current data (kept like any backup);
//  3. stop Redis, replace its dump through the archive API (works for bind
//     mounts and named volumes alike); with appendonly on, move the AOF aside
//     (it would win at start-up) and start a new one from the backup; start
//     Redis, wait for it to be healthy, and check its key count against the
//     file;
//  4. if anything fails after the stop, put the safety copy back and start
//     Redis again.
//
// The caller holds the backup lock.
func Restore(ctx context.Context, cli *client.Client, o RestoreOptions) (*RestoreResult, error) {
	vf := o.Verified
	if vf == nil {
		var err error
		if vf, err = OpenVerified(o.File); err != nil {
			return nil, fmt.Errorf("refusing to restore %s: %w", o.File, err)
		}
		defer vf.Close()
	}
	info := vf.Info
	r, err := FindRedis(ctx, cli, o.Project, o.Service, o.Password)
	if err != nil {
		return nil, err
	}
	server, dataDir, dbfile, err := r.DumpLocation(ctx)
	if err != nil {
		return nil, err
	}
	maxV, err := rdb.LoadableBy(server["redis_version"])
	if err != nil {
		return nil, err
	}
	if info.Version > maxV {
		return nil, fmt.Errorf("refusing to restore %s: RDB version %d is newer than Redis %s loads (%d); restore it into a newer Redis", o.File, info.Version, Shown(server["redis_version"]), maxV)
	}
	aof, err := r.aof(ctx)
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
		if err := putFiles(rbCtx, cli, r.ID, dataDir, safety.Header, upload{Name: dbfile, Src: safety.Path}); err != nil {
			errs = append(errs, fmt.Errorf("putting the safety copy back: %w", err))
		}
		if res.AOFMoved != "" {
			if err := moveInVolume(rbCtx, cli, r, aof.path(dataDir), res.AOFMoved+".failed-restore"); err != nil {
				errs = append(errs, fmt.Errorf("moving the restored AOF away: %w", err))
			} else if err := moveInVolume(rbCtx, cli, r, res.AOFMoved, aof.path(dataDir)); err != nil {
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
	uploads := []upload{{Name: dbfile, From: vf}}
	if aof != nil {
		aside := aof.path(dataDir) + ".difyctl-aside-" + o.Now().UTC().Format("20060102T150405Z")
		o.progress("appendonly is on: moving %s aside to %s and starting the AOF from the backup", aof.path(dataDir), aside)
		if err := moveInVolume(ctx, cli, r, aof.path(dataDir), aside); err != nil {
			return nil, rollback(err)
		}
		res.AOFMoved = aside
		uploads = append(uploads, aofUploads(*aof, vf)...)
	}
	o.progress("replacing %s in %s", target, r.Name)
	if err := putFiles(ctx, cli, r.ID, dataDir, safety.Header, uploads...); err != nil {
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
	// info.Keys leaves out the keys Redis drops: empty ones at load, hashes
	// whose every field has expired (loaded, then expired within moments).
	// Keys with an expiry may have lapsed since the backup, and hashes with
	// field expiries go once their last field does; no other may be missing.
	low, high := info.Keys-info.Expires-info.FieldExpiryHashes, info.Keys+info.Dropped.FieldsExpired
	if keys > high || keys < low {
		return nil, rollback(fmt.Errorf("Redis holds %d keys after loading a file it should load %d from (%d of them with an expiry, %d hashes with field expiries; %d keys Redis drops on load not counted)",
			keys, info.Keys, info.Expires, info.FieldExpiryHashes, info.Dropped.Total()))
	}
	return res, nil
}

// aofConfig is where Redis keeps its AOF.
type aofConfig struct {
	fileName string // appendfilename
	dirName  string // appenddirname (Redis 7+), "" before
}

// path is the file or directory to move aside.
func (a aofConfig) path(dataDir string) string {
	if a.dirName != "" {
		return path.Join(dataDir, a.dirName)
	}
	return path.Join(dataDir, a.fileName)
}

// aof returns the AOF configuration when appendonly is on.
func (r *Redis) aof(ctx context.Context) (*aofConfig, error) {
	on, err := r.Config(ctx, "appendonly")
	if err != nil || on != "yes" {
		return nil, err
	}
	a := &aofConfig{}
	if a.fileName, err = r.Config(ctx, "appendfilename"); err != nil {
		return nil, err
	}
	if err := r.checkBaseName("appendfilename", a.fileName); err != nil {
		return nil, err
	}
	a.dirName, _ = r.Config(ctx, "appenddirname") // Redis 7+
	if a.dirName != "" {
		if err := r.checkBaseName("appenddirname", a.dirName); err != nil {
			return nil, err
		}
	}
	return a, nil
}

// upload is one entry put into the container: a directory, or a file whose
// content is the verified backup From, the local file Src, or Data.
type upload struct {
	Name string // relative to the destination directory
	Dir  bool
	From *Verified
	Src  string
	Data []byte
}

// putFiles writes entries into destDir of the (stopped) container through
// the archive API, owned and moded as hdr says (the dump's own ownership).
func putFiles(ctx context.Context, cli *client.Client, id, destDir string, hdr tarHeader, entries ...upload) error {
	mode := hdr.Mode
	if mode == 0 {
		mode = 0o644
	}
	pr, pw := io.Pipe()
	go func() {
		tw := tar.NewWriter(pw)
		err := func() error {
			for _, e := range entries {
				h := &tar.Header{Name: e.Name, Mode: mode, Uid: hdr.UID, Gid: hdr.GID, ModTime: time.Now(), Typeflag: tar.TypeReg}
				if e.Dir {
					h.Typeflag, h.Mode, h.Name = tar.TypeDir, 0o755, e.Name+"/"
					if err := tw.WriteHeader(h); err != nil {
						return err
					}
					continue
				}
				var r io.Reader = bytes.NewReader(e.Data)
				h.Size = int64(len(e.Data))
				if e.From != nil {
					r, h.Size = e.From.Reader(), e.From.Size()
				} else if e.Src != "" {
					f, err := os.Open(e.Src)
					if err != nil {
						return err
					}
					defer f.Close()
					st, err := f.Stat()
					if err != nil {
						return err
					}
					r, h.Size = f, st.Size()
				}
				if err := tw.WriteHeader(h); err != nil {
					return err
				}
				if _, err := io.Copy(tw, r); err != nil {
					return err
				}
			}
			return tw.Close()
		}()
		pw.CloseWithError(err)
	}()
	_, err := cli.CopyToContainer(ctx, id, client.CopyToContainerOptions{DestinationPath: destDir, Content: pr, CopyUIDGID: true})
	pr.CloseWithError(err)
	if err != nil {
		return fmt.Errorf("writing into %s of the container: %w", destDir, err)
	}
	return nil
}

// aofUploads makes the AOF start from the restored RDB, since with
// appendonly on Redis loads the AOF, not dump.rdb: on Redis 7 a fresh
// appenddirname holding the RDB as its base file and a manifest naming it;
// on older Redis an appendfilename holding the RDB (an AOF with an RDB
// preamble and no commands after it).
func aofUploads(aof aofConfig, src *Verified) []upload {
	if aof.dirName == "" {
		return []upload{{Name: aof.fileName, From: src}}
	}
	base := aof.fileName + ".1.base.rdb"
	manifest := fmt.Sprintf("file %s seq 1 type b\n", base)
	return []upload{
		{Name: aof.dirName, Dir: true},
		{Name: path.Join(aof.dirName, base), From: src},
		{Name: path.Join(aof.dirName, aof.fileName+".manifest"), Data: []byte(manifest)},
	}
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
	if _, err := health.Wait(ctx, cli, res.ID, health.CompletedSuccessfully); err != nil {
		return fmt.Errorf("moving %s to %s: %w", from, to, err)
	}
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
