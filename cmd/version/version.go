// Package version implements `difyctl version`.
package version

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/difyctl/difyctl/internal/buildinfo"
	"github.com/difyctl/difyctl/internal/cmdutil"
	"github.com/difyctl/difyctl/internal/dockerclient"
	"github.com/difyctl/difyctl/internal/iostreams"
	"github.com/difyctl/difyctl/internal/release"
	"github.com/difyctl/difyctl/templates"
)

// Options for the version command.
type Options struct {
	IO     *iostreams.IOStreams
	JSON   bool
	Build  buildinfo.Info
	Engine func(ctx context.Context) (dockerclient.EngineInfo, error) // nil: no engine lookup
	Dify   func() *DifyInfo                                           // nil: not reported
}

// DifyInfo is the Dify side: the releases this difyctl carries and the one
// the project directory records.
type DifyInfo struct {
	Catalogue []string `json:"catalogue"`
	Default   string   `json:"default"`
	Project   string   `json:"project,omitempty"`
	Release   string   `json:"release,omitempty"` // recorded in the project directory; "" : none
}

// difyInfo reads the catalogue and the project's record.
func difyInfo(dir, name string) *DifyInfo {
	d := &DifyInfo{Catalogue: templates.Versions(), Default: templates.DifyVersion(), Project: name}
	if rec, err := release.Read(dir); err == nil && rec != nil {
		d.Release = rec.Release
	}
	return d
}

// Report is what `version --output json` prints.
type Report struct {
	Client buildinfo.Info           `json:"client"`
	Engine *dockerclient.EngineInfo `json:"engine,omitempty"`
	// EngineError says why the engine is missing from the report.
	EngineError string    `json:"engineError,omitempty"`
	Dify        *DifyInfo `json:"dify,omitempty"`
}

// NewCmd returns the version command; runF, when not nil, runs instead of
// Run (tests check the flag mapping through it).
func NewCmd(f *cmdutil.Factory, runF func(context.Context, *Options) error) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print difyctl's version and the Docker engine's",
		Args:  cmdutil.Args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			opts := &Options{IO: f.IOStreams, JSON: f.JSON(), Build: buildinfo.Get()}
			opts.Dify = func() *DifyInfo {
				dir, name, err := f.Project()
				if err != nil {
					return &DifyInfo{Catalogue: templates.Versions(), Default: templates.DifyVersion()}
				}
				return difyInfo(dir, name)
			}
			opts.Engine = func(ctx context.Context) (dockerclient.EngineInfo, error) {
				cli, ep, err := f.Docker()
				if err != nil {
					return dockerclient.EngineInfo{}, err
				}
				defer cli.Close()
				return dockerclient.Probe(ctx, cli, ep, 5*time.Second)
			}
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return Run(cmd.Context(), opts)
		},
	}
}

// Run prints the report. With the engine unreachable the client's version is
// still printed and the command exits 3, as every command needing the engine.
func Run(ctx context.Context, opts *Options) error {
	rep, err := run(ctx, opts)
	if err != nil {
		return err
	}
	if rep.EngineError != "" {
		return cmdutil.WithExitCode(cmdutil.ExitEngine, errors.New("the Docker engine is unreachable (the client's version is printed above)"))
	}
	return nil
}

func run(ctx context.Context, opts *Options) (Report, error) {
	rep := Report{Client: opts.Build}
	if opts.Dify != nil {
		rep.Dify = opts.Dify()
	}
	if opts.Engine != nil {
		info, err := opts.Engine(ctx)
		if err != nil {
			rep.EngineError = err.Error()
		} else {
			rep.Engine = &info
		}
	}
	if opts.JSON {
		return rep, cmdutil.WriteJSON(opts.IO.Out, rep)
	}
	w := opts.IO.Out
	c := rep.Client
	fmt.Fprintf(w, "difyctl:\n  Version:     %s\n  Commit:      %s\n  Built:       %s\n  Go version:  %s\n  Platform:    %s\n",
		c.Version, c.Commit, c.Date, c.GoVersion, c.Platform)
	if d := rep.Dify; d != nil {
		rel := d.Release
		if rel == "" {
			rel = "none recorded (the newest, " + d.Default + ", is what init and up deploy)"
		}
		fmt.Fprintf(w, "Dify:\n  Catalogue:   %s (default %s)\n", strings.Join(d.Catalogue, ", "), d.Default)
		if d.Project != "" {
			fmt.Fprintf(w, "  Project:     %s\n  Release:     %s\n", d.Project, rel)
		}
	}
	if rep.Engine != nil {
		e := rep.Engine
		fmt.Fprintf(w, "Docker engine:\n  Version:     %s\n  API version: %s (minimum %s; difyctl uses %s)\n  OS/Arch:     %s/%s\n  Host:        %s\n",
			e.Version, e.APIVersion, e.MinAPIVersion, e.ClientAPI, e.OS, e.Arch, e.Host)
	} else if rep.EngineError != "" {
		fmt.Fprintf(w, "Docker engine:\n  unreachable: %s\n", rep.EngineError)
	}
	return rep, nil
}
