package completion

import (
	"context"
	"strings"
	"testing"

	"github.com/spf13/cobra"

	"github.com/difyctl/difyctl/internal/cmdutil"
)

func TestArgsToOptions(t *testing.T) {
	f, out, _ := cmdutil.NewTestFactory(t.TempDir(), nil)
	root := &cobra.Command{Use: "difyctl"}
	var got *Options
	root.AddCommand(NewCmd(f, func(_ context.Context, o *Options) error { got = o; return nil }))
	root.SetArgs([]string{"completion", "zsh"})
	if err := root.Execute(); err != nil || got.Shell != "zsh" || got.Root != root || got.Out != f.IOStreams.Out {
		t.Fatalf("%v %+v", err, got)
	}
	if err := Run(got); err != nil || !strings.Contains(out.String(), "#compdef difyctl") {
		t.Fatalf("%v %q", err, out.String()[:min(80, out.Len())])
	}
}
