// Package lifecycle implements down, ps, logs, stop, start and restart: the
// verbs that act on a project's containers by their compose labels, whoever
// created them.
package lifecycle

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/moby/moby/client"
	"github.com/spf13/cobra"

	"github.com/difyctl/difyctl/compose"
	"github.com/difyctl/difyctl/health"
	"github.com/difyctl/difyctl/internal/cmdutil"
	"github.com/difyctl/difyctl/internal/engine"
	"github.com/difyctl/difyctl/internal/iostreams"
	"github.com/difyctl/difyctl/internal/progress"
	"github.com/difyctl/difyctl/internal/project"
	"github.com/difyctl/difyctl/internal/termsafe"
)

// Options shared by the verbs.
type Options struct {
	IO       *iostreams.IOStreams
	JSON     bool
	Project  string
	Services []string
	Engine   func(context.Context) (*client.Client, error)
	Progress string
}

func common(f *cmdutil.Factory, args []string, o *Options) error {
	_, name, err := f.Project()
	if err != nil {
		return err
	}
	o.IO, o.JSON, o.Project, o.Services, o.Engine = f.IOStreams, f.JSON(), name, args, f.Engine
	return nil
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
	return []*cobra.Command{newDown(f), newPs(f), newLogs(f), newStop(f), newStart(f), newRestart(f)}
}

// DownOptions for down.
type DownOptions struct {
	Options
	Volumes bool
	Yes     bool
	Timeout *time.Duration // nil: each container's own stop_grace_period
}

func newDown(f *cmdutil.Factory) *cobra.Command {
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
		if !o.IO.IsStdinTTY() {
			return cmdutil.UsageError("--volumes deletes the project's data; pass --yes to confirm when not on a terminal")
		}
		fmt.Fprintf(o.IO.ErrOut, "Remove the named volumes of project %s, and their data? [y/N] ", o.Project)
		line, _ := bufio.NewReader(o.IO.In).ReadString('\n')
		if a := strings.ToLower(strings.TrimSpace(line)); a != "y" && a != "yes" {
			return cmdutil.WithExitCode(cmdutil.ExitFailure, fmt.Errorf("not confirmed; nothing removed"))
		}
	}
	unlock, err := project.Lock(os.Getenv, o.Project)
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

func newPs(f *cmdutil.Factory) *cobra.Command {
	o := &Options{}
	var all bool
	cmd := &cobra.Command{
		Use:   "ps [SERVICE...]",
		Short: "List the project's containers: service, container, state, health, ports, uptime",
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := common(f, args, o); err != nil {
				return err
			}
			return Ps(cmd.Context(), o, all)
		},
	}
	cmd.Flags().BoolVarP(&all, "all", "a", true, "include stopped containers")
	return cmd
}

// Ps lists containers.
func Ps(ctx context.Context, o *Options, all bool) error {
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
	return w.Flush()
}

func newLogs(f *cmdutil.Factory) *cobra.Command {
	o := &Options{}
	lo := compose.LogsOptions{}
	cmd := &cobra.Command{
		Use:   "logs [-f] [--tail N] [--since T] [SERVICE...]",
		Short: "Print the services' logs, each line prefixed with its service",
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkSince(lo.Since); err != nil {
				return err
			}
			if err := common(f, args, o); err != nil {
				return err
			}
			cli, err := o.Engine(cmd.Context())
			if err != nil {
				return err
			}
			defer cli.Close()
			cs, err := compose.List(cmd.Context(), cli, o.Project, true)
			if err != nil {
				return err
			}
			if cs, err = compose.Select(cs, o.Services); err != nil {
				return cmdutil.WithExitCode(cmdutil.ExitFailure, err)
			}
			lo.Escape = o.IO.IsStdoutTTY() // raw when piped
			lo.JSON = o.JSON
			return compose.Logs(cmd.Context(), cli, cs, lo, o.IO.Out)
		},
	}
	cmd.Flags().BoolVarP(&lo.Follow, "follow", "f", false, "keep printing new lines")
	cmd.Flags().StringVarP(&lo.Tail, "tail", "n", "all", "lines from the end of each log")
	cmd.Flags().StringVar(&lo.Since, "since", "", "only lines since this time (RFC 3339) or duration ago (10m)")
	return cmd
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

func selectRunning(ctx context.Context, o *Options) (*client.Client, []compose.ProjectContainer, error) {
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

// verb builds stop, start and restart: select the project's containers,
// then act on them with progress.
// Verbs that start (start, restart) gate on depends_on conditions, bounded
// by --wait-timeout.
func verb(f *cmdutil.Factory, use, short string, withTimeout, starts bool,
	act func(ctx context.Context, cli engine.Engine, cs []compose.ProjectContainer, timeout *time.Duration, report compose.Reporter) error) *cobra.Command {
	o := &Options{}
	var timeout, waitTimeout time.Duration
	cmd := &cobra.Command{
		Use:   use,
		Short: short,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := common(f, args, o); err != nil {
				return err
			}
			unlock, err := project.Lock(os.Getenv, o.Project)
			if err != nil {
				return err
			}
			defer unlock()
			cli, cs, err := selectRunning(cmd.Context(), o)
			if err != nil {
				return err
			}
			defer cli.Close()
			pw, err := o.reporter()
			if err != nil {
				return cmdutil.WithExitCode(cmdutil.ExitUsage, err)
			}
			ctx := cmd.Context()
			if starts && waitTimeout > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, waitTimeout)
				defer cancel()
			}
			err = act(ctx, cli, cs, stopTimeout(cmd, timeout), pw.Event)
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
			return progress.Finish(pw, err, "project "+o.Project+" "+cmd.Name())
		},
	}
	if withTimeout {
		addStopTimeout(cmd, &timeout)
	}
	if starts {
		cmd.Flags().DurationVar(&waitTimeout, "wait-timeout", 10*time.Minute, "give up waiting for dependencies to be healthy or complete after this long")
	}
	cmd.Flags().StringVar(&o.Progress, "progress", progress.Auto, progress.Usage)
	return cmd
}

func newStop(f *cmdutil.Factory) *cobra.Command {
	return verb(f, "stop [SERVICE...]", "Stop services, dependents first", true, false, compose.Stop)
}

func newStart(f *cmdutil.Factory) *cobra.Command {
	var every time.Duration
	cmd := verb(f, "start [SERVICE...]", "Start existing containers, each once its depends_on conditions hold", false, true,
		func(ctx context.Context, cli engine.Engine, cs []compose.ProjectContainer, _ *time.Duration, report compose.Reporter) error {
			return compose.StartWith(ctx, cli, cs, report, compose.StartOptions{ProbeInterval: health.ProbeIntervalOption(every)})
		})
	cmd.Flags().DurationVar(&every, "probe-interval", health.DefaultProbeInterval, health.ProbeIntervalUsage)
	return cmd
}

func newRestart(f *cmdutil.Factory) *cobra.Command {
	var every time.Duration
	cmd := verb(f, "restart [SERVICE...]", "Stop (dependents first), then start, each once its depends_on conditions hold", true, true,
		func(ctx context.Context, cli engine.Engine, cs []compose.ProjectContainer, timeout *time.Duration, report compose.Reporter) error {
			if err := compose.Stop(ctx, cli, cs, timeout, report); err != nil {
				return err
			}
			return compose.StartWith(ctx, cli, cs, report, compose.StartOptions{ProbeInterval: health.ProbeIntervalOption(every)})
		})
	cmd.Flags().DurationVar(&every, "probe-interval", health.DefaultProbeInterval, health.ProbeIntervalUsage)
	return cmd
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
