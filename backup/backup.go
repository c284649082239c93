package backup

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"time"

	"github.com/moby/moby/client"

	"github.com/difyctl/difyctl/backup/rdb"
	"github.com/difyctl/difyctl/internal/engine"
)

// Options for one backup.
type Options struct {
	Project   string
	Service   string
	Password  string // fallback when the container has no REDISCLI_AUTH
	Dir       string // backup directory
	Mode      string // bgsave or save
	Retention time.Duration
	KeepMin   int
	Reason    string // recorded in the manifest
	// SafetyCopyOf, set when this backup is the safety copy a restore of
	// that backup takes (its name in the directory), marks the manifest.
	SafetyCopyOf string
	Now          func() time.Time
	Progress     func(format string, a ...any) // nil: silent

	// SaveTimeout bounds the SAVE/BGSAVE (0: scaled by the dataset size,
	// see SaveTimeout).
	SaveTimeout time.Duration
}

// Result of a backup.
type Result struct {
	Path     string    `json:"path"`
	Manifest Manifest  `json:"manifest"`
	Pruned   []string  `json:"pruned,omitempty"`
	Cleaned  []string  `json:"cleanedTemporaries,omitempty"` // temporary files of killed runs removed
	Duration string    `json:"duration"`
	Header   tarHeader `json:"-"`
}

// tarHeader is the ownership and mode the dump had in the container, so a
// restore puts it back the same.
type tarHeader struct {
	UID, GID int
	Mode     int64
}

func (o *Options) progress(format string, a ...any) {
	if o.Progress != nil {
		o.Progress(format, a...)
	}
}

// Run takes one backup under the project's lock in the directory, removes
// temporary files killed runs left, then rotates the project's own
// backups, never the one just written.
func Run(ctx context.Context, cli engine.Engine, o Options) (*Result, error) {
	unlock, err := Lock(o.Dir, o.Project)
	if err != nil {
		return nil, err
	}
	defer unlock()
	cleaned, cleanErr := CleanTemps(o.Dir, o.Now())
	if cleanErr != nil {
		o.progress("warning: removing temporary files of killed runs: %v", cleanErr)
	}
	res, err := Take(ctx, cli, o)
	if err != nil {
		return nil, err
	}
	res.Cleaned = cleaned
	// Rotation only after a backup that succeeded, and only of our own files.
	l, err := ListProject(o.Dir, o.Project)
	if err != nil {
		return res, fmt.Errorf("backup written to %s, but listing for rotation failed: %w", res.Path, err)
	}
	plan := Plan(l.Own, o.Now(), o.Retention, o.KeepMin, filepath.Base(res.Path))
	if err := plan.Apply(o.Dir); err != nil {
		return res, fmt.Errorf("backup written to %s, but rotation failed: %w", res.Path, err)
	}
	for _, e := range plan.Remove {
		res.Pruned = append(res.Pruned, e.Name)
	}
	return res, nil
}

// Take saves, streams, verifies and stores one backup; the caller holds the
// lock. Nothing is left in the directory unless the backup verified.
func Take(ctx context.Context, cli engine.Engine, o Options) (*Result, error) {
	start := o.Now()
	r, err := FindRedis(ctx, cli, o.Project, o.Service, o.Password)
	if err != nil {
		return nil, err
	}
	server, dataDir, dbfile, err := r.DumpLocation(ctx)
	if err != nil {
		return nil, err
	}
	o.progress("%s in %s (Redis %s)", map[string]string{"save": "SAVE", "bgsave": "BGSAVE"}[o.Mode], r.Name, Shown(server["redis_version"]))
	if err := r.Save(ctx, o.Mode, o.SaveTimeout); err != nil {
		return nil, err
	}
	keys, err := r.KeyCount(ctx)
	if err != nil {
		return nil, err
	}
	src := path.Join(dataDir, dbfile)
	o.progress("streaming %s out of %s to %s", src, r.Name, o.Dir)
	var (
		info rdb.Info
		sum  string
		size int64
		hdr  tarHeader
	)
	name, err := writeBackupFile(o.Dir, start, func(w io.Writer) error {
		var err error
		info, sum, size, hdr, err = stream(ctx, cli, r.ID, src, w)
		return err
	})
	dst := filepath.Join(o.Dir, name)
	if err != nil {
		if name != "" {
			os.Remove(dst)
		}
		return nil, fmt.Errorf("backup of %s not kept: %w", r.Name, err)
	}
	m := Manifest{
		File: name, Size: size, SHA256: sum, RDBVersion: info.Version, RedisVersion: server["redis_version"],
		Keys: keys, RDBKeys: info.Keys, RDBExpires: info.Expires, CreatedAt: start.UTC(), Mode: o.Mode,
		Project: o.Project, Service: o.Service, Container: r.Name, Reason: o.Reason,
		SafetyCopy: o.SafetyCopyOf != "" || o.Reason == SafetyReason, SafetyCopyOf: o.SafetyCopyOf,
		RDBChecked: info.Checked,
	}
	if err := writeManifest(dst, &m); err != nil {
		os.Remove(dst)
		return nil, fmt.Errorf("backup of %s not kept: writing its manifest: %w", r.Name, err)
	}
	return &Result{Path: dst, Manifest: m, Duration: o.Now().Sub(start).Round(time.Millisecond).String(), Header: hdr}, nil
}

// stream copies the dump out of the container through the archive API into
// w, hashing it and walking it as an RDB in the same pass: the file is never
// held in memory and is verified before it is kept.
func stream(ctx context.Context, cli engine.Engine, id, src string, w io.Writer) (rdb.Info, string, int64, tarHeader, error) {
	var hdr tarHeader
	res, err := cli.CopyFromContainer(ctx, id, client.CopyFromContainerOptions{SourcePath: src})
	if err != nil {
		return rdb.Info{}, "", 0, hdr, fmt.Errorf("reading %s from the container: %w", src, err)
	}
	defer res.Content.Close()
	tr := tar.NewReader(res.Content)
	th, err := tr.Next()
	if err != nil {
		return rdb.Info{}, "", 0, hdr, fmt.Errorf("reading the archive of %s: %w", src, err)
	}
	if th.Typeflag != tar.TypeReg {
		return rdb.Info{}, "", 0, hdr, fmt.Errorf("%s is not a regular file in the container", src)
	}
	hdr = tarHeader{UID: th.Uid, GID: th.Gid, Mode: th.Mode}
	h := sha256.New()
	pr, pw := io.Pipe()
	type verdict struct {
		info rdb.Info
		err  error
	}
	done := make(chan verdict, 1)
	go func() {
		info, err := rdb.Verify(pr)
		if err != nil {
			pr.CloseWithError(err) // unblock the writer: verification stopped early
		} else {
			_, err = io.Copy(io.Discard, pr) // Verify saw the end; take what follows (nothing)
		}
		done <- verdict{info, err}
	}()
	n, copyErr := io.Copy(io.MultiWriter(w, h, pw), tr)
	pw.CloseWithError(copyErr)
	v := <-done
	switch {
	case copyErr != nil && !errors.Is(copyErr, v.err):
		// The copy failed on its own (disk full, engine gone): that is the cause,
		// whatever the verifier then saw of a cut stream.
		return v.info, "", n, hdr, fmt.Errorf("copying %s: %w", src, copyErr)
	case v.err != nil:
		return v.info, "", n, hdr, fmt.Errorf("%s failed verification: %w", src, v.err)
	case n != th.Size:
		return v.info, "", n, hdr, fmt.Errorf("copied %d of %d bytes of %s", n, th.Size, src)
	}
	return v.info, hex.EncodeToString(h.Sum(nil)), n, hdr, nil
}

// VerifyFile verifies a stored backup: the RDB walk and checksum, and the
// manifest's size and SHA-256 when a manifest exists (see OpenVerified).
func VerifyFile(p string) (rdb.Info, *Manifest, error) {
	v, err := OpenVerified(p)
	if v == nil {
		return rdb.Info{}, nil, err
	}
	if err == nil {
		v.Close()
	}
	return v.Info, v.Manifest, err
}

func short(s string) string {
	if len(s) > 12 {
		return s[:12]
	}
	return s
}
