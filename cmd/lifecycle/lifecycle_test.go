package lifecycle

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/difyctl/difyctl/internal/cmdutil"
	"github.com/difyctl/difyctl/internal/iostreams"
)

// down --volumes asks first; without a terminal it needs --yes, and refuses
// before touching the engine.
func TestDownVolumesNeedsConfirmation(t *testing.T) {
	io, _, _, _ := iostreams.Test()
	o := &DownOptions{Options: Options{IO: io, Project: "p"}, Volumes: true}
	err := Down(context.Background(), o)
	if cmdutil.ExitCode(err) != cmdutil.ExitUsage || !strings.Contains(err.Error(), "--yes") {
		t.Fatalf("err %v", err)
	}
	in, _, _, errOut := iostreams.Test()
	in.SetTTY(true, false, false)
	in.In = strings.NewReader("n\n")
	o.IO = in
	if err := Down(context.Background(), o); cmdutil.ExitCode(err) != cmdutil.ExitFailure || !strings.Contains(errOut.String(), "Remove the named volumes of project p") {
		t.Fatalf("declined: %v %q", err, errOut.String())
	}
}

// --timeout is each container's own stop_grace_period unless given.
func TestStopTimeoutFlag(t *testing.T) {
	f := cmdutil.NewFactory()
	cmd := NewCmdStop(f, nil)
	var timeout time.Duration
	if stopTimeout(cmd, timeout) != nil {
		t.Fatal("no --timeout must leave each container's own")
	}
	if err := cmd.Flags().Set("timeout", "3s"); err != nil {
		t.Fatal(err)
	}
	d, _ := cmd.Flags().GetDuration("timeout")
	if got := stopTimeout(cmd, d); got == nil || *got != 3*time.Second {
		t.Fatalf("got %v", got)
	}
}

func TestCheckSince(t *testing.T) {
	for _, ok := range []string{"", "10m", "2h30m", "2026-01-02", "2026-01-02T15:04:05Z", "2026-01-02T15:04:05", "1767366245", "1767366245.5"} {
		if err := checkSince(ok); err != nil {
			t.Errorf("%q refused: %v", ok, err)
		}
	}
	for _, bad := range []string{"garbage", "10 minutes", "2026-13-45"} {
		if err := checkSince(bad); cmdutil.ExitCode(err) != cmdutil.ExitUsage {
			t.Errorf("%q: want exit 2, got %v", bad, err)
		}
	}
}
