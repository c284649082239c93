// Package completion implements `difyctl completion bash|zsh|fish`.
package completion

import (
	"github.com/spf13/cobra"

	"github.com/difyctl/difyctl/internal/cmdutil"
)

// NewCmd returns the completion command.
func NewCmd(f *cmdutil.Factory) *cobra.Command {
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
			out := f.IOStreams.Out
			root := cmd.Root()
			switch args[0] {
			case "bash":
				return root.GenBashCompletionV2(out, true)
			case "zsh":
				return root.GenZshCompletion(out)
			default:
				return root.GenFishCompletion(out, true)
			}
		},
	}
}
