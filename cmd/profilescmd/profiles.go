// Package profilescmd implements `difyctl profiles`.
package profilescmd

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/difyctl/difyctl/internal/cmdutil"
	"github.com/difyctl/difyctl/internal/iostreams"
	"github.com/difyctl/difyctl/profiles"
)

// Options for profiles.
type Options struct {
	IO   *iostreams.IOStreams
	JSON bool
}

// NewCmd returns the profiles command; runF, when not nil, runs instead of
// Run (tests check the flag mapping through it).
func NewCmd(f *cmdutil.Factory, runF func(context.Context, *Options) error) *cobra.Command {
	return &cobra.Command{
		Use:   "profiles",
		Short: "List the database, vector-store and extra profiles",
		Args:  cmdutil.Args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			opts := &Options{IO: f.IOStreams, JSON: f.JSON()}
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return Run(opts)
		},
	}
}

// Run prints the catalogue.
func Run(opts *Options) error {
	if opts.JSON {
		return cmdutil.WriteJSON(opts.IO.Out, profiles.All())
	}
	w := tabwriter.NewWriter(opts.IO.Out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "NAME\tKIND\tSERVICES\tSETS\tDESCRIPTION")
	for _, p := range profiles.All() {
		name := p.Name
		if p.Name == profiles.DefaultDatabase || p.Name == profiles.DefaultVector || p.Default {
			name += " (default)"
		}
		var sets []string
		for k, v := range p.Vars {
			sets = append(sets, k+"="+v)
		}
		sort.Strings(sets)
		desc := p.Description
		if p.Resources != "" {
			desc += "; " + p.Resources
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", name, p.Kind, strings.Join(p.Services, ","), strings.Join(sets, " "), desc)
	}
	return w.Flush()
}
