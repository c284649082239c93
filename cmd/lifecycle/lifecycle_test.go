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
	cmd := newStop(f)
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
