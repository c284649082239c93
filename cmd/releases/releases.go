// Package releases implements `difyctl releases`: the Dify releases this
// difyctl carries and what changes between them, computed from the
// embedded templates (internal/catalog).
package releases

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/difyctl/difyctl/internal/catalog"
	"github.com/difyctl/difyctl/internal/cmdutil"
	"github.com/difyctl/difyctl/internal/iostreams"
	"github.com/difyctl/difyctl/templates"
)

// Options for releases.
type Options struct {
	IO   *iostreams.IOStreams
	JSON bool
	From string // compare these two; both empty: every consecutive pair
	To   string
}

// Release is one entry of the list.
type Release struct {
	Version  string `json:"version"`
	Default  bool   `json:"default"`
	Services int    `json:"services"`
}

// Report is what `releases --output json` prints.
type Report struct {
	Releases []Release          `json:"releases"`
	Changes  []*catalog.Changes `json:"changes"`
}

// NewCmd returns the releases command; runF, when not nil, runs instead of
// Run.
func NewCmd(f *cmdutil.Factory, runF func(context.Context, *Options) error) *cobra.Command {
	o := &Options{}
	cmd := &cobra.Command{
		Use:   "releases [--from VERSION] [--to VERSION]",
		Short: "List the Dify releases difyctl can deploy and what changes between them",
		Long: `List the Dify releases embedded in this difyctl (the newest is what init
deploys; "init --release VERSION" deploys another), then what changes from
each to the next: images, services added or removed, variables added,
renamed or removed, defaults changed, and the support files that differ.
Everything is computed from the embedded templates. --from and --to compare
any two releases (either order).`,
		Args: cmdutil.Args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			o.IO, o.JSON = f.IOStreams, f.JSON()
			if runF != nil {
				return runF(cmd.Context(), o)
			}
			return Run(cmd.Context(), o)
		},
	}
	cmd.Flags().StringVar(&o.From, "from", "", "compare from this release (default: the oldest)")
	cmd.Flags().StringVar(&o.To, "to", "", "compare to this release (default: the newest)")
	return cmd
}

// Run lists the releases and their changes.
func Run(_ context.Context, o *Options) error {
	rep, err := Build(o.From, o.To)
	if err != nil {
		return err
	}
	if o.JSON {
		return cmdutil.WriteJSON(o.IO.Out, rep)
	}
	w := o.IO.Out
	fmt.Fprintln(w, "RELEASE   SERVICES")
	for _, r := range rep.Releases {
		mark := ""
		if r.Default {
			mark = "  (default for new deployments)"
		}
		fmt.Fprintf(w, "%-9s %d%s\n", r.Version, r.Services, mark)
	}
	for _, c := range rep.Changes {
		fmt.Fprintln(w)
		catalog.WriteText(w, c)
	}
	return nil
}

// Build computes the report: every release, and the changes between from
// and to (both empty: each consecutive pair).
func Build(from, to string) (*Report, error) {
	rep := &Report{}
	all := templates.Releases()
	for _, r := range all {
		svcs, err := catalog.Services(r)
		if err != nil {
			return nil, err
		}
		rep.Releases = append(rep.Releases, Release{Version: r.Version, Default: r == templates.Latest(), Services: len(svcs)})
	}
	if from == "" && to == "" {
		for i := 1; i < len(all); i++ {
			c, err := catalog.Diff(all[i-1], all[i])
			if err != nil {
				return nil, err
			}
			rep.Changes = append(rep.Changes, c)
		}
		return rep, nil
	}
	a, b := all[0], templates.Latest()
	var err error
	if from != "" {
		if a, err = templates.Lookup(from); err != nil {
			return nil, cmdutil.WithExitCode(cmdutil.ExitUsage, err)
		}
	}
	if to != "" {
		if b, err = templates.Lookup(to); err != nil {
			return nil, cmdutil.WithExitCode(cmdutil.ExitUsage, err)
		}
	}
	c, err := catalog.Diff(a, b)
	if err != nil {
		return nil, err
	}
	rep.Changes = append(rep.Changes, c)
	return rep, nil
}
