// Package backupcmd implements `difyctl backup redis|list|verify|prune|schedule|daemon`.
package backupcmd

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/difyctl/difyctl/backup"
	"github.com/difyctl/difyctl/compose"
	"github.com/difyctl/difyctl/internal/cmdutil"
	"github.com/difyctl/difyctl/internal/cmdutil/inputfile"
	"github.com/difyctl/difyctl/internal/dockerclient"
	"github.com/difyctl/difyctl/internal/iostreams"
	"github.com/difyctl/difyctl/internal/lockfile"
)

// Common are the flags every backup command shares.
type Common struct {
	BackupDir string
	Service   string
}

// Target resolves the project, the backup directory and the fallback
// password (REDIS_PASSWORD from .env, used when the container has no
// REDISCLI_AUTH).
func (c *Common) Target(f *cmdutil.Factory) (dir, project, backupDir, password string, err error) {
	dir, project, err = f.Project()
	if err != nil {
		return
	}
	backupDir = c.BackupDir
	if backupDir == "" {
		backupDir = filepath.Join(dir, "backups", "redis")
	} else if backupDir, err = filepath.Abs(backupDir); err != nil {
		return
	}
	if env, e := compose.Environment(dir, nil); e == nil {
		password = env["REDIS_PASSWORD"]
	}
	return
}

// Dir resolves only the backup directory (list, verify, prune).
func (c *Common) Dir(f *cmdutil.Factory) (string, error) {
	_, _, dir, _, err := c.Target(f)
	return dir, err
}

func (c *Common) Flags(cmd *cobra.Command) {
	cmd.Flags().StringVar(&c.BackupDir, "backup-dir", "", "backup directory (default <project-dir>/backups/redis)")
	cmd.Flags().StringVar(&c.Service, "service", "redis", "the compose service running Redis")
}

// NewCmd returns the backup command group.
func NewCmd(f *cmdutil.Factory) *cobra.Command {
	cmd := &cobra.Command{Use: "backup", Short: "Back up Redis, list, verify and rotate backups, schedule them"}
	cmd.AddCommand(newRedisCmd(f), newListCmd(f), newVerifyCmd(f), newPruneCmd(f), newScheduleCmd(f), newDaemonCmd(f))
	return cmd
}

// RedisOptions for `backup redis`.
type RedisOptions struct {
	IO        *iostreams.IOStreams
	JSON      bool
	Quiet     bool
	Engine    func() (*Engine, error)
	Backup    backup.Options
	Timeout   time.Duration
	retention int
}

func newRedisCmd(f *cmdutil.Factory) *cobra.Command {
	var c Common
	opts := &RedisOptions{IO: f.IOStreams}
	cmd := &cobra.Command{
		Use:   "redis",
		Short: "Back up the project's Redis: save, stream dump.rdb out, verify, keep, rotate",
		Long: `Back up the running Redis of the project (found by compose labels): BGSAVE (or
SAVE with --mode save), stream dump.rdb out through the engine's archive API,
verify it (REDIS magic, RDB version, walk to EOF, CRC64), and keep it as
<backup-dir>/redis_YYYYMMDD_HHMMSS.rdb (UTC, 0600) with a JSON manifest beside
it. Then delete backups older than --retention-days, never the newest
--keep-min. A lock file keeps two runs apart (exit 4).`,
		Args: cmdutil.Args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := opts.fill(f, &c); err != nil {
				return err
			}
			return RunRedis(cmd.Context(), opts)
		},
	}
	opts.flags(cmd, &c)
	return cmd
}

// flags binds what `backup redis` and `backup daemon` share.
func (opts *RedisOptions) flags(cmd *cobra.Command, c *Common) {
	c.Flags(cmd)
	cmd.Flags().StringVar(&opts.Backup.Mode, "mode", "bgsave", "bgsave (does not block clients) or save (blocks, as redis-cli SAVE)")
	cmd.Flags().IntVar(&opts.retention, "retention-days", 7, "delete backups older than this many days")
	cmd.Flags().IntVar(&opts.Backup.KeepMin, "keep-min", 3, "never delete the newest N backups")
	cmd.Flags().BoolVarP(&opts.Quiet, "quiet", "q", false, "no output on success, one line on failure (for cron)")
	cmd.Flags().DurationVar(&opts.Timeout, "timeout", 30*time.Minute, "bound on each backup")
}

// fill completes the options from the flags and the project.
func (opts *RedisOptions) fill(f *cmdutil.Factory, c *Common) error {
	_, project, dir, pw, err := c.Target(f)
	if err != nil {
		return err
	}
	if opts.Backup.Mode != "bgsave" && opts.Backup.Mode != "save" {
		return cmdutil.UsageError("--mode %q: use bgsave or save", opts.Backup.Mode)
	}
	opts.JSON = f.JSON()
	opts.Backup.Project, opts.Backup.Service, opts.Backup.Dir, opts.Backup.Password = project, c.Service, dir, pw
	opts.Backup.Retention = time.Duration(opts.retention) * 24 * time.Hour
	opts.Engine = func() (*Engine, error) { return NewEngine(f) }
	return nil
}

// RunRedis takes one backup.
func RunRedis(ctx context.Context, opts *RedisOptions) error {
	ctx, cancel := context.WithTimeout(ctx, opts.Timeout)
	defer cancel()
	if opts.Backup.Now == nil {
		opts.Backup.Now = time.Now
	}
	if !opts.Quiet && !opts.JSON {
		opts.Backup.Progress = func(format string, a ...any) { fmt.Fprintf(opts.IO.ErrOut, format+"\n", a...) }
	}
	eng, err := opts.Engine()
	if err != nil {
		return quietErr(opts.Quiet, opts.IO, err)
	}
	defer eng.Close()
	res, err := backup.Run(ctx, eng.Client, opts.Backup)
	if err != nil {
		return quietErr(opts.Quiet, opts.IO, Classify(err))
	}
	if opts.JSON {
		return cmdutil.WriteJSON(opts.IO.Out, res)
	}
	if !opts.Quiet {
		m := res.Manifest
		fmt.Fprintf(opts.IO.Out, "%s  %s  RDB v%d  %d keys  sha256 %s  (%s)\n", res.Path, humanSize(m.Size), m.RDBVersion, m.RDBKeys, m.SHA256[:12], res.Duration)
		if len(res.Pruned) > 0 {
			fmt.Fprintf(opts.IO.ErrOut, "rotated out: %s\n", strings.Join(res.Pruned, ", "))
		}
	}
	return nil
}

// Classify maps backup errors to exit codes.
func Classify(err error) error {
	var le *lockfile.HeldError
	if errors.As(err, &le) {
		return cmdutil.WithExitCode(cmdutil.ExitLocked, err)
	}
	if errors.Is(err, dockerclient.ErrUnreachable) {
		return cmdutil.WithExitCode(cmdutil.ExitEngine, err)
	}
	return err
}

// quietErr prints one line for cron when quiet (main prints nothing more).
func quietErr(quiet bool, io *iostreams.IOStreams, err error) error {
	if !quiet {
		return err
	}
	fmt.Fprintf(io.ErrOut, "%s difyctl backup failed: %s\n", time.Now().UTC().Format(time.RFC3339), strings.ReplaceAll(err.Error(), "\n", " "))
	return cmdutil.SilentError(cmdutil.ExitCode(err))
}

func humanSize(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.2f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

// ListOptions for `backup list`.
type ListOptions struct {
	IO     *iostreams.IOStreams
	JSON   bool
	Dir    string
	Verify bool
	Now    time.Time
}

type listed struct {
	backup.Entry
	Age      string `json:"age"`
	Verified *bool  `json:"verified,omitempty"`
	Error    string `json:"error,omitempty"`
}

func newListCmd(f *cmdutil.Factory) *cobra.Command {
	var c Common
	opts := &ListOptions{IO: f.IOStreams}
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List backups: time, size, age, verified",
		Args:  cmdutil.Args(cobra.NoArgs),
		RunE: func(*cobra.Command, []string) error {
			dir, err := c.Dir(f)
			if err != nil {
				return err
			}
			opts.Dir, opts.JSON, opts.Now = dir, f.JSON(), time.Now()
			return List(opts)
		},
	}
	c.Flags(cmd)
	cmd.Flags().BoolVar(&opts.Verify, "verify", false, "verify each backup now (reads every file)")
	return cmd
}

// List prints the backups.
func List(opts *ListOptions) error {
	entries, err := backup.List(opts.Dir)
	if err != nil {
		return err
	}
	out := make([]listed, 0, len(entries))
	for _, e := range entries {
		l := listed{Entry: e, Age: opts.Now.Sub(e.Time).Round(time.Minute).String()}
		if opts.Verify {
			_, _, err := backup.VerifyFile(e.Path)
			ok := err == nil
			l.Verified = &ok
			if err != nil {
				l.Error = err.Error()
			}
		}
		out = append(out, l)
	}
	if opts.JSON {
		return cmdutil.WriteJSON(opts.IO.Out, out)
	}
	if len(out) == 0 {
		fmt.Fprintf(opts.IO.ErrOut, "no backups in %s\n", opts.Dir)
		return nil
	}
	w := tabwriter.NewWriter(opts.IO.Out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "TIME (UTC)\tSIZE\tAGE\tKEYS\tVERIFIED\tFILE")
	for _, l := range out {
		keys, verified := "-", "at backup"
		if l.Manifest != nil {
			keys = fmt.Sprint(l.Manifest.RDBKeys)
		} else {
			verified = "no manifest"
		}
		if l.Verified != nil {
			verified = map[bool]string{true: "ok", false: "FAILED: " + l.Error}[*l.Verified]
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\n", l.Time.Format("2006-01-02 15:04:05"), humanSize(l.Size), l.Age, keys, verified, l.Name)
	}
	return w.Flush()
}

// VerifyOptions for `backup verify`.
type VerifyOptions struct {
	IO    *iostreams.IOStreams
	JSON  bool
	Dir   string
	Which string // a file, or "all"
}

func newVerifyCmd(f *cmdutil.Factory) *cobra.Command {
	var c Common
	opts := &VerifyOptions{IO: f.IOStreams}
	cmd := &cobra.Command{
		Use:   "verify [FILE|all]",
		Short: "Verify backups offline: RDB walk, CRC64, manifest size and SHA-256",
		Args:  cmdutil.Args(cobra.MaximumNArgs(1)),
		RunE: func(_ *cobra.Command, args []string) error {
			dir, err := c.Dir(f)
			if err != nil {
				return err
			}
			opts.Dir, opts.JSON, opts.Which = dir, f.JSON(), "all"
			if len(args) == 1 {
				opts.Which = args[0]
			}
			return Verify(opts)
		},
	}
	c.Flags(cmd)
	return cmd
}

type verdict struct {
	File       string `json:"file"`
	OK         bool   `json:"ok"`
	RDBVersion int    `json:"rdbVersion,omitempty"`
	Keys       int64  `json:"keys"`
	Error      string `json:"error,omitempty"`
}

// Verify checks one or all backups; exit 1 when any fails.
func Verify(opts *VerifyOptions) error {
	var files []string
	if opts.Which == "all" {
		entries, err := backup.List(opts.Dir)
		if err != nil {
			return err
		}
		for _, e := range entries {
			files = append(files, e.Path)
		}
	} else {
		files = []string{opts.Which}
	}
	var out []verdict
	failed := 0
	for _, p := range files {
		info, _, err := backup.VerifyFile(p)
		if opts.Which != "all" && inputfile.Is(err) {
			return err // the file named cannot be read: exit 2
		}
		v := verdict{File: p, OK: err == nil, RDBVersion: info.Version, Keys: info.Keys}
		if err != nil {
			v.Error = err.Error()
			failed++
		}
		out = append(out, v)
	}
	if opts.JSON {
		if err := cmdutil.WriteJSON(opts.IO.Out, out); err != nil {
			return err
		}
	} else {
		for _, v := range out {
			if v.OK {
				fmt.Fprintf(opts.IO.Out, "ok      %s (RDB v%d, %d keys)\n", v.File, v.RDBVersion, v.Keys)
			} else {
				fmt.Fprintf(opts.IO.Out, "FAILED  %s: %s\n", v.File, v.Error)
			}
		}
	}
	if failed > 0 {
		return cmdutil.WithExitCode(cmdutil.ExitFailure, fmt.Errorf("%d of %d backup(s) failed verification", failed, len(out)))
	}
	return nil
}

// PruneOptions for `backup prune`.
type PruneOptions struct {
	IO        *iostreams.IOStreams
	JSON      bool
	Dir       string
	Retention time.Duration
	KeepMin   int
	DryRun    bool
	Now       time.Time
}

func newPruneCmd(f *cmdutil.Factory) *cobra.Command {
	var c Common
	var days int
	opts := &PruneOptions{IO: f.IOStreams}
	cmd := &cobra.Command{
		Use:   "prune [--dry-run]",
		Short: "Delete backups older than --retention-days, keeping the newest --keep-min",
		Args:  cmdutil.Args(cobra.NoArgs),
		RunE: func(*cobra.Command, []string) error {
			dir, err := c.Dir(f)
			if err != nil {
				return err
			}
			opts.Dir, opts.JSON, opts.Now = dir, f.JSON(), time.Now()
			opts.Retention = time.Duration(days) * 24 * time.Hour
			return Prune(opts)
		},
	}
	c.Flags(cmd)
	cmd.Flags().IntVar(&days, "retention-days", 7, "delete backups older than this many days")
	cmd.Flags().IntVar(&opts.KeepMin, "keep-min", 3, "never delete the newest N backups")
	cmd.Flags().BoolVar(&opts.DryRun, "dry-run", false, "say what would be deleted and delete nothing")
	return cmd
}

// Prune rotates the backup directory under its lock.
func Prune(opts *PruneOptions) error {
	unlock, err := backup.Lock(opts.Dir)
	if err != nil {
		return Classify(err)
	}
	defer unlock()
	entries, err := backup.List(opts.Dir)
	if err != nil {
		return err
	}
	plan := backup.Plan(entries, opts.Now, opts.Retention, opts.KeepMin)
	if !opts.DryRun {
		if err := plan.Apply(opts.Dir); err != nil {
			return err
		}
	}
	if opts.JSON {
		return cmdutil.WriteJSON(opts.IO.Out, struct {
			backup.PrunePlan
			DryRun bool `json:"dryRun"`
		}{plan, opts.DryRun})
	}
	verb := "deleted"
	if opts.DryRun {
		verb = "would delete"
	}
	for _, e := range plan.Remove {
		fmt.Fprintf(opts.IO.Out, "%s %s\n", verb, e.Name)
	}
	fmt.Fprintf(opts.IO.ErrOut, "%s %d, kept %d\n", verb, len(plan.Remove), len(plan.Keep))
	return nil
}

// ScheduleOptions for `backup schedule`.
type ScheduleOptions struct {
	IO       *iostreams.IOStreams
	Schedule backup.Schedule
	Root     bool
}

func newScheduleCmd(f *cmdutil.Factory) *cobra.Command {
	var c Common
	var expr string
	var retention, keepMin int
	opts := &ScheduleOptions{IO: f.IOStreams, Root: os.Geteuid() == 0}
	prepare := func() error {
		dir, project, bdir, _, err := c.Target(f)
		if err != nil {
			return err
		}
		bin, err := os.Executable()
		if err != nil {
			return err
		}
		if bin, err = filepath.EvalSymlinks(bin); err != nil {
			return err
		}
		opts.Schedule = backup.Schedule{Cron: expr, Binary: bin, ProjectDir: dir, Project: project,
			LogFile:    filepath.Join(filepath.Dir(bdir), "backup.log"),
			BackupArgs: []string{"--backup-dir", bdir, "--service", c.Service, "--retention-days", fmt.Sprint(retention), "--keep-min", fmt.Sprint(keepMin)}}
		return nil
	}
	cmd := &cobra.Command{Use: "schedule install|show|remove", Short: "Run `backup redis` from cron"}
	install := &cobra.Command{
		Use:   "install [--cron EXPR]",
		Short: "Install the cron entry (/etc/cron.d/difyctl-<project> as root, else your crontab)",
		Args:  cmdutil.Args(cobra.NoArgs),
		RunE: func(*cobra.Command, []string) error {
			if err := prepare(); err != nil {
				return err
			}
			where, err := opts.Schedule.Install(opts.Root)
			if err != nil {
				return cmdutil.WithExitCode(cmdutil.ExitUsage, err)
			}
			fmt.Fprintf(opts.IO.Out, "installed in %s: %s %s\n", where, opts.Schedule.Cron, opts.Schedule.Command())
			return nil
		},
	}
	c.Flags(install)
	install.Flags().StringVar(&expr, "cron", "0 3 * * *", "when to run (cron expression, host local time)")
	install.Flags().IntVar(&retention, "retention-days", 7, "passed to backup redis")
	install.Flags().IntVar(&keepMin, "keep-min", 3, "passed to backup redis")
	show := &cobra.Command{
		Use: "show", Short: "Print the installed entry", Args: cmdutil.Args(cobra.NoArgs),
		RunE: func(*cobra.Command, []string) error {
			_, project, err := f.Project()
			if err != nil {
				return err
			}
			s, err := backup.ShowSchedule(project, opts.Root)
			if err != nil {
				return err
			}
			if s == "" {
				return cmdutil.WithExitCode(cmdutil.ExitFailure, fmt.Errorf("no backup schedule installed for project %s", project))
			}
			fmt.Fprint(opts.IO.Out, s)
			return nil
		},
	}
	remove := &cobra.Command{
		Use: "remove", Short: "Remove the entry", Args: cmdutil.Args(cobra.NoArgs),
		RunE: func(*cobra.Command, []string) error {
			_, project, err := f.Project()
			if err != nil {
				return err
			}
			ok, err := backup.RemoveSchedule(project, opts.Root)
			if err != nil {
				return err
			}
			if !ok {
				fmt.Fprintf(opts.IO.ErrOut, "no backup schedule installed for project %s\n", project)
				return nil
			}
			fmt.Fprintf(opts.IO.ErrOut, "removed the backup schedule of project %s\n", project)
			return nil
		},
	}
	cmd.AddCommand(install, show, remove)
	return cmd
}

func newDaemonCmd(f *cmdutil.Factory) *cobra.Command {
	var c Common
	var expr string
	opts := &RedisOptions{IO: f.IOStreams}
	cmd := &cobra.Command{
		Use:   "daemon --cron EXPR",
		Short: "Run `backup redis` on a schedule in the foreground (for difyctl in a container)",
		Args:  cmdutil.Args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			sched, err := backup.ParseCron(expr)
			if err != nil {
				return cmdutil.WithExitCode(cmdutil.ExitUsage, err)
			}
			if err := opts.fill(f, &c); err != nil {
				return err
			}
			return Daemon(cmd.Context(), sched, opts)
		},
	}
	opts.flags(cmd, &c)
	cmd.Flags().StringVar(&expr, "cron", "0 3 * * *", "when to run (cron expression)")
	return cmd
}

// Daemon runs a backup at each time sched names until ctx ends. A failed
// run is logged and the daemon waits for the next one.
func Daemon(ctx context.Context, sched *backup.Cron, opts *RedisOptions) error {
	for {
		next := sched.Next(time.Now())
		if !opts.Quiet {
			fmt.Fprintf(opts.IO.ErrOut, "%s next backup at %s\n", time.Now().UTC().Format(time.RFC3339), next.Format(time.RFC3339))
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(time.Until(next)):
		}
		if err := RunRedis(ctx, opts); err != nil && !opts.Quiet {
			fmt.Fprintf(opts.IO.ErrOut, "%s backup failed: %v\n", time.Now().UTC().Format(time.RFC3339), err)
		}
	}
}
