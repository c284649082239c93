package profilescmd

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/difyctl/difyctl/internal/cmdutil"
)

func TestFlagsToOptions(t *testing.T) {
	f, _, _ := cmdutil.NewTestFactory(t.TempDir(), nil)
	f.Output = cmdutil.OutputJSON
	var got *Options
	cmd := NewCmd(f, func(_ context.Context, o *Options) error { got = o; return nil })
	cmd.SetArgs(nil)
	if err := cmd.Execute(); err != nil || got == nil || !got.JSON || got.IO != f.IOStreams {
		t.Fatalf("%v %+v", err, got)
	}
}

func TestRun(t *testing.T) {
	f, out, _ := cmdutil.NewTestFactory(t.TempDir(), nil)
	if err := Run(&Options{IO: f.IOStreams}); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"NAME", "postgresql (default)", "weaviate (default)", "mysql", "DB_TYPE=mysql"} {
		if !strings.Contains(out.String(), want) {
			t.Fatalf("lacks %q:\n%s", want, out)
		}
	}
	out.Reset()
	if err := Run(&Options{IO: f.IOStreams, JSON: true}); err != nil {
		t.Fatal(err)
	}
	var all []map[string]any
	if err := json.Unmarshal(out.Bytes(), &all); err != nil || len(all) < 5 {
		t.Fatalf("%v %d", err, len(all))
	}
}
