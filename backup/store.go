package backup

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
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
	// SafetyCopy marks the copy a restore takes of the data it replaces:
	// never chosen by `latest`, kept at least as long as SafetyCopyOf (the
	// backup whose restore it protects against).
	SafetyCopy   bool   `json:"safetyCopy,omitempty"`
	SafetyCopyOf string `json:"safetyCopyOf,omitempty"`
	// RDBChecked: "crc64", or "none" when the file carries no checksum and
	// was walked only (rdb.Info.Checked).
	RDBChecked string `json:"rdbChecked,omitempty"`
}

// SafetyReason is the reason a restore records on its safety copy.
const SafetyReason = "pre-restore safety copy"

// IsSafetyCopy reports whether the manifest is a restore's safety copy
// (older manifests carry only the reason).
func (m *Manifest) IsSafetyCopy() bool {
	return m != nil && (m.SafetyCopy || m.Reason == SafetyReason)
}

// Entry is one backup in a directory.
type Entry struct {
	Name     string    `json:"name"`
	Path     string    `json:"path"`
	Time     time.Time `json:"time"`
	Size     int64     `json:"size"`
	Manifest *Manifest `json:"manifest,omitempty"`
}

// OwnedBy reports whether the backup belongs to project: its manifest says
// so. A file without a manifest belongs to no project: never deleted,
// never chosen.
func (e Entry) OwnedBy(project string) bool {
	return e.Manifest != nil && e.Manifest.Project == project
}

// IsSafetyCopy reports whether the entry is a restore's safety copy.
func (e Entry) IsSafetyCopy() bool { return e.Manifest.IsSafetyCopy() }

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

// Listing is what a backup directory holds for one project.
type Listing struct {
	Own     []Entry    `json:"backups"`               // the project's backups and safety copies, oldest first
	Foreign []Entry    `json:"foreign,omitempty"`     // backup-named files of other projects or without a manifest
	Temps   []TempFile `json:"temporaries,omitempty"` // temporary files left by runs that were killed (or are running)
}

// ListProject returns the backups of project in dir and what else is there.
func ListProject(dir, project string) (*Listing, error) {
	all, err := List(dir)
	if err != nil {
		return nil, err
	}
	l := &Listing{}
	for _, e := range all {
		if e.OwnedBy(project) {
			l.Own = append(l.Own, e)
		} else {
			l.Foreign = append(l.Foreign, e)
		}
	}
	if l.Temps, err = Temps(dir); err != nil {
		return nil, err
	}
	return l, nil
}

// Latest returns the project's newest backup that is not a safety copy.
func (l *Listing) Latest() (Entry, bool) {
	for i := len(l.Own) - 1; i >= 0; i-- {
		if !l.Own[i].IsSafetyCopy() {
			return l.Own[i], true
		}
	}
	return Entry{}, false
}

// LatestOf returns the path of project's newest backup in dir, never a
// safety copy nor another project's file.
func LatestOf(dir, project string) (string, error) {
	l, err := ListProject(dir, project)
	if err != nil {
		return "", err
	}
	e, ok := l.Latest()
	if !ok {
		others := ""
		if len(l.Foreign) > 0 {
			others = fmt.Sprintf(" (%d file(s) there belong to other projects or have no manifest; name one explicitly to use it)", len(l.Foreign))
		}
		return "", fmt.Errorf("no backups of project %s in %s%s", project, dir, others)
	}
	return e.Path, nil
}

// ResolveFile turns what the operator typed into a path: a bare name (as
// `backup list` prints it) is looked up in the backup directory first.
func ResolveFile(dir, arg string) string {
	if !strings.ContainsRune(arg, os.PathSeparator) {
		p := filepath.Join(dir, arg)
		if _, err := os.Lstat(p); err == nil {
			return p
		}
	}
	return arg
}

// ValidateRetention refuses retention values that make no sense.
func ValidateRetention(days, keepMin int) error {
	if days < 0 {
		return fmt.Errorf("--retention-days %d: must be 0 or more (0 keeps only the newest --keep-min backups and the one just written)", days)
	}
	if keepMin < 0 {
		return fmt.Errorf("--keep-min %d: must be 0 or more", keepMin)
	}
	return nil
}

// PrunePlan says which backups rotation removes and keeps.
type PrunePlan struct {
	Remove []Entry `json:"remove"`
	Keep   []Entry `json:"keep"`
}

// Plan decides rotation over one project's own entries (oldest first):
// a backup goes when older than retention, unless it is one of the newest
// keepMin backups or is named protect (the one just written). Safety copies
// do not count towards keepMin and stay while younger than retention or
// while the backup they protect against is kept. Files of other projects or
// without a manifest must not be passed in: they are never deleted.
func Plan(entries []Entry, now time.Time, retention time.Duration, keepMin int, protect string) PrunePlan {
	keep := map[string]bool{}
	regular := 0
	for i := len(entries) - 1; i >= 0; i-- { // newest first
		e := entries[i]
		if e.IsSafetyCopy() {
			continue
		}
		regular++
		if regular <= keepMin || e.Name == protect || now.Sub(e.Time) <= retention {
			keep[e.Name] = true
		}
	}
	for _, e := range entries {
		if !e.IsSafetyCopy() {
			continue
		}
		of := e.Manifest.SafetyCopyOf
		if e.Name == protect || now.Sub(e.Time) <= retention || (of != "" && keep[of]) {
			keep[e.Name] = true
		}
	}
	var p PrunePlan
	for _, e := range entries {
		if keep[e.Name] {
			p.Keep = append(p.Keep, e)
		} else {
			p.Remove = append(p.Remove, e)
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

// LockName is the lock file of one project's backups in a backup
// directory: two projects sharing a directory do not wait for each other.
func LockName(project string) string { return ".difyctl-backup-" + project + ".lock" }

// Lock takes the project's backup lock in dir without waiting (released
// when the process dies), creating dir (0700); a second taker gets a
// *lockfile.HeldError naming our PID.
func Lock(dir, project string) (unlock func(), err error) {
	if err := os.MkdirAll(dir, DirMode); err != nil {
		return nil, fmt.Errorf("backup directory %s: %w", dir, err)
	}
	return lockfile.Acquire(filepath.Join(dir, LockName(project)), "a backup or restore of project "+project)
}

// TempFile is a temporary file of a backup (or its manifest) being written.
type TempFile struct {
	Name    string    `json:"name"`
	Path    string    `json:"path"`
	Size    int64     `json:"size"`
	ModTime time.Time `json:"modTime"`
	Held    bool      `json:"held"` // a running process has it open
}

// tempRe matches the temporary files of backups and manifests: a hidden
// .redis_<stamp>.rdb[.json].tmp-<random>.
var tempRe = regexp.MustCompile(`^\.redis_\d{8}_\d{6}.*\.tmp-[^/]*$`)

// Temps lists the temporary files in dir, with whether a process holds them.
func Temps(dir string) ([]TempFile, error) {
	des, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []TempFile
	for _, de := range des {
		if !tempRe.MatchString(de.Name()) || !de.Type().IsRegular() {
			continue
		}
		info, err := de.Info()
		if err != nil {
			continue
		}
		out = append(out, TempFile{Name: de.Name(), Path: filepath.Join(dir, de.Name()), Size: info.Size(), ModTime: info.ModTime()})
	}
	if len(out) > 0 {
		held := openFiles()
		for i := range out {
			out[i].Held = held[out[i].Path]
		}
	}
	return out, nil
}

// StaleTempAge is how old a temporary file must be before a run removes it.
const StaleTempAge = time.Hour

// CleanTemps removes temporary files of killed runs: older than an hour and
// open in no running process. It returns what it removed.
func CleanTemps(dir string, now time.Time) ([]string, error) {
	temps, err := Temps(dir)
	if err != nil {
		return nil, err
	}
	var removed []string
	var errs []error
	for _, t := range temps {
		if t.Held || now.Sub(t.ModTime) < StaleTempAge {
			continue
		}
		if err := os.Remove(t.Path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
			continue
		}
		removed = append(removed, t.Name)
	}
	return removed, errors.Join(errs...)
}

// openFiles returns the paths every process we can see has open
// (/proc/<pid>/fd): a file held by a running difyctl is in use, whatever
// its age.
func openFiles() map[string]bool {
	held := map[string]bool{}
	procs, _ := os.ReadDir("/proc")
	for _, p := range procs {
		if _, err := strconv.Atoi(p.Name()); err != nil {
			continue
		}
		fdDir := filepath.Join("/proc", p.Name(), "fd")
		fds, _ := os.ReadDir(fdDir)
		for _, fd := range fds {
			if target, err := os.Readlink(filepath.Join(fdDir, fd.Name())); err == nil {
				held[target] = true
			}
		}
	}
	return held
}

// writeBackupFile writes a new backup named for time t into dir: a
// temporary file, fsync, then a link to the first free name (link never
// replaces a file, so two projects sharing the directory cannot take the
// same name), the temporary removed, the directory synced. On any error
// nothing is left under a backup's name.
func writeBackupFile(dir string, t time.Time, fill func(io.Writer) error) (name string, err error) {
	base := "redis_" + t.UTC().Format(stampLayout)
	f, err := os.CreateTemp(dir, "."+base+".rdb.tmp-*")
	if err != nil {
		return "", fmt.Errorf("creating a temporary file in %s: %w", dir, err)
	}
	tmp := f.Name()
	defer func() {
		f.Close()
		os.Remove(tmp)
	}()
	if err = f.Chmod(FileMode); err != nil {
		return "", fmt.Errorf("setting mode of %s: %w", tmp, err)
	}
	if err = fill(f); err != nil {
		return "", err
	}
	if err = f.Sync(); err != nil {
		return "", fmt.Errorf("syncing %s: %w", tmp, err)
	}
	if err = f.Close(); err != nil {
		return "", fmt.Errorf("closing %s: %w", tmp, err)
	}
	for n := 1; ; n++ {
		name = base + ".rdb"
		if n > 1 {
			name = fmt.Sprintf("%s_%d.rdb", base, n)
		}
		dst := filepath.Join(dir, name)
		err = os.Link(tmp, dst)
		if err == nil {
			break
		}
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		// A file system without hard links: rename onto a name still free.
		if _, serr := os.Lstat(dst); !errors.Is(serr, fs.ErrNotExist) {
			continue
		}
		if err = os.Rename(tmp, dst); err != nil {
			return "", fmt.Errorf("renaming into %s: %w", dst, err)
		}
		break
	}
	os.Remove(tmp)
	if err = atomicfile.SyncDir(dir); err != nil {
		return name, err
	}
	return name, nil
}
