// Package upgrade implements `difyctl upgrade` and `difyctl rollback`: thin
// commands over internal/upgrade.
package upgrade

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/difyctl/difyctl/internal/buildinfo"
	"github.com/difyctl/difyctl/internal/catalog"
	"github.com/difyctl/difyctl/internal/cmdutil"
	"github.com/difyctl/difyctl/internal/engine"
	"github.com/difyctl/difyctl/internal/iostreams"
	"github.com/difyctl/difyctl/internal/project"
	"github.com/difyctl/difyctl/internal/prompt"
	"github.com/difyctl/difyctl/internal/recovery"
	_ "github.com/difyctl/difyctl/internal/safetybundle" // up.NewSafety: bundles (backup all)
	up "github.com/difyctl/difyctl/internal/upgrade"
	"github.com/difyctl/difyctl/templates"
)

// Options for upgrade.
type Options struct {
	IO             *iostreams.IOStreams
	JSON           bool
	Dir, Project   string
	To             string
	DryRun         bool
	Yes            bool
	AllowDowngrade bool
	Bundle         string // with --allow-downgrade: a bundle taken on the target release
	NoBundle       bool
	WaitTimeout    time.Duration
	Environ        []string
	Getenv         func(string) string
	Engine         func(context.Context) (engine.Engine, error)
	// Safety is the bundle step (nil: the build's, up.NewSafety).
	Safety func(engine.Engine, func(string, ...any)) up.Safety
}

// NewCmd returns the upgrade command; runF, when not nil, runs instead of
// Run (tests check the flag mapping through it).
func NewCmd(f *cmdutil.Factory, runF func(context.Context, *Options) error) *cobra.Command {
	o := &Options{}
	cmd := &cobra.Command{
		Use:   "upgrade [--to VERSION] [--dry-run] [--yes]",
		Short: "Upgrade the running Dify to a newer release of the catalogue, with a way back",
		Long: `Upgrade the deployment to another Dify release of the catalogue (default: the
newest; see "difyctl releases"). First the plan: what changes (images,
services, variables, support files) and what it costs (images to pull,
containers to recreate). Then, before anything stops, every target image is
pulled and the disk checked; a safety bundle (backup all) is taken and
verified; .env is upgraded to the target's variables keeping every value,
support files are updated (an edited one is kept and the new one written
beside it), only the changed services are recreated in dependency order,
health-gated (the api migrates the database as it does on start); the new
release is recorded. Any failure puts back the previous .env, support files,
containers and, once migrations may have run, the database from the bundle.
A killed upgrade is finished or undone by the next upgrade or rollback.`,
		Args: cmdutil.Args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			dir, name, err := f.Project()
			if err != nil {
				return err
			}
			o.IO, o.JSON, o.Dir, o.Project, o.Getenv = f.IOStreams, f.JSON(), dir, name, f.Getenv
			o.Environ = environ(f)
			o.Engine = f.Engine
			if runF != nil {
				return runF(cmd.Context(), o)
			}
			return Run(cmd.Context(), o)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&o.To, "to", "", "the release to upgrade to (default: the newest of the catalogue)")
	fl.BoolVar(&o.DryRun, "dry-run", false, "print the plan and change nothing")
	fl.BoolVarP(&o.Yes, "yes", "y", false, "do not ask for confirmation")
	fl.BoolVar(&o.AllowDowngrade, "allow-downgrade", false, "allow --to an older release (needs --bundle taken on it)")
	fl.StringVar(&o.Bundle, "bundle", "", "with --allow-downgrade: a bundle taken on the target release, restored after the containers change")
	fl.BoolVar(&o.NoBundle, "no-bundle", false, "upgrade without a safety bundle (a failure after migrations started cannot restore the database)")
	fl.DurationVar(&o.WaitTimeout, "wait-timeout", 10*time.Minute, "how long the recreated services have to become healthy")
	_ = cmd.RegisterFlagCompletionFunc("to", func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
		return templates.Versions(), cobra.ShellCompDirectiveNoFileComp
	})
	return cmd
}

func environ(f *cmdutil.Factory) []string {
	if f.Environ == nil {
		return nil
	}
	return f.Environ()
}

func (o *Options) lock() (func(), error) {
	return project.Lock(cmdutil.EnvOrNone(o.Getenv), o.Project)
}

func (o *Options) safety(eng engine.Engine, printf func(string, ...any)) up.Safety {
	mk := o.Safety
	if mk == nil {
		mk = up.NewSafety
	}
	if mk == nil {
		return nil
	}
	return mk(eng, printf)
}

// Run plans, asks, and upgrades.
func Run(ctx context.Context, o *Options) error {
	eng, err := o.Engine(ctx)
	if err != nil {
		return err
	}
	defer eng.Close()
	if !o.DryRun {
		unlock, err := o.lock()
		if err != nil {
			return err
		}
		defer unlock()
		if _, err := recovery.Settle(ctx, eng, recovery.Options{Out: o.IO.ErrOut, JSON: o.JSON, ProcEnv: cmdutil.ProcEnv{Getenv: o.Getenv, Environ: o.Environ}}, o.Dir, o.Project); err != nil {
			return err
		}
	}
	t0 := time.Now()
	plan, err := up.MakePlan(ctx, eng, up.Target{Dir: o.Dir, Project: o.Project, To: o.To, Environ: o.Environ})
	if err != nil {
		return cmdutil.WithExitCode(cmdutil.ExitFailure, err)
	}
	res := &up.Result{Plan: plan}
	res.Timings.Plan = time.Since(t0)
	if o.DryRun {
		if o.JSON {
			return cmdutil.WriteJSON(o.IO.Out, res)
		}
		WritePlan(o.IO.Out, plan)
		fmt.Fprintln(o.IO.Out, "dry run: nothing was changed")
		return nil
	}
	printf := func(format string, a ...any) { fmt.Fprintf(o.IO.ErrOut, format+"\n", a...) }
	uo := &up.Options{Target: up.Target{Dir: o.Dir, Project: o.Project, To: o.To, Environ: o.Environ}, Engine: eng,
		Safety: o.safety(eng, printf), NoBundle: o.NoBundle, AllowDowngrade: o.AllowDowngrade, DowngradeFrom: o.Bundle,
		WaitTimeout: o.WaitTimeout, Version: buildinfo.Get().Version, Progress: o.IO.ErrOut}
	if err := up.Preflight(uo, plan); err != nil {
		return cmdutil.WithExitCode(cmdutil.ExitFailure, err)
	}
	if !o.JSON {
		WritePlan(o.IO.ErrOut, plan)
	}
	if !o.Yes {
		ok, err := prompt.Confirm(o.IO, fmt.Sprintf("Upgrade project %s from Dify %s to %s?", plan.Project, plan.From, plan.To), "upgrade changes the running deployment: pass --yes to confirm without a terminal (or --dry-run to see the plan)")
		if err != nil {
			return err
		}
		if !ok {
			return prompt.Declined("nothing was changed")
		}
	}
	if err := up.Run(ctx, uo, plan, res); err != nil {
		return cmdutil.WithExitCode(cmdutil.ExitFailure, err)
	}
	if o.JSON {
		return cmdutil.WriteJSON(o.IO.Out, res)
	}
	for _, n := range res.Notes {
		fmt.Fprintln(o.IO.ErrOut, "note: "+n)
	}
	t := res.Timings
	fmt.Fprintf(o.IO.Out, "project %s upgraded: Dify %s -> %s (%d service(s) recreated; plan %s, pull %s, bundle %s, apply %s, downtime %s)\n",
		plan.Project, plan.From, plan.To, len(plan.Recreate), round(t.Plan), round(t.Pull), round(t.Bundle), round(t.Apply), round(t.Downtime))
	if res.Bundle != "" {
		fmt.Fprintf(o.IO.Out, "safety bundle: %s; `difyctl rollback` goes back to %s\n", res.Bundle, plan.From)
	} else {
		fmt.Fprintf(o.IO.Out, "`difyctl rollback` goes back to %s (no bundle: the database keeps %s's migrations)\n", plan.From, plan.To)
	}
	return nil
}

func round(d time.Duration) time.Duration { return d.Round(10 * time.Millisecond) }

// WritePlan prints the plan: what changes and what it costs.
func WritePlan(w io.Writer, p *up.Plan) {
	kind := "upgrade"
	if p.Downgrade {
		kind = "DOWNGRADE"
	}
	fmt.Fprintf(w, "plan: %s project %s from Dify %s (%s) to %s\n", kind, p.Project, p.From, p.FromSource, p.To)
	catalog.WriteText(w, p.Changes)
	fmt.Fprintln(w, "cost:")
	list := func(label string, ss []string) {
		if len(ss) == 0 {
			fmt.Fprintf(w, "  %s: none\n", label)
			return
		}
		fmt.Fprintf(w, "  %s (%d): %s\n", label, len(ss), strings.Join(ss, ", "))
	}
	list("images to pull", p.Pull)
	list("containers to create, recreate or remove", p.Recreate)
	list("variables added to .env", p.EnvAdded)
	list("variables renamed in .env (value carried over)", p.EnvRenamed)
	var files []string
	for _, f := range p.Files {
		switch f.Action {
		case up.FileBeside:
			files = append(files, f.Path+" (edited by you: kept; the new one written as "+f.Beside+")")
		default:
			files = append(files, f.Path+" ("+f.Action+")")
		}
	}
	list("support files", files)
}
