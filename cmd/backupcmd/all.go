package backupcmd

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/difyctl/difyctl/backup"
	"github.com/difyctl/difyctl/backup/bundle"
	"github.com/difyctl/difyctl/compose"
	"github.com/difyctl/difyctl/internal/buildinfo"
	"github.com/difyctl/difyctl/internal/cmdutil"
	"github.com/difyctl/difyctl/internal/engine"
	"github.com/difyctl/difyctl/internal/iostreams"
	"github.com/difyctl/difyctl/internal/recovery"
)

// AllOptions for `backup all`.
type AllOptions struct {
	cmdutil.ProcEnv // the lock directory's environment and the settlers' (the factory's)
	IO              *iostreams.IOStreams
	JSON            bool
	Quiet           bool
	Stream          bool // --output -: the bundle as one tar stream on stdout
	Timeout         time.Duration
	Bundle          bundle.Options
	Engine          func(context.Context) (engine.Engine, error)
	Scheduled       string
	encryptTo       []string
	retention       int
	output          string
}

// DefaultBundleDir is where bundles go unless --backup-dir says otherwise.
func DefaultBundleDir(projectDir string) string { return bundle.DefaultDir(projectDir) }

// BundleDir resolves --backup-dir for bundles.
func BundleDir(projectDir, flag string) (string, error) {
	if flag == "" {
		return DefaultBundleDir(projectDir), nil
	}
	return filepath.Abs(flag)
}

// NewCmdAll returns `backup all`; runF replaces RunAll in tests.
func NewCmdAll(f *cmdutil.Factory, runF func(context.Context, *AllOptions) error) *cobra.Command {
	opts := &AllOptions{IO: f.IOStreams}
	var backupDir string
	cmd := &cobra.Command{
		Use:   "all [--encrypt-to RECIPIENT]... [--output -]",
		Short: "Back up the whole deployment: database, Redis, files, vector store, .env, as one verified bundle",
		Long: `Take a bundle of the running deployment: the metadata database as a logical
dump taken inside its container (pg_dump -Fc, or mysqldump
--single-transaction --routines --triggers), Redis through the verified RDB
path of "backup redis", the file volumes of the running services (storage,
plugin daemon, sandbox dependencies, certbot, the vector store's data) read
from the engine as tar streams, pgvector through pg_dump and the other vector
stores with their service paused for the copy, and the project's own files
(.env with every secret, the override file, the support files).

Parts are taken in parallel, compressed with zstd, hashed while they stream
and verified (the dump's table of contents read back with pg_restore --list,
the RDB walked, every tar stream read to its end, sizes and hashes read
back) before the bundle is renamed into place as
<backup-dir>/bundle_YYYYMMDD_HHMMSS (0700, files 0600) with a manifest.json.
The space needed is estimated first. A bundle that failed leaves nothing
under a bundle's name and prunes nothing; after one that succeeded, the
project's bundles older than --retention-days go (never the newest
--keep-min).

--encrypt-to encrypts every part with age for the recipient(s); restore
then needs --identity. --output - writes the bundle as one tar stream to
stdout (it is assembled in the backup directory first and removed after).`,
		Args: cmdutil.Args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			dir, name, err := f.Project()
			if err != nil {
				return err
			}
			switch opts.output {
			case "-":
				opts.Stream = true
			case cmdutil.OutputText, cmdutil.OutputJSON:
				f.Output = opts.output
			case "":
			default:
				return cmdutil.UsageError("--output %q: use text, json, or - (the bundle as a tar stream on stdout)", opts.output)
			}
			if opts.Stream && opts.IO.IsStdoutTTY() {
				return cmdutil.UsageError("--output - writes binary data: redirect stdout to a file or a pipe")
			}
			if err := backup.ValidateRetention(opts.retention, opts.Bundle.KeepMin); err != nil {
				return cmdutil.WithExitCode(cmdutil.ExitUsage, err)
			}
			rcpts, err := bundle.ParseRecipients(opts.encryptTo)
			if err != nil {
				return cmdutil.WithExitCode(cmdutil.ExitUsage, err)
			}
			bdir, err := BundleDir(dir, backupDir)
			if err != nil {
				return err
			}
			opts.JSON = f.JSON()
			b := &opts.Bundle
			b.Project, b.ProjectDir, b.Dir, b.Recipients = name, dir, bdir, rcpts
			b.Retention = time.Duration(opts.retention) * 24 * time.Hour
			b.Version = buildinfo.Get().Version
			if env, e := f.EnvMap(); e == nil {
				b.RedisPassword = env["REDIS_PASSWORD"]
			}
			opts.Engine = func(ctx context.Context) (engine.Engine, error) { return f.Engine(ctx) }
			opts.ProcEnv = f.ProcEnv()
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return RunAll(cmd.Context(), opts)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&backupDir, "backup-dir", "", "bundle directory (default <project-dir>/backups/all)")
	fl.StringArrayVar(&opts.encryptTo, "encrypt-to", nil, "encrypt every part with age for this recipient (age1..., repeatable)")
	fl.StringVarP(&opts.output, "output", "o", "", "text, json, or - to write the bundle as one tar stream to stdout")
	fl.IntVar(&opts.retention, "retention-days", 7, "delete the project's bundles older than this many days (never the newest --keep-min)")
	fl.IntVar(&opts.Bundle.KeepMin, "keep-min", 3, "never delete the newest N bundles")
	fl.IntVar(&opts.Bundle.Parallel, "parallel", 3, "parts taken at once")
	fl.BoolVarP(&opts.Quiet, "quiet", "q", false, "no output on success, one line on failure (for cron)")
	fl.DurationVar(&opts.Timeout, "timeout", 2*time.Hour, "bound on the whole bundle")
	fl.StringVar(&opts.Scheduled, "scheduled", "", "set by the cron job: the schedule's expression")
	_ = fl.MarkHidden("scheduled")
	return cmd
}

// RunAll takes one bundle (or streams one).
func RunAll(ctx context.Context, opts *AllOptions) error {
	start := time.Now()
	res, err := runAll(ctx, opts)
	if opts.Scheduled != "" && !opts.Stream {
		// Every outcome of a scheduled run is recorded, a failure before
		// the bundle began (the engine unreachable, the lock held, a
		// journal that cannot be settled) too: the status file never
		// shows an old success over a run that failed.
		recordBundleRun(opts, start, res, err)
	}
	if err != nil {
		return quietErr(opts.Quiet, opts.IO, err)
	}
	if opts.Stream {
		return nil
	}
	if opts.JSON {
		return cmdutil.WriteJSON(opts.IO.Out, res)
	}
	if opts.Quiet {
		return nil
	}
	m := res.Manifest
	fmt.Fprintf(opts.IO.Out, "%s  %s  %d parts  Dify %s  %s  (%s)\n", res.Path, humanSize(m.Size()), len(m.Parts), m.DifyVersion, m.DBType, m.Duration)
	for _, p := range m.Parts {
		fmt.Fprintf(opts.IO.Out, "  %-40s %10s  %s\n", p.Name, humanSize(p.Size), PartSummary(p))
	}
	if len(res.Pruned) > 0 {
		fmt.Fprintf(opts.IO.ErrOut, "rotated out: %s\n", strings.Join(res.Pruned, ", "))
	}
	if len(res.Cleaned) > 0 {
		fmt.Fprintf(opts.IO.ErrOut, "removed what killed runs left: %s\n", strings.Join(res.Cleaned, ", "))
	}
	fmt.Fprintf(opts.IO.ErrOut, "steps: %s\n", bundle.TimingWords(m.Timings))
	return nil
}

// runAll takes the bundle (or streams it) under the project lock, after
// settling an interrupted operation's journal.
func runAll(ctx context.Context, opts *AllOptions) (*bundle.Result, error) {
	ctx, cancel := context.WithTimeout(ctx, opts.Timeout)
	defer cancel()
	if !opts.Quiet && !opts.JSON && opts.Scheduled == "" || opts.Stream && !opts.Quiet {
		opts.Bundle.Progress = func(format string, a ...any) { fmt.Fprintf(opts.IO.ErrOut, format+"\n", a...) }
	}
	eng, err := opts.Engine(ctx)
	if err != nil {
		return nil, err
	}
	defer eng.Close()
	// A bundle takes turns with the commands that change the project.
	unlockProject, err := recovery.Begin(ctx, eng, recovery.Options{Out: opts.IO.ErrOut, JSON: opts.JSON, ProcEnv: opts.ProcEnv},
		opts.Bundle.ProjectDir, opts.Bundle.Project)
	if err != nil {
		return nil, err
	}
	defer unlockProject()
	if opts.Stream {
		return nil, streamBundle(ctx, eng, opts)
	}
	return bundle.Run(ctx, eng, opts.Bundle)
}

// streamBundle takes the bundle into a temporary directory of the backup
// directory, writes it to stdout as one tar stream, and removes it.
func streamBundle(ctx context.Context, eng engine.Engine, opts *AllOptions) error {
	o := opts.Bundle
	unlock, err := backup.Lock(o.Dir, o.Project)
	if err != nil {
		return err
	}
	defer unlock()
	bundle.CleanTemps(o.Dir, o.Project)
	work, err := os.MkdirTemp(o.Dir, ".bundle-"+o.Project+"-stream.tmp-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	o.Dir = work
	res, err := bundle.Take(ctx, eng, o)
	if err != nil {
		return err
	}
	if err := bundle.WriteStream(opts.IO.Out, res.Path); err != nil {
		return fmt.Errorf("writing the bundle to stdout: %w", err)
	}
	if !opts.Quiet {
		fmt.Fprintf(opts.IO.ErrOut, "bundle of %s written to stdout: %d parts, %s\n", o.Project, len(res.Manifest.Parts), humanSize(res.Manifest.Size()))
	}
	return nil
}

// PartSummary says what a part holds, in words.
func PartSummary(p bundle.Part) string {
	var ws []string
	keys := make([]string, 0, len(p.Counts))
	for k := range p.Counts {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if k == "bytes" || k == "tocEntries" || k == "rdbVersion" {
			continue
		}
		ws = append(ws, fmt.Sprintf("%d %s", p.Counts[k], k))
	}
	s := p.Method
	if len(ws) > 0 {
		s += "; " + strings.Join(ws, ", ")
	}
	if p.Encryption != "" {
		s += "; encrypted (" + p.Encryption + ")"
	}
	return s
}

// scheduleWhat completes `backup schedule install --what all`: the job runs
// `backup all` into the bundle directory, and the pre-check asks for a
// running database instead of Redis.
func scheduleWhat(f *cmdutil.Factory, opts *ScheduleOptions, c *Common, dir, project string) error {
	switch opts.Schedule.What {
	case "", "redis":
		opts.Schedule.What = "redis"
		return nil
	case "all":
	default:
		return cmdutil.UsageError("--what %q: use redis or all", opts.Schedule.What)
	}
	bdir, err := BundleDir(dir, c.BackupDir)
	if err != nil {
		return err
	}
	opts.Schedule.BackupDir = bdir
	opts.CheckProject = func(ctx context.Context) error {
		eng, err := f.Engine(ctx)
		if err != nil {
			return err
		}
		defer eng.Close()
		cs, err := compose.List(ctx, eng, project, false)
		if err != nil {
			return err
		}
		for _, c := range cs {
			if c.Service == bundle.ServicePostgres || c.Service == bundle.ServiceMySQL {
				return nil
			}
		}
		return fmt.Errorf("project %s has no running database (db_postgres or db_mysql); start it (difyctl up)", project)
	}
	return nil
}

// recordBundleRun writes a scheduled bundle's outcome to the status file of
// the bundle directory (backup list shows it).
func recordBundleRun(opts *AllOptions, start time.Time, res *bundle.Result, runErr error) {
	file := ""
	if runErr == nil {
		file = res.Path
	}
	s := scheduledRun{Cmd: "backup all", Dir: opts.Bundle.Dir, Project: opts.Bundle.Project, Schedule: opts.Scheduled, Password: opts.Bundle.RedisPassword}
	s.record(opts.IO.ErrOut, start, time.Now(), file, runErr)
}
