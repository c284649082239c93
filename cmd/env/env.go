// Package env implements `difyctl env validate|upgrade|get|set|import`.
package env

import (
	"bufio"
	"context"
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
	"github.com/difyctl/difyctl/internal/adopt"
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
	cmd.AddCommand(NewCmdValidate(f, nil), NewCmdUpgrade(f, nil), NewCmdGet(f, nil), NewCmdSet(f, nil), NewCmdImport(f, nil), newBackupsCmd(f))
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

// NewCmdValidate returns env validate; runF, when not nil, runs instead of
// Validate (tests check the flag mapping through it).
func NewCmdValidate(f *cmdutil.Factory, runF func(context.Context, *ValidateOptions) error) *cobra.Command {
	opts := &ValidateOptions{IO: f.IOStreams}
	cmd := &cobra.Command{
		Use:   "validate [--strict]",
		Short: "Check .env: types, required values, profiles, cross-variable rules, insecure defaults",
		Long: `Check the project's .env. Exit 0: no findings (warnings allowed unless --strict);
1: findings; 2: the file cannot be read or parsed.`,
		Args: cmdutil.Args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			var err error
			if opts.Path, err = envPath(f); err != nil {
				return err
			}
			opts.JSON = f.JSON()
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
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

// NewCmdUpgrade returns env upgrade; runF, when not nil, runs instead of
// Upgrade.
func NewCmdUpgrade(f *cmdutil.Factory, runF func(context.Context, *UpgradeOptions) error) *cobra.Command {
	opts := &UpgradeOptions{IO: f.IOStreams, Now: time.Now}
	cmd := &cobra.Command{
		Use:   "upgrade [--dry-run]",
		Short: "Add the variables the current template has and .env lacks, keeping everything else",
		Args:  cmdutil.Args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			var err error
			if opts.Path, err = envPath(f); err != nil {
				return err
			}
			opts.JSON = f.JSON()
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
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

// NewCmdGet returns env get; runF, when not nil, runs instead of Get.
func NewCmdGet(f *cmdutil.Factory, runF func(context.Context, *GetOptions) error) *cobra.Command {
	return &cobra.Command{
		Use:   "get KEY",
		Short: "Print a variable's value",
		Long: `Print a variable's value as docker compose reads it: ${VAR} in the value and a
bare KEY line are resolved against the process environment first, then the
file, exactly as "difyctl config" and docker compose resolve them.`,
		Args: cmdutil.Args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			path, err := envPath(f)
			if err != nil {
				return err
			}
			opts := &GetOptions{IO: f.IOStreams, JSON: f.JSON(), Path: path, Key: args[0]}
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return Get(opts)
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
	IO       *iostreams.IOStreams
	Path     string
	Key      string
	Value    string
	Stdin    bool // read the value from standard input (keeps secrets off the command line)
	Generate bool // generate a fresh secret with the variable's own generator
	Force    bool
	Rand     io.Reader // where --generate draws from; nil: crypto/rand
}

// NewCmdSet returns env set; runF, when not nil, runs instead of Set.
func NewCmdSet(f *cmdutil.Factory, runF func(context.Context, *SetOptions) error) *cobra.Command {
	opts := &SetOptions{IO: f.IOStreams}
	cmd := &cobra.Command{
		Use:   "set KEY=VALUE | KEY --stdin | KEY --generate",
		Short: "Change a variable (and those tied to it) after validating the result",
		Long: `Set a variable. Variables tied to it are changed with it, and the names of
those that changed are printed (never their values):
  - a pair two services must agree on (envgen/rules.go): SANDBOX_API_KEY also
    sets CODE_EXECUTION_API_KEY, PLUGIN_DIFY_INNER_API_KEY sets
    INNER_API_KEY_FOR_PLUGIN, PGVECTOR_POSTGRES_PASSWORD sets PGVECTOR_PASSWORD, ...;
  - REDIS_PASSWORD (and REDIS_HOST, REDIS_PORT, REDIS_USERNAME, REDIS_USE_SSL)
    rebuilds CELERY_BROKER_URL;
  - DB_TYPE or VECTOR_STORE moves COMPOSE_PROFILES, the hosts and ports the
    profile runs at, and adds the new profile's variables (fresh secrets).
The result is validated first and not written when it has errors about the
variables it changed (--force writes anyway). KEY must be a name docker
compose can interpolate (letters, digits, '_').

For secrets, pass the value on standard input with --stdin so it stays out of
shell history and process listings, or let difyctl make one with --generate
(the empty-secret fix "env validate" names). A server keeps the password it was
created with: changing DB_PASSWORD (or a vector store's) in .env does not change
it in an existing database. SECRET_KEY --generate: Dify (1.14 and later) makes
its own key when SECRET_KEY is empty and keeps it in its storage directory; a
key in .env takes its place and nothing of that key is kept, so everyone is
signed out and the links Dify signed before (file previews) stop working.`,
		Args: cmdutil.Args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			var err error
			if opts.Path, err = envPath(f); err != nil {
				return err
			}
			k, v, hasValue := strings.Cut(args[0], "=")
			n := 0
			for _, b := range []bool{hasValue, opts.Stdin, opts.Generate} {
				if b {
					n++
				}
			}
			if n != 1 {
				return cmdutil.UsageError("give KEY=VALUE, or KEY with --stdin, or KEY with --generate")
			}
			opts.Key, opts.Value = k, v
			if err := envgen.CheckName(k); err != nil {
				return cmdutil.WithExitCode(cmdutil.ExitUsage, err)
			}
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return Set(opts)
		},
	}
	cmd.Flags().BoolVar(&opts.Stdin, "stdin", false, "read the value from standard input (one line)")
	cmd.Flags().BoolVar(&opts.Generate, "generate", false, "generate a fresh secret for KEY (a variable difyctl generates)")
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
	if opts.Generate {
		v, known := envgen.DefaultSchema().Lookup(opts.Key)
		if !known || !v.Generated() {
			return cmdutil.UsageError("%s is not a secret difyctl generates; set it with \"difyctl env set %s --stdin\"", opts.Key, opts.Key)
		}
		r := opts.Rand
		if r == nil {
			r = rand.Reader
		}
		val, err := envgen.GenerateSecret(v, r)
		if err != nil {
			return fmt.Errorf("generating %s: %w", opts.Key, err)
		}
		opts.Value = val
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
	} else if v.IsSecret() && !opts.Stdin && !opts.Generate {
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
	if opts.Generate {
		msg += fmt.Sprintf(" to a fresh secret (%d characters)", len(opts.Value))
	}
	if len(also) > 0 {
		msg += " (and " + strings.Join(also, ", ") + ")"
	}
	fmt.Fprintln(opts.IO.ErrOut, msg)
	if opts.Key == "SECRET_KEY" {
		fmt.Fprintln(opts.IO.ErrOut, "SECRET_KEY now comes from .env: the key Dify used so far (its own, kept in its storage directory, or the previous value) is no longer used; after \"difyctl up\" everyone signs in again and links Dify signed before stop working")
	}
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

// NewCmdImport returns env import; runF, when not nil, runs instead of
// Import.
func NewCmdImport(f *cmdutil.Factory, runF func(context.Context, *ImportOptions) error) *cobra.Command {
	opts := &ImportOptions{IO: f.IOStreams, Now: time.Now}
	cmd := &cobra.Command{
		Use:   "import DIR",
		Short: "Adopt an upstream Dify docker/ folder: its values, project name and data",
		Long: `Adopt the deployment an upstream Dify docker/ folder runs. DIR is only read
(unless DIR is the project directory itself).

The project's .env starts from DIR/.env, byte for byte (comments, order,
quoting, line endings), plus the values only DIR/envs/**/*.env set. What this
release needs and DIR lacks is added as "env upgrade" adds it: a variable tied
to one DIR has is derived from it (CELERY_BROKER_URL from REDIS_PASSWORD,
CODE_EXECUTION_API_KEY from SANDBOX_API_KEY, ...), others get fresh secrets.
Hosts, ports and COMPOSE_PROFILES the chosen profiles fix are set to what this
release runs. COMPOSE_PROJECT_NAME is the name docker compose gave that
deployment (DIR's name, normalised as compose does), so "up" adopts the
running containers and volumes instead of starting a second deployment.

Data folders (volumes/, certbot/) are linked. Configuration folders (nginx/,
ssrf_proxy/, ...) of an older release are not used as they are (1.1.3's nginx
lacks routes this release needs; its squid config lacks the private-network
deny rules): each file this release ships is written from the embedded
release, and DIR's version, where it differs, is kept beside it as
<file>.orig to compare and port edits from. Files this release does not ship
(certificates in nginx/ssl, extra scripts) are copied as they are.`,
		Args: cmdutil.Args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			dir, _, err := f.Project()
			if err != nil {
				return err
			}
			opts.ProjectDir, opts.Source, opts.JSON = dir, args[0], f.JSON()
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return Import(opts)
		},
	}
	cmd.Flags().BoolVar(&opts.Force, "force", false, "replace an existing .env (a timestamped copy is kept)")
	cmd.Flags().BoolVar(&opts.AllowOtherOwner, "allow-other-owner", false, "import DIR even when it or its files belong to another user (who then chooses your settings and where data lives)")
	return cmd
}

// importPaths are what import reads or links from src.
func importPaths(src string) []string {
	ps := []string{src, filepath.Join(src, ".env"), filepath.Join(src, "envs")}
	_ = filepath.WalkDir(filepath.Join(src, "envs"), func(p string, e fs.DirEntry, err error) error {
		if err == nil && p != filepath.Join(src, "envs") {
			ps = append(ps, p)
		}
		return nil
	})
	for _, name := range append(append([]string(nil), adopt.DataDirs...), adopt.ConfigDirs...) {
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
	folders, err := adopt.Folders(src, opts.ProjectDir)
	if err != nil {
		return err
	}
	if opts.JSON {
		return cmdutil.WriteJSON(opts.IO.Out, struct {
			envgen.ImportReport
			Path    string       `json:"path"`
			Folders adopt.Report `json:"folders"`
		}{rep, path, folders})
	}
	w := opts.IO.Out
	fmt.Fprintf(w, "wrote %s: %d value(s) kept from %s (its comments and order too), %d added from the template, project %q\n", path, rep.Kept, src, len(rep.Added), rep.Project)
	if len(rep.Rederived) > 0 {
		fmt.Fprintf(w, "set to what Dify %s runs for the chosen profiles: %s\n", templates.DifyVersion(), strings.Join(rep.Rederived, ", "))
	}
	if len(rep.Unplaced) > 0 {
		fmt.Fprintf(w, "not variables of this template (kept as they were): %s\n", strings.Join(rep.Unplaced, ", "))
	}
	if len(folders.Linked) > 0 {
		fmt.Fprintf(w, "linked %s from %s (data)\n", strings.Join(folders.Linked, ", "), src)
	}
	if len(folders.Replaced) > 0 {
		fmt.Fprintf(w, "written from Dify %s, yours kept beside as %s (compare and port your edits): %s\n", templates.DifyVersion(), adopt.OrigSuffix, strings.Join(folders.Replaced, ", "))
	}
	if len(folders.Kept) > 0 {
		fmt.Fprintf(w, "the project's own, left as they are: %s\n", strings.Join(folders.Kept, ", "))
	}
	if len(folders.Copied) > 0 {
		fmt.Fprintf(w, "copied as they were (not shipped by this release): %s\n", strings.Join(folders.Copied, ", "))
	}
	if len(folders.Skipped) > 0 {
		fmt.Fprintf(w, "not copied (symlinks or special files): %s\n", strings.Join(folders.Skipped, ", "))
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
