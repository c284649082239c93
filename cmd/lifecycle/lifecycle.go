// Package lifecycle implements down, ps, logs, stop, start and restart: the
// verbs that act on a project's containers by their compose labels, whoever
// created them.
package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/difyctl/difyctl/compose"
	"github.com/difyctl/difyctl/health"
	"github.com/difyctl/difyctl/internal/catalog"
	"github.com/difyctl/difyctl/internal/cmdutil"
	"github.com/difyctl/difyctl/internal/engine"
	"github.com/difyctl/difyctl/internal/iostreams"
	"github.com/difyctl/difyctl/internal/progress"
	"github.com/difyctl/difyctl/internal/project"
	"github.com/difyctl/difyctl/internal/prompt"
	"github.com/difyctl/difyctl/internal/recovery"
	"github.com/difyctl/difyctl/internal/release"
	"github.com/difyctl/difyctl/internal/termsafe"
)

// Options shared by the verbs.
type Options struct {
	IO       *iostreams.IOStreams
	JSON     bool
	Project  string
	Dir      string // project directory (its journal)
	Services []string
	Engine   func(context.Context) (engine.Engine, error)
	Progress string
	Getenv   func(string) string // where the lock directory comes from
	Environ  []string            // the process environment (the factory's) the settlers read
}

func common(f *cmdutil.Factory, args []string, o *Options) error {
	dir, name, err := f.Project()
	if err != nil {
		return err
	}
	o.Dir = dir
	o.IO, o.JSON, o.Project, o.Services, o.Engine, o.Getenv = f.IOStreams, f.JSON(), name, args, f.Engine, f.Getenv
	o.Environ = f.Environment()
	return nil
}

// lock takes the project's lock (internal/project).
func (o *Options) lock() (func(), error) {
	return project.Lock(cmdutil.EnvOrNone(o.Getenv), o.Project)
}

func (o *Options) reporter() (progress.Writer, error) {
	mode := o.Progress
	if mode == "" {
		mode = progress.Auto
	}
	return progress.New(mode, o.IO.ErrOut, o.IO.IsStderrTTY(), o.IO.ColorEnabled())
}

// NewCmds returns down, ps, logs, stop, start, restart.
func NewCmds(f *cmdutil.Factory) []*cobra.Command {
	return []*cobra.Command{NewCmdDown(f, nil), NewCmdPs(f, nil), NewCmdLogs(f, nil), NewCmdStop(f, nil), NewCmdStart(f, nil), NewCmdRestart(f, nil)}
}

// DownOptions for down.
type DownOptions struct {
	Options
	Volumes bool
	Yes     bool
	Timeout *time.Duration // nil: each container's own stop_grace_period
}

// NewCmdDown returns down; runF, when not nil, runs instead of Down (tests
// check the flag mapping through it).
func NewCmdDown(f *cmdutil.Factory, runF func(context.Context, *DownOptions) error) *cobra.Command {
	o := &DownOptions{}
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "down [--volumes] [--timeout N]",
		Short: "Stop and remove the project's containers (dependents first) and networks",
		Args:  cmdutil.Args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := common(f, args, &o.Options); err != nil {
				return err
			}
			o.Timeout = stopTimeout(cmd, timeout)
			if runF != nil {
				return runF(cmd.Context(), o)
			}
			return Down(cmd.Context(), o)
		},
	}
	cmd.Flags().BoolVar(&o.Volumes, "volumes", false, "also remove the project's named volumes (asks first unless --yes)")
	cmd.Flags().BoolVarP(&o.Yes, "yes", "y", false, "do not ask before removing volumes")
	addStopTimeout(cmd, &timeout)
	cmd.Flags().StringVar(&o.Progress, "progress", progress.Auto, progress.Usage)
	return cmd
}

// Down runs down.
func Down(ctx context.Context, o *DownOptions) error {
	if o.Volumes && !o.Yes {
		ok, err := prompt.Confirm(o.IO, fmt.Sprintf("Remove the named volumes of project %s, and their data?", o.Project),
			"--volumes deletes the project's data; pass --yes to confirm when not on a terminal")
		if err != nil {
			return err
		}
		if !ok {
			return prompt.Declined("nothing removed")
		}
	}
	unlock, err := o.lock()
	if err != nil {
		return err
	}
	defer unlock()
	cli, err := o.Engine(ctx)
	if err != nil {
		return err
	}
	defer cli.Close()
	pw, err := o.reporter()
	if err != nil {
		return cmdutil.WithExitCode(cmdutil.ExitUsage, err)
	}
	err = compose.Down(ctx, cli, compose.DownOptions{Project: o.Project, Volumes: o.Volumes, Timeout: o.Timeout, Report: pw.Event})
	pw.Close()
	return progress.Finish(pw, err, "project "+o.Project+" down")
}

// PsOptions for ps.
type PsOptions struct {
	Options
	All bool
}

// NewCmdPs returns ps; runF, when not nil, runs instead of Ps.
func NewCmdPs(f *cmdutil.Factory, runF func(context.Context, *PsOptions) error) *cobra.Command {
	o := &PsOptions{}
	cmd := &cobra.Command{
		Use:   "ps [SERVICE...]",
		Short: "List the project's containers: service, container, state, health, ports, uptime",
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := common(f, args, &o.Options); err != nil {
				return err
			}
			if runF != nil {
				return runF(cmd.Context(), o)
			}
			return Ps(cmd.Context(), &o.Options, o.All)
		},
	}
	cmd.Flags().BoolVarP(&o.All, "all", "a", true, "include stopped containers")
	return cmd
}

// Ps lists containers.
func Ps(ctx context.Context, o *Options, all bool) error {
	recovery.Report(o.IO.ErrOut, o.JSON, o.Dir, o.Project) // an interrupted restore, not settled yet
	cli, err := o.Engine(ctx)
	if err != nil {
		return err
	}
	defer cli.Close()
	cs, err := compose.List(ctx, cli, o.Project, all)
	if err != nil {
		return err
	}
	if cs, err = compose.Select(cs, o.Services); err != nil {
		return cmdutil.WithExitCode(cmdutil.ExitFailure, err)
	}
	if o.JSON {
		if cs == nil {
			cs = []compose.ProjectContainer{}
		}
		return cmdutil.WriteJSON(o.IO.Out, cs)
	}
	if len(cs) == 0 {
		fmt.Fprintf(o.IO.ErrOut, "project %s has no containers; \"difyctl up\" creates them\n", o.Project)
		return nil
	}
	w := tabwriter.NewWriter(o.IO.Out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "SERVICE\tCONTAINER\tSTATE\tHEALTH\tPORTS\tUPTIME\tSTATUS")
	dash := func(s string) string {
		if s == "" {
			return "-"
		}
		return s
	}
	for _, c := range cs {
		esc := termsafe.String // names and status come from the engine: no escape sequence reaches the terminal
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", esc(c.Service), esc(c.Name), esc(c.State), dash(esc(c.Health)), dash(strings.Join(c.Ports, ",")), dash(c.Uptime), esc(c.Status))
	}
	if err := w.Flush(); err != nil {
		return err
	}
	recorded := ""
	if r, err := release.Read(o.Dir); err == nil && r != nil {
		recorded = r.Release
	}
	fmt.Fprintln(o.IO.Out, termsafe.String(catalog.RunningRelease(cs, recorded)))
	return nil
}

// LogsOptions for logs.
type LogsOptions struct {
	Options
	Logs compose.LogsOptions
}

// NewCmdLogs returns logs; runF, when not nil, runs instead of Logs.
func NewCmdLogs(f *cmdutil.Factory, runF func(context.Context, *LogsOptions) error) *cobra.Command {
	o := &LogsOptions{}
	lo := &o.Logs
	cmd := &cobra.Command{
		Use:   "logs [-f] [--tail N] [--since T] [SERVICE...]",
		Short: "Print the services' logs, each line prefixed with its service",
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkSince(lo.Since); err != nil {
				return err
			}
			if err := common(f, args, &o.Options); err != nil {
				return err
			}
			lo.Escape = o.IO.IsStdoutTTY() // raw when piped
			lo.JSON = o.JSON
			if runF != nil {
				return runF(cmd.Context(), o)
			}
			return Logs(cmd.Context(), o)
		},
	}
	cmd.Flags().BoolVarP(&lo.Follow, "follow", "f", false, "keep printing new lines")
	cmd.Flags().StringVarP(&lo.Tail, "tail", "n", "all", "lines from the end of each log")
	cmd.Flags().StringVar(&lo.Since, "since", "", "only lines since this time (RFC 3339) or duration ago (10m)")
	return cmd
}

// Logs prints the selected services' logs.
func Logs(ctx context.Context, o *LogsOptions) error {
	cli, err := o.Engine(ctx)
	if err != nil {
		return err
	}
	defer cli.Close()
	cs, err := compose.List(ctx, cli, o.Project, true)
	if err != nil {
		return err
	}
	if cs, err = compose.Select(cs, o.Services); err != nil {
		return cmdutil.WithExitCode(cmdutil.ExitFailure, err)
	}
	return compose.Logs(ctx, cli, cs, o.Logs, o.IO.Out)
}

// sinceLayouts are the absolute times --since takes (as docker logs).
var sinceLayouts = []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02T15:04", "2006-01-02"}

// checkSince refuses a --since value the engine cannot read (exit 2): a
// duration (10m), a time in one of sinceLayouts, or a Unix timestamp.
func checkSince(v string) error {
	if v == "" {
		return nil
	}
	if _, err := time.ParseDuration(v); err == nil {
		return nil
	}
	if _, err := strconv.ParseFloat(v, 64); err == nil {
		return nil
	}
	for _, l := range sinceLayouts {
		if _, err := time.Parse(l, v); err == nil {
			return nil
		}
	}
	return cmdutil.UsageError("--since %q is neither a duration (10m, 2h), a time (2026-01-02T15:04:05Z, 2026-01-02) nor a Unix timestamp", v)
}

func selectRunning(ctx context.Context, o *Options) (engine.Engine, []compose.ProjectContainer, error) {
	cli, err := o.Engine(ctx)
	if err != nil {
		return nil, nil, err
	}
	cs, err := compose.List(ctx, cli, o.Project, true)
	if err == nil {
		cs, err = compose.Select(cs, o.Services)
	}
	if err != nil {
		cli.Close()
		return nil, nil, cmdutil.WithExitCode(cmdutil.ExitFailure, err)
	}
	if len(cs) == 0 {
		cli.Close()
		return nil, nil, cmdutil.WithExitCode(cmdutil.ExitFailure, fmt.Errorf("project %s has no containers; run \"difyctl up\"", o.Project))
	}
	return cli, cs, nil
}

// VerbOptions for stop, start and restart.
type VerbOptions struct {
	Options
	Verb        string         // "stop", "start" or "restart"
	Timeout     *time.Duration // nil: each container's own stop_grace_period
	WaitTimeout time.Duration  // start, restart: bound on the depends_on gating (0: none)
	// ProbeInterval as compose.StartOptions.ProbeInterval (start, restart).
	ProbeInterval time.Duration
}

// verb builds stop, start and restart: select the project's containers,
// then act on them with progress.
// Verbs that start (start, restart) gate on depends_on conditions, bounded
// by --wait-timeout.
func verb(f *cmdutil.Factory, use, short string, withTimeout, starts bool, runF func(context.Context, *VerbOptions) error) *cobra.Command {
	o := &VerbOptions{}
	var timeout, probeEvery time.Duration
	cmd := &cobra.Command{
		Use:   use,
		Short: short,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := common(f, args, &o.Options); err != nil {
				return err
			}
			o.Verb, o.Timeout = cmd.Name(), stopTimeout(cmd, timeout)
			o.ProbeInterval = health.ProbeIntervalOption(probeEvery)
			if runF != nil {
				return runF(cmd.Context(), o)
			}
			return Act(cmd.Context(), o)
		},
	}
	if withTimeout {
		addStopTimeout(cmd, &timeout)
	}
	if starts {
		cmd.Flags().DurationVar(&o.WaitTimeout, "wait-timeout", 10*time.Minute, "give up waiting for dependencies to be healthy or complete after this long")
		cmd.Flags().DurationVar(&probeEvery, "probe-interval", health.DefaultProbeInterval, health.ProbeIntervalUsage)
	}
	cmd.Flags().StringVar(&o.Progress, "progress", progress.Auto, progress.Usage)
	return cmd
}

// Act runs stop, start or restart (o.Verb) on the selected containers under
// the project's lock, with progress; a failure to start is diagnosed below
// the progress.
func Act(ctx context.Context, o *VerbOptions) error {
	act, starts := verbs[o.Verb], o.Verb != "stop"
	if act == nil {
		return fmt.Errorf("no verb %q", o.Verb)
	}
	unlock, err := o.lock()
	if err != nil {
		return err
	}
	defer unlock()
	cli, cs, err := selectRunning(ctx, &o.Options)
	if err != nil {
		return err
	}
	defer cli.Close()
	if starts { // an interrupted restore is settled first (internal/journal)
		if _, err := recovery.Settle(ctx, cli, recovery.Options{Out: o.IO.ErrOut, JSON: o.JSON, ProcEnv: cmdutil.ProcEnv{Getenv: o.Getenv, Environ: o.Environ}}, o.Dir, o.Project); err != nil {
			return err
		}
	}
	pw, err := o.reporter()
	if err != nil {
		return cmdutil.WithExitCode(cmdutil.ExitUsage, err)
	}
	if starts && o.WaitTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, o.WaitTimeout)
		defer cancel()
	}
	err = act(ctx, cli, cs, o, pw.Event)
	pw.Close() // the diagnosis goes below the progress, not into it
	if err != nil {
		var fe *compose.FailedError
		if errors.As(err, &fe) {
			fe.Diagnose(o.IO.ErrOut)
			if fe.Err != nil {
				err = fe.Err
			}
		}
		err = cmdutil.WithExitCode(cmdutil.ExitFailure, err)
	}
	return progress.Finish(pw, err, "project "+o.Project+" "+o.Verb)
}

// verbs are what stop, start and restart do to the selected containers.
var verbs = map[string]func(ctx context.Context, cli engine.Engine, cs []compose.ProjectContainer, o *VerbOptions, report compose.Reporter) error{
	"stop": func(ctx context.Context, cli engine.Engine, cs []compose.ProjectContainer, o *VerbOptions, report compose.Reporter) error {
		return compose.Stop(ctx, cli, cs, o.Timeout, report)
	},
	"start": func(ctx context.Context, cli engine.Engine, cs []compose.ProjectContainer, o *VerbOptions, report compose.Reporter) error {
		return compose.StartWith(ctx, cli, cs, report, compose.StartOptions{ProbeInterval: o.ProbeInterval})
	},
	"restart": func(ctx context.Context, cli engine.Engine, cs []compose.ProjectContainer, o *VerbOptions, report compose.Reporter) error {
		if err := compose.Stop(ctx, cli, cs, o.Timeout, report); err != nil {
			return err
		}
		return compose.StartWith(ctx, cli, cs, report, compose.StartOptions{ProbeInterval: o.ProbeInterval})
	},
}

// NewCmdStop returns stop; runF, when not nil, runs instead of Act.
func NewCmdStop(f *cmdutil.Factory, runF func(context.Context, *VerbOptions) error) *cobra.Command {
	return verb(f, "stop [SERVICE...]", "Stop services, dependents first", true, false, runF)
}

// NewCmdStart returns start; runF, when not nil, runs instead of Act.
func NewCmdStart(f *cmdutil.Factory, runF func(context.Context, *VerbOptions) error) *cobra.Command {
	return verb(f, "start [SERVICE...]", "Start existing containers, each once its depends_on conditions hold", false, true, runF)
}

// NewCmdRestart returns restart; runF, when not nil, runs instead of Act.
func NewCmdRestart(f *cmdutil.Factory, runF func(context.Context, *VerbOptions) error) *cobra.Command {
	return verb(f, "restart [SERVICE...]", "Stop (dependents first), then start, each once its depends_on conditions hold", true, true, runF)
}

// addStopTimeout adds --timeout: how long each container may take to stop.
func addStopTimeout(cmd *cobra.Command, timeout *time.Duration) {
	cmd.Flags().DurationVarP(timeout, "timeout", "t", 0, "how long each container may take to stop before it is killed (default: its stop_grace_period, 10s when it has none)")
}

// stopTimeout is --timeout when given, nil (each container's own) when not.
func stopTimeout(cmd *cobra.Command, timeout time.Duration) *time.Duration {
	if !cmd.Flags().Changed("timeout") {
		return nil
	}
	return &timeout
}
