package restore

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"filippo.io/age"
	"github.com/spf13/cobra"

	"github.com/difyctl/difyctl/backup"
	"github.com/difyctl/difyctl/backup/bundle"
	"github.com/difyctl/difyctl/cmd/backupcmd"
	"github.com/difyctl/difyctl/cmd/config"
	"github.com/difyctl/difyctl/compose"
	"github.com/difyctl/difyctl/internal/buildinfo"
	"github.com/difyctl/difyctl/internal/cmdutil"
	"github.com/difyctl/difyctl/internal/engine"
	"github.com/difyctl/difyctl/internal/iostreams"
	"github.com/difyctl/difyctl/internal/project"
	"github.com/difyctl/difyctl/internal/recovery"
)

// AllOptions for `restore all`.
type AllOptions struct {
	cmdutil.ProcEnv // the lock directory's environment and the settlers' (the factory's)
	IO              *iostreams.IOStreams
	JSON            bool
	Yes             bool
	Which           string // a bundle directory, a name in the backup directory, latest, or - (stdin)
	Identity        string
	Restore         bundle.RestoreOptions
	WaitTimeout     time.Duration
	Engine          func(context.Context) (engine.Engine, error)
	// Load returns the project's load options (after its files exist).
	Load func() (compose.LoadOptions, error)
}

// NewCmdAll returns `restore all`; runF replaces RunAll in tests.
func NewCmdAll(f *cmdutil.Factory, runF func(context.Context, *AllOptions) error) *cobra.Command {
	opts := &AllOptions{IO: f.IOStreams}
	var backupDir string
	cmd := &cobra.Command{
		Use:   "all [BUNDLE|NAME|latest|-] [--identity FILE] [--yes]",
		Short: "Restore a whole-deployment bundle, here or into a new project directory (migration)",
		Long: `Verify the bundle in full (every part's size and SHA-256, stored and
decompressed, the dump's header, the RDB walk, every tar stream) and refuse
one that fails, one from a newer Dify release than this difyctl deploys, or
one for another database type than the project runs.

Into the same deployment (the project has containers): take a safety bundle,
stop the application services while the data services keep running, load
the dump into a fresh database that replaces the old one only once complete
(MySQL: drop and create, then load), put the files back (each tree unpacked
complete beside the old one, then swapped in), restore Redis and the vector
store, and start everything that ran, gated on health. Any failure after
the stop puts the safety bundle back the same way and starts the deployment
as it was.

Into a new project (--project-dir new or empty, -p another name, another
host): write .env (COMPOSE_PROJECT_NAME set to the new name) and the support
files, start only the data services, load the dump, restore the files and
Redis, then start everything. Prints what was restored, with counts.

BUNDLE is a bundle directory; NAME one in the backup directory as "backup
list" prints it; latest the project's newest (never a safety bundle); -
reads a stream written by "backup all --output -" from stdin.`,
		Args: cmdutil.Args(cobra.MaximumNArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			// A new project directory is created (0750) for a migration.
			if f.ProjectDir != "" {
				if _, err := os.Stat(f.ProjectDir); errors.Is(err, fs.ErrNotExist) {
					if err := os.MkdirAll(f.ProjectDir, 0o750); err != nil {
						return fmt.Errorf("creating the project directory: %w", err)
					}
				}
			}
			dir, name, err := f.Project()
			if err != nil {
				return err
			}
			opts.Which = "latest"
			if len(args) == 1 {
				opts.Which = args[0]
			}
			bdir, err := backupcmd.BundleDir(dir, backupDir)
			if err != nil {
				return err
			}
			opts.JSON = f.JSON()
			r := &opts.Restore
			r.Project, r.ProjectDir, r.BackupDir, r.Version = name, dir, bdir, buildinfo.Get().Version
			r.Now = time.Now
			opts.Engine = func(ctx context.Context) (engine.Engine, error) { return f.Engine(ctx) }
			opts.ProcEnv = f.ProcEnv()
			opts.Load = func() (compose.LoadOptions, error) { return config.LoadOptions(f, nil) }
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return RunAll(cmd.Context(), opts)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&backupDir, "backup-dir", "", "bundle directory: where latest and NAME are found and the safety bundle goes (default <project-dir>/backups/all)")
	fl.StringVar(&opts.Identity, "identity", "", "age identity file to decrypt an encrypted bundle")
	fl.BoolVarP(&opts.Yes, "yes", "y", false, "do not ask for confirmation")
	fl.DurationVar(&opts.WaitTimeout, "wait-timeout", 10*time.Minute, "how long the services may take to become healthy")
	fl.DurationVar(&opts.Restore.StopTimeout, "stop-timeout", 30*time.Second, "how long each service may take to stop")
	return cmd
}

// RunAll restores a bundle.
func RunAll(ctx context.Context, opts *AllOptions) error {
	r := &opts.Restore
	if !opts.JSON {
		r.Progress = func(format string, a ...any) { fmt.Fprintf(opts.IO.ErrOut, format+"\n", a...) }
	}
	var ids []age.Identity
	if opts.Identity != "" {
		var err error
		if ids, err = bundle.ReadIdentities(opts.Identity); err != nil {
			return cmdutil.WithExitCode(cmdutil.ExitUsage, err)
		}
	}
	r.Identities = ids
	if opts.Which == "-" && !opts.Yes {
		return cmdutil.UsageError("reading the bundle from stdin leaves no terminal to confirm on: pass --yes")
	}
	eng, err := opts.Engine(ctx)
	if err != nil {
		return err
	}
	defer eng.Close()
	unlockProject, err := project.Lock(cmdutil.EnvOrNone(opts.Getenv), r.Project)
	if err != nil {
		return err
	}
	defer unlockProject()
	unlock, err := backup.Lock(r.BackupDir, r.Project)
	if err != nil {
		return err
	}
	defer unlock()
	// Settled under the backup directory's lock too: the restore-all
	// settler clears what a killed restore left in it.
	if _, err := recovery.Settle(ctx, eng, recovery.Options{Out: opts.IO.ErrOut, JSON: opts.JSON, ProcEnv: opts.ProcEnv}, r.ProjectDir, r.Project); err != nil {
		return err
	}

	// Which bundle.
	var path string
	switch opts.Which {
	case "latest":
		if path, err = bundle.Latest(r.BackupDir, r.Project); err != nil {
			return cmdutil.WithExitCode(cmdutil.ExitUsage, err)
		}
	case "-":
		r.Progress("reading the bundle from stdin")
		if path, err = bundle.ReadStream(opts.IO.In, r.BackupDir); err != nil {
			return cmdutil.WithExitCode(cmdutil.ExitFailure, fmt.Errorf("refusing the bundle on stdin: %w", err))
		}
		defer os.RemoveAll(path)
	default:
		path = backup.ResolveFile(r.BackupDir, opts.Which)
		if !bundle.IsBundle(path) {
			return cmdutil.WithExitCode(cmdutil.ExitUsage, fmt.Errorf("%s is not a bundle (a directory with a manifest.json, as backup all writes)", path))
		}
	}
	if path, err = filepath.Abs(path); err != nil {
		return err
	}
	r.Bundle = path
	if r.Progress != nil {
		r.Progress("verifying %s", path)
	}
	t0 := time.Now()
	v, err := bundle.Verify(path, ids)
	if err != nil {
		return cmdutil.WithExitCode(cmdutil.ExitFailure, fmt.Errorf("refusing to restore: %w", err))
	}
	verified := bundle.TimingSince("verify the bundle", t0)
	m := v.Manifest
	if m.Encrypted && len(ids) == 0 {
		return cmdutil.WithExitCode(cmdutil.ExitUsage, fmt.Errorf("refusing to restore %s: %w", path, bundle.ErrNoIdentity))
	}
	dbType, err := bundle.TargetDBType(ctx, eng, r.Project, r.ProjectDir)
	if err != nil {
		return err
	}
	if err := bundle.Check(m, dbType); err != nil {
		return cmdutil.WithExitCode(cmdutil.ExitFailure, fmt.Errorf("refusing to restore %s: %w", path, err))
	}
	cs, err := compose.List(ctx, eng, r.Project, true)
	if err != nil {
		return err
	}
	if len(cs) > 0 {
		if _, err := os.Stat(filepath.Join(r.ProjectDir, ".env")); err != nil {
			return cmdutil.UsageError("project %s has containers, but %s has no .env: they belong to another directory; restore into a new project with -p NAME", r.Project, r.ProjectDir)
		}
	}
	if !opts.Yes {
		if !opts.IO.IsStdinTTY() {
			return cmdutil.UsageError("restoring replaces the deployment's data; pass --yes to confirm when not on a terminal")
		}
		what := "into the new project " + r.Project + " in " + r.ProjectDir
		if len(cs) > 0 {
			what = "over ALL data of project " + r.Project + " (a safety bundle is taken first)"
		}
		fmt.Fprintf(opts.IO.ErrOut, "Restore %s (project %s, Dify %s, taken %s) %s? [y/N] ", path, m.Project, m.DifyVersion, m.CreatedAt.Format(time.RFC3339), what)
		line, _ := bufio.NewReader(opts.IO.In).ReadString('\n')
		if a := strings.ToLower(strings.TrimSpace(line)); a != "y" && a != "yes" {
			return cmdutil.WithExitCode(cmdutil.ExitFailure, fmt.Errorf("not confirmed; nothing changed"))
		}
	}
	r.WaitTimeout = opts.WaitTimeout
	if r.Load, err = opts.Load(); err != nil {
		return err
	}
	env := r.Load.DotEnv // the factory's reading of .env
	if env == nil {
		env, _ = compose.Environment(r.ProjectDir, nil)
	}
	r.RedisPassword = env["REDIS_PASSWORD"]
	res, err := bundle.Restore(ctx, eng, *r)
	if err != nil {
		return cmdutil.WithExitCode(cmdutil.ExitFailure, err)
	}
	res.Timings = append([]bundle.Timing{verified}, res.Timings...)
	if r.Progress != nil {
		r.Progress("steps: %s", bundle.TimingWords(res.Timings))
	}
	if opts.JSON {
		return cmdutil.WriteJSON(opts.IO.Out, res)
	}
	fmt.Fprintf(opts.IO.Out, "restored %s into project %s (%s) in %s\n", path, res.Project, res.Mode, res.Duration)
	for _, rs := range res.Restored {
		fmt.Fprintf(opts.IO.Out, "  %-40s -> %-36s %s\n", rs.Part, rs.Into, counts(rs.Counts))
	}
	if res.SafetyBundle != "" {
		fmt.Fprintf(opts.IO.Out, "safety bundle of the previous data: %s\n", res.SafetyBundle)
	}
	fmt.Fprintf(opts.IO.Out, "running: %s\n", strings.Join(res.Services, ", "))
	return nil
}

func counts(c map[string]int64) string {
	var ws []string
	for _, k := range []string{"tables", "tablesRestored", "largeObjects", "largeObjectsRestored", "files", "dirs", "bytes", "keys"} {
		if n, ok := c[k]; ok {
			ws = append(ws, fmt.Sprintf("%d %s", n, k))
		}
	}
	return strings.Join(ws, ", ")
}
