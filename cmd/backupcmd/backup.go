// Package backupcmd implements `difyctl backup redis|list|verify|prune|schedule|daemon`.
package backupcmd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/difyctl/difyctl/backup"
	"github.com/difyctl/difyctl/backup/bundle"
	"github.com/difyctl/difyctl/internal/backuptarget"
	"github.com/difyctl/difyctl/internal/cmdutil"
	"github.com/difyctl/difyctl/internal/cmdutil/inputfile"
	"github.com/difyctl/difyctl/internal/envbak"
	"github.com/difyctl/difyctl/internal/iostreams"
	"github.com/difyctl/difyctl/internal/recovery"
)

// Common are the flags every backup command shares (internal/backuptarget).
type Common = backuptarget.Common

// Engine is a connected engine client.
type Engine = backuptarget.Engine

// NewEngine connects to the engine and checks it answers.
func NewEngine(f *cmdutil.Factory) (*Engine, error) { return backuptarget.NewEngine(f) }

// NewCmd returns the backup command group.
func NewCmd(f *cmdutil.Factory) *cobra.Command {
	cmd := &cobra.Command{Use: "backup", Short: "Back up Redis, list, verify and rotate backups, schedule them"}
	cmd.AddCommand(NewCmdRedis(f, nil), NewCmdList(f, nil), NewCmdVerify(f, nil), NewCmdPrune(f, nil), NewCmdSchedule(f, nil), NewCmdDaemon(f, nil))
	cmd.AddCommand(NewCmdAll(f, nil))
	return cmd
}

// RedisOptions for `backup redis`.
type RedisOptions struct {
	IO      *iostreams.IOStreams
	JSON    bool
	Quiet   bool
	Engine  func() (*Engine, error)
	Backup  backup.Options
	Timeout time.Duration
	// Scheduled is the schedule's expression when cron or the daemon runs
	// this backup: the outcome is recorded in the status file and logged as
	// one line.
	Scheduled       string
	cmdutil.ProcEnv // the lock directory's environment and the settlers' (the factory's)
	// ProjectDir holds the project's journal: an interrupted restore found
	// there is settled before the backup ("": not looked for).
	ProjectDir string
	retention  int
}

// NewCmdRedis returns `backup redis`; runF, when not nil, runs instead of
// RunRedis (tests check the flag mapping through it).
func NewCmdRedis(f *cmdutil.Factory, runF func(context.Context, *RedisOptions) error) *cobra.Command {
	var c Common
	opts := &RedisOptions{IO: f.IOStreams}
	cmd := &cobra.Command{
		Use:   "redis",
		Short: "Back up the project's Redis: save, stream dump.rdb out, verify, keep, rotate",
		Long: `Back up the running Redis of the project (found by compose labels): BGSAVE (or
SAVE with --mode save), stream dump.rdb out through the engine's archive API,
verify it (REDIS magic, RDB version, walk to EOF, CRC64), and keep it as
<backup-dir>/redis_YYYYMMDD_HHMMSS.rdb (UTC, 0600) with a JSON manifest beside
it. Then delete the project's backups older than --retention-days, never
the newest --keep-min and never the one just written; files of other
projects (by their manifest) or without a manifest are never touched.
Temporary files of killed runs older than an hour are removed first. A lock
file per project keeps two runs apart (exit 4).`,
		Args: cmdutil.Args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := opts.fill(f, &c); err != nil {
				return err
			}
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return RunRedis(cmd.Context(), opts)
		},
	}
	opts.flags(cmd, &c)
	cmd.Flags().StringVar(&opts.Scheduled, "scheduled", "", "set by the cron job: the schedule's expression; record the outcome in the status file")
	_ = cmd.Flags().MarkHidden("scheduled")
	return cmd
}

// flags binds what `backup redis` and `backup daemon` share.
func (opts *RedisOptions) flags(cmd *cobra.Command, c *Common) {
	c.Flags(cmd)
	cmd.Flags().StringVar(&opts.Backup.Mode, "mode", "bgsave", "bgsave (does not block clients) or save (blocks, as redis-cli SAVE)")
	cmd.Flags().IntVar(&opts.retention, "retention-days", 7, "delete backups older than this many days (0: all but the newest --keep-min and the one just written)")
	cmd.Flags().IntVar(&opts.Backup.KeepMin, "keep-min", 3, "never delete the newest N backups")
	cmd.Flags().BoolVarP(&opts.Quiet, "quiet", "q", false, "no output on success, one line on failure (for cron)")
	cmd.Flags().DurationVar(&opts.Timeout, "timeout", 30*time.Minute, "bound on each backup")
	cmd.Flags().DurationVar(&opts.Backup.SaveTimeout, "save-timeout", 0, "bound on the SAVE/BGSAVE (default: 2m + 1s per 16 MiB of Redis's used memory)")
}

// fill completes the options from the flags and the project.
func (opts *RedisOptions) fill(f *cmdutil.Factory, c *Common) error {
	pdir, project, dir, pw, err := c.Target(f)
	if err != nil {
		return err
	}
	opts.ProjectDir = pdir
	if opts.Backup.Mode != "bgsave" && opts.Backup.Mode != "save" {
		return cmdutil.UsageError("--mode %q: use bgsave or save", opts.Backup.Mode)
	}
	if err := backup.ValidateRetention(opts.retention, opts.Backup.KeepMin); err != nil {
		return cmdutil.WithExitCode(cmdutil.ExitUsage, err)
	}
	opts.JSON = f.JSON()
	opts.Backup.Project, opts.Backup.Service, opts.Backup.Dir, opts.Backup.Password = project, c.Service, dir, pw
	opts.Backup.Retention = time.Duration(opts.retention) * 24 * time.Hour
	opts.Engine = func() (*Engine, error) { return NewEngine(f) }
	opts.ProcEnv = f.ProcEnv()
	return nil
}

// RunRedis takes one backup. A scheduled run records its outcome.
func RunRedis(ctx context.Context, opts *RedisOptions) error {
	if opts.Backup.Now == nil {
		opts.Backup.Now = time.Now
	}
	start := opts.Backup.Now()
	res, err := runRedis(ctx, opts)
	if opts.Scheduled != "" {
		recordRun(opts, start, res, err)
	}
	if err != nil {
		return quietErr(opts.Quiet, opts.IO, err)
	}
	if opts.JSON {
		return cmdutil.WriteJSON(opts.IO.Out, res)
	}
	m := res.Manifest
	if opts.Scheduled != "" { // one line in the job's log
		fmt.Fprintf(opts.IO.Out, "%s difyctl backup ok: %s (%s, %d keys, %s)\n", start.UTC().Format(time.RFC3339), res.Path, humanSize(m.Size), m.RDBKeys, res.Duration)
		return nil
	}
	if !opts.Quiet {
		fmt.Fprintf(opts.IO.Out, "%s  %s  RDB v%d  %d keys  sha256 %s  (%s)\n", res.Path, humanSize(m.Size), m.RDBVersion, m.RDBKeys, m.SHA256[:12], res.Duration)
		if m.RDBChecked == "none" {
			fmt.Fprintln(opts.IO.Out, "  walked, not checksummed: Redis saved it without a CRC-64 (rdbchecksum no); the manifest's SHA-256 covers it from now on")
		}
		if len(res.Pruned) > 0 {
			fmt.Fprintf(opts.IO.ErrOut, "rotated out: %s\n", strings.Join(res.Pruned, ", "))
		}
		if len(res.Cleaned) > 0 {
			fmt.Fprintf(opts.IO.ErrOut, "removed temporary files of killed runs: %s\n", strings.Join(res.Cleaned, ", "))
		}
	}
	return nil
}

func runRedis(ctx context.Context, opts *RedisOptions) (*backup.Result, error) {
	ctx, cancel := context.WithTimeout(ctx, opts.Timeout)
	defer cancel()
	if !opts.Quiet && !opts.JSON && opts.Scheduled == "" {
		opts.Backup.Progress = func(format string, a ...any) { fmt.Fprintf(opts.IO.ErrOut, format+"\n", a...) }
	}
	eng, err := opts.Engine()
	if err != nil {
		return nil, err
	}
	defer eng.Close()
	// A backup takes turns with the commands that change the project (a
	// restore into any backup directory, up, down, ...): a second one exits
	// 4 naming the holder instead of reading a Redis being replaced.
	unlockProject, err := recovery.Begin(ctx, eng.Engine, recovery.Options{Out: opts.IO.ErrOut, JSON: opts.JSON, ProcEnv: opts.ProcEnv},
		opts.ProjectDir, opts.Backup.Project)
	if err != nil {
		return nil, err
	}
	defer unlockProject()
	return backup.Run(ctx, eng.Engine, opts.Backup) // errors map to exit codes by kind (cmdutil.ExitCode)
}

// recordRun writes the outcome of a scheduled backup to the status file.
func recordRun(opts *RedisOptions, start time.Time, res *backup.Result, runErr error) {
	file := ""
	if runErr == nil {
		file = res.Path
	}
	s := scheduledRun{Cmd: "backup", Dir: opts.Backup.Dir, Project: opts.Backup.Project, Schedule: opts.Scheduled, Password: opts.Backup.Password}
	s.record(opts.IO.ErrOut, start, opts.Backup.Now(), file, runErr)
}

// scheduledRun says where a scheduled run records its outcome: the status
// file of Dir for Project (backup list shows it).
type scheduledRun struct {
	Cmd      string // the command, for the log line
	Dir      string
	Project  string
	Schedule string // the schedule's expression
	Password string // redacted from a recorded error
}

// record writes the outcome of the run that started at start and ended at
// now (file: what it wrote); failing to is said in the log, and does not
// change the run's exit code.
func (s scheduledRun) record(errOut io.Writer, start, now time.Time, file string, runErr error) {
	r := backup.RunRecord{Time: start.UTC(), Result: "ok", Duration: now.Sub(start).Round(time.Millisecond).String()}
	if runErr != nil {
		r.Result, r.ExitCode = "failed", cmdutil.ExitCode(runErr)
		r.Error = backup.Redact(runErr.Error(), s.Password)
	} else {
		r.File = file
	}
	path := backup.StatusPath(s.Dir, s.Project)
	if err := backup.RecordRun(path, s.Project, s.Schedule, r); err != nil {
		fmt.Fprintf(errOut, "%s difyctl %s: recording the outcome in %s failed: %v\n", now.UTC().Format(time.RFC3339), s.Cmd, path, err)
	}
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

// existingDir refuses a backup directory that does not exist (a typo in
// --backup-dir must not create one, nor read as "no backups").
func existingDir(dir string) error {
	st, err := os.Stat(dir)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return cmdutil.WithExitCode(cmdutil.ExitFailure, fmt.Errorf("backup directory %s does not exist: no backup has been taken there yet, or --backup-dir is wrong", dir))
		}
		return err
	}
	if !st.IsDir() {
		return cmdutil.WithExitCode(cmdutil.ExitFailure, fmt.Errorf("backup directory %s is not a directory", dir))
	}
	return nil
}

// ListOptions for `backup list`.
type ListOptions struct {
	IO      *iostreams.IOStreams
	JSON    bool
	Dir     string
	Project string
	Verify  bool
	Now     time.Time
}

type listed struct {
	backup.Entry
	Age        string `json:"age"`
	SafetyCopy bool   `json:"safetyCopy"`
	Verified   *bool  `json:"verified,omitempty"`
	Checked    string `json:"checked,omitempty"` // what --verify checked
	Error      string `json:"error,omitempty"`
}

type listing struct {
	Dir         string            `json:"dir"`
	Project     string            `json:"project"`
	Backups     []listed          `json:"backups"`
	Foreign     []backup.Entry    `json:"foreign"`
	Temporaries []backup.TempFile `json:"temporaries"`
	Status      *backup.Status    `json:"status,omitempty"`
	Warning     string            `json:"warning,omitempty"`
}

// NewCmdList returns `backup list`; runF, when not nil, runs instead of List.
func NewCmdList(f *cmdutil.Factory, runF func(context.Context, *ListOptions) error) *cobra.Command {
	var c Common
	opts := &ListOptions{IO: f.IOStreams}
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the project's backups (time, size, age, kind, verified), leftover temporary files and the last scheduled runs",
		Args:  cmdutil.Args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, project, dir, _, err := c.Target(f)
			if err != nil {
				return err
			}
			opts.Dir, opts.Project, opts.JSON, opts.Now = dir, project, f.JSON(), time.Now()
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return List(opts)
		},
	}
	c.Flags(cmd)
	cmd.Flags().BoolVar(&opts.Verify, "verify", false, "verify each backup now (reads every file)")
	return cmd
}

// List prints the project's backups, what else is in the directory, and
// the schedule's last runs.
func List(opts *ListOptions) error {
	if err := existingDir(opts.Dir); err != nil {
		return err
	}
	if handled, err := listBundles(opts); handled {
		return err
	}
	l, err := backup.ListProject(opts.Dir, opts.Project)
	if err != nil {
		return err
	}
	out := listing{Dir: opts.Dir, Project: opts.Project, Backups: make([]listed, 0, len(l.Own)), Foreign: l.Foreign, Temporaries: l.Temps}
	if out.Foreign == nil {
		out.Foreign = []backup.Entry{}
	}
	if out.Temporaries == nil {
		out.Temporaries = []backup.TempFile{}
	}
	for _, e := range l.Own {
		li := listed{Entry: e, Age: opts.Now.Sub(e.Time).Round(time.Minute).String(), SafetyCopy: e.IsSafetyCopy()}
		if opts.Verify {
			info, m, err := backup.VerifyFile(e.Path)
			ok := err == nil
			li.Verified = &ok
			if err != nil {
				li.Error = err.Error()
			} else {
				li.Checked = backup.Checked(info, m)
			}
		}
		out.Backups = append(out.Backups, li)
	}
	if out.Status, err = backup.ReadStatus(backup.StatusPath(opts.Dir, opts.Project)); err != nil {
		fmt.Fprintf(opts.IO.ErrOut, "warning: %v\n", err)
	}
	out.Warning = out.Status.Warning(opts.Now)
	if opts.JSON {
		return cmdutil.WriteJSON(opts.IO.Out, out)
	}
	if len(out.Backups) == 0 {
		fmt.Fprintf(opts.IO.ErrOut, "no backups of project %s in %s\n", opts.Project, opts.Dir)
	} else {
		w := tabwriter.NewWriter(opts.IO.Out, 0, 0, 2, ' ', 0)
		fmt.Fprintln(w, "TIME (UTC)\tSIZE\tAGE\tKEYS\tKIND\tVERIFIED\tFILE")
		for _, li := range out.Backups {
			kind, verified := "backup", "at backup"
			if li.SafetyCopy {
				kind = "safety copy"
				if of := li.Manifest.SafetyCopyOf; of != "" {
					kind += " (before restoring " + of + ")"
				}
			}
			if li.Manifest.RDBChecked == "none" {
				verified = "at backup (walked, not checksummed)"
			}
			if li.Verified != nil {
				verified = map[bool]string{true: "ok: " + li.Checked, false: "FAILED: " + li.Error}[*li.Verified]
			}
			fmt.Fprintf(w, "%s\t%s\t%s\t%d\t%s\t%s\t%s\n", li.Time.Format("2006-01-02 15:04:05"), humanSize(li.Size), li.Age, li.Manifest.RDBKeys, kind, verified, li.Name)
		}
		if err := w.Flush(); err != nil {
			return err
		}
	}
	if n := len(out.Foreign); n > 0 {
		fmt.Fprintf(opts.IO.ErrOut, "%d backup file(s) of other projects or without a manifest not shown (never rotated by this project)\n", n)
	}
	for _, t := range out.Temporaries {
		state := "left by a killed run; the next backup removes it once an hour old"
		if t.Held {
			state = "held by a running process"
		}
		fmt.Fprintf(opts.IO.ErrOut, "temporary file %s (%s, modified %s): %s\n", t.Name, humanSize(t.Size), t.ModTime.UTC().Format(time.RFC3339), state)
	}
	printStatus(opts.IO.ErrOut, out.Status, out.Warning)
	return nil
}

// printStatus prints the last scheduled attempt and success, and a warning.
func printStatus(w io.Writer, s *backup.Status, warning string) {
	if s == nil {
		return
	}
	if a := s.LastAttempt; a != nil {
		what := a.File
		if a.Result != "ok" {
			what = a.Error
		}
		fmt.Fprintf(w, "last scheduled attempt: %s %s: %s\n", a.Time.Local().Format(time.RFC3339), a.Result, what)
	}
	if ok := s.LastSuccess; ok != nil {
		fmt.Fprintf(w, "last scheduled success: %s %s\n", ok.Time.Local().Format(time.RFC3339), ok.File)
	} else {
		fmt.Fprintln(w, "last scheduled success: never")
	}
	if warning != "" {
		fmt.Fprintf(w, "WARNING: %s\n", warning)
	}
}

// VerifyOptions for `backup verify`.
type VerifyOptions struct {
	IO    *iostreams.IOStreams
	JSON  bool
	Dir   string
	Which string // a file, a name in the backup directory, or "all"
}

// NewCmdVerify returns `backup verify`; runF, when not nil, runs instead of Verify.
func NewCmdVerify(f *cmdutil.Factory, runF func(context.Context, *VerifyOptions) error) *cobra.Command {
	var c Common
	opts := &VerifyOptions{IO: f.IOStreams}
	cmd := &cobra.Command{
		Use:   "verify [FILE|NAME|all]",
		Short: "Verify backups offline: RDB walk, CRC64, manifest size and SHA-256",
		Long: `Verify one backup (a path, or a name as ` + "`backup list`" + ` prints it, looked up in
the backup directory) or all backup files in the directory.`,
		Args: cmdutil.Args(cobra.MaximumNArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			dir, err := c.Dir(f)
			if err != nil {
				return err
			}
			opts.Dir, opts.JSON, opts.Which = dir, f.JSON(), "all"
			if len(args) == 1 {
				opts.Which = args[0]
			}
			if runF != nil {
				return runF(cmd.Context(), opts)
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
	Checked    string `json:"checked,omitempty"`       // CRC-64, or walked only, and the manifest's SHA-256
	Dropped    int64  `json:"droppedOnLoad,omitempty"` // keys in the file Redis drops on load (not in keys)
	Error      string `json:"error,omitempty"`
}

// Verify checks one or all backups; exit 1 when any fails.
func Verify(opts *VerifyOptions) error {
	if p := backup.ResolveFile(opts.Dir, opts.Which); opts.Which != "all" && bundle.IsBundle(p) {
		return verifyBundle(opts, p)
	}
	var files []string
	if opts.Which == "all" {
		if err := existingDir(opts.Dir); err != nil {
			return err
		}
		entries, err := backup.List(opts.Dir)
		if err != nil {
			return err
		}
		for _, e := range entries {
			files = append(files, e.Path)
		}
	} else {
		files = []string{backup.ResolveFile(opts.Dir, opts.Which)}
	}
	var out []verdict
	failed := 0
	for _, p := range files {
		info, m, err := backup.VerifyFile(p)
		if opts.Which != "all" && inputfile.Is(err) {
			return err // the file named cannot be read: exit 2
		}
		v := verdict{File: p, OK: err == nil, RDBVersion: info.Version, Keys: info.Keys, Dropped: info.Dropped.Total()}
		if err == nil {
			v.Checked = backup.Checked(info, m)
		} else {
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
				dropped := ""
				if v.Dropped > 0 {
					dropped = fmt.Sprintf(" and %d that Redis drops on load", v.Dropped)
				}
				fmt.Fprintf(opts.IO.Out, "ok      %s (RDB v%d, %d keys%s; %s)\n", v.File, v.RDBVersion, v.Keys, dropped, v.Checked)
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
	Project   string
	Retention time.Duration
	KeepMin   int
	DryRun    bool
	Now       time.Time
	// ProjectDir, when set, has its .env.bak-* copies rotated by the same
	// rule (internal/envbak): they hold rotated secrets.
	ProjectDir string
}

// NewCmdPrune returns `backup prune`; runF, when not nil, runs instead of Prune.
func NewCmdPrune(f *cmdutil.Factory, runF func(context.Context, *PruneOptions) error) *cobra.Command {
	var c Common
	var days int
	opts := &PruneOptions{IO: f.IOStreams}
	cmd := &cobra.Command{
		Use:   "prune [--dry-run]",
		Short: "Delete the project's backups older than --retention-days, keeping the newest --keep-min and the newest of all",
		Args:  cmdutil.Args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := backup.ValidateRetention(days, opts.KeepMin); err != nil {
				return cmdutil.WithExitCode(cmdutil.ExitUsage, err)
			}
			pdir, project, dir, _, err := c.Target(f)
			if err != nil {
				return err
			}
			opts.Dir, opts.Project, opts.JSON, opts.Now, opts.ProjectDir = dir, project, f.JSON(), time.Now(), pdir
			opts.Retention = time.Duration(days) * 24 * time.Hour
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return Prune(opts)
		},
	}
	c.Flags(cmd)
	cmd.Flags().IntVar(&days, "retention-days", 7, "delete backups older than this many days (0: all but the newest --keep-min and the newest)")
	cmd.Flags().IntVar(&opts.KeepMin, "keep-min", 3, "never delete the newest N backups")
	cmd.Flags().BoolVar(&opts.DryRun, "dry-run", false, "say what would be deleted and delete nothing")
	return cmd
}

// Prune rotates the project's backups under its lock. The newest backup is
// never deleted, whatever the flags.
func Prune(opts *PruneOptions) error {
	if err := existingDir(opts.Dir); err != nil {
		return err
	}
	unlock, err := backup.Lock(opts.Dir, opts.Project)
	if err != nil {
		return err // held: exit 4 (cmdutil.ExitCode)
	}
	defer unlock()
	l, err := backup.ListProject(opts.Dir, opts.Project)
	if err != nil {
		return err
	}
	newest, _ := l.Latest()
	plan := backup.Plan(l.Own, opts.Now, opts.Retention, opts.KeepMin, newest.Name)
	if !opts.DryRun {
		if err := plan.Apply(opts.Dir); err != nil {
			return err
		}
	}
	var envPlan backup.PrunePlan
	if opts.ProjectDir != "" {
		if envPlan, err = envbak.Prune(opts.ProjectDir, opts.Now, opts.Retention, opts.KeepMin, opts.DryRun); err != nil {
			return err
		}
	}
	if opts.JSON {
		return cmdutil.WriteJSON(opts.IO.Out, struct {
			backup.PrunePlan
			EnvCopies backup.PrunePlan `json:"envCopies"`
			DryRun    bool             `json:"dryRun"`
		}{plan, envPlan, opts.DryRun})
	}
	plan.Remove = append(plan.Remove, envPlan.Remove...) // text: one list
	verb := "deleted"
	if opts.DryRun {
		verb = "would delete"
	}
	for _, e := range plan.Remove {
		fmt.Fprintf(opts.IO.Out, "%s %s\n", verb, e.Name)
	}
	fmt.Fprintf(opts.IO.ErrOut, "%s %d, kept %d (of project %s; %d file(s) of other projects or without a manifest untouched)\n", verb, len(plan.Remove), len(plan.Keep), opts.Project, len(l.Foreign))
	return nil
}
