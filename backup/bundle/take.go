package bundle

import (
	"archive/tar"
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"filippo.io/age"
	"github.com/moby/moby/client"

	"github.com/difyctl/difyctl/backup"
	"github.com/difyctl/difyctl/compose"
	"github.com/difyctl/difyctl/internal/atomicfile"
	"github.com/difyctl/difyctl/internal/engine"
	"github.com/difyctl/difyctl/templates"
)

// Options for one bundle.
type Options struct {
	Project       string
	ProjectDir    string
	Dir           string // where bundles are kept
	Recipients    []age.Recipient
	RedisPassword string // fallback when the Redis container has no REDISCLI_AUTH
	Retention     time.Duration
	KeepMin       int
	Reason        string
	SafetyCopyOf  string // set on a restore's safety bundle: the bundle it protects against
	Parallel      int    // parts taken at once (default 3)
	Version       string // difyctl's version, recorded
	Now           func() time.Time
	Progress      func(format string, a ...any)
	// Free reports the free bytes where the bundle is written (nil: statfs).
	Free func(dir string) (int64, error)
	tm   *timings // the steps of the bundle being taken
}

func (o *Options) progress(format string, a ...any) {
	if o.Progress != nil {
		o.Progress(format, a...)
	}
}

func (o *Options) now() time.Time {
	if o.Now == nil {
		return time.Now()
	}
	return o.Now()
}

// Result of a bundle.
type Result struct {
	Path     string   `json:"path"`
	Manifest Manifest `json:"manifest"`
	Pruned   []string `json:"pruned,omitempty"`
	Cleaned  []string `json:"cleanedTemporaries,omitempty"`
}

// tempPrefix starts the name of a bundle being written by project's runs.
func tempPrefix(project string) string { return ".bundle-" + project + "-" }

// Run takes a bundle under the project's backup lock in o.Dir, first
// removing what runs of the project that were killed left (none can be
// running: we hold the lock), then rotates the project's bundles, never
// the one just written. A bundle that failed is never kept and prunes
// nothing.
func Run(ctx context.Context, e engine.Engine, o Options) (*Result, error) {
	unlock, err := backup.Lock(o.Dir, o.Project)
	if err != nil {
		return nil, err
	}
	defer unlock()
	cleaned := CleanTemps(o.Dir, o.Project)
	res, err := Take(ctx, e, o)
	if err != nil {
		return nil, err
	}
	res.Cleaned = cleaned
	pruned, err := Prune(o.Dir, o.Project, o.now(), o.Retention, o.KeepMin, filepath.Base(res.Path))
	res.Pruned = pruned
	if err != nil {
		return res, fmt.Errorf("bundle written to %s, but rotation failed: %w", res.Path, err)
	}
	return res, nil
}

// CleanTemps removes the temporary directories of project's killed runs;
// the caller holds the project's backup lock.
func CleanTemps(dir, project string) []string {
	des, _ := os.ReadDir(dir)
	var removed []string
	for _, de := range des {
		if de.IsDir() && strings.HasPrefix(de.Name(), tempPrefix(project)) && strings.Contains(de.Name(), ".tmp-") {
			if os.RemoveAll(filepath.Join(dir, de.Name())) == nil {
				removed = append(removed, de.Name())
			}
		}
	}
	return removed
}

// Take writes one bundle of the running deployment; the caller holds the
// lock. The parts are written into a temporary directory, verified, and
// the directory renamed to its final name only once complete: on any
// error (or a kill) nothing is left under a bundle's name.
func Take(ctx context.Context, e engine.Engine, o Options) (*Result, error) {
	start := o.now()
	tm := &timings{}
	o.tm = tm
	t0 := time.Now()
	d, err := discover(ctx, e, o.Project, o.ProjectDir)
	if err != nil {
		return nil, err
	}
	tm.since("discover", t0)
	if d.DB == nil {
		return nil, fmt.Errorf("project %s has no running database (db_postgres or db_mysql); a bundle needs it: start it (difyctl up)", o.Project)
	}
	if err := os.MkdirAll(o.Dir, backup.DirMode); err != nil {
		return nil, fmt.Errorf("backup directory %s: %w", o.Dir, err)
	}
	t0 = time.Now()
	est, err := o.checkSpace(ctx, e, d)
	if err != nil {
		return nil, err
	}
	tm.since("estimate", t0)
	tmp, err := os.MkdirTemp(o.Dir, tempPrefix(o.Project)+start.UTC().Format(stampLayout)+".tmp-")
	if err != nil {
		return nil, fmt.Errorf("creating a temporary directory in %s: %w", o.Dir, est.explain(diskErr(err)))
	}
	kept := false
	defer func() {
		if !kept {
			os.RemoveAll(tmp)
		}
	}()
	if err := os.Chmod(tmp, backup.DirMode); err != nil {
		return nil, err
	}
	m := o.newManifest(d, start)
	t0 = time.Now()
	// Each part is read back (size and SHA-256 of the stored file) as soon
	// as it is written, while the others still stream.
	ps, err := runTasks(ctx, o.tasks(e, d, tmp), o.Parallel, tmp)
	if err != nil {
		return nil, est.explain(err)
	}
	tm.since("parts (in parallel, each read back)", t0)
	m.Parts = ps
	t0 = time.Now()
	m.Duration = o.now().Sub(start).Round(time.Millisecond).String()
	m.Timings = tm.list()
	if err := writeManifest(tmp, m); err != nil {
		return nil, fmt.Errorf("bundle not kept: writing its manifest: %w", est.explain(diskErr(err)))
	}
	if err := atomicfile.SyncDir(tmp); err != nil {
		return nil, err
	}
	final, err := rename(tmp, o.Dir, start)
	if err != nil {
		return nil, err
	}
	kept = true
	tm.since("manifest and rename", t0)
	m.Timings = tm.list()
	return &Result{Path: final, Manifest: *m}, nil
}

// newManifest starts the manifest of a bundle of deployment d begun at
// start; the parts and the duration are filled in once written.
func (o *Options) newManifest(d *deployment, start time.Time) *Manifest {
	m := &Manifest{Format: Format, Project: o.Project, CreatedAt: start.UTC(), DifyVersion: difyRelease(d.Images),
		Difyctl: o.Version, DBType: d.DB.Type, Services: d.Services, Images: d.Images, Encrypted: len(o.Recipients) > 0,
		Reason: o.Reason, SafetyCopy: o.SafetyCopyOf != "", SafetyCopyOf: o.SafetyCopyOf}
	if env, err := compose.Environment(o.ProjectDir, nil); err == nil {
		m.VectorStore = env["VECTOR_STORE"]
		for _, p := range strings.Split(env["COMPOSE_PROFILES"], ",") {
			if p = strings.TrimSpace(p); p != "" {
				m.Profiles = append(m.Profiles, p)
			}
		}
	}
	return m
}

// runTasks runs the part-writing tasks, at most parallel at once (3 when
// parallel <= 0), and returns their parts in task order, each read back
// from dir (size and SHA-256 as recorded) as soon as its task finished and
// its wall time recorded. The first failure cancels the rest; any failure
// (or ctx's end) is the error.
func runTasks(ctx context.Context, tasks []task, parallel int, dir string) ([]Part, error) {
	parts := make([][]Part, len(tasks))
	errs := make([]error, len(tasks))
	n := parallel
	if n <= 0 {
		n = 3
	}
	sem := make(chan struct{}, n)
	tctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	for i, t := range tasks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case sem <- struct{}{}:
			case <-tctx.Done():
				errs[i] = tctx.Err()
				return
			}
			defer func() { <-sem }()
			t0 := time.Now()
			ps, err := t(tctx)
			if err == nil {
				// The stored files read back: sizes and hashes as recorded.
				for j := range ps {
					if err = checkStored(dir, ps[j]); err != nil {
						break
					}
					ps[j].Took = time.Since(t0).Round(time.Millisecond).String()
				}
			}
			if err != nil {
				cancel() // one failed part: the bundle is not kept, stop the rest
			}
			parts[i], errs[i] = ps, err
		}()
	}
	wg.Wait()
	var failed []error
	for _, err := range errs {
		if err != nil && !errors.Is(err, context.Canceled) {
			failed = append(failed, err)
		}
	}
	if len(failed) == 0 && ctx.Err() != nil {
		failed = append(failed, ctx.Err())
	}
	if len(failed) > 0 {
		return nil, fmt.Errorf("bundle not kept (nothing written under a bundle's name): %w", errors.Join(failed...))
	}
	var all []Part
	for _, ps := range parts {
		all = append(all, ps...)
	}
	return all, nil
}

// rename moves the complete temporary directory to the first free bundle
// name and syncs the backup directory.
func rename(tmp, dir string, t time.Time) (string, error) {
	base := "bundle_" + t.UTC().Format(stampLayout)
	for n := 1; ; n++ {
		name := base
		if n > 1 {
			name = fmt.Sprintf("%s_%d", base, n)
		}
		dst := filepath.Join(dir, name)
		if _, err := os.Lstat(dst); !errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err := os.Rename(tmp, dst); err != nil {
			if errors.Is(err, fs.ErrExist) || errors.Is(err, syscall.ENOTEMPTY) {
				continue
			}
			return "", fmt.Errorf("renaming the bundle into %s: %w", dst, err)
		}
		return dst, atomicfile.SyncDir(dir)
	}
}

// checkStored reads a stored part back and compares its size and SHA-256
// with what was recorded while it was written.
func checkStored(dir string, p Part) error {
	f, err := os.Open(filepath.Join(dir, p.File))
	if err != nil {
		return fmt.Errorf("part %s: %w", p.Name, err)
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return fmt.Errorf("part %s: reading it back: %w", p.Name, err)
	}
	if n != p.Size || hex.EncodeToString(h.Sum(nil)) != p.SHA256 {
		return fmt.Errorf("part %s: read back %d bytes with another SHA-256 than written (%d): the disk lost data", p.Name, n, p.Size)
	}
	return nil
}

// difyRelease is the Dify release the deployment runs: the api image's tag
// when it is a version, else the release difyctl's templates describe.
func difyRelease(images map[string]string) string {
	if img := images["api"]; img != "" {
		if i := strings.LastIndex(img, ":"); i > 0 && !strings.Contains(img[i:], "/") {
			if tag := img[i+1:]; validVersion(tag) {
				return tag
			}
		}
	}
	return templates.DifyVersion()
}

func validVersion(v string) bool {
	_, ok := parseVersion(v)
	return ok
}

func parseVersion(v string) ([3]int, bool) {
	var out [3]int
	v = strings.TrimPrefix(v, "v")
	fs := strings.SplitN(v, ".", 3)
	if len(fs) < 2 {
		return out, false
	}
	for i, f := range fs {
		f, _, _ = strings.Cut(f, "-")
		n, err := strconv.Atoi(f)
		if err != nil {
			return out, false
		}
		out[i] = n
	}
	return out, true
}

// NewerRelease reports whether release a is newer than b.
func NewerRelease(a, b string) bool {
	va, ok1 := parseVersion(a)
	vb, ok2 := parseVersion(b)
	if !ok1 || !ok2 {
		return false
	}
	for i := range va {
		if va[i] != vb[i] {
			return va[i] > vb[i]
		}
	}
	return false
}

type task func(ctx context.Context) ([]Part, error)

func (o *Options) partFile(name string) string {
	if len(o.Recipients) > 0 {
		return name + ".age"
	}
	return name
}

// tasks are the parts to take; the files of a paused service are one task
// (paused once), everything else one task per part.
func (o *Options) tasks(e engine.Engine, d *deployment, dir string) []task {
	var ts []task
	db := *d.DB
	ts = append(ts, func(ctx context.Context) ([]Part, error) {
		p, err := o.dumpDB(ctx, e, dir, db, KindDatabase, "database", "database.dump.zst")
		return []Part{p}, err
	})
	if d.Vector != nil {
		v := *d.Vector
		ts = append(ts, func(ctx context.Context) ([]Part, error) {
			p, err := o.dumpDB(ctx, e, dir, v, KindVector, "vector/"+v.Service, "vector-"+v.Service+".dump.zst")
			return []Part{p}, err
		})
	}
	if d.Redis != "" {
		ts = append(ts, func(ctx context.Context) ([]Part, error) {
			p, err := o.redis(ctx, e, dir)
			return []Part{p}, err
		})
	}
	paused := map[string][]fileTarget{}
	var pausedOrder []string
	for _, f := range d.Files {
		if f.Paused {
			if paused[f.Service] == nil {
				pausedOrder = append(pausedOrder, f.Service)
			}
			paused[f.Service] = append(paused[f.Service], f)
			continue
		}
		ts = append(ts, func(ctx context.Context) ([]Part, error) {
			p, err := o.files(ctx, e, dir, f, MethodTar)
			return []Part{p}, err
		})
	}
	for _, svc := range pausedOrder {
		fts := paused[svc]
		ts = append(ts, func(ctx context.Context) ([]Part, error) { return o.pausedFiles(ctx, e, dir, fts) })
	}
	ts = append(ts, func(ctx context.Context) ([]Part, error) {
		p, err := o.config(dir)
		return []Part{p}, err
	})
	return ts
}

// dumpDB streams a logical dump out of the database container: pg_dump -Fc
// (or mysqldump) runs inside it, its stdout is compressed and hashed on
// the way to the part's file; the password travels in the exec's
// environment. A PostgreSQL dump's table of contents is read back by
// pg_restore --list in the same container from a copy of the stream.
func (o *Options) dumpDB(ctx context.Context, e engine.Engine, dir string, t dbTarget, kind, name, file string) (Part, error) {
	p := Part{Name: name, File: o.partFile(file), Kind: kind, Service: t.Service, Database: t.Database, Versions: map[string]string{}}
	var cmd []string
	if t.Type == "mysql" {
		p.Method = MethodMysqldump
		cmd = []string{"mysqldump", "-uroot", "--single-transaction", "--routines", "--triggers", "--events", "--hex-blob", t.Database}
	} else {
		p.Method = MethodPgDump
		// -Z1: the engine's exec stream is the narrow part (measured on
		// engine 20.10: 8 MB/s for an uncompressed dump that pg_dump writes
		// at 60 MB/s inside the container), so the dump is compressed where
		// it is made, at zlib's fastest level (level 6, the default, costs
		// a third more time for a few percent); zstd then stores it.
		cmd = []string{"pg_dump", "-Fc", "-Z1", "-U", t.User, "-d", t.Database}
	}
	// The server's and the dump tool's versions are asked while the dump
	// streams (each exec costs the engine seconds when it is busy).
	versions := map[string]string{}
	versionsDone := make(chan error, 1)
	go func() {
		t0 := time.Now()
		defer o.tm.since(name+": versions asked (while the dump streams)", t0)
		if t.Type == "mysql" {
			if v, err := execOutput(ctx, e, t.ID, t.Env, []string{"mysql", "-uroot", "-N", "-e", "SELECT VERSION()"}); err == nil {
				versions["server"] = v
			}
			versionsDone <- nil
			return
		}
		v, err := execOutput(ctx, e, t.ID, t.Env, []string{"psql", "-U", t.User, "-d", t.Database, "-tAc", "SHOW server_version"})
		if err != nil {
			versionsDone <- fmt.Errorf("part %s: asking %s (%s) for its version: %w; is the database up? (difyctl ps)", name, t.Name, t.Service, err)
			return
		}
		versions["server"] = v
		if v, err := execOutput(ctx, e, t.ID, nil, []string{"pg_dump", "--version"}); err == nil {
			versions["pg_dump"] = v
		}
		versionsDone <- nil
	}()
	joined := false
	joinVersions := func() error {
		joined = true
		err := <-versionsDone
		for k, v := range versions {
			p.Versions[k] = v
		}
		return err
	}
	defer func() {
		if !joined {
			<-versionsDone // a failed dump: the question ends with it
		}
	}()
	o.progress("%s: %s in %s", name, cmd[0], t.Name)
	t0 := time.Now()
	w, err := createPart(dir, p.File, o.Recipients)
	if err != nil {
		return p, fmt.Errorf("part %s: %w", name, diskErr(err))
	}
	var sink io.Writer = w
	var toc *tocReader
	if t.Type != "mysql" {
		toc = startTOC(ctx, e, t)
		sink = io.MultiWriter(w, toc)
	}
	check := checkerFor(p, t.Type)
	pr, pw := io.Pipe()
	type verdict struct {
		counts map[string]int64
		err    error
	}
	done := make(chan verdict, 1)
	go func() {
		c, err := checkedCopy(sink, pr, check)
		pr.CloseWithError(err)
		done <- verdict{c, err}
	}()
	res, execErr := execStream(ctx, e, t.ID, t.Env, cmd, nil, pw)
	pw.CloseWithError(execErr)
	v := <-done
	o.tm.since(name+": "+cmd[0]+" streamed", t0)
	t0 = time.Now()
	var tocCounts map[string]int64
	var tocErr error
	if toc != nil {
		tocCounts, tocErr = toc.finish()
		o.tm.since(name+": table of contents read back (after the stream)", t0)
	}
	switch {
	case execErr != nil:
		w.abort()
		return p, fmt.Errorf("part %s: %s in %s: %w", name, cmd[0], t.Name, execErr)
	case res.Code != 0:
		w.abort()
		return p, fmt.Errorf("part %s: %s in %s exited %d: %s", name, cmd[0], t.Name, res.Code, firstLines(res.Stderr, 5))
	case v.err != nil:
		w.abort()
		return p, fmt.Errorf("part %s: %w", name, v.err)
	case tocErr != nil:
		w.abort()
		return p, fmt.Errorf("part %s: %w", name, tocErr)
	}
	if err := joinVersions(); err != nil {
		w.abort()
		return p, err
	}
	if err := w.finish(&p); err != nil {
		return p, fmt.Errorf("part %s: %w", name, err)
	}
	p.Counts = v.counts
	for k, n := range tocCounts {
		p.Counts[k] = n
	}
	o.progress("%s: %s from %s (%s stored)", name, human(p.RawSize), t.Name, human(p.Size))
	return p, nil
}

// tocReader feeds a copy of a PostgreSQL dump to pg_restore --list in the
// database container, which reads the header and table of contents back.
type tocReader struct {
	pw   *io.PipeWriter
	done chan struct{}
	out  strings.Builder
	res  execResult
	err  error
	gone bool
}

func startTOC(ctx context.Context, e engine.Engine, t dbTarget) *tocReader {
	pr, pw := io.Pipe()
	r := &tocReader{pw: pw, done: make(chan struct{})}
	go func() {
		defer close(r.done)
		out := &capBuffer{max: 32 << 20}
		r.res, r.err = execStream(ctx, e, t.ID, t.Env, []string{"pg_restore", "--list"}, pr, out)
		r.out.WriteString(string(out.b))
		pr.CloseWithError(errTOCDone)
	}()
	return r
}

var errTOCDone = errors.New("pg_restore --list finished")

// Write never fails the dump: once pg_restore has read the table of
// contents and exited, the rest is not needed.
func (r *tocReader) Write(b []byte) (int, error) {
	if !r.gone {
		if _, err := r.pw.Write(b); err != nil {
			r.gone = true
		}
	}
	return len(b), nil
}

// finish waits for pg_restore and counts what its listing names.
func (r *tocReader) finish() (map[string]int64, error) {
	r.pw.Close()
	<-r.done
	if r.err != nil {
		return nil, fmt.Errorf("reading the table of contents back with pg_restore --list: %w", r.err)
	}
	if r.res.Code != 0 {
		return nil, fmt.Errorf("pg_restore --list refused the dump (exit %d): %s", r.res.Code, firstLines(r.res.Stderr, 5))
	}
	c := map[string]int64{"tocEntries": 0, "tables": 0, "largeObjects": 0}
	sc := bufio.NewScanner(strings.NewReader(r.out.String()))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		l := sc.Text()
		if l == "" || strings.HasPrefix(l, ";") {
			continue
		}
		c["tocEntries"]++
		switch {
		case strings.Contains(l, " TABLE DATA "):
			c["tables"]++
		case strings.Contains(l, " BLOB ") || strings.Contains(l, " BLOB METADATA "):
			c["largeObjects"]++
		}
	}
	if c["tocEntries"] == 0 {
		return nil, fmt.Errorf("pg_restore --list found no entries in the dump")
	}
	return c, nil
}

// redis takes Redis's part through package backup: BGSAVE, the dump read
// out through the archive API and walked as an RDB (opcodes, CRC-64).
func (o *Options) redis(ctx context.Context, e engine.Engine, dir string) (Part, error) {
	p := Part{Name: "redis", File: o.partFile("redis.rdb.zst"), Kind: KindRedis, Service: ServiceRedis, Method: MethodRDB}
	r, err := backup.FindRedis(ctx, e, o.Project, ServiceRedis, o.RedisPassword)
	if err != nil {
		return p, fmt.Errorf("part redis: %w", err)
	}
	server, dataDir, dbfile, err := r.DumpLocation(ctx)
	if err != nil {
		return p, fmt.Errorf("part redis: %w", err)
	}
	o.progress("redis: BGSAVE in %s", r.Name)
	if err := r.Save(ctx, "bgsave", 0); err != nil {
		return p, fmt.Errorf("part redis: %w", err)
	}
	keys, err := r.KeyCount(ctx)
	if err != nil {
		return p, fmt.Errorf("part redis: %w", err)
	}
	src := path.Join(dataDir, dbfile)
	res, err := e.CopyFromContainer(ctx, r.ID, client.CopyFromContainerOptions{SourcePath: src})
	if err != nil {
		return p, fmt.Errorf("part redis: reading %s from %s: %w", src, r.Name, err)
	}
	defer res.Content.Close()
	tr := tar.NewReader(res.Content)
	th, err := tr.Next()
	if err != nil || th.Typeflag != tar.TypeReg {
		return p, fmt.Errorf("part redis: %s in %s is not a regular file (%v)", src, r.Name, err)
	}
	w, err := createPart(dir, p.File, o.Recipients)
	if err != nil {
		return p, fmt.Errorf("part redis: %w", diskErr(err))
	}
	counts, err := checkedCopy(w, tr, checkRDB)
	if err != nil {
		w.abort()
		return p, fmt.Errorf("part redis: %s: %w", src, err)
	}
	if err := w.finish(&p); err != nil {
		return p, fmt.Errorf("part redis: %w", err)
	}
	if p.RawSize != th.Size {
		return p, fmt.Errorf("part redis: copied %d of %d bytes of %s", p.RawSize, th.Size, src)
	}
	counts["serverKeys"] = keys
	p.Counts = counts
	p.Versions = map[string]string{"redis": server["redis_version"]}
	o.progress("redis: %d keys, %s", counts["keys"], human(p.RawSize))
	return p, nil
}

// files copies one mount of a service as the engine's tar stream.
func (o *Options) files(ctx context.Context, e engine.Engine, dir string, f fileTarget, method string) (Part, error) {
	name := filesPartName(f.Service, f.Path)
	p := Part{Name: name, File: o.partFile(filesPartFile(f.Service, f.Path)), Kind: KindFiles, Service: f.Service, Path: f.Path, Mount: f.Mount, Method: method}
	res, err := e.CopyFromContainer(ctx, f.ID, client.CopyFromContainerOptions{SourcePath: f.Path})
	if err != nil {
		return p, fmt.Errorf("part %s: reading %s from %s: %w", name, f.Path, f.Service, err)
	}
	defer res.Content.Close()
	w, err := createPart(dir, p.File, o.Recipients)
	if err != nil {
		return p, fmt.Errorf("part %s: %w", name, diskErr(err))
	}
	counts, err := checkedCopy(w, res.Content, checkTar)
	if err != nil {
		w.abort()
		return p, fmt.Errorf("part %s: %w", name, err)
	}
	if err := w.finish(&p); err != nil {
		return p, fmt.Errorf("part %s: %w", name, err)
	}
	p.Counts = counts
	o.progress("%s: %d files, %s", name, counts["files"], human(counts["bytes"]))
	return p, nil
}

// pausedFiles pauses a vector store (no snapshot API reachable through the
// engine) for the seconds its files take to copy, so no file is read while
// it is written, and unpauses it whatever happens.
func (o *Options) pausedFiles(ctx context.Context, e engine.Engine, dir string, fts []fileTarget) ([]Part, error) {
	id, svc := fts[0].ID, fts[0].Service
	o.progress("pausing %s for the copy of its data", svc)
	if _, err := e.ContainerPause(ctx, id, client.ContainerPauseOptions{}); err != nil {
		// The engine may have paused it although the call failed (an
		// interrupt while it was under way): let it go on whatever state
		// it is in (an unpause of a running container fails, harmlessly).
		uctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_, _ = e.ContainerUnpause(uctx, id, client.ContainerUnpauseOptions{})
		return nil, fmt.Errorf("pausing %s for its copy: %w", svc, err)
	}
	defer func() {
		uctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := e.ContainerUnpause(uctx, id, client.ContainerUnpauseOptions{}); err != nil {
			o.progress("warning: unpausing %s: %v; run docker unpause on its container", svc, err)
		}
	}()
	var parts []Part
	for _, f := range fts {
		p, err := o.files(ctx, e, dir, f, MethodTarPaused)
		if err != nil {
			return nil, err
		}
		parts = append(parts, p)
	}
	return parts, nil
}

// configExcluded are the project directory's entries the config part leaves
// out: the data (in their own parts) and the backups.
func configExcluded(rel string) bool {
	top, _, _ := strings.Cut(rel, "/")
	return top == "volumes" || top == "backups" || strings.HasPrefix(top, ".difyctl-")
}

// config is the project directory's own files: .env (every secret, among
// them the key that encrypts provider credentials), the override file, the
// support files difyctl wrote or the operator edited.
func (o *Options) config(dir string) (Part, error) {
	p := Part{Name: "config", File: o.partFile("config.tar.zst"), Kind: KindConfig, Method: MethodProject}
	w, err := createPart(dir, p.File, o.Recipients)
	if err != nil {
		return p, fmt.Errorf("part config: %w", diskErr(err))
	}
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(writeProjectTar(pw, o.ProjectDir, o.Dir)) }()
	counts, err := checkedCopy(w, pr, checkTar)
	if err != nil {
		w.abort()
		return p, fmt.Errorf("part config: %w", err)
	}
	if err := w.finish(&p); err != nil {
		return p, fmt.Errorf("part config: %w", err)
	}
	p.Counts = counts
	return p, nil
}

// writeProjectTar writes the project directory's files (not the excluded
// ones, not the backup directory) as a tar stream.
func writeProjectTar(w io.Writer, root, backupDir string) error {
	tw := tar.NewWriter(w)
	err := filepath.WalkDir(root, func(p string, de fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if rel == "." {
			return nil
		}
		rel = filepath.ToSlash(rel)
		if configExcluded(rel) || (backupDir != "" && within(p, backupDir)) {
			if de.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		info, err := de.Info()
		if err != nil {
			return err
		}
		link := ""
		switch {
		case info.Mode()&fs.ModeSymlink != 0:
			if link, err = os.Readlink(p); err != nil {
				return err
			}
		case info.IsDir(), info.Mode().IsRegular():
		default:
			return nil // sockets, fifos: nothing to keep
		}
		h, err := tar.FileInfoHeader(info, link)
		if err != nil {
			return err
		}
		h.Name = rel
		if info.IsDir() {
			h.Name += "/"
		}
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if info.Mode().IsRegular() {
			f, err := os.Open(p)
			if err != nil {
				return err
			}
			_, err = io.Copy(tw, f)
			f.Close()
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	return tw.Close()
}

// estimate is the bundle's estimated size and the free space where it is
// written, as checkSpace found them (known false when it could not tell).
type estimate struct {
	need, avail int64
	dir         string
	known       bool
}

// explain adds the estimate to a full disk's error: how much the bundle
// needs and how much was free when it started.
func (e estimate) explain(err error) error {
	if err == nil || !e.known || !errors.Is(err, ErrDiskFull) {
		return err
	}
	return fmt.Errorf("%w; the bundle needs about %s in %s (estimated before it started, when %s was free): free space or choose another --backup-dir", err, human(e.need), e.dir, human(e.avail))
}

// checkSpace estimates the bundle's size before anything is written: the
// database's size (a compressed dump is well under it: counted at half),
// Redis's memory, the files' size (du in their containers, all at once),
// and refuses when the backup directory's file system has less free.
func (o *Options) checkSpace(ctx context.Context, e engine.Engine, d *deployment) (estimate, error) {
	est := estimate{dir: o.Dir}
	var mu sync.Mutex
	var wg sync.WaitGroup
	add := func(n int64) {
		mu.Lock()
		est.need += n
		mu.Unlock()
	}
	for _, t := range []*dbTarget{d.DB, d.Vector} {
		if t == nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if n, err := dbSize(ctx, e, *t); err == nil {
				add(n / 2)
			}
		}()
	}
	for _, f := range d.Files {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out, err := execOutput(ctx, e, f.ID, nil, []string{"du", "-sk", f.Path})
			if err != nil {
				return
			}
			if fs := strings.Fields(out); len(fs) > 0 {
				k, _ := strconv.ParseInt(fs[0], 10, 64)
				add(k << 10)
			}
		}()
	}
	if d.Redis != "" {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out, err := execOutput(ctx, e, d.Redis, nil, []string{"sh", "-c", `redis-cli INFO memory | grep '^used_memory:'`})
			if err == nil {
				if _, v, ok := strings.Cut(strings.TrimSpace(out), ":"); ok {
					n, _ := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
					add(n)
				}
			}
		}()
	}
	wg.Wait()
	free := o.Free
	if free == nil {
		free = freeBytes
	}
	avail, err := free(o.Dir)
	if err != nil {
		return est, nil // cannot tell: the write itself reports a full disk
	}
	est.avail, est.known = avail, true
	o.progress("estimated size %s, %s free in %s", human(est.need), human(avail), o.Dir)
	if est.need > avail {
		return est, fmt.Errorf("%w: the bundle needs about %s in %s, %s is free; free space or choose another --backup-dir (nothing was written)", ErrDiskFull, human(est.need), o.Dir, human(avail))
	}
	return est, nil
}

func dbSize(ctx context.Context, e engine.Engine, t dbTarget) (int64, error) {
	var out string
	var err error
	if t.Type == "mysql" {
		out, err = execOutput(ctx, e, t.ID, t.Env, []string{"mysql", "-uroot", "-N", "-e",
			"SELECT COALESCE(SUM(data_length+index_length),0) FROM information_schema.tables WHERE table_schema=DATABASE()", t.Database})
	} else {
		out, err = execOutput(ctx, e, t.ID, t.Env, []string{"psql", "-U", t.User, "-d", t.Database, "-tAc", "SELECT pg_database_size(current_database())"})
	}
	if err != nil {
		return 0, err
	}
	return strconv.ParseInt(strings.TrimSpace(out), 10, 64)
}

func freeBytes(dir string) (int64, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return 0, err
	}
	return int64(st.Bavail) * st.Bsize, nil
}

func human(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.2f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}
