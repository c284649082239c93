// Package initcmd implements `difyctl init`: write a .env for the chosen
// profiles with fresh secrets.
package initcmd

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/difyctl/difyctl/envgen"
	"github.com/difyctl/difyctl/internal/atomicfile"
	"github.com/difyctl/difyctl/internal/cmdutil"
	"github.com/difyctl/difyctl/internal/iostreams"
	"github.com/difyctl/difyctl/internal/release"
	"github.com/difyctl/difyctl/profiles"
	"github.com/difyctl/difyctl/templates"
)

// Options for init.
type Options struct {
	IO         *iostreams.IOStreams
	JSON       bool
	ProjectDir string
	Project    string // the resolved project name, recorded in .env
	Profiles   []string
	Release    string // the catalogue release to deploy; "": the newest
	Force      bool
	Now        func() time.Time
}

// Result is what init did.
type Result struct {
	Path     string             `json:"path"`
	Backup   string             `json:"backup,omitempty"`
	Profiles profiles.Selection `json:"profiles"`
	Vars     int                `json:"vars"`
	Release  string             `json:"release"` // the Dify release of the catalogue it deploys
	// SupportFiles written beside it (nginx, ssrf_proxy, sandbox, ...), where missing.
	SupportFiles []string `json:"supportFiles,omitempty"`
}

// NewCmd returns the init command.
func NewCmd(f *cmdutil.Factory) *cobra.Command {
	opts := &Options{IO: f.IOStreams, Now: time.Now}
	cmd := &cobra.Command{
		Use:   "init [--profile P]... [--force]",
		Short: "Write a .env for the chosen profiles, with fresh secrets",
		Long: `Write <project-dir>/.env (mode 0600, atomically) for one metadata database and
one vector store (default: postgresql + weaviate), with a fresh random value for
every secret upstream ships with a shared default, and every variable that must
agree with another set consistently. Refuses to overwrite an existing .env
without --force; with it, keeps a timestamped copy first.`,
		Args: cmdutil.Args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			dir, name, err := f.Project()
			if err != nil {
				return err
			}
			opts.ProjectDir, opts.Project, opts.JSON = dir, name, f.JSON()
			return Run(cmd.Context(), opts)
		},
	}
	cmd.Flags().StringSliceVar(&opts.Profiles, "profile", nil, "profile to enable (repeatable): one database, one vector store, extras")
	cmd.Flags().BoolVar(&opts.Force, "force", false, "overwrite an existing .env (a timestamped copy is kept)")
	cmd.Flags().StringVar(&opts.Release, "release", "", "the Dify release to deploy (default: the newest; see `difyctl releases`)")
	_ = cmd.RegisterFlagCompletionFunc("release", func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
		return templates.Versions(), cobra.ShellCompDirectiveNoFileComp
	})
	_ = cmd.RegisterFlagCompletionFunc("profile", ProfileCompletion)
	return cmd
}

// ProfileCompletion completes --profile values from the catalogue.
func ProfileCompletion(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
	var out []string
	for _, p := range profiles.All() {
		out = append(out, p.Name+"\t"+p.Description)
	}
	return out, cobra.ShellCompDirectiveNoFileComp
}

// Run writes the .env.
func Run(_ context.Context, opts *Options) error {
	res, err := WriteRelease(opts.ProjectDir, opts.Project, opts.Release, opts.Profiles, opts.Force, opts.Now())
	if err != nil {
		return err
	}
	if opts.JSON {
		return cmdutil.WriteJSON(opts.IO.Out, res)
	}
	if res.Backup != "" {
		fmt.Fprintf(opts.IO.ErrOut, "kept the previous .env as %s\n", res.Backup)
	}
	fmt.Fprintf(opts.IO.Out, "wrote %s for Dify %s (%d variables; database %s, vector store %s, extras %s)\n",
		res.Path, res.Release, res.Vars, res.Profiles.Database, res.Profiles.Vector, strings.Join(res.Profiles.Extras, ", "))
	return nil
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
func WriteProject(dir, project string, names []string, force bool, now time.Time) (Result, error) {
	return WriteRelease(dir, project, "", names, force, now)
}

// WriteRelease is WriteProject for a release of the catalogue ("" : the
// newest); the release is recorded in the directory (internal/release).
func WriteRelease(dir, project, version string, names []string, force bool, now time.Time) (Result, error) {
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
	path := filepath.Join(dir, ".env")
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
	if project != "" {
		d.Set("COMPOSE_PROJECT_NAME", project)
	}

	stage, err := os.MkdirTemp(dir, ".difyctl-init-*")
	if err != nil {
		return res, fmt.Errorf("init wrote nothing: creating a temporary directory in %s: %w", dir, err)
	}
	defer os.RemoveAll(stage)
	if err := envgen.WriteFile(filepath.Join(stage, ".env"), d); err != nil {
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
		err = os.Rename(filepath.Join(stage, ".env"), path)
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
	res.Vars = len(d.Keys())
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
		if top && e.Name() == ".env" {
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
