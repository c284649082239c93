package deploy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/compose-spec/compose-go/v2/types"

	"github.com/difyctl/difyctl/compose"
	"github.com/difyctl/difyctl/envgen"
	"github.com/difyctl/difyctl/internal/buildinfo"
	"github.com/difyctl/difyctl/internal/cmdutil"
	"github.com/difyctl/difyctl/internal/engine"
	"github.com/difyctl/difyctl/internal/iostreams"
	"github.com/difyctl/difyctl/internal/progress"
	"github.com/difyctl/difyctl/internal/project"
)

// UpOptions for Up.
type UpOptions struct {
	// Settle, when set, settles what a killed operation left (the project's
	// journal, internal/recovery) under the project lock, before anything
	// else changes; the command sets it (deploy does not know the settlers).
	Settle      func(ctx context.Context, eng engine.Engine, dir, project string) error
	IO          *iostreams.IOStreams
	JSON        bool
	Load        compose.LoadOptions
	Env         *envgen.Doc // the project's .env as read; nil: it has none (Up writes one)
	Embedded    bool        // the embedded templates (no -f): .env is generated and validated
	Profiles    []string    // --profile as given
	Services    []string
	WaitTimeout time.Duration
	// ProbeInterval as compose.UpOptions.ProbeInterval (0: the default,
	// health.ProbesOff: the engine's health status only).
	ProbeInterval time.Duration
	Progress      string
	Recreate      compose.RecreatePolicy
	Pull          compose.PullPolicy // "": each service's pull_policy
	Orphans       bool               // --remove-orphans
	NoDeps        bool               // --no-deps
	DryRun        bool
	Engine        func(context.Context) (engine.Engine, error)
	Now           func() time.Time
	Getenv        func(string) string // where DOCKER_CONFIG, HOME and the lock directory come from
}

// getenv is Getenv; nil reads as an empty environment (the factory is the
// only door to the process's).
func (o *UpOptions) getenv() func(string) string { return cmdutil.EnvOrNone(o.Getenv) }

// Up brings the project up: prepares the directory, loads the project,
// plans, and (unless DryRun) converges, reporting progress on stderr and
// the result on stdout.
func Up(ctx context.Context, o *UpOptions) error {
	prep, err := Prepare(PrepareOptions{Dir: o.Load.ProjectDir, Project: o.Load.ProjectName, Embedded: o.Embedded,
		Profiles: o.Profiles, DryRun: o.DryRun, Env: o.Env, Now: o.Now(), Report: o.IO.ErrOut})
	if err != nil {
		return err
	}
	lo := o.Load
	if prep.Profiles != nil {
		lo.Profiles = prep.Profiles
	}
	if prep.Wrote != nil {
		lo.DotEnv = nil // the .env was written now: the loader reads it
	}
	p, err := compose.Load(ctx, lo)
	if err != nil {
		return cmdutil.WithExitCode(cmdutil.ExitFailure, err)
	}
	if !o.DryRun {
		unlock, err := project.Lock(o.getenv(), p.Name)
		if err != nil {
			return err
		}
		defer unlock()
	}
	cli, err := o.Engine(ctx)
	if err != nil {
		return err
	}
	defer cli.Close()
	if !o.DryRun { // an interrupted restore is settled first (internal/journal)
		if o.Settle != nil {
			if err := o.Settle(ctx, cli, o.Load.ProjectDir, p.Name); err != nil {
				return err
			}
		}
	}
	if o.DryRun {
		// No progress view: a dry run prints its plan and changes nothing
		// (and a live view left running would leave the terminal's cursor
		// hidden).
		res, err := compose.Up(ctx, cli, o.upOptions(p, lo, nil))
		if err != nil {
			return cmdutil.WithExitCode(cmdutil.ExitFailure, err)
		}
		printNotes(o, res)
		return printPlan(o, res)
	}
	pw, err := progress.New(o.Progress, o.IO.ErrOut, o.IO.IsStderrTTY(), o.IO.ColorEnabled())
	if err != nil {
		return cmdutil.WithExitCode(cmdutil.ExitUsage, err)
	}
	var report compose.Reporter
	if o.Progress != progress.Quiet {
		report = pw.Event
	}
	start := time.Now()
	res, err := compose.Up(ctx, cli, o.upOptions(p, lo, report))
	pw.Close() // the diagnosis goes below the progress, not into it
	err = o.conclude(ctx, cli, p, res, err, start)
	return progress.Finish(pw, err, "project "+p.Name+" up")
}

// conclude prints what up did and returns the command's error.
func (o *UpOptions) conclude(ctx context.Context, cli engine.Engine, p *types.Project, res *compose.UpResult, err error, start time.Time) error {
	if res != nil {
		printNotes(o, res)
	}
	if ctx.Err() != nil {
		// Ctrl-C: stop waiting, say what runs.
		listCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		cs, _ := compose.List(listCtx, cli, p.Name, true)
		if len(cs) == 0 {
			fmt.Fprintln(o.IO.ErrOut, "interrupted; project "+p.Name+" has no containers")
			return cmdutil.SilentError(cmdutil.ExitInterrupted)
		}
		fmt.Fprintln(o.IO.ErrOut, "interrupted; containers of project "+p.Name+":")
		for _, c := range cs {
			fmt.Fprintf(o.IO.ErrOut, "  %-20s %-10s %s\n", c.Service, c.State, c.Health)
		}
		return cmdutil.SilentError(cmdutil.ExitInterrupted)
	}
	var fe *compose.FailedError
	if errors.As(err, &fe) {
		if o.JSON {
			_ = cmdutil.WriteJSON(o.IO.Out, res)
		}
		fe.Diagnose(o.IO.ErrOut)
		return cmdutil.WithExitCode(cmdutil.ExitFailure, fmt.Errorf("%d service(s) did not come up; %s (difyctl ps)", len(fe.Failures), changes(res)))
	}
	if err != nil {
		return cmdutil.WithExitCode(cmdutil.ExitFailure, err)
	}
	if o.JSON {
		return cmdutil.WriteJSON(o.IO.Out, res)
	}
	fmt.Fprintf(o.IO.Out, "project %s: %d service(s) up in %s\n", p.Name, len(res.Plan), time.Since(start).Round(10*time.Millisecond))
	if _, ok := p.Services["nginx"]; ok && o.Embedded {
		port := p.Environment["EXPOSE_NGINX_PORT"]
		if port == "" {
			port = "80"
		}
		fmt.Fprintf(o.IO.Out, "open http://localhost:%s/install to set up Dify\n", port)
	}
	return nil
}

func (o *UpOptions) upOptions(p *types.Project, lo compose.LoadOptions, report compose.Reporter) compose.UpOptions {
	return compose.UpOptions{Project: p, ConfigFiles: compose.ConfigFileNames(lo), Services: o.Services,
		WaitTimeout: o.WaitTimeout, ProbeInterval: o.ProbeInterval, Recreate: o.Recreate, Pull: o.Pull, RemoveOrphans: o.Orphans, NoDeps: o.NoDeps, DryRun: o.DryRun,
		Version: buildinfo.Get().Version, Release: compose.DeployedRelease(lo), RegistryAuth: engine.RegistryAuth(o.getenv()), Report: report}
}

func printNotes(o *UpOptions, res *compose.UpResult) {
	for _, n := range res.Notes {
		fmt.Fprintln(o.IO.ErrOut, "note: "+n)
	}
	for _, w := range res.Warnings {
		fmt.Fprintln(o.IO.ErrOut, "warning: "+w)
	}
}

// changes says, after a failure, what up changed and what it left as it
// was, service by service.
func changes(res *compose.UpResult) string {
	var changed, left []string
	for _, it := range res.Plan {
		switch it.Outcome {
		case compose.OutcomeCreated, compose.OutcomeReplaced, compose.OutcomeStarted, compose.OutcomeRestarted:
			changed = append(changed, it.Service+" "+it.Outcome)
		case "", compose.OutcomeKept:
		default:
			left = append(left, it.Service+" "+it.Outcome)
		}
	}
	var parts []string
	if len(changed) > 0 {
		parts = append(parts, "changed: "+strings.Join(changed, ", "))
	}
	if len(left) > 0 {
		parts = append(parts, strings.Join(left, ", "))
	}
	if len(parts) == 0 {
		return "nothing else was changed"
	}
	return strings.Join(parts, "; ") + "; every other container is left as it was"
}

func printPlan(o *UpOptions, res *compose.UpResult) error {
	if o.JSON {
		return cmdutil.WriteJSON(o.IO.Out, res)
	}
	_, err := io.WriteString(o.IO.Out, res.PlanText())
	return err
}
