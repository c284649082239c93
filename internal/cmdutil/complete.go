package cmdutil

import (
	"github.com/spf13/cobra"

	"github.com/difyctl/difyctl/profiles"
)

// ProfileCompletion completes --profile values from the catalogue.
func ProfileCompletion(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
	var out []string
	for _, p := range profiles.All() {
		out = append(out, p.Name+"\t"+p.Description)
	}
	return out, cobra.ShellCompDirectiveNoFileComp
}
