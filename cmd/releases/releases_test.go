package releases

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/difyctl/difyctl/internal/cmdutil"
	"github.com/difyctl/difyctl/internal/iostreams"
)

func TestFlagsReachOptions(t *testing.T) {
	io, _, _, _ := iostreams.Test()
	f := &cmdutil.Factory{IOStreams: io, Output: "json"}
	var got *Options
	cmd := NewCmd(f, func(_ context.Context, o *Options) error { got = o; return nil })
	cmd.SetArgs([]string{"--from", "1.16.0", "--to", "1.15.0"})
	if err := cmd.Execute(); err != nil {
		t.Fatal(err)
	}
	if got.From != "1.16.0" || got.To != "1.15.0" || !got.JSON {
		t.Fatalf("options %+v", got)
	}
}

func TestRunText(t *testing.T) {
	io, _, out, _ := iostreams.Test()
	if err := Run(context.Background(), &Options{IO: io}); err != nil {
		t.Fatal(err)
	}
	s := out.String()
	for _, want := range []string{
		"1.15.0", "1.16.0  ", "(default for new deployments)", "1.15.0 -> 1.16.0:",
		"image     api             langgenius/dify-api:1.15.0 -> langgenius/dify-api:1.16.0",
		"+ service agent_backend", "ENABLE_AGENT_V2 -> NEXT_PUBLIC_ENABLE_AGENT_V2",
		"~ support files (1): volumes/sandbox/conf/config.yaml",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("output lacks %q:\n%s", want, s)
		}
	}
}

func TestRunJSONAndUnknownRelease(t *testing.T) {
	io, _, out, _ := iostreams.Test()
	if err := Run(context.Background(), &Options{IO: io, JSON: true, From: "1.16.0", To: "1.15.0"}); err != nil {
		t.Fatal(err)
	}
	var rep Report
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatal(err)
	}
	if len(rep.Changes) != 1 || rep.Changes[0].From != "1.16.0" || len(rep.Changes[0].ServicesRemoved) != 2 {
		t.Fatalf("changes %+v", rep.Changes)
	}
	err := Run(context.Background(), &Options{IO: io, From: "9.9.9"})
	if err == nil || cmdutil.ExitCode(err) != cmdutil.ExitUsage || !strings.Contains(err.Error(), "1.15.0, 1.16.0") {
		t.Fatalf("unknown release: %v", err)
	}
}
