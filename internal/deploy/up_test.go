package deploy

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/difyctl/difyctl/compose"
	"github.com/difyctl/difyctl/internal/cmdutil"
	"github.com/difyctl/difyctl/internal/engine"
	"github.com/difyctl/difyctl/internal/engine/enginefake"
	"github.com/difyctl/difyctl/internal/iostreams"
	"github.com/difyctl/difyctl/internal/progress"
)

// After a failure, the message says what changed and what was left.
func TestChangesNamesWhatChangedAndWhatNot(t *testing.T) {
	res := &compose.UpResult{Plan: []compose.PlanItem{
		{Service: "db", Outcome: compose.OutcomeRolledBack},
		{Service: "api", Outcome: compose.OutcomeNotReplaced},
		{Service: "cache", Outcome: compose.OutcomeReplaced},
		{Service: "web", Outcome: compose.OutcomeKept},
	}}
	got := changes(res)
	for _, want := range []string{"changed: cache replaced", "db not replaced: the replacement failed to start, the old container runs again", "api not replaced: the old container is left as it was", "every other container is left as it was"} {
		if !strings.Contains(got, want) {
			t.Fatalf("%q lacks %q", got, want)
		}
	}
	if changes(&compose.UpResult{}) != "nothing else was changed" {
		t.Fatal(changes(&compose.UpResult{}))
	}
}

// upOptions runs up on a one-service compose file against the fake engine.
func upOptions(t *testing.T, e *enginefake.Engine, tty bool) (*UpOptions, *bytes.Buffer, *bytes.Buffer) {
	t.Helper()
	dir := t.TempDir()
	file := filepath.Join(dir, "compose.yaml")
	if err := os.WriteFile(file, []byte("services:\n  app:\n    image: app:1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	io, _, out, errOut := iostreams.Test()
	io.SetTTY(tty, tty, tty)
	locks := t.TempDir()
	return &UpOptions{IO: io, Load: compose.LoadOptions{ProjectDir: dir, ProjectName: "p", Files: []string{file}},
		WaitTimeout: 5 * time.Second, Progress: progress.Auto, Recreate: compose.RecreateDiverged, Now: time.Now,
		Engine: func(context.Context) (engine.Engine, error) { return e, nil },
		Getenv: func(k string) string { return map[string]string{"DIFYCTL_LOCK_DIR": locks}[k] }}, out, errOut
}

// A dry run on a terminal prints its plan and leaves the terminal as it
// was: no live view, so no hidden cursor and no bracketed paste left on
// (found on the way in #12). It changes nothing.
func TestUpDryRunOnTerminalLeavesTheTerminalAlone(t *testing.T) {
	e := enginefake.New()
	e.AddImage("app:1", enginefake.Image{ID: "sha256:aaaa000000000001"})
	o, out, errOut := upOptions(t, e, true)
	o.DryRun = true
	if err := Up(context.Background(), o); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "app") || !strings.Contains(out.String(), "create") {
		t.Fatalf("plan %q", out.String())
	}
	if strings.Contains(out.String()+errOut.String(), "\x1b") {
		t.Fatalf("escape sequences on a dry run: %q %q", out.String(), errOut.String())
	}
	if len(e.Containers()) != 0 {
		t.Fatal("a dry run created a container")
	}
}

// Up converges and says so on stdout; progress goes to stderr.
func TestUpConverges(t *testing.T) {
	e := enginefake.New()
	e.AddImage("app:1", enginefake.Image{ID: "sha256:aaaa000000000001"})
	o, out, errOut := upOptions(t, e, false)
	o.Progress = progress.Plain
	if err := Up(context.Background(), o); err != nil {
		t.Fatalf("%v\n%s", err, errOut)
	}
	if !strings.Contains(out.String(), "project p: 1 service(s) up in") || strings.Contains(out.String(), "/install") {
		t.Fatalf("%q", out.String())
	}
	if len(e.Containers()) != 1 || errOut.Len() == 0 {
		t.Fatalf("containers %d, progress %q", len(e.Containers()), errOut.String())
	}
	// A service that cannot be created: exit 1, what changed is said.
	e.FailCreate("web", errors.New("no space left on device"))
	o, _, errOut = upOptions(t, e, false)
	os.WriteFile(o.Load.Files[0], []byte("services:\n  app:\n    image: app:1\n  web:\n    image: app:1\n"), 0o644)
	err := Up(context.Background(), o)
	if cmdutil.ExitCode(err) != cmdutil.ExitFailure || !strings.Contains(err.Error()+errOut.String(), "no space left on device") {
		t.Fatalf("%v\n%s", err, errOut)
	}
}
