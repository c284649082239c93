package backup

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path"
	"time"

	"github.com/moby/moby/client"

	"github.com/difyctl/difyctl/backup/rdb"
	"github.com/difyctl/difyctl/health"
	"github.com/difyctl/difyctl/internal/engine"
	"github.com/difyctl/difyctl/internal/journal"
)

// RestoreOptions for a restore.
type RestoreOptions struct {
	Options
	ProjectDir  string        // where the journal is kept (journal.Path)
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

// OpRestoreRedis is the journal operation of a Redis restore.
const OpRestoreRedis = "restore-redis"

// Restore puts a verified backup back into the project's Redis:
//
//  1. verify the file (walk, CRC-64, manifest) once, unless the caller
//     already did, and refuse an RDB version newer than the running server
//     loads; the upload reads the same open descriptor;
//  2. take a safety backup of the current data (kept like any backup);
//  3. write the project's journal (internal/journal), then stop Redis,
//     write the backup into its data directory under a temporary name
//     through the archive API (with appendonly on, a new AOF too), and have
//     a short-lived helper container on the same volumes sync and rename it
//     over the dump (moving the old AOF aside): the volume holds the whole
//     old file or the whole new one at every instant;
//  4. start Redis, wait for it to be healthy, and check its key count
//     against the file: the point of no return, recorded in the journal,
//     which is then removed;
//  5. if anything fails before that point, an interrupt included, put the
//     safety copy back (settleRestore, the same code that settles the
//     journal of a killed run on the next command) and start Redis again.
//
// The caller holds the project and backup locks.
func Restore(ctx context.Context, cli engine.Engine, o RestoreOptions) (*RestoreResult, error) {
	vf := o.Verified
	if vf == nil {
		var err error
		if vf, err = OpenVerified(o.File); err != nil {
			return nil, fmt.Errorf("refusing to restore %s: %w", o.File, err)
		}
		defer vf.Close()
	}
	r, rec, err := planRestore(ctx, cli, o, vf)
	if err != nil {
		return nil, err
	}
	o.progress("taking a safety backup of the current data first")
	safetyOpts := o.Options
	safetyOpts.Reason = SafetyReason
	safety, err := Take(ctx, cli, safetyOpts)
	if err != nil {
		return nil, fmt.Errorf("safety backup failed, nothing changed: %w", err)
	}
	rec.SafetyCopy, rec.Header = safety.Path, safety.Header
	if rec.AOF != nil {
		rec.AOFAside = rec.AOF.path(rec.DataDir) + ".difyctl-aside-" + o.Now().UTC().Format("20060102T150405Z")
	}
	h, err := journal.Begin(o.ProjectDir, o.Project, OpRestoreRedis, rec)
	if err != nil {
		return nil, fmt.Errorf("restore not started, nothing changed: %w", err)
	}
	res := &RestoreResult{File: o.File, SafetyCopy: safety.Path, AOFMoved: rec.AOFAside}
	if res.Keys, err = replace(ctx, cli, r, rec, h, vf, o.progress); err != nil {
		return nil, abandon(ctx, cli, h, rec, o, err)
	}
	if err := h.Done(); err != nil {
		return res, fmt.Errorf("restored %s (Redis holds %d keys), but %w", o.File, res.Keys, err)
	}
	return res, nil
}

// planRestore finds the running Redis, where its data lives, and refuses a
// file it cannot load; nothing is changed.
func planRestore(ctx context.Context, cli engine.Engine, o RestoreOptions, vf *Verified) (*Redis, *restoreRecord, error) {
	r, err := FindRedis(ctx, cli, o.Project, o.Service, o.Password)
	if err != nil {
		return nil, nil, err
	}
	server, dataDir, dbfile, err := r.DumpLocation(ctx)
	if err != nil {
		return nil, nil, err
	}
	maxV, err := rdb.LoadableBy(server["redis_version"])
	if err != nil {
		return nil, nil, err
	}
	if vf.Info.Version > maxV {
		return nil, nil, fmt.Errorf("refusing to restore %s: RDB version %d is newer than Redis %s loads (%d); restore it into a newer Redis", o.File, vf.Info.Version, Shown(server["redis_version"]), maxV)
	}
	aof, err := r.aof(ctx)
	if err != nil {
		return nil, nil, err
	}
	low, high := keyBounds(vf.Info)
	rec := &restoreRecord{File: o.File, Container: r.ID, Name: r.Name, Image: r.inspected.Image, Service: o.Service,
		DataDir: dataDir, DBFile: dbfile, AOF: aof, KeysLow: low, KeysHigh: high, Keys: vf.Info.Keys,
		StopTimeout: o.StopTimeout, WaitTimeout: o.WaitTimeout}
	return r, rec, nil
}

// keyBounds is how many keys Redis may hold after loading a file of info:
// info.Keys leaves out the keys Redis drops (empty ones at load, hashes
// whose every field has expired, loaded then expired within moments). Keys
// with an expiry may have lapsed since the backup, and hashes with field
// expiries go once their last field does; no other may be missing.
func keyBounds(info rdb.Info) (low, high int64) {
	return info.Keys - info.Expires - info.FieldExpiryHashes, info.Keys + info.Dropped.FieldsExpired
}

// replace carries the restore from the stop to its point of no return,
// recording each step in the journal before and after it.
func replace(ctx context.Context, cli engine.Engine, r *Redis, rec *restoreRecord, h *journal.Handle, vf *Verified, progress func(string, ...any)) (int64, error) {
	step := func(name, format string, a ...any) error {
		if format != "" {
			progress(format, a...)
		}
		return h.Step(name)
	}
	if err := step(stepStopping, "stopping %s", r.Name); err != nil {
		return 0, err
	}
	timeout := int(rec.StopTimeout.Seconds())
	if _, err := cli.ContainerStop(ctx, r.ID, client.ContainerStopOptions{Timeout: &timeout}); err != nil {
		return 0, fmt.Errorf("stopping %s: %w", r.Name, err)
	}
	if err := step(stepStopped, ""); err != nil {
		return 0, err
	}
	if err := step(stepUploading, "writing %s into %s of %s as %s", rec.File, rec.DataDir, r.Name, path.Base(rec.tempDump())); err != nil {
		return 0, err
	}
	if err := putFiles(ctx, cli, r.ID, rec.DataDir, rec.Header, rec.uploads(vf)...); err != nil {
		return 0, err
	}
	if err := step(stepUploaded, ""); err != nil {
		return 0, err
	}
	what := rec.target()
	if rec.AOF != nil {
		what += " and " + rec.AOF.path(rec.DataDir) + " (the old AOF kept as " + rec.AOFAside + ")"
	}
	if err := step(stepReplacing, "replacing %s in %s (sync, rename)", what, r.Name); err != nil {
		return 0, err
	}
	if err := runInVolume(ctx, cli, rec, "replacing "+what, swapScript, rec.scriptArgs()...); err != nil {
		return 0, err
	}
	if err := step(stepReplaced, ""); err != nil {
		return 0, err
	}
	return startAndCount(ctx, cli, r, rec, h, progress)
}

// startAndCount starts Redis on the replaced data, waits until it is
// healthy, checks its key count and commits.
func startAndCount(ctx context.Context, cli engine.Engine, r *Redis, rec *restoreRecord, h *journal.Handle, progress func(string, ...any)) (int64, error) {
	if err := h.Step(stepStarting); err != nil {
		return 0, err
	}
	progress("starting %s and waiting until it has loaded the data", r.Name)
	if _, err := cli.ContainerStart(ctx, r.ID, client.ContainerStartOptions{}); err != nil {
		return 0, fmt.Errorf("starting %s: %w", r.Name, err)
	}
	wctx, cancel := context.WithTimeout(ctx, rec.WaitTimeout)
	defer cancel()
	if _, err := health.Wait(wctx, cli, r.ID, health.Healthy); err != nil {
		return 0, fmt.Errorf("%s did not become healthy: %w", r.Name, err)
	}
	keys, err := r.KeyCount(ctx)
	if err != nil {
		return 0, err
	}
	if keys > rec.KeysHigh || keys < rec.KeysLow {
		return 0, fmt.Errorf("Redis holds %d keys after loading a file it should load %d from (between %d and %d counting keys with an expiry and keys Redis drops on load)",
			keys, rec.Keys, rec.KeysLow, rec.KeysHigh)
	}
	if err := h.Commit(); err != nil {
		return 0, err
	}
	progress("%s loaded the backup: %d keys", r.Name, keys)
	return keys, nil
}

// abandon settles a restore that failed in this process (an interrupt
// included) as the next command would settle a killed one: on a context
// the signal does not cancel, after any stop already asked of the engine.
func abandon(ctx context.Context, cli engine.Engine, h *journal.Handle, rec *restoreRecord, o RestoreOptions, cause error) error {
	o.progress("restore failed (%v); settling it", cause)
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), rec.StopTimeout+rec.WaitTimeout+5*time.Minute)
	defer cancel()
	env := journal.Env{Engine: cli, Progress: o.Progress}
	out, err := settleRestore(sctx, env, h.Journal())
	if err != nil {
		return fmt.Errorf("restore failed: %v; settling it ALSO failed: %w; %s; the journal %s is kept: the next difyctl up, start or restore settles it", cause, err, redisState(sctx, cli, rec), h.Path())
	}
	if err := h.Done(); err != nil {
		return fmt.Errorf("restore failed (%v) and was settled (%s), but %w", cause, out.Detail, err)
	}
	if out.Action == journal.Finished {
		return fmt.Errorf("restore was interrupted past its point of no return and was finished: %s (%v)", out.Detail, cause)
	}
	return fmt.Errorf("restore failed and was rolled back: %s: %w", out.Detail, cause)
}

// aofConfig is where Redis keeps its AOF.
type aofConfig struct {
	FileName string `json:"fileName"`          // appendfilename
	DirName  string `json:"dirName,omitempty"` // appenddirname (Redis 7+), "" before
}

// path is the file or directory to move aside.
func (a aofConfig) path(dataDir string) string {
	if a.DirName != "" {
		return path.Join(dataDir, a.DirName)
	}
	return path.Join(dataDir, a.FileName)
}

// aof returns the AOF configuration when appendonly is on.
func (r *Redis) aof(ctx context.Context) (*aofConfig, error) {
	on, err := r.Config(ctx, "appendonly")
	if err != nil || on != "yes" {
		return nil, err
	}
	a := &aofConfig{}
	if a.FileName, err = r.Config(ctx, "appendfilename"); err != nil {
		return nil, err
	}
	if err := r.checkBaseName("appendfilename", a.FileName); err != nil {
		return nil, err
	}
	a.DirName, _ = r.Config(ctx, "appenddirname") // Redis 7+
	if a.DirName != "" {
		if err := r.checkBaseName("appenddirname", a.DirName); err != nil {
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
func putFiles(ctx context.Context, cli engine.Engine, id, destDir string, hdr tarHeader, entries ...upload) error {
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
//
// name is what the file or directory is called in the upload (a temporary
// name, renamed into place afterwards).
func aofUploads(aof aofConfig, name string, src *Verified) []upload {
	if aof.DirName == "" {
		return []upload{{Name: name, From: src}}
	}
	base := aof.FileName + ".1.base.rdb"
	manifest := fmt.Sprintf("file %s seq 1 type b\n", base)
	return []upload{
		{Name: name, Dir: true},
		{Name: path.Join(name, base), From: src},
		{Name: path.Join(name, aof.FileName+".manifest"), Data: []byte(manifest)},
	}
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
