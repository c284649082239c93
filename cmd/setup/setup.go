// Package setup implements `difyctl setup`, the interactive wizard.
package setup

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/spf13/cobra"

	"github.com/difyctl/difyctl/cmd/config"
	"github.com/difyctl/difyctl/cmd/up"
	"github.com/difyctl/difyctl/envgen"
	"github.com/difyctl/difyctl/internal/cmdutil"
	"github.com/difyctl/difyctl/internal/iostreams"
	"github.com/difyctl/difyctl/internal/netcheck"
	"github.com/difyctl/difyctl/internal/wizard"
	"github.com/difyctl/difyctl/profiles"
)

// Options for setup.
type Options struct {
	IO         *iostreams.IOStreams
	ProjectDir string
	Accessible bool
	StartUp    func(ctx context.Context) error // runs up after the wizard
}

// NewCmd returns the setup command.
func NewCmd(f *cmdutil.Factory) *cobra.Command {
	opts := &Options{IO: f.IOStreams}
	cmd := &cobra.Command{
		Use:   "setup [--accessible]",
		Short: "Interactive wizard: database, vector store, access, secrets, review, write, start",
		Long: `Walk through a first Dify deployment: the metadata database, the vector store,
the public URL and ports, the generated secrets (reveal or replace them), a
review of the .env changes and their validation, then write .env (atomic,
0600) and optionally start Dify. Every choice has a flag on init / up / env
set, so nothing needs the wizard. --accessible (or ACCESSIBLE=1) asks plain
questions without redrawing the screen.`,
		Args: cmdutil.Args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			dir, _, err := f.Project()
			if err != nil {
				return err
			}
			opts.ProjectDir = dir
			if f.Getenv("ACCESSIBLE") != "" {
				opts.Accessible = true
			}
			opts.StartUp = func(ctx context.Context) error {
				lo, err := config.LoadOptions(f, nil)
				if err != nil {
					return err
				}
				return up.Run(ctx, &up.Options{IO: f.IOStreams, Load: lo, Embedded: true, WaitTimeout: 15 * time.Minute,
					Progress: "auto", Recreate: "diverged", Engine: f.Engine, Now: time.Now, Getenv: os.Getenv})
			}
			return Run(cmd.Context(), opts)
		},
	}
	cmd.Flags().BoolVar(&opts.Accessible, "accessible", false, "plain prompts, no screen redraws (also ACCESSIBLE=1)")
	return cmd
}

// Env gathers what the wizard needs from the project directory.
func Env(dir string) (wizard.Env, error) {
	path := filepath.Join(dir, ".env")
	env := wizard.Env{Path: path, Validate: func(d *envgen.Doc) []envgen.Finding { return envgen.Validate(d, envgen.DefaultSchema()) }}
	env.PortInUse = func(p int) bool { used, err := netcheck.PortInUse(p); return err == nil && used }
	if d, err := envgen.ReadFile(path); err == nil {
		env.Existing = d
	} else if !errors.Is(err, fs.ErrNotExist) {
		return env, cmdutil.WithExitCode(cmdutil.ExitUsage, err)
	}
	sel, _ := profiles.Select(nil, false)
	gen, err := envgen.Generate(envgen.DefaultSchema(), sel, rand.Reader, time.Now())
	if err != nil {
		return env, err
	}
	env.Generated = gen
	return env, nil
}

// Run runs the wizard.
func Run(ctx context.Context, opts *Options) error {
	env, err := Env(opts.ProjectDir)
	if err != nil {
		return err
	}
	var a wizard.Answers
	if opts.Accessible {
		if a, err = wizard.Accessible(opts.IO.In, opts.IO.ErrOut, env); err != nil {
			return cmdutil.WithExitCode(cmdutil.ExitFailure, err)
		}
	} else {
		if !opts.IO.IsStdinTTY() || !opts.IO.IsStdoutTTY() {
			return cmdutil.UsageError("setup needs a terminal; without one, run: difyctl init --profile postgresql --profile weaviate (see difyctl profiles), then difyctl env set KEY=VALUE for the rest; or difyctl setup --accessible")
		}
		m := wizard.New(env, opts.IO.ColorEnabled())
		if _, err := tea.NewProgram(m, tea.WithInput(opts.IO.In), tea.WithOutput(opts.IO.Out), tea.WithContext(ctx)).Run(); err != nil && !errors.Is(err, tea.ErrProgramKilled) {
			return err
		}
		if m.Quit() || !m.Written() {
			fmt.Fprintln(opts.IO.ErrOut, "setup: quit; nothing written")
			return nil
		}
		a = m.Answers()
		fmt.Fprintf(opts.IO.ErrOut, "wrote %s\n", env.Path)
	}
	if a.StartNow && opts.StartUp != nil {
		return opts.StartUp(ctx)
	}
	return nil
}
