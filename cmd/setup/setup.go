// Package setup implements `difyctl setup`, the interactive wizard.
package setup

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/spf13/cobra"

	"github.com/difyctl/difyctl/compose"
	"github.com/difyctl/difyctl/envgen"
	"github.com/difyctl/difyctl/internal/cmdutil"
	"github.com/difyctl/difyctl/internal/deploy"
	"github.com/difyctl/difyctl/internal/iostreams"
	"github.com/difyctl/difyctl/internal/netcheck"
	"github.com/difyctl/difyctl/internal/progress"
	"github.com/difyctl/difyctl/internal/project"
	"github.com/difyctl/difyctl/internal/recovery"
	"github.com/difyctl/difyctl/internal/release"
	"github.com/difyctl/difyctl/internal/wizard"
	"github.com/difyctl/difyctl/profiles"
	"github.com/difyctl/difyctl/templates"
)

// Options for setup.
type Options struct {
	IO         *iostreams.IOStreams
	ProjectDir string
	Existing   *envgen.Doc // the project's .env as read; nil: it has none
	Accessible bool
	Release    string // --release: the catalogue release a new deployment gets ("": the newest)
	Getenv     func(string) string
	StartUp    func(ctx context.Context) error // runs up after the wizard
	// Program runs the full-screen model (tests replace it); nil: bubbletea
	// on IO.
	Program func(ctx context.Context, m tea.Model) error
}

// NewCmd returns the setup command; runF, when not nil, runs instead of Run
// (tests check the flag mapping through it).
func NewCmd(f *cmdutil.Factory, runF func(context.Context, *Options) error) *cobra.Command {
	opts := &Options{IO: f.IOStreams, Getenv: f.Getenv}
	cmd := &cobra.Command{
		Use:   "setup [--release VERSION] [--accessible]",
		Short: "Interactive wizard: database, vector store, access, secrets, review, write, start",
		Long: `Walk through a first Dify deployment, or edit the .env of one: the metadata
database, the vector store, the public URL and ports, the secrets (kept unless
replaced; reveal or replace them), a review of every .env change and of its
validation, then write .env (atomic, 0600, a copy of the previous one kept)
and optionally start Dify. A new deployment chooses its Dify release (the
newest preselected, or --release; see difyctl releases) and gets that
release's .env, support files and release record, as init --release writes
them; an existing deployment keeps its release (difyctl upgrade changes it). Every choice has a flag on init / up / env set, so
nothing needs the wizard. --accessible (or ACCESSIBLE=1, or TERM=dumb) asks
plain questions without redrawing the screen.

Exit status: 0 when .env was written, 1 when nothing was written (q, a
refusal, a failure), 130 on ctrl+c.`,
		Args: cmdutil.Args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			dir, _, err := f.Project()
			if err != nil {
				return err
			}
			if opts.Existing, err = f.Env(); err != nil {
				return err
			}
			opts.ProjectDir = dir
			opts.StartUp = func(ctx context.Context) error { return startUp(ctx, f) }
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return Run(cmd.Context(), opts)
		},
	}
	cmd.Flags().BoolVar(&opts.Accessible, "accessible", false, "plain prompts, no screen redraws (also ACCESSIBLE=1 or TERM=dumb)")
	cmd.Flags().StringVar(&opts.Release, "release", "", "the Dify release to preselect for a new deployment (default: the newest; see `difyctl releases`)")
	_ = cmd.RegisterFlagCompletionFunc("release", func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
		return templates.Versions(), cobra.ShellCompDirectiveNoFileComp
	})
	return cmd
}

// startUp runs up on the .env the wizard wrote, as "difyctl up" would with
// a longer wait.
func startUp(ctx context.Context, f *cmdutil.Factory) error {
	f.Reload() // the wizard wrote .env
	lo, err := deploy.LoadOptions(f, nil)
	if err != nil {
		return err
	}
	env, err := f.Env()
	if err != nil {
		return err
	}
	return deploy.Up(ctx, &deploy.UpOptions{Settle: recovery.Hook(recovery.Options{Out: f.IOStreams.ErrOut, ProcEnv: f.ProcEnv()}), IO: f.IOStreams, Load: lo, Env: env, Embedded: true, WaitTimeout: 15 * time.Minute,
		Progress: progress.Auto, Recreate: compose.RecreateDiverged, Engine: f.Engine, Now: time.Now, Getenv: f.Getenv})
}

// Env gathers what the wizard needs from the project directory and its
// .env as read (nil: none). version is --release ("": the newest): a
// release of the catalogue, and for a project that already deploys one,
// that one (setup never changes a deployment's release).
func Env(dir string, existing *envgen.Doc, version string) (wizard.Env, error) {
	path := filepath.Join(dir, project.EnvFile)
	env := wizard.Env{Path: path, Existing: existing}
	env.PortInUse = func(p int) bool { used, err := netcheck.PortInUse(p); return err == nil && used }
	env.DataIn = func(rel string) bool { return hasData(filepath.Join(dir, filepath.FromSlash(rel))) }
	rel := templates.Latest()
	if version != "" {
		r, err := templates.Lookup(version)
		if err != nil {
			return env, cmdutil.WithExitCode(cmdutil.ExitUsage, fmt.Errorf("setup --release: %w", err))
		}
		rel = r
	}
	// The release the project deploys, as ps and up read it: the record,
	// else (with a .env) the newest.
	rec, err := release.Read(dir)
	if err != nil {
		return env, cmdutil.WithExitCode(cmdutil.ExitUsage, err)
	}
	if rec != nil || existing != nil {
		deployed, err := release.Of(dir)
		if err != nil {
			return env, cmdutil.WithExitCode(cmdutil.ExitUsage, err)
		}
		env.Deployed, env.DeployedFrom = deployed.Version, "recorded in "+release.FileName
		if rec == nil {
			env.DeployedFrom = "no " + release.FileName + ": the newest, as up loads it"
		}
		if version != "" && rel != deployed {
			return env, cmdutil.UsageError("setup --release %s: this project deploys Dify %s (%s); setup does not change a deployment's release: run `difyctl upgrade --to %s` (see `difyctl releases`), or drop --release", version, deployed.Version, env.DeployedFrom, rel.Version)
		}
		rel = deployed
	}
	env.Release = rel.Version
	sel, _ := profiles.Select(nil, false)
	gen, err := envgen.Generate(envgen.SchemaFor(rel), sel, rand.Reader, time.Now())
	if err != nil {
		return env, err
	}
	env.Generated = gen
	return env, nil
}

// hasData reports whether dir exists and holds anything (a data directory a
// service has initialised).
func hasData(dir string) bool {
	f, err := os.Open(dir)
	if err != nil {
		return false
	}
	defer f.Close()
	_, err = f.Readdirnames(1)
	return err == nil
}

// accessible reports whether to use plain prompts: asked for, or a terminal
// that cannot redraw.
func (opts *Options) accessible() bool {
	getenv := cmdutil.EnvOrNone(opts.Getenv)
	return opts.Accessible || getenv("ACCESSIBLE") != "" || getenv("TERM") == "dumb"
}

// Run runs the wizard.
func Run(ctx context.Context, opts *Options) error {
	env, err := Env(opts.ProjectDir, opts.Existing, opts.Release)
	if err != nil {
		return err
	}
	var res wizard.Result
	if opts.accessible() {
		res, err = wizard.Accessible(ctx, opts.IO.In, opts.IO.ErrOut, env)
		switch {
		case err != nil && ctx.Err() != nil:
			state := "nothing written"
			if res.Written {
				state = wizard.WrittenMessage(env.Path, res) + "; not started"
			}
			fmt.Fprintf(opts.IO.ErrOut, "setup: interrupted; %s\n", state)
			return cmdutil.SilentError(cmdutil.ExitInterrupted)
		case err != nil:
			return cmdutil.WithExitCode(cmdutil.ExitFailure, fmt.Errorf("setup: %w; nothing written", err))
		}
	} else {
		if !opts.IO.IsStdinTTY() || !opts.IO.IsStdoutTTY() {
			return cmdutil.UsageError("setup needs a terminal; without one, run: difyctl init --profile postgresql --profile weaviate (see difyctl profiles), then difyctl env set KEY=VALUE for the rest; or difyctl setup --accessible")
		}
		env.Color = opts.IO.ColorEnabled()
		m := wizard.New(env)
		run := opts.Program
		if run == nil {
			run = func(ctx context.Context, m tea.Model) error {
				_, err := tea.NewProgram(m, tea.WithInput(opts.IO.In), tea.WithOutput(opts.IO.Out), tea.WithContext(ctx)).Run()
				return err
			}
		}
		err := run(ctx, m)
		res = m.Result()
		if err != nil {
			return programError(opts.IO.ErrOut, env.Path, res, err)
		}
		switch {
		case res.Written && res.Interrupted:
			fmt.Fprintln(opts.IO.ErrOut, wizard.WrittenMessage(env.Path, res)+"; not started (interrupted)")
			return cmdutil.SilentError(cmdutil.ExitInterrupted)
		case res.Interrupted:
			fmt.Fprintln(opts.IO.ErrOut, "setup: interrupted; nothing written")
			return cmdutil.SilentError(cmdutil.ExitInterrupted)
		case !res.Written:
			fmt.Fprintln(opts.IO.ErrOut, "setup: quit; nothing written")
			return cmdutil.SilentError(cmdutil.ExitFailure)
		}
		fmt.Fprintln(opts.IO.ErrOut, wizard.WrittenMessage(env.Path, res))
	}
	if res.StartNow && opts.StartUp != nil {
		return opts.StartUp(ctx)
	}
	return nil
}

// programError reports how the program itself ended: a panic in the wizard
// is a bug, never a quiet exit (bubbletea has restored the terminal and
// printed the trace by then).
func programError(w io.Writer, path string, res wizard.Result, err error) error {
	state := "nothing written"
	if res.Written {
		state = wizard.WrittenMessage(path, res)
	}
	switch {
	case errors.Is(err, tea.ErrProgramPanic):
		return cmdutil.WithExitCode(cmdutil.ExitFailure, fmt.Errorf("setup: the wizard crashed; this is a bug in difyctl, please report it with the trace above (%s)", state))
	case errors.Is(err, tea.ErrInterrupted), errors.Is(err, context.Canceled), errors.Is(err, tea.ErrProgramKilled):
		fmt.Fprintf(w, "setup: interrupted; %s\n", state)
		return cmdutil.SilentError(cmdutil.ExitInterrupted)
	}
	return cmdutil.WithExitCode(cmdutil.ExitFailure, fmt.Errorf("setup: %w (%s)", err, state))
}
