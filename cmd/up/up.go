// Package up implements `difyctl up`.
package up

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/compose-spec/compose-go/v2/types"
	"github.com/moby/moby/client"
	"github.com/spf13/cobra"

	"github.com/difyctl/difyctl/cmd/config"
	"github.com/difyctl/difyctl/cmd/initcmd"
	"github.com/difyctl/difyctl/compose"
	"github.com/difyctl/difyctl/envgen"
	"github.com/difyctl/difyctl/internal/buildinfo"
	"github.com/difyctl/difyctl/internal/cmdutil"
	"github.com/difyctl/difyctl/internal/engine"
	"github.com/difyctl/difyctl/internal/iostreams"
	"github.com/difyctl/difyctl/internal/progress"
	"github.com/difyctl/difyctl/internal/project"
	"github.com/difyctl/difyctl/profiles"
)

// Options for up.
type Options struct {
	IO          *iostreams.IOStreams
	JSON        bool
	Load        compose.LoadOptions
	Embedded    bool     // the embedded templates (no -f): .env is generated and validated
	Profiles    []string // --profile as given
	Services    []string
	WaitTimeout time.Duration
	Progress    string
	Recreate    compose.RecreatePolicy
	Pull        compose.PullPolicy // "": each service's pull_policy
	Orphans     bool               // --remove-orphans
	DryRun      bool
	Engine      func(context.Context) (*client.Client, error)
	Now         func() time.Time
	Getenv      func(string) string // where DOCKER_CONFIG and HOME come from
}

// NewCmd returns the up command.
func NewCmd(f *cmdutil.Factory) *cobra.Command {
	opts := &Options{IO: f.IOStreams, Now: time.Now, Engine: f.Engine, Getenv: os.Getenv}
	var noRecreate, forceRecreate bool
	var pull string
	cmd := &cobra.Command{
		Use:   "up [--profile P]... [SERVICE...]",
		Short: "Create and start the project: dependency order, parallel, gated on health",
		Long: `Converge the project on its files. First a plan, changing nothing: per
container keep, start, recreate (configuration changed, the image tag names
another image now, a network or alias missing) or, for orphans, remove
(--remove-orphans) or warn; --dry-run prints it. Then pre-flight checks
(published ports free, no other project on the same data directories),
networks, volumes and bind-mount directories. Then every new container and
every replacement is created up front (a replacement under a temporary name,
with the old container's anonymous volumes), and each service is started or
swapped in as soon as its depends_on conditions hold (service_started,
service_healthy, service_completed_successfully), driven by engine events;
a replacement that fails to start is removed and the old container runs
again. Returns when every started service is running and healthy (a one-shot
job: exited 0), like "docker compose up -d --wait". Without a .env, writes
one first (as init).`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := opts.setPolicies(noRecreate, forceRecreate, pull); err != nil {
				return err
			}
			lo, err := config.LoadOptions(f, nil)
			if err != nil {
				return err
			}
			opts.Load, opts.Embedded, opts.Services, opts.JSON = lo, len(f.Files) == 0, args, f.JSON()
			return Run(cmd.Context(), opts)
		},
	}
	fl := cmd.Flags()
	fl.StringSliceVar(&opts.Profiles, "profile", nil, "profile to enable (repeatable); default: COMPOSE_PROFILES from .env")
	fl.DurationVar(&opts.WaitTimeout, "wait-timeout", 10*time.Minute, "give up waiting for services after this long")
	fl.StringVar(&opts.Progress, "progress", progress.Auto, progress.Usage)
	fl.BoolVar(&noRecreate, "no-recreate", false, "keep existing containers even when their configuration changed")
	fl.BoolVar(&forceRecreate, "force-recreate", false, "recreate containers even when nothing changed")
	fl.BoolVar(&opts.DryRun, "dry-run", false, "print the plan and change nothing")
	fl.StringVar(&pull, "pull", "", "pull images: always, missing or never (default: each service's pull_policy, missing when none)")
	fl.BoolVar(&opts.Orphans, "remove-orphans", false, "remove containers of services no longer in the files or whose profile is not active (their data stays)")
	_ = cmd.RegisterFlagCompletionFunc("profile", initcmd.ProfileCompletion)
	f.AddFileFlag(cmd)
	return cmd
}

// setPolicies maps --no-recreate, --force-recreate and --pull.
func (o *Options) setPolicies(noRecreate, forceRecreate bool, pull string) error {
	if noRecreate && forceRecreate {
		return cmdutil.UsageError("--no-recreate and --force-recreate exclude each other")
	}
	o.Recreate = compose.RecreateDiverged
	if noRecreate {
		o.Recreate = compose.RecreateNever
	} else if forceRecreate {
		o.Recreate = compose.RecreateForce
	}
	o.Pull = ""
	if pull != "" {
		p, err := compose.ParsePullPolicy(pull)
		if err != nil || pull == "if_not_present" || pull == "build" {
			return cmdutil.UsageError("--pull %q: use always, missing or never", pull)
		}
		o.Pull = p
	}
	return nil
}

// Prepare makes sure the project's .env exists, agrees with --profile and
// validates; it returns what it did to say so.
func Prepare(o *Options) error {
	if !o.Embedded {
		if len(o.Profiles) > 0 {
			o.Load.Profiles = o.Profiles
		}
		return nil
	}
	path := filepath.Join(o.Load.ProjectDir, ".env")
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		if o.DryRun {
			return cmdutil.UsageError("%s does not exist; run \"difyctl init\" (or up without --dry-run, which writes it)", path)
		}
		res, err := initcmd.WriteProject(o.Load.ProjectDir, o.Load.ProjectName, o.Profiles, false, o.Now())
		if err != nil {
			return err
		}
		fmt.Fprintf(o.IO.ErrOut, "wrote %s for %s + %s with fresh secrets (mode 0600)\n", res.Path, res.Profiles.Database, res.Profiles.Vector)
	}
	d, err := envgen.ReadFile(path)
	if err != nil {
		return cmdutil.WithExitCode(cmdutil.ExitUsage, err)
	}
	if !o.DryRun {
		rel, err := o.Load.Template()
		if err != nil {
			return cmdutil.WithExitCode(cmdutil.ExitUsage, err)
		}
		if _, err := rel.WriteSupportFiles(o.Load.ProjectDir); err != nil {
			return fmt.Errorf("writing the configuration files the services mount: %w", err)
		}
	}
	env := d.Map()
	if len(o.Profiles) > 0 {
		sel, err := profiles.Select(o.Profiles, true)
		if err != nil {
			return cmdutil.WithExitCode(cmdutil.ExitUsage, err)
		}
		for _, c := range []struct{ v, want string }{{"DB_TYPE", sel.Database}, {"VECTOR_STORE", sel.Vector}} {
			if got := env[c.v]; got != "" && got != c.want {
				return cmdutil.UsageError("%s says %s=%s but --profile asks for %s; change it with \"difyctl env set %s=%s\" (and migrate the data), or drop --profile", path, c.v, got, c.want, c.v, c.want)
			}
		}
		// Profiles named on the command line that .env does not enable yet.
		cur, _ := profiles.FromEnv(env)
		o.Load.Profiles = append(cur.Names(), sel.Extras...)
	}
	var errs []string
	for _, fd := range envgen.Validate(d, envgen.DefaultSchema()) {
		if fd.Severity == envgen.Error {
			errs = append(errs, "  "+fd.String())
		}
	}
	if len(errs) > 0 {
		return cmdutil.WithExitCode(cmdutil.ExitFailure, fmt.Errorf("%s has errors; nothing was started:\n%s", path, strings.Join(errs, "\n")))
	}
	return nil
}

func (o *Options) getenv() func(string) string {
	if o.Getenv == nil {
		return os.Getenv
	}
	return o.Getenv
}

// Run brings the project up.
func Run(ctx context.Context, o *Options) error {
	if err := Prepare(o); err != nil {
		return err
	}
	p, err := compose.Load(ctx, o.Load)
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
	if o.DryRun {
		// No progress view: a dry run prints its plan and changes nothing
		// (and a live view left running would leave the terminal's cursor
		// hidden).
		res, err := compose.Up(ctx, cli, o.upOptions(p, nil))
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
	res, err := compose.Up(ctx, cli, o.upOptions(p, report))
	pw.Close() // the diagnosis goes below the progress, not into it
	err = o.conclude(ctx, cli, p, res, err, start)
	return progress.Finish(pw, err, "project "+p.Name+" up")
}

// conclude prints what up did and returns the command's error.
func (o *Options) conclude(ctx context.Context, cli engine.Engine, p *types.Project, res *compose.UpResult, err error, start time.Time) error {
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

func (o *Options) upOptions(p *types.Project, report compose.Reporter) compose.UpOptions {
	return compose.UpOptions{Project: p, ConfigFiles: compose.ConfigFileNames(o.Load), Services: o.Services,
		WaitTimeout: o.WaitTimeout, Recreate: o.Recreate, Pull: o.Pull, RemoveOrphans: o.Orphans, DryRun: o.DryRun,
		Version: buildinfo.Get().Version, Release: compose.DeployedRelease(o.Load), RegistryAuth: engine.RegistryAuth(o.getenv()), Report: report}
}

func printNotes(o *Options, res *compose.UpResult) {
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

func printPlan(o *Options, res *compose.UpResult) error {
	if o.JSON {
		return cmdutil.WriteJSON(o.IO.Out, res)
	}
	_, err := io.WriteString(o.IO.Out, res.PlanText())
	return err
}
