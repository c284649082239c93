// Package pull implements `difyctl pull`.
package pull

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/difyctl/difyctl/compose"
	"github.com/difyctl/difyctl/internal/cmdutil"
	"github.com/difyctl/difyctl/internal/engine"
	"github.com/difyctl/difyctl/internal/iostreams"
	"github.com/difyctl/difyctl/internal/progress"
)

// Options for pull.
type Options struct {
	IO       *iostreams.IOStreams
	JSON     bool
	Load     compose.LoadOptions
	Services []string
	Progress string
	Engine   func(context.Context) (engine.Engine, error)
	Getenv   func(string) string // where DOCKER_CONFIG and HOME come from
}

// NewCmd returns the pull command; runF, when not nil, runs instead of Run
// (tests check the flag mapping through it).
func NewCmd(f *cmdutil.Factory, runF func(context.Context, *Options) error) *cobra.Command {
	o := &Options{Getenv: f.Getenv}
	cmd := &cobra.Command{
		Use:   "pull [SERVICE...]",
		Short: "Pull the services' images (in parallel, with the docker CLI's credentials)",
		Long: `Pull every service's image, or the named services', whether present or not:
a tag such as nginx:latest may name a newer image now. "difyctl up" then
recreates the containers whose image changed. Credentials come from the
docker CLI's config.json and credential helpers, as for docker compose.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			dir, name, err := f.Project()
			if err != nil {
				return err
			}
			o.IO, o.JSON, o.Services = f.IOStreams, f.JSON(), args
			o.Load = compose.LoadOptions{ProjectDir: dir, ProjectName: name, Files: f.Files, Environ: f.Environment()}
			if env, err := f.EnvMap(); err == nil { // the factory's reading; an unreadable .env is Load's to report
				o.Load.DotEnv = env
			}
			o.Engine = func(ctx context.Context) (engine.Engine, error) { return f.Engine(ctx) }
			if runF != nil {
				return runF(cmd.Context(), o)
			}
			return Run(cmd.Context(), o)
		},
	}
	cmd.Flags().StringVar(&o.Progress, "progress", progress.Auto, progress.Usage)
	f.AddFileFlag(cmd)
	return cmd
}

// Run pulls.
func Run(ctx context.Context, o *Options) error {
	p, err := compose.Load(ctx, o.Load)
	if err != nil {
		return cmdutil.WithExitCode(cmdutil.ExitFailure, err)
	}
	cli, err := o.Engine(ctx)
	if err != nil {
		return err
	}
	defer cli.Close()
	pw, err := progress.New(o.Progress, o.IO.ErrOut, o.IO.IsStderrTTY(), o.IO.ColorEnabled())
	if err != nil {
		return cmdutil.WithExitCode(cmdutil.ExitUsage, err)
	}
	pulled, err := compose.Pull(ctx, cli, compose.PullOptions{Project: p, Services: o.Services, RegistryAuth: engine.RegistryAuth(o.Getenv), Report: pw.Event})
	pw.Close()
	if err != nil {
		return progress.Finish(pw, cmdutil.WithExitCode(cmdutil.ExitFailure, err), "")
	}
	if o.JSON {
		if err := cmdutil.WriteJSON(o.IO.Out, pulled); err != nil {
			return err
		}
	} else {
		for _, pi := range pulled {
			state := "up to date"
			if pi.Updated {
				state = "updated; \"difyctl up\" recreates its services on it"
			}
			fmt.Fprintf(o.IO.Out, "%s: %s (%v)\n", pi.Image, state, pi.Services)
		}
	}
	return progress.Finish(pw, nil, fmt.Sprintf("pulled %d image(s)", len(pulled)))
}
