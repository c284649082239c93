package lifecycle

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"

	"github.com/difyctl/difyctl/compose"
	"github.com/difyctl/difyctl/internal/cmdutil"
	"github.com/difyctl/difyctl/internal/engine"
	"github.com/difyctl/difyctl/internal/engine/enginefake"
	"github.com/difyctl/difyctl/internal/iostreams"
)

// running brings a two-service project "p" up on the fake engine and
// returns options acting on it.
func running(t *testing.T) (*enginefake.Engine, Options) {
	t.Helper()
	dir := t.TempDir()
	file := filepath.Join(dir, "compose.yaml")
	os.WriteFile(file, []byte("services:\n  db:\n    image: app:1\n  api:\n    image: app:1\n    depends_on: [db]\n"), 0o644)
	p, err := compose.Load(context.Background(), compose.LoadOptions{ProjectDir: dir, ProjectName: "p", Files: []string{file}})
	if err != nil {
		t.Fatal(err)
	}
	e := enginefake.New()
	e.AddImage("app:1", enginefake.Image{ID: "sha256:aaaa000000000001"})
	e.Behave("api", enginefake.Behaviour{Logs: "api says hello\n"})
	if _, err := compose.Up(context.Background(), e, compose.UpOptions{Project: p, Recreate: compose.RecreateDiverged, WaitTimeout: 5 * time.Second}); err != nil {
		t.Fatal(err)
	}
	io, _, _, _ := iostreams.Test()
	locks := t.TempDir()
	return e, Options{IO: io, Project: "p", Progress: "plain", Engine: func(context.Context) (engine.Engine, error) { return e, nil },
		Getenv: func(k string) string { return map[string]string{"DIFYCTL_LOCK_DIR": locks}[k] }}
}

func out(o Options) string    { return o.IO.Out.(interface{ String() string }).String() }
func errOut(o Options) string { return o.IO.ErrOut.(interface{ String() string }).String() }

func TestPsListsAndSelects(t *testing.T) {
	_, o := running(t)
	if err := Ps(context.Background(), &o, true); err != nil {
		t.Fatal(err)
	}
	if s := out(o); !strings.Contains(s, "SERVICE") || !strings.Contains(s, "p-api-1") || !strings.Contains(s, "p-db-1") {
		t.Fatalf("%q", s)
	}
	_, o = running(t)
	o.JSON, o.Services = true, []string{"db"}
	if err := Ps(context.Background(), &o, true); err != nil {
		t.Fatal(err)
	}
	var cs []compose.ProjectContainer
	if err := json.Unmarshal([]byte(out(o)), &cs); err != nil || len(cs) != 1 || cs[0].Service != "db" {
		t.Fatalf("%v %+v", err, cs)
	}
	o.Services = []string{"nope"}
	if err := Ps(context.Background(), &o, true); cmdutil.ExitCode(err) != cmdutil.ExitFailure {
		t.Fatalf("unknown service: %v", err)
	}
	o.Project, o.Services, o.JSON = "empty", nil, false
	if err := Ps(context.Background(), &o, true); err != nil || !strings.Contains(errOut(o), "project empty has no containers") {
		t.Fatalf("%v %q", err, errOut(o))
	}
}

func TestLogs(t *testing.T) {
	_, o := running(t)
	o.Services = []string{"api"}
	if err := Logs(context.Background(), &LogsOptions{Options: o, Logs: compose.LogsOptions{Tail: "all"}}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out(o), "api says hello") {
		t.Fatalf("%q", out(o))
	}
}

func TestStopStartRestart(t *testing.T) {
	e, o := running(t)
	if err := Act(context.Background(), &VerbOptions{Options: o, Verb: "stop"}); err != nil {
		t.Fatal(err)
	}
	for _, c := range e.Containers() {
		if c.Status != container.StateExited {
			t.Fatalf("%s %s after stop", c.Name, c.Status)
		}
	}
	if err := Act(context.Background(), &VerbOptions{Options: o, Verb: "start", WaitTimeout: 5 * time.Second}); err != nil {
		t.Fatal(err)
	}
	if err := Act(context.Background(), &VerbOptions{Options: o, Verb: "restart", WaitTimeout: 5 * time.Second}); err != nil {
		t.Fatal(err)
	}
	for _, c := range e.Containers() {
		if c.Status != container.StateRunning || c.StartCount != 3 {
			t.Fatalf("%s %s started %d times", c.Name, c.Status, c.StartCount)
		}
	}
	if !strings.Contains(errOut(o), "api                  started  p-api-1") {
		t.Fatalf("progress %q", errOut(o))
	}
	o.Project = "empty"
	if err := Act(context.Background(), &VerbOptions{Options: o, Verb: "start"}); cmdutil.ExitCode(err) != cmdutil.ExitFailure || !strings.Contains(err.Error(), "has no containers") {
		t.Fatalf("%v", err)
	}
}

func TestDownRemoves(t *testing.T) {
	e, o := running(t)
	if err := Down(context.Background(), &DownOptions{Options: o}); err != nil {
		t.Fatal(err)
	}
	if len(e.Containers()) != 0 {
		t.Fatalf("left %v", e.Containers())
	}
}
