package cmdutil

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/moby/moby/client"
	"github.com/spf13/cobra"

	"github.com/difyctl/difyctl/internal/dockerclient"
	"github.com/difyctl/difyctl/internal/iostreams"
	"github.com/difyctl/difyctl/internal/project"
	"github.com/difyctl/difyctl/internal/trust"
)

// Factory carries the global flags and the shared resources every command may
// ask for. The root command fills it; commands copy what they need into their
// own options struct.
type Factory struct {
	IOStreams *iostreams.IOStreams
	Getenv    func(string) string

	// Global flags.
	ProjectDir      string
	ProjectNameFlag string
	Output          string
	NoColor         bool
	Verbose         bool
	Files           []string // -f/--file: compose files instead of the embedded templates

	trustWarned bool
}

// NewFactory returns a factory on the process's streams and environment.
func NewFactory() *Factory {
	return &Factory{IOStreams: iostreams.System(), Getenv: os.Getenv, Output: OutputText}
}

// Project resolves the project directory and name from the global flags.
func (f *Factory) Project() (dir, name string, err error) {
	dir, err = project.ResolveDir(f.ProjectDir)
	if err != nil {
		return "", "", WithExitCode(ExitUsage, err)
	}
	if err := f.trustProject(dir); err != nil {
		return "", "", err
	}
	name, _, err = project.ResolveName(dir, f.ProjectNameFlag, f.Getenv)
	if err != nil {
		return "", "", WithExitCode(ExitUsage, err)
	}
	return dir, name, nil
}

// trustProject refuses, as root, a project others can write, and warns
// once about one owned by another user (internal/trust).
func (f *Factory) trustProject(dir string) error {
	warn, err := trust.Split(trust.Check(trust.ProjectPaths(dir, f.Files), os.Geteuid()))
	if err != nil {
		return WithExitCode(ExitFailure, err)
	}
	if !f.trustWarned && os.Geteuid() == 0 {
		f.trustWarned = true
		if len(warn) > 0 { // one line, however many paths
			more := ""
			if len(warn) > 1 {
				more = fmt.Sprintf(" (%d more path(s) alike; difyctl doctor lists them)", len(warn)-1)
			}
			fmt.Fprintf(f.IOStreams.ErrOut, "warning: %s%s\n", warn[0], more)
		}
	}
	return nil
}

// Docker opens an engine client (not yet connected: the first call negotiates).
func (f *Factory) Docker() (*client.Client, dockerclient.Endpoint, error) {
	cli, ep, err := dockerclient.New(f.Getenv)
	if err != nil {
		if h := dockerclient.Hint(err); h != "" {
			err = fmt.Errorf("%w; %s", err, h)
		}
		return nil, ep, WithExitCode(ExitEngine, err)
	}
	if ep.Warning != "" {
		fmt.Fprintln(f.IOStreams.ErrOut, ep.Warning)
	}
	return cli, ep, nil
}

// Engine opens a client and checks the engine answers (exit 3 otherwise).
func (f *Factory) Engine(ctx context.Context) (*client.Client, error) {
	cli, ep, err := f.Docker()
	if err != nil {
		return nil, err
	}
	if _, err := dockerclient.Probe(ctx, cli, ep, 10*time.Second); err != nil {
		cli.Close()
		return nil, WithExitCode(ExitEngine, fmt.Errorf("%w; %s", err, dockerclient.UnreachableHint))
	}
	return cli, nil
}

// AddFileFlag adds -f/--file to a command that loads the project (up,
// config). It is not global: logs uses -f for --follow, as docker compose.
// A relative path is resolved against the current directory when the flag
// is read, as docker compose resolves it (not against --project-dir).
func (f *Factory) AddFileFlag(cmd *cobra.Command) {
	cmd.Flags().VarP((*absPaths)(&f.Files), "file", "f", "compose file to use instead of the embedded Dify templates (repeatable; relative to the current directory)")
}

// absPaths is a repeatable flag of paths made absolute against the current
// directory.
type absPaths []string

func (a *absPaths) String() string { return "[" + strings.Join(*a, ",") + "]" }
func (a *absPaths) Type() string   { return "stringArray" }
func (a *absPaths) Set(v string) error {
	abs, err := filepath.Abs(v)
	if err != nil {
		return fmt.Errorf("-f %s: %w", v, err)
	}
	*a = append(*a, abs)
	return nil
}

// JSON reports whether --output json was asked for.
func (f *Factory) JSON() bool { return f.Output == OutputJSON }

// Debugf prints to stderr with -v.
func (f *Factory) Debugf(format string, a ...any) {
	if f.Verbose {
		fmt.Fprintf(f.IOStreams.ErrOut, "debug: "+format+"\n", a...)
	}
}
