package pull

import (
	"context"
	"testing"

	"github.com/difyctl/difyctl/internal/cmdutil"
	"github.com/difyctl/difyctl/internal/iostreams"
)

func TestFlagsToOptions(t *testing.T) {
	io, _, _, _ := iostreams.Test()
	f := cmdutil.NewFactory()
	f.IOStreams = io
	f.ProjectDir, f.ProjectNameFlag = t.TempDir(), "p"
	var got *Options
	cmd := NewCmd(f, func(_ context.Context, o *Options) error { got = o; return nil })
	cmd.SetArgs([]string{"api", "web", "--progress", "plain"})
	if err := cmd.Execute(); err != nil {
		t.Fatal(err)
	}
	if got == nil || len(got.Services) != 2 || got.Services[1] != "web" || got.Progress != "plain" || got.Load.ProjectName != "p" || got.Load.ProjectDir != f.ProjectDir {
		t.Fatalf("options %+v", got)
	}
}
