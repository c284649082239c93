// Package deploy holds the use-cases that set a project directory up for
// running Dify, below the commands that call them (init, up, setup):
// writing the project's .env and support files, preparing a directory for
// up (the .env agreeing with --profile, valid), and the compose loader's
// options.
package deploy

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/difyctl/difyctl/envgen"
	"github.com/difyctl/difyctl/internal/atomicfile"
	"github.com/difyctl/difyctl/internal/cmdutil"
	"github.com/difyctl/difyctl/internal/project"
	"github.com/difyctl/difyctl/internal/release"
	"github.com/difyctl/difyctl/profiles"
	"github.com/difyctl/difyctl/templates"
)

// Result is what writing a project did.
type Result struct {
	Path     string             `json:"path"`
	Backup   string             `json:"backup,omitempty"`
	Profiles profiles.Selection `json:"profiles"`
	Vars     int                `json:"vars"`
	Release  string             `json:"release"` // the Dify release of the catalogue it deploys
	// SupportFiles written beside it (nginx, ssrf_proxy, sandbox, ...), where missing.
	SupportFiles []string `json:"supportFiles,omitempty"`
	// Env is the document written.
	Env *envgen.Doc `json:"-"`
}

// sourceModule is difyctl's own module path (go.mod's first line).
const sourceModule = "module github.com/difyctl/difyctl"

// isSourceTree reports whether dir is a checkout of difyctl itself.
func isSourceTree(dir string) bool {
	b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
	if err != nil {
		return false
	}
	first, _, _ := strings.Cut(string(b), "\n")
	return strings.TrimSpace(first) == sourceModule
}

// Write generates and writes the .env and the support files the services
// mount; up uses it for a project without one. It is all or nothing:
// everything is first written into a temporary directory inside dir (same
// file system), then moved into place; when anything fails, what was moved is
// taken back, so nothing new is left and the error says so. An existing .env
// (with force) is kept as a copy with a name no earlier copy has; a symlinked
// .env stays a link and the file it points to gets the new content.
func Write(dir string, names []string, force bool, now time.Time) (Result, error) {
	return WriteProject(dir, "", names, force, now)
}

// WriteProject is Write that also records the compose project name in .env
// (COMPOSE_PROJECT_NAME), so that difyctl and a plain "docker compose" in
// the directory are one project on the same data, not two (compose would
// otherwise name the project after the directory).
func WriteProject(dir, projectName string, names []string, force bool, now time.Time) (Result, error) {
	return WriteRelease(dir, projectName, "", names, force, now)
}

// WriteRelease is WriteProject for a release of the catalogue ("" : the
// newest); the release is recorded in the directory (internal/release).
func WriteRelease(dir, projectName, version string, names []string, force bool, now time.Time) (Result, error) {
	rel := templates.Latest()
	if version != "" {
		var err error
		if rel, err = templates.Lookup(version); err != nil {
			return Result{}, cmdutil.WithExitCode(cmdutil.ExitUsage, err)
		}
	}
	sel, err := profiles.Select(names, false)
	if err != nil {
		return Result{}, cmdutil.WithExitCode(cmdutil.ExitUsage, err)
	}
	if isSourceTree(dir) {
		return Result{}, cmdutil.UsageError("%s is difyctl's source tree; a deployment (its .env holds every secret) needs a project directory of its own: mkdir -p ~/dify && difyctl init --project-dir ~/dify", dir)
	}
	path := filepath.Join(dir, project.EnvFile)
	res := Result{Path: path, Profiles: sel, Release: rel.Version}
	st, err := os.Lstat(path)
	exists := err == nil
	switch {
	case exists && st.IsDir():
		return res, cmdutil.WithExitCode(cmdutil.ExitUsage, fmt.Errorf("%s is a directory; move it away first", path))
	case exists && !force:
		return res, cmdutil.WithExitCode(cmdutil.ExitUsage, fmt.Errorf("%s exists; pass --force to replace it (a timestamped copy is kept), or \"difyctl env upgrade\" to add what it lacks", path))
	case err != nil && !errors.Is(err, fs.ErrNotExist):
		return res, err
	}
	d, err := envgen.Generate(envgen.SchemaFor(rel), sel, rand.Reader, now)
	if err != nil {
		return res, err
	}
	if projectName != "" {
		d.Set("COMPOSE_PROJECT_NAME", projectName)
	}

	stage, err := os.MkdirTemp(dir, ".difyctl-init-*")
	if err != nil {
		return res, fmt.Errorf("init wrote nothing: creating a temporary directory in %s: %w", dir, err)
	}
	defer os.RemoveAll(stage)
	if err := envgen.WriteFile(filepath.Join(stage, project.EnvFile), d); err != nil {
		return res, fmt.Errorf("init wrote nothing in %s (the partial files were removed): %w", dir, err)
	}
	if _, err := rel.WriteSupportFiles(stage); err != nil {
		return res, fmt.Errorf("init wrote nothing in %s (the partial files were removed): writing the configuration files the services mount: %w", dir, err)
	}

	// Moving into place: renames in one file system, which need no space.
	var moved []string // paths in dir this run created
	undo := func(cause error) error {
		for i := len(moved) - 1; i >= 0; i-- {
			os.RemoveAll(moved[i])
		}
		if res.Backup != "" {
			os.Remove(res.Backup)
		}
		atomicfile.SyncDir(dir)
		return fmt.Errorf("init left nothing new in %s (what it had moved into place was removed; %s is unchanged): %w", dir, path, cause)
	}
	if err := moveNew(stage, dir, true, &moved, &res.SupportFiles); err != nil {
		return res, undo(err)
	}
	if exists {
		if _, err := os.Stat(path); err == nil { // not a dangling link
			if res.Backup, err = envgen.Backup(path, now); err != nil {
				return res, undo(fmt.Errorf("keeping a copy of %s: %w", path, err))
			}
		}
	}
	if exists {
		// The operator's file: through a link to its target, keeping the
		// mode and owner it has.
		err = envgen.WriteFile(path, d)
	} else {
		err = os.Rename(filepath.Join(stage, project.EnvFile), path)
		if err == nil {
			err = atomicfile.SyncDir(dir)
		}
	}
	if err != nil {
		return res, undo(fmt.Errorf("writing %s: %w", path, err))
	}
	if err := release.Write(dir, release.Record{Release: rel.Version, Source: release.SourceInit, At: now.UTC()}); err != nil {
		return res, err
	}
	res.Vars, res.Env = len(d.Keys()), d
	return res, nil
}

// moveNew moves every entry of from (but a top-level .env) that to lacks into to: a
// whole directory in one rename when to lacks it, else entry by entry.
// moved records what it created; files lists the files that came with it.
func moveNew(from, to string, top bool, moved, files *[]string) error {
	entries, err := os.ReadDir(from)
	if err != nil {
		return err
	}
	for _, e := range entries {
		src, dst := filepath.Join(from, e.Name()), filepath.Join(to, e.Name())
		if top && e.Name() == project.EnvFile {
			continue // moved last, by Write
		}
		st, err := os.Lstat(dst)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			if err := os.Rename(src, dst); err != nil {
				return err
			}
			*moved = append(*moved, dst)
			filepath.WalkDir(dst, func(p string, d fs.DirEntry, err error) error {
				if err == nil && !d.IsDir() {
					*files = append(*files, p)
				}
				return nil
			})
		case err != nil:
			return err
		case e.IsDir() && st.IsDir():
			if err := moveNew(src, dst, false, moved, files); err != nil {
				return err
			}
		}
		// An existing file (perhaps edited by the operator) is kept.
	}
	return atomicfile.SyncDir(to)
}
