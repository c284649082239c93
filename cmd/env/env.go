// Package env implements `difyctl env validate|upgrade|get|set|import`.
package env

import (
	"bufio"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/difyctl/difyctl/envgen"
	"github.com/difyctl/difyctl/internal/catalog"
	"github.com/difyctl/difyctl/internal/cmdutil"
	"github.com/difyctl/difyctl/internal/iostreams"
	"github.com/difyctl/difyctl/internal/release"
	"github.com/difyctl/difyctl/internal/trust"
	"github.com/difyctl/difyctl/templates"
)

// NewCmd returns the env command group.
func NewCmd(f *cmdutil.Factory) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "env",
		Short: "Validate, upgrade, read and change the project's .env",
	}
	cmd.AddCommand(newValidateCmd(f), newUpgradeCmd(f), newGetCmd(f), newSetCmd(f), newImportCmd(f), newBackupsCmd(f))
	return cmd
}

// envPath is the project's .env.
func envPath(f *cmdutil.Factory) (string, error) {
	dir, _, err := f.Project()
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, ".env"), nil
}

// readEnv reads the .env; a missing, unreadable or unparsable file exits 2
// (envgen.ReadFile's errors are input-file errors).
func readEnv(path string) (*envgen.Doc, error) {
	d, err := envgen.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, cmdutil.WithExitCode(cmdutil.ExitUsage, fmt.Errorf("%s does not exist; run \"difyctl init\" first", path))
	}
	return d, err
}

// ValidateOptions for env validate.
type ValidateOptions struct {
	IO     *iostreams.IOStreams
	JSON   bool
	Path   string
	Strict bool
}

func newValidateCmd(f *cmdutil.Factory) *cobra.Command {
	opts := &ValidateOptions{IO: f.IOStreams}
	cmd := &cobra.Command{
		Use:   "validate [--strict]",
		Short: "Check .env: types, required values, profiles, cross-variable rules, insecure defaults",
		Long: `Check the project's .env. Exit 0: no findings (warnings allowed unless --strict);
1: findings; 2: the file cannot be read or parsed.`,
		Args: cmdutil.Args(cobra.NoArgs),
		RunE: func(*cobra.Command, []string) error {
			var err error
			if opts.Path, err = envPath(f); err != nil {
				return err
			}
			opts.JSON = f.JSON()
			return Validate(opts)
		},
	}
	cmd.Flags().BoolVar(&opts.Strict, "strict", false, "treat warnings (insecure defaults, unknown variables) as errors")
	return cmd
}

// Validate runs env validate.
func Validate(opts *ValidateOptions) error {
	d, err := readEnv(opts.Path)
	if err != nil {
		return err
	}
	rep := envgen.ValidateReport(d, envgen.DefaultSchema(), envgen.MaxFindings)
	failed := rep.Failed(opts.Strict)
	if opts.JSON {
		if err := cmdutil.WriteJSON(opts.IO.Out, struct {
			OK bool `json:"ok"`
			envgen.Report
		}{!failed, rep}); err != nil {
			return err
		}
	} else {
		cs := opts.IO.ColorScheme()
		w := bufio.NewWriter(opts.IO.Out)
		for _, fd := range rep.Findings {
			label := cs.Yellow("warning")
			if fd.Severity == envgen.Error || opts.Strict {
				label = cs.Red("error")
			}
			fmt.Fprintf(w, "%s: %s\n", label, fd)
		}
		if rep.Omitted > 0 {
			fmt.Fprintf(w, "... and %d more finding(s) not listed: %d error(s) and %d warning(s) in all\n", rep.Omitted, rep.Errors, rep.Warnings)
		}
		if len(rep.Findings) == 0 {
			fmt.Fprintf(w, "%s: valid\n", opts.Path)
		}
		if err := w.Flush(); err != nil {
			return err
		}
	}
	if failed {
		return cmdutil.SilentError(cmdutil.ExitFailure)
	}
	return nil
}

// UpgradeOptions for env upgrade.
type UpgradeOptions struct {
	IO     *iostreams.IOStreams
	JSON   bool
	Path   string
	DryRun bool
	Now    func() time.Time
}

func newUpgradeCmd(f *cmdutil.Factory) *cobra.Command {
	opts := &UpgradeOptions{IO: f.IOStreams, Now: time.Now}
	cmd := &cobra.Command{
		Use:   "upgrade [--dry-run]",
		Short: "Add the variables the current template has and .env lacks, keeping everything else",
		Args:  cmdutil.Args(cobra.NoArgs),
		RunE: func(*cobra.Command, []string) error {
			var err error
			if opts.Path, err = envPath(f); err != nil {
				return err
			}
			opts.JSON = f.JSON()
			return Upgrade(opts)
		},
	}
	cmd.Flags().BoolVar(&opts.DryRun, "dry-run", false, "print what would be added and change nothing")
	return cmd
}

// Upgrade runs env upgrade.
func Upgrade(opts *UpgradeOptions) error {
	d, err := readEnv(opts.Path)
	if err != nil {
		return err
	}
	before := string(d.Bytes())
	rep, err := envgen.Upgrade(d, envgen.DefaultSchema(), rand.Reader, opts.Now())
	if err != nil {
		return cmdutil.WithExitCode(cmdutil.ExitFailure, err)
	}
	backup := ""
	if !opts.DryRun && string(d.Bytes()) != before {
		if backup, err = envgen.Backup(opts.Path, opts.Now()); err != nil {
			return fmt.Errorf("keeping a copy of %s: %w", opts.Path, err)
		}
		if err := envgen.WriteFile(opts.Path, d); err != nil {
			return err
		}
	}
	if opts.JSON {
		return cmdutil.WriteJSON(opts.IO.Out, struct {
			envgen.UpgradeReport
			DryRun bool   `json:"dryRun"`
			Backup string `json:"backup,omitempty"`
		}{rep, opts.DryRun, backup})
	}
	if opts.DryRun {
		// The diff: upgrade only ever appends, so it is the tail.
		for _, l := range strings.Split(strings.TrimSuffix(string(d.Bytes())[len(before):], "\n"), "\n") {
			if l != "" {
				fmt.Fprintln(opts.IO.Out, "+"+maskLine(l))
			}
		}
	}
	verb := "added"
	if opts.DryRun {
		verb = "would add"
	}
	fmt.Fprintf(opts.IO.ErrOut, "%s %d variable(s) for Dify %s", verb, len(rep.Added), rep.To)
	if backup != "" {
		fmt.Fprintf(opts.IO.ErrOut, "; the previous file is %s", backup)
	}
	fmt.Fprintln(opts.IO.ErrOut)
	if len(rep.Unknown) > 0 {
		fmt.Fprintf(opts.IO.ErrOut, "not variables of this template (kept as they are): %s\n", strings.Join(rep.Unknown, ", "))
	}
	return nil
}

// maskLine hides the value of a secret's assignment line.
func maskLine(l string) string {
	k, _, ok := strings.Cut(l, "=")
	if !ok {
		return l
	}
	if v, known := envgen.DefaultSchema().Lookup(k); known && v.IsSecret() {
		return k + "=********"
	}
	return l
}

// GetOptions for env get.
type GetOptions struct {
	IO   *iostreams.IOStreams
	JSON bool
	Path string
	Key  string
}

func newGetCmd(f *cmdutil.Factory) *cobra.Command {
	return &cobra.Command{
		Use:   "get KEY",
		Short: "Print a variable's value",
		Args:  cmdutil.Args(cobra.ExactArgs(1)),
		RunE: func(_ *cobra.Command, args []string) error {
			path, err := envPath(f)
			if err != nil {
				return err
			}
			return Get(&GetOptions{IO: f.IOStreams, JSON: f.JSON(), Path: path, Key: args[0]})
		},
	}
}

// Get prints one value.
func Get(opts *GetOptions) error {
	d, err := readEnv(opts.Path)
	if err != nil {
		return err
	}
	v, ok := d.Get(opts.Key)
	if !ok {
		return cmdutil.WithExitCode(cmdutil.ExitFailure, fmt.Errorf("%s is not set in %s", opts.Key, opts.Path))
	}
	if opts.JSON {
		return cmdutil.WriteJSON(opts.IO.Out, struct {
			Key   string `json:"key"`
			Value string `json:"value"`
			Line  int    `json:"line"`
		}{opts.Key, v, d.Line(opts.Key)})
	}
	fmt.Fprintln(opts.IO.Out, v)
	return nil
}

// SetOptions for env set.
type SetOptions struct {
	IO    *iostreams.IOStreams
	Path  string
	Key   string
	Value string
	Stdin bool // read the value from standard input (keeps secrets off the command line)
	Force bool
}

func newSetCmd(f *cmdutil.Factory) *cobra.Command {
	opts := &SetOptions{IO: f.IOStreams}
	cmd := &cobra.Command{
		Use:   "set KEY=VALUE | KEY --stdin",
		Short: "Change a variable (and those tied to it) after validating the result",
		Long: `Set a variable. Variables tied to it are changed with it (SANDBOX_API_KEY also
sets CODE_EXECUTION_API_KEY, REDIS_PASSWORD rebuilds CELERY_BROKER_URL, ...).
The result is validated first and not written when it has errors about this
variable. For secrets, pass the value on standard input with --stdin so it
stays out of shell history and process listings.`,
		Args: cmdutil.Args(cobra.ExactArgs(1)),
		RunE: func(_ *cobra.Command, args []string) error {
			var err error
			if opts.Path, err = envPath(f); err != nil {
				return err
			}
			k, v, hasValue := strings.Cut(args[0], "=")
			if hasValue == opts.Stdin {
				return cmdutil.UsageError("give KEY=VALUE, or KEY with --stdin")
			}
			opts.Key, opts.Value = k, v
			if err := envgen.CheckName(k); err != nil {
				return cmdutil.WithExitCode(cmdutil.ExitUsage, err)
			}
			return Set(opts)
		},
	}
	cmd.Flags().BoolVar(&opts.Stdin, "stdin", false, "read the value from standard input (one line)")
	cmd.Flags().BoolVar(&opts.Force, "force", false, "write even when validation finds errors about this variable")
	return cmd
}

// Set changes a value.
func Set(opts *SetOptions) error {
	if opts.Stdin {
		b, err := io.ReadAll(io.LimitReader(opts.IO.In, 1<<20))
		if err != nil {
			return err
		}
		opts.Value = strings.TrimRight(string(b), "\r\n")
	}
	if err := envgen.CheckName(opts.Key); err != nil {
		return cmdutil.WithExitCode(cmdutil.ExitUsage, err)
	}
	if err := envgen.CheckValue(opts.Value); err != nil {
		return cmdutil.WithExitCode(cmdutil.ExitUsage, fmt.Errorf("%s: %w", opts.Key, err))
	}
	d, err := readEnv(opts.Path)
	if err != nil {
		return err
	}
	v, known := envgen.DefaultSchema().Lookup(opts.Key)
	if !known {
		fmt.Fprintf(opts.IO.ErrOut, "warning: %s is not a variable of the templates; setting it anyway\n", opts.Key)
	} else if v.IsSecret() && !opts.Stdin {
		fmt.Fprintf(opts.IO.ErrOut, "warning: %s is a secret and now sits in your shell history; prefer \"difyctl env set %s --stdin\"\n", opts.Key, opts.Key)
	}
	also := envgen.SetLinked(d, opts.Key, opts.Value)
	if slices.Contains(envgen.SelectionVars, opts.Key) {
		// A database or vector store switch moves what follows from it:
		// COMPOSE_PROFILES, hosts, ports, and the new profile's variables.
		moved, err := envgen.ApplySelection(d, envgen.DefaultSchema(), rand.Reader, time.Now())
		if err != nil {
			return cmdutil.WithExitCode(cmdutil.ExitUsage, fmt.Errorf("%s: %w", opts.Key, err))
		}
		also = append(also, moved...)
	}
	touched := append([]string{opts.Key}, also...)
	var bad []string
	for _, fd := range envgen.Validate(d, envgen.DefaultSchema()) {
		if fd.Severity != envgen.Error {
			continue
		}
		for _, k := range touched {
			if fd.Var == k || strings.Contains(fd.Message, k) {
				bad = append(bad, fd.String())
				break
			}
		}
	}
	if len(bad) > 0 && !opts.Force {
		return cmdutil.WithExitCode(cmdutil.ExitFailure, fmt.Errorf("not written: %s", strings.Join(bad, "; ")))
	}
	if err := envgen.WriteFile(opts.Path, d); err != nil {
		return err
	}
	msg := "set " + opts.Key
	if len(also) > 0 {
		msg += " (and " + strings.Join(also, ", ") + ")"
	}
	fmt.Fprintln(opts.IO.ErrOut, msg)
	return nil
}

// ImportOptions for env import.
type ImportOptions struct {
	IO         *iostreams.IOStreams
	JSON       bool
	ProjectDir string
	Source     string
	Force      bool
	// AllowOtherOwner imports files and folders of another user.
	AllowOtherOwner bool
	Now             func() time.Time
}

func newImportCmd(f *cmdutil.Factory) *cobra.Command {
	opts := &ImportOptions{IO: f.IOStreams, Now: time.Now}
	cmd := &cobra.Command{
		Use:   "import DIR",
		Short: "Adopt an upstream Dify docker/ folder: its values, project name and data",
		Long: `Read DIR/.env (and DIR/envs/**/*.env), keep every value, and write the
project's .env from difyctl's template. COMPOSE_PROJECT_NAME is set to the name
docker compose gave that deployment, and the project directory gets symlinks to
DIR's data and configuration folders (volumes, nginx, ssrf_proxy, ...), so "up"
adopts the running deployment instead of starting a second one. DIR is only read.`,
		Args: cmdutil.Args(cobra.ExactArgs(1)),
		RunE: func(_ *cobra.Command, args []string) error {
			dir, _, err := f.Project()
			if err != nil {
				return err
			}
			opts.ProjectDir, opts.Source, opts.JSON = dir, args[0], f.JSON()
			return Import(opts)
		},
	}
	cmd.Flags().BoolVar(&opts.Force, "force", false, "replace an existing .env (a timestamped copy is kept)")
	cmd.Flags().BoolVar(&opts.AllowOtherOwner, "allow-other-owner", false, "import DIR even when it or its files belong to another user (who then chooses your settings and where data lives)")
	return cmd
}

// upstreamDirs are the folders of upstream's docker/ that its compose file
// mounts from: data and configuration.
var upstreamDirs = []string{"volumes", "nginx", "ssrf_proxy", "certbot", "pgvector", "elasticsearch", "iris", "startupscripts"}

// importPaths are what import reads or links from src.
func importPaths(src string) []string {
	ps := []string{src, filepath.Join(src, ".env"), filepath.Join(src, "envs")}
	_ = filepath.WalkDir(filepath.Join(src, "envs"), func(p string, e fs.DirEntry, err error) error {
		if err == nil && p != filepath.Join(src, "envs") {
			ps = append(ps, p)
		}
		return nil
	})
	for _, name := range upstreamDirs {
		ps = append(ps, filepath.Join(src, name))
	}
	return ps
}

// Import runs env import.
func Import(opts *ImportOptions) error {
	src, err := filepath.Abs(opts.Source)
	if err != nil {
		return err
	}
	if err := trust.CheckSource(importPaths(src), os.Geteuid(), opts.AllowOtherOwner); err != nil {
		return cmdutil.WithExitCode(cmdutil.ExitUsage, err)
	}
	rel := importedRelease(src)
	schema := envgen.DefaultSchema()
	if rel != nil {
		schema = envgen.SchemaFor(rel)
	}
	d, rep, err := envgen.ImportWith(src, schema, opts.Now())
	if err != nil {
		return cmdutil.WithExitCode(cmdutil.ExitUsage, err)
	}
	path := filepath.Join(opts.ProjectDir, ".env")
	if _, err := os.Stat(path); err == nil {
		if !opts.Force {
			return cmdutil.UsageError("%s exists; pass --force to replace it (a timestamped copy is kept)", path)
		}
		if _, err := envgen.Backup(path, opts.Now()); err != nil {
			return err
		}
	}
	if err := envgen.WriteFile(path, d); err != nil {
		return err
	}
	if rel != nil {
		if err := release.Write(opts.ProjectDir, release.Record{Release: rel.Version, Source: release.SourceImport, At: opts.Now().UTC()}); err != nil {
			return err
		}
		fmt.Fprintf(opts.IO.ErrOut, "recognised Dify %s from the images of %s (recorded in %s)\n", rel.Version, filepath.Join(src, "docker-compose.yaml"), release.FileName)
	} else {
		fmt.Fprintf(opts.IO.ErrOut, "warning: the release of %s is not one this difyctl carries (%s); its .env was read against the newest\n", src, strings.Join(templates.Versions(), ", "))
	}
	var linked []string
	if src != opts.ProjectDir {
		for _, name := range upstreamDirs {
			target, link := filepath.Join(src, name), filepath.Join(opts.ProjectDir, name)
			if _, err := os.Stat(target); err != nil {
				continue
			}
			if _, err := os.Lstat(link); err == nil {
				continue // the project already has its own
			}
			if err := os.Symlink(target, link); err != nil {
				return fmt.Errorf("linking %s to %s: %w", link, target, err)
			}
			linked = append(linked, name)
		}
	}
	if opts.JSON {
		return cmdutil.WriteJSON(opts.IO.Out, struct {
			envgen.ImportReport
			Path   string   `json:"path"`
			Linked []string `json:"linked"`
		}{rep, path, linked})
	}
	fmt.Fprintf(opts.IO.Out, "wrote %s: %d value(s) kept from %s, %d added from the template, project %q\n", path, rep.Kept, src, len(rep.Added), rep.Project)
	if len(linked) > 0 {
		fmt.Fprintf(opts.IO.Out, "linked %s from %s\n", strings.Join(linked, ", "), src)
	}
	if len(rep.Unplaced) > 0 {
		fmt.Fprintf(opts.IO.Out, "not variables of this template (kept in their own section): %s\n", strings.Join(rep.Unplaced, ", "))
	}
	return nil
}

// importedRelease recognises the Dify release of an upstream docker/ folder
// from the images its docker-compose.yaml names (nil: not one of the
// catalogue's).
func importedRelease(src string) *templates.Release {
	b, err := os.ReadFile(filepath.Join(src, "docker-compose.yaml"))
	if err != nil {
		return nil
	}
	v, err := catalog.DetectCompose(b)
	if err != nil || v == "" {
		return nil
	}
	r, _ := templates.Lookup(v)
	return r
}
