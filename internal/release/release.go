// Package release records which Dify release a project directory deploys:
// one small file, <dir>/.difyctl-release, written by init, env import,
// upgrade and rollback, read by everything that loads the project's compose
// file. A directory without one deploys the catalogue's newest release.
package release

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/difyctl/difyctl/internal/atomicfile"
	"github.com/difyctl/difyctl/templates"
)

// FileName is the record's name in the project directory.
const FileName = ".difyctl-release"

// How a release came to be recorded.
const (
	SourceInit     = "init"
	SourceImport   = "import"   // recognised from an imported folder's images
	SourceDetected = "detected" // recognised from the running containers' images
	SourceUpgrade  = "upgrade"
	SourceRollback = "rollback"
)

// Record is what the file holds.
type Record struct {
	Release  string    `json:"release"`
	Previous string    `json:"previous,omitempty"` // the release before the last upgrade or rollback
	Source   string    `json:"source"`
	At       time.Time `json:"at"`
}

// Path is the record's path for a project directory.
func Path(dir string) string { return filepath.Join(dir, FileName) }

// Read returns the directory's record, or nil when it has none.
func Read(dir string) (*Record, error) {
	b, err := os.ReadFile(Path(dir))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading the release record: %w", err)
	}
	var r Record
	if err := json.Unmarshal(b, &r); err != nil || r.Release == "" {
		return nil, fmt.Errorf("%s is not a release record (%v): remove it and run `difyctl upgrade --dry-run` to recognise the release from the running containers", Path(dir), err)
	}
	return &r, nil
}

// Write records the release atomically.
func Write(dir string, r Record) error {
	if r.At.IsZero() {
		r.At = time.Now().UTC()
	}
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	if err := atomicfile.WriteFile(Path(dir), append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("recording release %s: %w", r.Release, err)
	}
	return nil
}

// Of returns the release the directory deploys: the recorded one, else the
// catalogue's newest.
func Of(dir string) (*templates.Release, error) {
	r, err := Read(dir)
	if err != nil {
		return nil, err
	}
	if r == nil {
		return templates.Latest(), nil
	}
	t, err := templates.Lookup(r.Release)
	if err != nil {
		return nil, fmt.Errorf("%s records release %s: %w", Path(dir), r.Release, err)
	}
	return t, nil
}
