// Package envbak finds and rotates the copies of .env that init --force,
// env set/upgrade/import keep (.env.bak-<UTC time>[_N]). They hold rotated
// secrets, so they follow the backups' retention (backup prune): older than
// the retention and not among the newest keep-min, they are deleted, by the
// same rule (backup.Plan) as the Redis backups.
package envbak

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"time"

	"github.com/difyctl/difyctl/backup"
)

var nameRe = regexp.MustCompile(`^\.env\.bak-(\d{8}T\d{6}Z)(?:_(\d+))?$`)

// List returns the .env copies in the project directory, oldest first.
// Only regular files with our names are listed (a symlink is never
// touched).
func List(dir string) ([]backup.Entry, error) {
	des, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	type item struct {
		e   backup.Entry
		seq int
	}
	var items []item
	for _, de := range des {
		m := nameRe.FindStringSubmatch(de.Name())
		if m == nil || !de.Type().IsRegular() {
			continue
		}
		t, err := time.Parse("20060102T150405Z", m[1])
		if err != nil {
			continue
		}
		info, err := de.Info()
		if err != nil {
			continue
		}
		seq, _ := strconv.Atoi(m[2])
		items = append(items, item{backup.Entry{Name: de.Name(), Path: filepath.Join(dir, de.Name()), Time: t, Size: info.Size()}, seq})
	}
	sort.Slice(items, func(i, j int) bool {
		if !items[i].e.Time.Equal(items[j].e.Time) {
			return items[i].e.Time.Before(items[j].e.Time)
		}
		return items[i].seq < items[j].seq
	})
	out := make([]backup.Entry, len(items))
	for i, it := range items {
		out[i] = it.e
	}
	return out, nil
}

// Prune deletes (unless dryRun) the copies the backups' rule removes.
func Prune(dir string, now time.Time, retention time.Duration, keepMin int, dryRun bool) (backup.PrunePlan, error) {
	entries, err := List(dir)
	if err != nil {
		return backup.PrunePlan{}, err
	}
	plan := backup.Plan(entries, now, retention, keepMin, "")
	if !dryRun {
		err = plan.Apply(dir)
	}
	return plan, err
}
