// Package initcmd implements `difyctl init`: write a .env for the chosen
// profiles with fresh secrets.
package initcmd

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/difyctl/difyctl/envgen"
	"github.com/difyctl/difyctl/internal/cmdutil"
	"github.com/difyctl/difyctl/internal/iostreams"
	"github.com/difyctl/difyctl/profiles"
	"github.com/difyctl/difyctl/templates"
)

// Options for init.
type Options struct {
	IO         *iostreams.IOStreams
	JSON       bool
	ProjectDir string
	Profiles   []string
	Force      bool
	Now        func() time.Time
}

// Result is what init did.
type Result struct {
	Path     string             `json:"path"`
	Backup   string             `json:"backup,omitempty"`
	Profiles profiles.Selection `json:"profiles"`
	Vars     int                `json:"vars"`
	// SupportFiles written beside it (nginx, ssrf_proxy, sandbox, ...), where missing.
	SupportFiles []string `json:"supportFiles,omitempty"`
}

// NewCmd returns the init command.
func NewCmd(f *cmdutil.Factory) *cobra.Command {
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
			dir, _, err := f.Project()
			if err != nil {
				return err
			}
			opts.ProjectDir, opts.JSON = dir, f.JSON()
			return Run(cmd.Context(), opts)
		},
	}
	cmd.Flags().StringSliceVar(&opts.Profiles, "profile", nil, "profile to enable (repeatable): one database, one vector store, extras")
	cmd.Flags().BoolVar(&opts.Force, "force", false, "overwrite an existing .env (a timestamped copy is kept)")
	_ = cmd.RegisterFlagCompletionFunc("profile", ProfileCompletion)
	return cmd
}

// ProfileCompletion completes --profile values from the catalogue.
func ProfileCompletion(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
	var out []string
	for _, p := range profiles.All() {
		out = append(out, p.Name+"\t"+p.Description)
	}
	return out, cobra.ShellCompDirectiveNoFileComp
}

// Run writes the .env.
func Run(_ context.Context, opts *Options) error {
	res, err := Write(opts.ProjectDir, opts.Profiles, opts.Force, opts.Now())
	if err != nil {
		return err
	}
	if opts.JSON {
		return cmdutil.WriteJSON(opts.IO.Out, res)
	}
	if res.Backup != "" {
		fmt.Fprintf(opts.IO.ErrOut, "kept the previous .env as %s\n", res.Backup)
	}
	fmt.Fprintf(opts.IO.Out, "wrote %s (%d variables; database %s, vector store %s, extras %s)\n",
		res.Path, res.Vars, res.Profiles.Database, res.Profiles.Vector, strings.Join(res.Profiles.Extras, ", "))
	return nil
}

// Write generates and writes the .env; up uses it for a project without one.
func Write(dir string, names []string, force bool, now time.Time) (Result, error) {
	sel, err := profiles.Select(names, false)
	if err != nil {
		return Result{}, cmdutil.WithExitCode(cmdutil.ExitUsage, err)
	}
	path := filepath.Join(dir, ".env")
	res := Result{Path: path, Profiles: sel}
	if _, err := os.Stat(path); err == nil {
		if !force {
			return res, cmdutil.WithExitCode(cmdutil.ExitUsage, fmt.Errorf("%s exists; pass --force to replace it (a timestamped copy is kept), or \"difyctl env upgrade\" to add what it lacks", path))
		}
		if res.Backup, err = envgen.Backup(path, now); err != nil {
			return res, fmt.Errorf("keeping a copy of %s: %w", path, err)
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return res, err
	}
	d, err := envgen.Generate(envgen.DefaultSchema(), sel, rand.Reader, now)
	if err != nil {
		return res, err
	}
	if err := envgen.WriteFile(path, d); err != nil {
		return res, err
	}
	res.Vars = len(d.Keys())
	if res.SupportFiles, err = templates.WriteSupportFiles(dir); err != nil {
		return res, fmt.Errorf("writing the configuration files the services mount: %w", err)
	}
	return res, nil
}
