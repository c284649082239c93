package cmdutil

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/moby/moby/client"
	"github.com/spf13/cobra"

	"github.com/difyctl/difyctl/envgen"
	"github.com/difyctl/difyctl/internal/dockerclient"
	"github.com/difyctl/difyctl/internal/engine"
	"github.com/difyctl/difyctl/internal/iostreams"
	"github.com/difyctl/difyctl/internal/project"
	"github.com/difyctl/difyctl/internal/trust"
)

// Factory carries the global flags and the shared resources every command may
// ask for. The root command fills it; commands copy what they need into their
// own options struct. It is the only door to the process environment
// (Getenv, Environ): nothing below cmd reads it on its own.
type Factory struct {
	IOStreams *iostreams.IOStreams
	Getenv    func(string) string
	Environ   func() []string

	// Global flags.
	ProjectDir      string
	ProjectNameFlag string
	Output          string
	NoColor         bool
	Verbose         bool
	Files           []string // -f/--file: compose files instead of the embedded templates

	trustWarned bool
	loaded      *loadedProject // Project's answer, once the flags are parsed
}

// loadedProject is the project as resolved once per run: its directory, its
// name and its parsed .env.
type loadedProject struct {
	dir, name string
	env       *envgen.Doc // nil: the project has no .env
	envErr    error       // the .env exists and cannot be read
	err       error
}

// NewFactory returns a factory on the process's streams and environment.
func NewFactory() *Factory {
	return &Factory{IOStreams: iostreams.System(), Getenv: os.Getenv, Environ: os.Environ, Output: OutputText}
}

// Project resolves the project directory and name from the global flags.
// It is resolved once (the flags are parsed by then): the .env it reads for
// COMPOSE_PROJECT_NAME is the document Env returns.
func (f *Factory) Project() (dir, name string, err error) {
	p := f.load()
	return p.dir, p.name, p.err
}

// Env returns the project's parsed .env (read once, with ${VAR} resolved
// against the environment as docker compose resolves it); nil without an
// error when the project has none. An unreadable .env is an input-file
// error (exit 2) naming the file.
func (f *Factory) Env() (*envgen.Doc, error) {
	p := f.load()
	if p.err != nil {
		return nil, p.err
	}
	return p.env, p.envErr
}

// Reload forgets the resolved project, so that the next Project or Env reads
// the .env again: for a command that wrote it (setup, then up).
func (f *Factory) Reload() { f.loaded = nil }

// EnvMap is Env as a map (empty without a .env).
func (f *Factory) EnvMap() (map[string]string, error) {
	d, err := f.Env()
	if err != nil || d == nil {
		return map[string]string{}, err
	}
	return d.Map(), nil
}

func (f *Factory) load() *loadedProject {
	if f.loaded != nil {
		return f.loaded
	}
	p := &loadedProject{}
	f.loaded = p
	dir, err := project.ResolveDir(f.ProjectDir)
	if err != nil {
		p.err = WithExitCode(ExitUsage, err)
		return p
	}
	if err := f.trustProject(dir); err != nil {
		p.err = err
		return p
	}
	p.dir = dir
	lookup := LookupIn(f.environ())
	read := func(path string) (*envgen.Doc, error) {
		d, err := envgen.ReadFileWithLookup(path, lookup)
		p.env, p.envErr = d, err
		if errors.Is(err, fs.ErrNotExist) {
			if _, lerr := os.Lstat(path); errors.Is(lerr, fs.ErrNotExist) {
				p.envErr = nil // no .env (a dangling link is an error)
			}
		}
		return d, err
	}
	if p.name, _, err = project.ResolveNameWith(dir, f.ProjectNameFlag, f.Getenv, read); err != nil {
		p.err = WithExitCode(ExitUsage, err)
		return p
	}
	if p.env == nil && p.envErr == nil { // the name came from the flag or the environment
		_, _ = read(filepath.Join(dir, project.EnvFile))
	}
	return p
}

// Environment is the process environment as the factory sees it
// (Environ; the process's own when unset).
func (f *Factory) Environment() []string { return f.environ() }

func (f *Factory) environ() []string {
	if f.Environ == nil {
		return os.Environ()
	}
	return f.Environ()
}

// LookupIn looks names up in an environ list (later entries win).
func LookupIn(environ []string) func(string) (string, bool) {
	m := make(map[string]string, len(environ))
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok {
			m[k] = v
		}
	}
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
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
func (f *Factory) Engine(ctx context.Context) (engine.Engine, error) {
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
