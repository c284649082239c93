// Package initcmd implements `difyctl init`: write a .env for the chosen
// profiles with fresh secrets.
package initcmd

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/difyctl/difyctl/internal/cmdutil"
	"github.com/difyctl/difyctl/internal/deploy"
	"github.com/difyctl/difyctl/internal/iostreams"
	"github.com/difyctl/difyctl/templates"
)

// Options for init.
type Options struct {
	IO         *iostreams.IOStreams
	JSON       bool
	ProjectDir string
	Project    string // the resolved project name, recorded in .env
	Profiles   []string
	Release    string // the catalogue release to deploy; "": the newest
	Force      bool
	Now        func() time.Time
}

// Result is what init did.
type Result = deploy.Result

// NewCmd returns the init command; runF, when not nil, runs instead of Run
// (tests check the flag mapping through it).
func NewCmd(f *cmdutil.Factory, runF func(context.Context, *Options) error) *cobra.Command {
	opts := &Options{IO: f.IOStreams, Now: time.Now}
	cmd := &cobra.Command{
		Use:   "init [--profile P]... [--force]",
		Short: "Write a .env for the chosen profiles, with fresh secrets",
		Long: `Write <project-dir>/.env (mode 0600, atomically) for one metadata database and
one vector store (default: postgresql + weaviate), with a fresh random value for
every secret upstream ships with a shared default, and every variable that must
agree with another set consistently. Refuses to overwrite an existing .env
without --force; with it, keeps a timestamped copy first.`,
		Args: cmdutil.Args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			dir, name, err := f.Project()
			if err != nil {
				return err
			}
			opts.ProjectDir, opts.Project, opts.JSON = dir, name, f.JSON()
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return Run(cmd.Context(), opts)
		},
	}
	cmd.Flags().StringSliceVar(&opts.Profiles, "profile", nil, "profile to enable (repeatable): one database, one vector store, extras")
	cmd.Flags().BoolVar(&opts.Force, "force", false, "overwrite an existing .env (a timestamped copy is kept)")
	cmd.Flags().StringVar(&opts.Release, "release", "", "the Dify release to deploy (default: the newest; see `difyctl releases`)")
	_ = cmd.RegisterFlagCompletionFunc("release", func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
		return templates.Versions(), cobra.ShellCompDirectiveNoFileComp
	})
	_ = cmd.RegisterFlagCompletionFunc("profile", cmdutil.ProfileCompletion)
	return cmd
}

// Run writes the .env.
func Run(_ context.Context, opts *Options) error {
	res, err := deploy.WriteRelease(opts.ProjectDir, opts.Project, opts.Release, opts.Profiles, opts.Force, opts.Now())
	if err != nil {
		return err
	}
	if opts.JSON {
		return cmdutil.WriteJSON(opts.IO.Out, res)
	}
	if res.Backup != "" {
		fmt.Fprintf(opts.IO.ErrOut, "kept the previous .env as %s\n", res.Backup)
	}
	fmt.Fprintf(opts.IO.Out, "wrote %s for Dify %s (%d variables; database %s, vector store %s, extras %s)\n",
		res.Path, res.Release, res.Vars, res.Profiles.Database, res.Profiles.Vector, strings.Join(res.Profiles.Extras, ", "))
	return nil
}

// Write writes the project's .env and support files (deploy.Write).
//
// Deprecated: call deploy.Write; kept for the tests of other commands.
func Write(dir string, names []string, force bool, now time.Time) (Result, error) {
	return deploy.Write(dir, names, force, now)
}
