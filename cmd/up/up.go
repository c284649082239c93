// Package up implements `difyctl up`.
package up

import (
	"context"
	"time"

	"github.com/spf13/cobra"

	"github.com/difyctl/difyctl/compose"
	"github.com/difyctl/difyctl/health"
	"github.com/difyctl/difyctl/internal/cmdutil"
	"github.com/difyctl/difyctl/internal/deploy"
	"github.com/difyctl/difyctl/internal/progress"
	"github.com/difyctl/difyctl/internal/recovery"
)

// Options for up: the use-case's (internal/deploy).
type Options = deploy.UpOptions

// Run brings the project up (deploy.Up).
func Run(ctx context.Context, o *Options) error { return deploy.Up(ctx, o) }

// NewCmd returns the up command; runF, when not nil, runs instead of Run
// (tests check the flag mapping through it).
func NewCmd(f *cmdutil.Factory, runF func(context.Context, *Options) error) *cobra.Command {
	opts := &Options{IO: f.IOStreams, Now: time.Now, Engine: f.Engine, Getenv: f.Getenv}
	var noRecreate, forceRecreate bool
	var pull string
	var probeEvery time.Duration
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
			if err := setPolicies(opts, noRecreate, forceRecreate, pull); err != nil {
				return err
			}
			lo, err := deploy.LoadOptions(f, nil)
			if err != nil {
				return err
			}
			if opts.Env, err = f.Env(); err != nil {
				return err
			}
			opts.Load, opts.Embedded, opts.Services, opts.JSON = lo, len(f.Files) == 0, args, f.JSON()
			opts.ProbeInterval = health.ProbeIntervalOption(probeEvery)
			opts.Settle = recovery.Hook(recovery.Options{Out: opts.IO.ErrOut, JSON: opts.JSON, ProcEnv: f.ProcEnv()})
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return Run(cmd.Context(), opts)
		},
	}
	fl := cmd.Flags()
	fl.StringSliceVar(&opts.Profiles, "profile", nil, "profile to enable (repeatable); default: COMPOSE_PROFILES from .env")
	fl.DurationVar(&opts.WaitTimeout, "wait-timeout", 10*time.Minute, "give up waiting for services after this long")
	fl.DurationVar(&probeEvery, "probe-interval", health.DefaultProbeInterval, health.ProbeIntervalUsage)
	fl.StringVar(&opts.Progress, "progress", progress.Auto, progress.Usage)
	fl.BoolVar(&noRecreate, "no-recreate", false, "keep existing containers even when their configuration changed")
	fl.BoolVar(&forceRecreate, "force-recreate", false, "recreate containers even when nothing changed")
	fl.BoolVar(&opts.DryRun, "dry-run", false, "print the plan and change nothing")
	fl.StringVar(&pull, "pull", "", "pull images: always, missing or never (default: each service's pull_policy, missing when none)")
	fl.BoolVar(&opts.Orphans, "remove-orphans", false, "remove containers of services no longer in the files or whose profile is not active (their data stays)")
	fl.BoolVar(&opts.NoDeps, "no-deps", false, "converge only the services named; their dependencies are taken as they run (their conditions still waited on), never created, started or replaced")
	_ = cmd.RegisterFlagCompletionFunc("profile", cmdutil.ProfileCompletion)
	f.AddFileFlag(cmd)
	return cmd
}

// setPolicies maps --no-recreate, --force-recreate and --pull.
func setPolicies(o *Options, noRecreate, forceRecreate bool, pull string) error {
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
