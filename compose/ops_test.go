package compose

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"

	"github.com/difyctl/difyctl/internal/engine/enginefake"
)

const gated = `
services:
  db:
    image: app:1
    restart: always
    healthcheck: {test: ["CMD", "probe"]}
  api:
    image: app:1
    restart: always
    depends_on: {db: {condition: service_started}}
  worker:
    image: app:1
    restart: always
    depends_on: {db: {condition: service_healthy}}
`

// start gates edge by edge: api asks only for db started and starts while
// db is still starting; worker asks for healthy and waits.
func TestStartGatesPerEdge(t *testing.T) {
	e := fakeEngine()
	e.Behave("db", enginefake.Behaviour{Health: "healthy"})
	p := project(t, gated)
	if _, _, err := up(t, e, p); err != nil {
		t.Fatal(err)
	}
	cs, err := List(context.Background(), e, "p", true)
	if err != nil || len(cs) != 3 {
		t.Fatalf("list: %v %v", err, cs)
	}
	if err := Stop(context.Background(), e, cs, nil, nil); err != nil {
		t.Fatal(err)
	}
	e.Behave("db", enginefake.Behaviour{}) // stays "starting"
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	var ev events
	err = Start(ctx, e, cs, ev.report)
	var fe *FailedError
	if !errors.As(err, &fe) || len(fe.Failures) != 1 || fe.Failures[0].Service != "db" || !strings.Contains(fe.Failures[0].Reason, "timed out waiting for it to be healthy") {
		t.Fatalf("error: %v", err)
	}
	if !strings.Contains(errors.Unwrap(err).Error(), "p-worker-1: not started: dependency db failed") {
		t.Fatalf("wrapped: %v", errors.Unwrap(err))
	}
	if c := e.Container("p-api-1"); c.Status != container.StateRunning {
		t.Fatalf("api waited for db's health though it asks only for started: %s", c.Status)
	}
	if c := e.Container("p-worker-1"); c.Status == container.StateRunning {
		t.Fatal("worker started before db was healthy")
	}
}

func TestDownDependentsFirstAndVolumes(t *testing.T) {
	e := fakeEngine()
	e.Behave("db", enginefake.Behaviour{Health: "healthy"})
	p := project(t, gated+"    volumes: [\"data:/data\"]\nvolumes:\n  data:\n")
	if _, _, err := up(t, e, p); err != nil {
		t.Fatal(err)
	}
	var ev events
	if err := Down(context.Background(), e, DownOptions{Project: "p", Report: ev.report}); err != nil {
		t.Fatal(err)
	}
	calls := e.Calls()
	if slices.Index(calls, "stop p-db-1") < slices.Index(calls, "stop p-worker-1") || slices.Index(calls, "stop p-db-1") < slices.Index(calls, "stop p-api-1") {
		t.Fatalf("db stopped before its dependents: %v", calls)
	}
	if len(e.Containers()) != 0 || !slices.Contains(calls, "network-remove p_default") {
		t.Fatalf("left: %v %v", e.Containers(), calls)
	}
	if !e.Volume("p_data") {
		t.Fatal("the named volume was removed without Volumes")
	}
	if err := Down(context.Background(), e, DownOptions{Project: "p", Volumes: true}); err != nil || e.Volume("p_data") {
		t.Fatalf("with Volumes: %v", err)
	}
	if !ev.has("db", StateRemoved, "p-db-1") {
		t.Fatalf("events %+v", ev.all)
	}
}

func TestLogsJSONAndSelect(t *testing.T) {
	e := fakeEngine()
	e.Behave("api", enginefake.Behaviour{Logs: "one\ntwo \"quoted\"\nno newline"})
	p := project(t, "services:\n  api:\n    image: app:1\n  web:\n    image: app:1\n")
	if _, _, err := up(t, e, p); err != nil {
		t.Fatal(err)
	}
	cs, _ := List(context.Background(), e, "p", true)
	if _, err := Select(cs, []string{"nope"}); err == nil || !strings.Contains(err.Error(), "nope") {
		t.Fatalf("select: %v", err)
	}
	cs, _ = Select(cs, []string{"api"})
	var b strings.Builder
	if err := Logs(context.Background(), e, cs, LogsOptions{JSON: true}, &b); err != nil {
		t.Fatal(err)
	}
	want := `{"service":"api","container":"p-api-1","line":"one"}
{"service":"api","container":"p-api-1","line":"two \"quoted\""}
{"service":"api","container":"p-api-1","line":"no newline"}
`
	if b.String() != want {
		t.Fatalf("logs:\n%s", b.String())
	}
	b.Reset()
	Logs(context.Background(), e, cs, LogsOptions{}, &b)
	if !strings.HasPrefix(b.String(), "api | one\n") {
		t.Fatalf("plain logs:\n%s", b.String())
	}
}

func TestPull(t *testing.T) {
	e := fakeEngine()
	p := project(t, "services:\n  web:\n    image: remote:1\n  api:\n    image: app:1\n")
	e.SetRemote("remote:1", enginefake.Image{ID: "sha256:r1"})
	e.SetRemote("app:1", enginefake.Image{ID: "sha256:aaaa000000000001"})
	var ev events
	got, err := Pull(context.Background(), e, PullOptions{Project: p, Report: ev.report})
	if err != nil || len(got) != 2 {
		t.Fatalf("%v %+v", err, got)
	}
	for _, g := range got {
		if g.Image == "remote:1" && !g.Updated || g.Image == "app:1" && g.Updated {
			t.Fatalf("%+v", g)
		}
	}
	if !ev.has("api", StatePulled, "app:1 is up to date") {
		t.Fatalf("events %+v", ev.all)
	}
	if _, err := Pull(context.Background(), e, PullOptions{Project: p, Services: []string{"nope"}}); err == nil {
		t.Fatal("unknown service pulled")
	}
}

// Down removes a service's anonymous volumes (an image's VOLUME) only with
// Volumes, as docker compose down does with -v (pkg/compose/down.go:
// RemoveVolumes: options.Volumes); without it they stay, as compose's.
func TestDownAnonymousVolumesOnlyWithVolumes(t *testing.T) {
	e := fakeEngine()
	p := project(t, "services:\n  cache:\n    image: cache:1\n")
	anon := func() string {
		t.Helper()
		c := e.Container("p-cache-1")
		if c == nil || len(c.Mounts) != 1 || c.Mounts[0].Destination != "/vdata" {
			t.Fatalf("the container has no anonymous volume at /vdata: %+v", c)
		}
		return c.Mounts[0].Name
	}
	if _, _, err := up(t, e, p); err != nil {
		t.Fatal(err)
	}
	kept := anon()
	if err := Down(context.Background(), e, DownOptions{Project: "p"}); err != nil {
		t.Fatal(err)
	}
	if !e.Volume(kept) {
		t.Fatal("down without Volumes removed the anonymous volume (compose keeps it)")
	}
	if _, _, err := up(t, e, p); err != nil {
		t.Fatal(err)
	}
	removed := anon()
	if err := Down(context.Background(), e, DownOptions{Project: "p", Volumes: true}); err != nil {
		t.Fatal(err)
	}
	if e.Volume(removed) {
		t.Fatal("down with Volumes kept the anonymous volume")
	}
}

// After a replacement, the new container mounts the old one's anonymous
// volume by name, which the engine does not remove with the container;
// down with Volumes removes it all the same (and without, keeps it).
func TestDownVolumesRemovesInheritedAnonymousVolumes(t *testing.T) {
	e := fakeEngine()
	p := project(t, "services:\n  cache:\n    image: cache:1\n")
	if _, _, err := up(t, e, p); err != nil {
		t.Fatal(err)
	}
	first := e.Container("p-cache-1").Mounts[0].Name
	if _, _, err := up(t, e, p, func(o *UpOptions) { o.Recreate = RecreateForce }); err != nil {
		t.Fatal(err)
	}
	c := e.Container("p-cache-1")
	if len(c.Mounts) != 1 || c.Mounts[0].Name != first {
		t.Fatalf("the replacement did not take over the anonymous volume %s: %+v", first, c.Mounts)
	}
	if err := Down(context.Background(), e, DownOptions{Project: "p"}); err != nil || !e.Volume(first) {
		t.Fatalf("down without Volumes: %v, volume kept %v", err, e.Volume(first))
	}
	if _, _, err := up(t, e, p); err != nil {
		t.Fatal(err)
	}
	second := e.Container("p-cache-1").Mounts[0].Name
	if _, _, err := up(t, e, p, func(o *UpOptions) { o.Recreate = RecreateForce }); err != nil {
		t.Fatal(err)
	}
	var ev events
	if err := Down(context.Background(), e, DownOptions{Project: "p", Volumes: true, Report: ev.report}); err != nil {
		t.Fatal(err)
	}
	if e.Volume(second) {
		t.Fatal("down with Volumes kept the anonymous volume the replacement took over")
	}
	if !ev.has("volume "+second, StateRemoved, "") {
		t.Fatalf("the removal was not reported: %+v", ev.all)
	}
}
