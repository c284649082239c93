// Package config implements `difyctl config`: the effective compose project.
package config

import (
	"bytes"
	"context"

	"github.com/spf13/cobra"

	"github.com/difyctl/difyctl/compose"
	"github.com/difyctl/difyctl/envgen"
	"github.com/difyctl/difyctl/internal/cmdutil"
	"github.com/difyctl/difyctl/internal/deploy"
	"github.com/difyctl/difyctl/internal/iostreams"
)

// Options for config.
type Options struct {
	IO          *iostreams.IOStreams
	JSON        bool // compose's JSON form (docker compose config --format json)
	Load        compose.LoadOptions
	ShowSecrets bool
}

// NewCmd returns the config command; runF, when not nil, runs instead of
// Run (tests check the flag mapping through it).
func NewCmd(f *cmdutil.Factory, runF func(context.Context, *Options) error) *cobra.Command {
	opts := &Options{IO: f.IOStreams}
	var names []string
	cmd := &cobra.Command{
		Use:   "config [--profile P]... [--show-secrets]",
		Short: "Print the effective compose project (profiles applied, variables interpolated)",
		Long: `Print the compose project difyctl would run, loaded with compose-go as docker
compose loads it: the embedded templates (plus docker-compose.override.yaml in
the project directory) or the -f files, profiles applied, variables from .env
interpolated. Secrets are masked unless --show-secrets. The output is YAML that
"docker compose -f - config" accepts, or with --output json compose's JSON form
(as "docker compose config --format json").`,
		Args: cmdutil.Args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			lo, err := LoadOptions(f, names)
			if err != nil {
				return err
			}
			opts.Load, opts.JSON = lo, f.JSON()
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return Run(cmd.Context(), opts)
		},
	}
	cmd.Flags().StringSliceVar(&names, "profile", nil, "profile to enable (repeatable); default: COMPOSE_PROFILES from .env")
	cmd.Flags().BoolVar(&opts.ShowSecrets, "show-secrets", false, "print secrets instead of MASKED")
	f.AddFileFlag(cmd)
	return cmd
}

// LoadOptions builds the loader's options from the global flags and
// --profile (deploy.LoadOptions: the input files checked, the factory's .env).
func LoadOptions(f *cmdutil.Factory, names []string) (compose.LoadOptions, error) {
	return deploy.LoadOptions(f, names)
}

// CheckInputs checks the files a load reads (deploy.CheckInputs).
func CheckInputs(lo compose.LoadOptions) error { return deploy.CheckInputs(lo) }

// Run prints the project.
func Run(ctx context.Context, opts *Options) error {
	lo := opts.Load
	if err := CheckInputs(lo); err != nil {
		return err
	}
	if !opts.ShowSecrets {
		// Masking by structure: the project is loaded with every secret
		// variable set to MASKED, so each place that uses one shows MASKED
		// and no other text is touched.
		lo.Environ = append(append([]string(nil), lo.Environ...), maskedSecrets(lo)...)
	}
	p, err := compose.Load(ctx, lo)
	if err != nil {
		return cmdutil.WithExitCode(cmdutil.ExitFailure, err)
	}
	if !opts.ShowSecrets {
		// env_file entries are read by the loader itself: mask the entries
		// named after a secret variable.
		schema := envgen.DefaultSchema()
		for name, svc := range p.Services {
			for k, v := range svc.Environment {
				if sv, ok := schema.Lookup(k); ok && sv.IsSecret() && v != nil && *v != "" {
					masked := compose.MaskToken
					svc.Environment[k] = &masked
				}
			}
			p.Services[name] = svc
		}
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
	var out []byte
	if opts.JSON {
		out, err = p.MarshalJSON()
		out = append(out, '\n')
	} else {
		out, err = p.MarshalYAML()
	}
	if err != nil {
		return err
	}
	if out, err = withCreateHostPath(out, opts.JSON); err != nil {
		return err
	}
	if opts.JSON {
		out = append(bytes.TrimRight(out, "\n"), '\n')
	}
	// Values are final: escape $ so that loading the output again (docker
	// compose -f - config) does not interpolate it a second time, as docker
	// compose config does in both formats.
	out = bytes.ReplaceAll(out, []byte("$"), []byte("$$"))
	_, err = opts.IO.Out.Write(out)
	return err
}

// maskedSecrets returns NAME=MASKED for every secret variable the project's
// environment sets to a non-empty value.
func maskedSecrets(lo compose.LoadOptions) []string {
	env, err := lo.Environment()
	if err != nil {
		return nil
	}
	var out []string
	for _, v := range envgen.DefaultSchema().Vars {
		if v.IsSecret() && env[v.Name] != "" {
			out = append(out, v.Name+"="+compose.MaskToken)
		}
	}
	return out
}
