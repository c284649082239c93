// Package completion implements `difyctl completion bash|zsh|fish`.
package completion

import (
	"context"
	"io"

	"github.com/spf13/cobra"

	"github.com/difyctl/difyctl/internal/cmdutil"
)

// Options for completion.
type Options struct {
	Out   io.Writer
	Shell string
	Root  *cobra.Command // the command tree to complete
}

// NewCmd returns the completion command; runF, when not nil, runs instead
// of Run (tests check the argument mapping through it).
func NewCmd(f *cmdutil.Factory, runF func(context.Context, *Options) error) *cobra.Command {
	return &cobra.Command{
		Use:   "completion bash|zsh|fish",
		Short: "Print a shell completion script",
		Long: `Print a completion script for the given shell.

  bash:  source <(difyctl completion bash)
         or: difyctl completion bash > /etc/bash_completion.d/difyctl
  zsh:   difyctl completion zsh > "${fpath[1]}/_difyctl"
  fish:  difyctl completion fish > ~/.config/fish/completions/difyctl.fish`,
		ValidArgs:             []string{"bash", "zsh", "fish"},
		Args:                  cmdutil.Args(cobra.MatchAll(cobra.ExactArgs(1), cobra.OnlyValidArgs)),
		DisableFlagsInUseLine: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			opts := &Options{Out: f.IOStreams.Out, Shell: args[0], Root: cmd.Root()}
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return Run(opts)
		},
	}
}

// Run prints the script for opts.Shell.
func Run(opts *Options) error {
	switch opts.Shell {
	case "bash":
		return opts.Root.GenBashCompletionV2(opts.Out, true)
	case "zsh":
		return opts.Root.GenZshCompletion(opts.Out)
	}
	return opts.Root.GenFishCompletion(opts.Out, true)
}
