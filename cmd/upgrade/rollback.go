package upgrade

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/difyctl/difyctl/internal/buildinfo"
	"github.com/difyctl/difyctl/internal/cmdutil"
	"github.com/difyctl/difyctl/internal/prompt"
	"github.com/difyctl/difyctl/internal/recovery"
	up "github.com/difyctl/difyctl/internal/upgrade"
)

// RollbackOptions for rollback.
type RollbackOptions struct {
	Options
}

// NewCmdRollback returns the rollback command; runF, when not nil, runs
// instead of Rollback.
func NewCmdRollback(f *cmdutil.Factory, runF func(context.Context, *RollbackOptions) error) *cobra.Command {
	o := &RollbackOptions{}
	cmd := &cobra.Command{
		Use:   "rollback [--yes]",
		Short: "Undo the last completed upgrade: previous .env, support files, containers and database",
		Long: `Undo the last completed "difyctl upgrade": the .env and support files it
changed are put back, the database and data are restored from the safety
bundle it took (what was written since the upgrade is lost), and the
previous release's containers are started again, health-gated. An
interrupted upgrade or rollback is settled first (finished or undone).`,
		Args: cmdutil.Args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			dir, name, err := f.Project()
			if err != nil {
				return err
			}
			o.IO, o.JSON, o.Dir, o.Project, o.Getenv, o.Engine = f.IOStreams, f.JSON(), dir, name, f.Getenv, f.Engine
			o.Environ = environ(f)
			if runF != nil {
				return runF(cmd.Context(), o)
			}
			return Rollback(cmd.Context(), o)
		},
	}
	cmd.Flags().BoolVarP(&o.Yes, "yes", "y", false, "do not ask for confirmation")
	cmd.Flags().DurationVar(&o.WaitTimeout, "wait-timeout", 10*time.Minute, "how long the previous release's services have to become healthy")
	return cmd
}

// Rollback settles a pending journal, then undoes the last upgrade.
func Rollback(ctx context.Context, o *RollbackOptions) error {
	eng, err := o.Engine(ctx)
	if err != nil {
		return err
	}
	defer eng.Close()
	unlock, err := o.lock()
	if err != nil {
		return err
	}
	defer unlock()
	out, err := recovery.Settle(ctx, eng, recovery.Options{Out: o.IO.ErrOut, JSON: o.JSON, ProcEnv: cmdutil.ProcEnv{Getenv: o.Getenv, Environ: o.Environ}}, o.Dir, o.Project)
	if err != nil {
		return err
	}
	if out != nil && out.Op == up.Op {
		// An interrupted upgrade was undone, or a rollback finished: that
		// was the rollback asked for.
		fmt.Fprintf(o.IO.Out, "%s\n", out.Detail)
		return nil
	}
	last, err := up.ReadLast(o.Dir)
	if err != nil {
		return cmdutil.WithExitCode(cmdutil.ExitFailure, err)
	}
	if last == nil {
		return cmdutil.WithExitCode(cmdutil.ExitFailure, fmt.Errorf("no completed upgrade to roll back in %s", o.Dir))
	}
	if !o.Yes {
		q := fmt.Sprintf("Roll project %s back from Dify %s to %s? The database is restored from the bundle taken before the upgrade (%s): what was written since is lost.", o.Project, last.To, last.From, bundleName(last.Bundle))
		ok, err := prompt.Confirm(o.IO, q, "rollback restores the database as it was before the upgrade: pass --yes to confirm without a terminal")
		if err != nil {
			return err
		}
		if !ok {
			return prompt.Declined("nothing was changed")
		}
	}
	printf := func(format string, a ...any) { fmt.Fprintf(o.IO.ErrOut, format+"\n", a...) }
	data, err := up.Rollback(ctx, up.RollbackOptions{Dir: o.Dir, Project: o.Project, Environ: o.Environ, Engine: eng,
		Safety: o.safety(eng, printf), WaitTimeout: o.WaitTimeout, Version: buildinfo.Get().Version, Printf: printf})
	if err != nil {
		return cmdutil.WithExitCode(cmdutil.ExitFailure, err)
	}
	if o.JSON {
		return cmdutil.WriteJSON(o.IO.Out, data)
	}
	fmt.Fprintf(o.IO.Out, "project %s rolled back: Dify %s -> %s\n", o.Project, data.To, data.From)
	return nil
}

func bundleName(b string) string {
	if b == "" {
		return "none: the upgrade ran with --no-bundle, the database keeps the newer release's migrations"
	}
	return b
}
