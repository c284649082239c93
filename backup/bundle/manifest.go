// Package bundle backs up and restores a whole Dify deployment: the
// metadata database as a logical dump taken inside its container, Redis
// through the verified RDB path of package backup, the file volumes of the
// running services as tar streams from the engine, the vector store, and the
// project's own files (.env and the support files). Each part is
// compressed with zstd, optionally encrypted with age, hashed while it
// streams, and verified before the bundle is kept; a manifest.json names
// every part. A bundle is a directory bundle_YYYYMMDD_HHMMSS (0700) whose
// files are 0600, written under a temporary name and renamed into place
// only once complete.
package bundle

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/difyctl/difyctl/backup"
	"github.com/difyctl/difyctl/internal/atomicfile"
	"github.com/difyctl/difyctl/internal/capread"
)

// Format names the bundle layout this package writes and reads.
const Format = "difyctl-bundle/1"

// ManifestName is the manifest's file name inside a bundle.
const ManifestName = "manifest.json"

// Part kinds.
const (
	KindDatabase = "database" // the metadata database's logical dump
	KindVector   = "vector"   // the vector store's logical dump (pgvector)
	KindRedis    = "redis"    // Redis's RDB
	KindFiles    = "files"    // a volume's files, as the engine's tar stream
	KindConfig   = "config"   // .env and the support files of the project directory
)

// Methods a part records: how it was taken.
const (
	MethodPgDump    = "pg_dump -Fc (in the container, MVCC snapshot)"
	MethodMysqldump = "mysqldump --single-transaction --routines --triggers (in the container)"
	MethodRDB       = "redis BGSAVE, RDB streamed and walked"
	MethodTar       = "engine archive (tar stream)"
	MethodTarPaused = "engine archive (tar stream) with the service paused"
	MethodProject   = "project directory files"
)

// Part is one file of a bundle.
type Part struct {
	Name      string `json:"name"`              // e.g. database, redis, files/api/app/api/storage, config
	File      string `json:"file"`              // its file in the bundle
	Kind      string `json:"kind"`              // database, vector, redis, files, config
	Service   string `json:"service,omitempty"` // the compose service it came from
	Path      string `json:"path,omitempty"`    // the path in that service's container (files)
	Mount     string `json:"mount,omitempty"`   // bind source or named volume it read (files)
	Method    string `json:"method"`
	Size      int64  `json:"size"`      // bytes stored (compressed, encrypted)
	SHA256    string `json:"sha256"`    // of the bytes stored
	RawSize   int64  `json:"rawSize"`   // bytes of the stream before compression
	RawSHA256 string `json:"rawSha256"` // of the stream before compression
	// Compression is always zstd; Encryption is "age" when encrypted.
	Compression string            `json:"compression"`
	Encryption  string            `json:"encryption,omitempty"`
	Versions    map[string]string `json:"versions,omitempty"` // server and tool versions
	Counts      map[string]int64  `json:"counts,omitempty"`   // tables, largeObjects, keys, files, bytes
	Database    string            `json:"database,omitempty"` // the database dumped
	Took        string            `json:"took,omitempty"`     // how long taking it took (wall)
}

// Timing is how long one step of a backup or restore took (wall time).
type Timing struct {
	Step string `json:"step"`
	Took string `json:"took"`
	// Seconds is Took as a number, for programs (bench/bundle).
	Seconds float64 `json:"seconds"`
}

// TimingSince is step's Timing, begun at start and ended now.
func TimingSince(step string, start time.Time) Timing {
	d := time.Since(start).Round(time.Millisecond)
	return Timing{Step: step, Took: d.String(), Seconds: d.Seconds()}
}

// TimingWords are timings in one line: "step 1.2s, step 3s".
func TimingWords(ts []Timing) string {
	ws := make([]string, len(ts))
	for i, t := range ts {
		ws[i] = t.Step + " " + t.Took
	}
	return strings.Join(ws, ", ")
}

// timings records steps' wall times; safe for concurrent use.
type timings struct {
	mu sync.Mutex
	ts []Timing
}

// since records step as having taken the time since start.
func (t *timings) since(step string, start time.Time) {
	if t == nil {
		return
	}
	tg := TimingSince(step, start)
	t.mu.Lock()
	defer t.mu.Unlock()
	t.ts = append(t.ts, tg)
}

func (t *timings) list() []Timing {
	if t == nil {
		return nil
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]Timing(nil), t.ts...)
}

// Manifest describes a bundle.
type Manifest struct {
	Format      string            `json:"format"`
	Project     string            `json:"project"`
	CreatedAt   time.Time         `json:"createdAt"`
	Duration    string            `json:"duration,omitempty"`
	DifyVersion string            `json:"difyVersion"` // the release the deployment runs
	Difyctl     string            `json:"difyctlVersion,omitempty"`
	DBType      string            `json:"dbType"`                // postgresql or mysql
	VectorStore string            `json:"vectorStore,omitempty"` // VECTOR_STORE of .env
	Profiles    []string          `json:"profiles,omitempty"`    // COMPOSE_PROFILES of .env
	Services    []string          `json:"services"`              // the services that were running
	Images      map[string]string `json:"images,omitempty"`      // service -> image
	Encrypted   bool              `json:"encrypted,omitempty"`
	Reason      string            `json:"reason,omitempty"`
	// SafetyCopy marks the bundle a restore takes of what it replaces.
	SafetyCopy   bool   `json:"safetyCopy,omitempty"`
	SafetyCopyOf string `json:"safetyCopyOf,omitempty"`
	Parts        []Part `json:"parts"`
	// Timings are the steps of taking the bundle (discover, estimate,
	// parts, manifest), wall time each; every part's own is its Took.
	Timings []Timing `json:"timings,omitempty"`
}

// Part returns the part named name.
func (m *Manifest) Part(name string) (*Part, bool) {
	for i := range m.Parts {
		if m.Parts[i].Name == name {
			return &m.Parts[i], true
		}
	}
	return nil, false
}

// filesParts are the bundle's files parts, in its order.
func (m *Manifest) filesParts() []Part {
	var parts []Part
	for _, p := range m.Parts {
		if p.Kind == KindFiles {
			parts = append(parts, p)
		}
	}
	return parts
}

// Size is the bundle's stored size.
func (m *Manifest) Size() int64 {
	var n int64
	for _, p := range m.Parts {
		n += p.Size
	}
	return n
}

const stampLayout = "20060102_150405"

// nameRe matches bundle directories: bundle_YYYYMMDD_HHMMSS, _N when two land
// in the same second.
var nameRe = regexp.MustCompile(`^bundle_(\d{8}_\d{6})(?:_(\d+))?$`)

// ParseName returns the time a bundle name encodes, and whether it is one.
func ParseName(name string) (time.Time, bool) {
	m := nameRe.FindStringSubmatch(name)
	if m == nil {
		return time.Time{}, false
	}
	t, err := time.ParseInLocation(stampLayout, m[1], time.UTC)
	if err != nil {
		return time.Time{}, false
	}
	if m[2] != "" {
		n, _ := strconv.Atoi(m[2])
		t = t.Add(time.Duration(n) * time.Microsecond)
	}
	return t, true
}

// IsBundle reports whether p is a bundle directory (it holds a manifest).
func IsBundle(p string) bool {
	st, err := os.Stat(filepath.Join(p, ManifestName))
	return err == nil && st.Mode().IsRegular()
}

// ReadManifest reads a bundle's manifest and checks its format and that
// every part's file name is a plain name inside the bundle.
func ReadManifest(dir string) (*Manifest, error) {
	b, err := capread.File(filepath.Join(dir, ManifestName), 4<<20)
	if err != nil {
		return nil, err
	}
	return parseManifest(b, dir)
}

func parseManifest(b []byte, where string) (*Manifest, error) {
	var m Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("manifest of %s: %w", where, err)
	}
	if m.Format != Format {
		return nil, fmt.Errorf("manifest of %s: format %q, this difyctl reads %q", where, m.Format, Format)
	}
	seen := map[string]bool{}
	for _, p := range m.Parts {
		if !plainName(p.File) || p.File == ManifestName || seen[p.File] {
			return nil, fmt.Errorf("manifest of %s: part %q has file name %q: not a plain, unique file name", where, p.Name, p.File)
		}
		seen[p.File] = true
	}
	return &m, nil
}

func plainName(s string) bool {
	return s != "" && s != "." && s != ".." && !strings.ContainsAny(s, "/\\\x00") && !strings.HasPrefix(s, ".")
}

func writeManifest(dir string, m *Manifest) error {
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(filepath.Join(dir, ManifestName), append(b, '\n'), backup.FileMode)
}

// Entry is one bundle in a backup directory.
type Entry struct {
	Name     string    `json:"name"`
	Path     string    `json:"path"`
	Time     time.Time `json:"time"`
	Size     int64     `json:"size"`
	Manifest *Manifest `json:"manifest,omitempty"`
	Err      string    `json:"error,omitempty"` // the manifest could not be read
}

// OwnedBy: the manifest names project.
func (e Entry) OwnedBy(project string) bool {
	return e.Manifest != nil && e.Manifest.Project == project
}

// IsSafetyCopy: a restore's safety bundle.
func (e Entry) IsSafetyCopy() bool { return e.Manifest != nil && e.Manifest.SafetyCopy }

// List returns the bundles in dir, oldest first.
func List(dir string) ([]Entry, error) {
	des, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []Entry
	for _, de := range des {
		t, ok := ParseName(de.Name())
		if !ok || !de.IsDir() {
			continue
		}
		e := Entry{Name: de.Name(), Path: filepath.Join(dir, de.Name()), Time: t}
		if m, err := ReadManifest(e.Path); err == nil {
			e.Manifest, e.Size = m, m.Size()
		} else {
			e.Err = err.Error()
		}
		out = append(out, e)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Time.Before(out[j].Time) })
	return out, nil
}

// Own returns project's bundles in dir, oldest first, and the others.
func Own(dir, project string) (own, foreign []Entry, err error) {
	all, err := List(dir)
	for _, e := range all {
		if e.OwnedBy(project) {
			own = append(own, e)
		} else {
			foreign = append(foreign, e)
		}
	}
	return own, foreign, err
}

// Latest returns the path of project's newest bundle in dir that is not a
// safety copy.
func Latest(dir, project string) (string, error) {
	own, foreign, err := Own(dir, project)
	if err != nil {
		return "", err
	}
	for i := len(own) - 1; i >= 0; i-- {
		if !own[i].IsSafetyCopy() {
			return own[i].Path, nil
		}
	}
	others := ""
	if len(foreign) > 0 {
		others = fmt.Sprintf(" (%d bundle(s) there belong to other projects or have no readable manifest; name one to use it)", len(foreign))
	}
	return "", fmt.Errorf("no bundles of project %s in %s%s; take one with \"difyctl backup all\"", project, dir, others)
}

// Prune decides rotation over project's bundles with package backup's rule
// (backup.Plan: older than retention goes, never the newest keepMin nor
// protect; safety copies kept while what they protect is) and removes what
// it says. Bundles of other projects or without a manifest are never
// touched. It returns the names removed.
func Prune(dir, project string, now time.Time, retention time.Duration, keepMin int, protect string) ([]string, error) {
	own, _, err := Own(dir, project)
	if err != nil {
		return nil, err
	}
	entries := make([]backup.Entry, len(own))
	for i, e := range own {
		entries[i] = backup.Entry{Name: e.Name, Path: e.Path, Time: e.Time, Size: e.Size,
			Manifest: &backup.Manifest{Project: e.Manifest.Project, SafetyCopy: e.Manifest.SafetyCopy, SafetyCopyOf: e.Manifest.SafetyCopyOf}}
	}
	plan := backup.Plan(entries, now, retention, keepMin, protect)
	var removed []string
	var errs []error
	for _, e := range plan.Remove {
		if err := os.RemoveAll(e.Path); err != nil {
			errs = append(errs, err)
			continue
		}
		removed = append(removed, e.Name)
	}
	if len(removed) > 0 {
		if err := atomicfile.SyncDir(dir); err != nil {
			errs = append(errs, err)
		}
	}
	return removed, errors.Join(errs...)
}
