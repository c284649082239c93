package backup

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
	"time"

	"github.com/difyctl/difyctl/internal/atomicfile"
	"github.com/difyctl/difyctl/internal/capread"
	"github.com/difyctl/difyctl/internal/lockfile"
)

// File and directory modes: backups hold every key of the application.
const (
	DirMode  os.FileMode = 0o700
	FileMode os.FileMode = 0o600
)

const stampLayout = "20060102_150405"

// nameRe matches the backups difyctl writes, and only those:
// redis_YYYYMMDD_HHMMSS.rdb, with _N when two land in the same second.
var nameRe = regexp.MustCompile(`^redis_(\d{8}_\d{6})(?:_(\d+))?\.rdb$`)

// Manifest is written beside each backup (<name>.json).
type Manifest struct {
	File         string    `json:"file"`
	Size         int64     `json:"size"`
	SHA256       string    `json:"sha256"`
	RDBVersion   int       `json:"rdbVersion"`
	RedisVersion string    `json:"redisVersion"`
	Keys         int64     `json:"keys"`       // keys the server reported after the save
	RDBKeys      int64     `json:"rdbKeys"`    // keys in the file
	RDBExpires   int64     `json:"rdbExpires"` // of which with an expiry
	CreatedAt    time.Time `json:"createdAt"`
	Mode         string    `json:"mode"` // bgsave, save
	Project      string    `json:"project"`
	Service      string    `json:"service"`
	Container    string    `json:"container"`
	Reason       string    `json:"reason,omitempty"` // e.g. "pre-restore safety copy"
}

// Entry is one backup in a directory.
type Entry struct {
	Name     string    `json:"name"`
	Path     string    `json:"path"`
	Time     time.Time `json:"time"`
	Size     int64     `json:"size"`
	Manifest *Manifest `json:"manifest,omitempty"`
}

// ParseName returns the time a backup name encodes, and whether it is ours.
func ParseName(name string) (time.Time, bool) {
	m := nameRe.FindStringSubmatch(name)
	if m == nil {
		return time.Time{}, false
	}
	t, err := time.ParseInLocation(stampLayout, m[1], time.UTC)
	if err != nil {
		return time.Time{}, false
	}
	if m[2] != "" { // order same-second backups
		n, _ := strconv.Atoi(m[2])
		t = t.Add(time.Duration(n) * time.Microsecond)
	}
	return t, true
}

// NewName returns a free backup name in dir for time t.
func NewName(dir string, t time.Time) string {
	base := "redis_" + t.UTC().Format(stampLayout)
	name := base + ".rdb"
	for n := 2; ; n++ {
		if _, err := os.Lstat(filepath.Join(dir, name)); errors.Is(err, fs.ErrNotExist) {
			return name
		}
		name = fmt.Sprintf("%s_%d.rdb", base, n)
	}
}

// List returns the backups in dir, oldest first. Files whose names are not
// ours are ignored.
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
		if !ok || !de.Type().IsRegular() {
			continue
		}
		info, err := de.Info()
		if err != nil {
			continue
		}
		e := Entry{Name: de.Name(), Path: filepath.Join(dir, de.Name()), Time: t, Size: info.Size()}
		if m, err := ReadManifest(e.Path); err == nil {
			e.Manifest = m
		}
		out = append(out, e)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Time.Before(out[j].Time) })
	return out, nil
}

// ManifestPath is the manifest beside a backup.
func ManifestPath(backup string) string { return backup + ".json" }

// ReadManifest reads a backup's manifest.
func ReadManifest(backup string) (*Manifest, error) {
	b, err := capread.File(ManifestPath(backup), 1<<20) // a manifest is a few hundred bytes
	if err != nil {
		return nil, err
	}
	var m Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("manifest %s: %w", ManifestPath(backup), err)
	}
	return &m, nil
}

func writeManifest(backup string, m *Manifest) error {
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(ManifestPath(backup), append(b, '\n'), FileMode)
}

// PrunePlan says which backups rotation removes and keeps.
type PrunePlan struct {
	Remove []Entry `json:"remove"`
	Keep   []Entry `json:"keep"`
}

// Plan decides rotation: remove backups older than retention, but never the
// newest keepMin, and never a file whose name is not ours (List never
// returns those).
func Plan(entries []Entry, now time.Time, retention time.Duration, keepMin int) PrunePlan {
	var p PrunePlan
	for i, e := range entries { // oldest first
		newestK := len(entries)-i <= keepMin
		if !newestK && now.Sub(e.Time) > retention {
			p.Remove = append(p.Remove, e)
		} else {
			p.Keep = append(p.Keep, e)
		}
	}
	return p
}

// Apply removes what the plan says, manifests included, then syncs the
// directory.
func (p PrunePlan) Apply(dir string) error {
	var errs []error
	for _, e := range p.Remove {
		if err := os.Remove(e.Path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
			continue
		}
		if err := os.Remove(ManifestPath(e.Path)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	if len(p.Remove) > 0 {
		if err := atomicfile.SyncDir(dir); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// LockName is the lock file in the backup directory.
const LockName = ".difyctl-backup.lock"

// Lock takes the backup directory's lock without waiting (released when
// the process dies); a second taker gets a *lockfile.HeldError naming our
// PID.
func Lock(dir string) (unlock func(), err error) {
	if err := os.MkdirAll(dir, DirMode); err != nil {
		return nil, fmt.Errorf("backup directory %s: %w", dir, err)
	}
	return lockfile.Acquire(filepath.Join(dir, LockName), "a backup or restore")
}
