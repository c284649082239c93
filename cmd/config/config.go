// Package config implements `difyctl config`: the effective compose project.
package config

import (
	"bytes"
	"context"
	"os"

	"github.com/spf13/cobra"

	"github.com/difyctl/difyctl/compose"
	"github.com/difyctl/difyctl/envgen"
	"github.com/difyctl/difyctl/internal/cmdutil"
	"github.com/difyctl/difyctl/internal/iostreams"
	"github.com/difyctl/difyctl/profiles"
)

// Options for config.
type Options struct {
	IO          *iostreams.IOStreams
	Load        compose.LoadOptions
	ShowSecrets bool
}

// NewCmd returns the config command.
func NewCmd(f *cmdutil.Factory) *cobra.Command {
	opts := &Options{IO: f.IOStreams}
	var names []string
	cmd := &cobra.Command{
		Use:   "config [--profile P]... [--show-secrets]",
		Short: "Print the effective compose project (profiles applied, variables interpolated)",
		Long: `Print the compose project difyctl would run, loaded with compose-go as docker
compose loads it: the embedded templates (plus docker-compose.override.yaml in
the project directory) or the -f files, profiles applied, variables from .env
interpolated. Secrets are masked unless --show-secrets. The output is YAML that
"docker compose -f - config" accepts.`,
		Args: cmdutil.Args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			lo, err := LoadOptions(f, names)
			if err != nil {
				return err
			}
			opts.Load = lo
			return Run(cmd.Context(), opts)
		},
	}
	cmd.Flags().StringSliceVar(&names, "profile", nil, "profile to enable (repeatable); default: COMPOSE_PROFILES from .env")
	cmd.Flags().BoolVar(&opts.ShowSecrets, "show-secrets", false, "print secrets instead of MASKED")
	f.AddFileFlag(cmd)
	return cmd
}

// LoadOptions builds the loader's options from the global flags and
// --profile. With the embedded templates, --profile names are checked
// against the catalogue.
func LoadOptions(f *cmdutil.Factory, names []string) (compose.LoadOptions, error) {
	dir, name, err := f.Project()
	if err != nil {
		return compose.LoadOptions{}, err
	}
	lo := compose.LoadOptions{ProjectDir: dir, ProjectName: name, Files: f.Files, Environ: os.Environ()}
	if len(names) > 0 {
		if len(f.Files) == 0 {
			sel, err := profiles.Select(names, false)
			if err != nil {
				return lo, cmdutil.WithExitCode(cmdutil.ExitUsage, err)
			}
			lo.Profiles = sel.Names()
		} else {
			lo.Profiles = names
		}
	}
	return lo, nil
}

// Run prints the project.
func Run(ctx context.Context, opts *Options) error {
	p, err := compose.Load(ctx, opts.Load)
	if err != nil {
		return cmdutil.WithExitCode(cmdutil.ExitFailure, err)
	}
	// Optional dependencies on services whose profile is off are not part of
	// this project: drop them so the output loads on its own.
	for name, svc := range p.Services {
		for dep, d := range svc.DependsOn {
			if _, ok := p.Services[dep]; !ok && !d.Required {
				delete(svc.DependsOn, dep)
			}
		}
		p.Services[name] = svc
	}
	out, err := p.MarshalYAML()
	if err != nil {
		return err
	}
	// Values are final: escape $ so that loading the output again (docker
	// compose -f - config) does not interpolate it a second time.
	out = bytes.ReplaceAll(out, []byte("$"), []byte("$$"))
	if !opts.ShowSecrets {
		out = compose.Mask(out, secretValues(opts.Load))
	}
	_, err = opts.IO.Out.Write(out)
	return err
}

// secretValues returns the values of the secrets in the project's environment.
func secretValues(lo compose.LoadOptions) []string {
	env, err := compose.Environment(lo.ProjectDir, lo.Environ)
	if err != nil {
		return nil
	}
	var out []string
	for _, v := range envgen.DefaultSchema().Vars {
		if v.IsSecret() && env[v.Name] != "" {
			out = append(out, env[v.Name])
		}
	}
	return out
}
