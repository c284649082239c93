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
	"github.com/difyctl/difyctl/internal/atomicfile"
	"github.com/difyctl/difyctl/internal/cmdutil/inputfile"
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
	Now       func() time.Time
	Progress  func(format string, a ...any) // nil: silent
}

// Result of a backup.
type Result struct {
	Path     string    `json:"path"`
	Manifest Manifest  `json:"manifest"`
	Pruned   []string  `json:"pruned,omitempty"`
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

// Run takes one backup under the directory's lock, then rotates.
func Run(ctx context.Context, cli *client.Client, o Options) (*Result, error) {
	unlock, err := Lock(o.Dir)
	if err != nil {
		return nil, err
	}
	defer unlock()
	res, err := Take(ctx, cli, o)
	if err != nil {
		return nil, err
	}
	// Rotation only after a backup that succeeded.
	entries, err := List(o.Dir)
	if err != nil {
		return res, fmt.Errorf("backup written to %s, but listing for rotation failed: %w", res.Path, err)
	}
	plan := Plan(entries, o.Now(), o.Retention, o.KeepMin)
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
func Take(ctx context.Context, cli *client.Client, o Options) (*Result, error) {
	start := o.Now()
	r, err := FindRedis(ctx, cli, o.Project, o.Service, o.Password)
	if err != nil {
		return nil, err
	}
	server, dataDir, dbfile, err := r.DumpLocation(ctx)
	if err != nil {
		return nil, err
	}
	o.progress("%s in %s (Redis %s)", map[string]string{"save": "SAVE", "bgsave": "BGSAVE"}[o.Mode], r.Name, server["redis_version"])
	if err := r.Save(ctx, o.Mode); err != nil {
		return nil, err
	}
	keys, err := r.KeyCount(ctx)
	if err != nil {
		return nil, err
	}
	src := path.Join(dataDir, dbfile)
	name := NewName(o.Dir, start)
	dst := filepath.Join(o.Dir, name)
	o.progress("streaming %s out of %s to %s", src, r.Name, dst)
	var (
		info rdb.Info
		sum  string
		size int64
		hdr  tarHeader
	)
	err = atomicfile.Write(dst, FileMode, func(w io.Writer) error {
		var err error
		info, sum, size, hdr, err = stream(ctx, cli, r.ID, src, w)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("backup of %s not kept: %w", r.Name, err)
	}
	m := Manifest{
		File: name, Size: size, SHA256: sum, RDBVersion: info.Version, RedisVersion: server["redis_version"],
		Keys: keys, RDBKeys: info.Keys, RDBExpires: info.Expires, CreatedAt: start.UTC(), Mode: o.Mode,
		Project: o.Project, Service: o.Service, Container: r.Name, Reason: o.Reason,
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
func stream(ctx context.Context, cli *client.Client, id, src string, w io.Writer) (rdb.Info, string, int64, tarHeader, error) {
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
// manifest's size and SHA-256 when a manifest exists.
func VerifyFile(p string) (rdb.Info, *Manifest, error) {
	// A missing, unreadable or non-regular file is an input-file error (exit 2).
	if st, err := os.Stat(p); err == nil && !st.Mode().IsRegular() {
		return rdb.Info{}, nil, inputfile.Wrap(p, errors.New("is not a regular file (a directory?), not a backup"))
	}
	f, err := os.Open(p)
	if err != nil {
		return rdb.Info{}, nil, inputfile.Mark(err)
	}
	defer f.Close()
	h := sha256.New()
	info, err := rdb.Verify(io.TeeReader(f, h))
	if err != nil {
		return info, nil, err
	}
	m, merr := ReadManifest(p)
	if merr != nil {
		if errors.Is(merr, os.ErrNotExist) {
			return info, nil, nil
		}
		return info, nil, merr
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != m.SHA256 || info.Size != m.Size {
		return info, m, fmt.Errorf("%s does not match its manifest (sha256 %s, size %d; manifest says %s, %d)", p, got[:12], info.Size, short(m.SHA256), m.Size)
	}
	return info, m, nil
}

func short(s string) string {
	if len(s) > 12 {
		return s[:12]
	}
	return s
}
