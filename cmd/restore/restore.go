// Package restore implements `difyctl restore redis [FILE|latest]`.
package restore

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/difyctl/difyctl/backup"
	"github.com/difyctl/difyctl/internal/backuptarget"
	"github.com/difyctl/difyctl/internal/cmdutil"
	"github.com/difyctl/difyctl/internal/iostreams"
	"github.com/difyctl/difyctl/internal/prompt"
	"github.com/difyctl/difyctl/internal/recovery"
)

// Options for restore redis.
type Options struct {
	IO              *iostreams.IOStreams
	JSON            bool
	Yes             bool
	Which           string // a file, a name in the backup directory, or "latest"
	DryRun          bool   // say which backup would be restored, verify it, change nothing
	Restore         backup.RestoreOptions
	Engine          func() (*backuptarget.Engine, error)
	cmdutil.ProcEnv // the lock directory's environment and the settlers' (the factory's)
}

// NewCmd returns the restore command group.
func NewCmd(f *cmdutil.Factory) *cobra.Command {
	cmd := &cobra.Command{Use: "restore", Short: "Restore from a backup"}
	cmd.AddCommand(NewCmdRedis(f, nil))
	cmd.AddCommand(NewCmdAll(f, nil))
	return cmd
}

// NewCmdRedis returns `restore redis`; runF, when not nil, runs instead of
// Run (tests check the flag mapping through it).
func NewCmdRedis(f *cmdutil.Factory, runF func(context.Context, *Options) error) *cobra.Command {
	var c backuptarget.Common
	opts := &Options{IO: f.IOStreams}
	redis := &cobra.Command{
		Use:   "redis [FILE|NAME|latest] [--yes] [--dry-run]",
		Short: "Put a verified backup back into the project's Redis, keeping a safety copy",
		Long: `Verify the backup (and refuse one the running Redis cannot load), take a safety
backup of the current data, stop Redis, replace its dump atomically (written
under a temporary name, synced, renamed; an AOF moved aside when appendonly is
on), start it, wait until healthy and check the key count. If anything fails
after the stop, Ctrl-C included, the safety copy is put back and Redis is
started again. A journal records each step: a restore that is killed is
rolled back or finished by the next up, start, restart, restore or backup
(ps shows it meanwhile). Asks for confirmation unless --yes.

NAME is a backup as ` + "`backup list`" + ` prints it, looked up in the backup
directory. latest is the project's newest backup there (by its manifest):
never another project's file, never a restore's safety copy. --dry-run names
and verifies the backup that would be restored and changes nothing.`,
		Args: cmdutil.Args(cobra.MaximumNArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			pdir, project, dir, pw, err := c.Target(f)
			if err != nil {
				return err
			}
			opts.Which = "latest"
			if len(args) == 1 {
				opts.Which = args[0]
			}
			opts.JSON = f.JSON()
			opts.Restore.Project, opts.Restore.Service, opts.Restore.Dir, opts.Restore.Password = project, c.Service, dir, pw
			opts.Restore.ProjectDir = pdir
			opts.Restore.Mode, opts.Restore.Now = "bgsave", time.Now
			opts.Engine = func() (*backuptarget.Engine, error) { return backuptarget.NewEngine(f) }
			opts.ProcEnv = f.ProcEnv()
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return Run(cmd.Context(), opts)
		},
	}
	c.Flags(redis)
	redis.Flags().BoolVarP(&opts.Yes, "yes", "y", false, "do not ask for confirmation")
	redis.Flags().BoolVar(&opts.DryRun, "dry-run", false, "name and verify the backup that would be restored; change nothing")
	redis.Flags().DurationVar(&opts.Restore.StopTimeout, "stop-timeout", 30*time.Second, "how long Redis may take to stop")
	redis.Flags().DurationVar(&opts.Restore.WaitTimeout, "wait-timeout", 5*time.Minute, "how long Redis may take to load and become healthy")
	redis.Flags().DurationVar(&opts.Restore.SaveTimeout, "save-timeout", 0, "bound on the safety copy's BGSAVE (default: 2m + 1s per 16 MiB of Redis's used memory)")
	return redis
}

// Run restores.
func Run(ctx context.Context, opts *Options) error {
	file := backup.ResolveFile(opts.Restore.Dir, opts.Which)
	if opts.Which == "latest" {
		var err error
		if file, err = backup.LatestOf(opts.Restore.Dir, opts.Restore.Project); err != nil {
			return cmdutil.WithExitCode(cmdutil.ExitUsage, err)
		}
	}
	opts.Restore.File = file
	vf, err := backup.OpenVerified(file) // the one verification: Restore uploads from this descriptor
	if err != nil {
		return cmdutil.WithExitCode(cmdutil.ExitFailure, fmt.Errorf("refusing to restore %s: %w", file, err))
	}
	defer vf.Close()
	opts.Restore.Verified = vf
	info, m := vf.Info, vf.Manifest
	if m != nil && m.Project != opts.Restore.Project {
		fmt.Fprintf(opts.IO.ErrOut, "WARNING: %s is a backup of project %q, not of %s\n", file, m.Project, opts.Restore.Project)
	}
	if opts.DryRun {
		return dryRun(opts, file, info.Keys, m)
	}
	// The safety copy records which backup it protects against.
	if filepath.Dir(file) == filepath.Clean(opts.Restore.Dir) {
		opts.Restore.SafetyCopyOf = filepath.Base(file)
	} else {
		opts.Restore.SafetyCopyOf = file
	}
	if !opts.Yes {
		when := "unknown time"
		if m != nil {
			when = m.CreatedAt.Format(time.RFC3339)
		}
		ok, err := prompt.Confirm(opts.IO, fmt.Sprintf("Replace all data of %s/%s with %s (%d keys, taken %s; %s)? A safety copy is taken first.",
			opts.Restore.Project, opts.Restore.Service, file, info.Keys, when, backup.Checked(info, m)),
			"restoring replaces all of Redis's data; pass --yes to confirm when not on a terminal")
		if err != nil {
			return err
		}
		if !ok {
			return prompt.Declined("nothing changed")
		}
	}
	if !opts.JSON {
		opts.Restore.Progress = func(format string, a ...any) { fmt.Fprintf(opts.IO.ErrOut, format+"\n", a...) }
	}
	eng, err := opts.Engine()
	if err != nil {
		return err
	}
	defer eng.Close()
	unlockProject, err := recovery.Begin(ctx, eng.Engine, recovery.Options{Out: opts.IO.ErrOut, JSON: opts.JSON, ProcEnv: opts.ProcEnv},
		opts.Restore.ProjectDir, opts.Restore.Project)
	if err != nil {
		return err
	}
	defer unlockProject()
	unlock, err := backup.Lock(opts.Restore.Dir, opts.Restore.Project)
	if err != nil {
		return err // held: exit 4 (cmdutil.ExitCode)
	}
	defer unlock()
	res, err := backup.Restore(ctx, eng.Engine, opts.Restore)
	if err != nil {
		return err
	}
	if opts.JSON {
		return cmdutil.WriteJSON(opts.IO.Out, res)
	}
	fmt.Fprintf(opts.IO.Out, "restored %s: Redis holds %d keys (safety copy of the previous data: %s)\n", res.File, res.Keys, res.SafetyCopy)
	return nil
}

// dryRun says what a restore would load.
func dryRun(opts *Options, file string, keys int64, m *backup.Manifest) error {
	if opts.JSON {
		return cmdutil.WriteJSON(opts.IO.Out, struct {
			File     string           `json:"file"`
			Keys     int64            `json:"keys"`
			Manifest *backup.Manifest `json:"manifest,omitempty"`
			DryRun   bool             `json:"dryRun"`
		}{file, keys, m, true})
	}
	when := "unknown time (no manifest)"
	if m != nil {
		when = m.CreatedAt.Format(time.RFC3339)
	}
	fmt.Fprintf(opts.IO.Out, "would restore %s (verified, %d keys, taken %s) into %s/%s; nothing changed\n", file, keys, when, opts.Restore.Project, opts.Restore.Service)
	return nil
}
