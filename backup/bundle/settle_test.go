package bundle

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"

	"github.com/difyctl/difyctl/internal/engine/enginefake"
	"github.com/difyctl/difyctl/internal/journal"
)

// killedRestore is a deployment in the fake engine as a killed `restore
// all` leaves it: the vector store paused (the safety bundle's copy), the
// files' helper container running, the Redis restore's working directory
// with its own journal (written before any change of its own), and the
// restore's journal with data jd and steps.
type killedRestore struct {
	e          *enginefake.Engine
	dir, bdir  string
	work       string // the Redis restore's working directory
	out        bytes.Buffer
	upServices [][]string
}

func newKilledRestore(t *testing.T, jd JournalData, committed bool, steps ...string) *killedRestore {
	t.Helper()
	k := &killedRestore{dir: t.TempDir()}
	k.e = fakeDeployment(t, k.dir)
	k.bdir = filepath.Join(k.dir, "backups", "all")
	ctx := context.Background()
	if _, err := k.e.ContainerPause(ctx, "p-weaviate-1", client.ContainerPauseOptions{}); err != nil {
		t.Fatal(err)
	}
	h, err := k.e.ContainerCreate(ctx, client.ContainerCreateOptions{Name: "p-difyctl-restore-0badf00d",
		Config:     &container.Config{Image: "img", Labels: map[string]string{labelHelper: "p"}},
		HostConfig: &container.HostConfig{}})
	if err != nil {
		t.Fatal(err)
	}
	k.e.ContainerStart(ctx, h.ID, client.ContainerStartOptions{})
	if err := os.MkdirAll(k.bdir, 0o700); err != nil {
		t.Fatal(err)
	}
	if k.work, err = os.MkdirTemp(k.bdir, ".restore-redis-p-"); err != nil {
		t.Fatal(err)
	}
	if _, err := journal.Begin(k.work, "p", "restore-redis", map[string]string{"file": filepath.Join(k.work, "redis.rdb"), "safetyCopy": filepath.Join(k.work, "safety.rdb")}); err != nil {
		t.Fatal(err)
	}
	jd.BackupDir = k.bdir
	jh, err := journal.Begin(k.dir, "p", OpRestoreAll, jd)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range steps {
		jh.Step(s)
	}
	if committed {
		jh.Commit()
	}
	return k
}

func (k *killedRestore) env() journal.Env {
	return journal.Env{Engine: k.e, Out: &k.out, Progress: func(f string, a ...any) {}}
}

func (k *killedRestore) settle(t *testing.T) (journal.Outcome, error) {
	t.Helper()
	j, err := journal.Load(k.dir, "p")
	if err != nil || j == nil {
		t.Fatalf("journal: %v %v", j, err)
	}
	return settleWith(context.Background(), k.env(), j, func(_ context.Context, svcs []string) error {
		k.upServices = append(k.upServices, svcs)
		return nil
	})
}

// changes are the calls that change the deployment.
func (k *killedRestore) changes() []string {
	var out []string
	for _, c := range k.e.Calls() {
		if verb, _, _ := strings.Cut(c, " "); slices.Contains([]string{"stop", "start", "remove", "create", "pause", "unpause", "copy-to", "restart"}, verb) {
			out = append(out, c)
		}
	}
	return out
}

// safetyBundle writes a bundle holding the api's storage.
func safetyBundle(t *testing.T, dir string) string {
	t.Helper()
	p := filepath.Join(dir, "bundle_20260101_000000")
	if err := os.MkdirAll(p, 0o700); err != nil {
		t.Fatal(err)
	}
	m := &Manifest{Format: Format, Project: "p", DBType: "postgresql", DifyVersion: "1.16.0", CreatedAt: time.Now().UTC(), Reason: "pre-restore safety bundle"}
	m.Parts = append(m.Parts, writePart(t, p, Part{Name: "files/api/app/api/storage", File: "files-api-app_api_storage.tar.zst", Kind: KindFiles, Service: "api", Path: "/app/api/storage"},
		tarOf(t, map[string]string{"a.txt": "the previous data"}), nil))
	if err := writeManifest(p, m); err != nil {
		t.Fatal(err)
	}
	return p
}

var killedSteps = []string{stepSafety, stepSafetyTaken, stepStopping, stepStopped, "restored database"}

// Killed after the stop, not committed: the safety bundle is put back
// after the pause, the files' helper and the Redis restore's journal left
// in flight are settled; the services that ran are started.
func TestSettleRollsBackAfterClearingWhatWasInFlight(t *testing.T) {
	dir := t.TempDir()
	safety := safetyBundle(t, dir)
	jd := JournalData{Bundle: "/b/bundle_x", Mode: ModeSame, SafetyBundle: safety, Running: []string{"api", "db_postgres", "redis", "weaviate"}}
	k := newKilledRestore(t, jd, false, killedSteps...)
	var execs []string
	k.e.HandleExec(func(c *enginefake.Container, cmd, env []string) enginefake.ExecReply {
		execs = append(execs, c.Name+": "+strings.Join(cmd, " "))
		return enginefake.ExecReply{}
	})
	out, err := k.settle(t)
	if err != nil {
		t.Fatal(err)
	}
	if out.Action != journal.RolledBack || !strings.Contains(out.Detail, safety) || !slices.Contains(out.Files, safety) || !slices.Contains(out.Files, "/b/bundle_x") {
		t.Fatalf("outcome %+v", out)
	}
	ch := k.changes()
	at := func(call string) int {
		i := slices.Index(ch, call)
		if i < 0 {
			t.Fatalf("no %q among the changes:\n%s", call, strings.Join(ch, "\n"))
		}
		return i
	}
	if !(at("unpause p-weaviate-1") < at("stop p-api-1") && at("remove p-difyctl-restore-0badf00d") < at("stop p-api-1")) {
		t.Fatalf("the paused store and the old helper were not dealt with before the rollback:\n%s", strings.Join(ch, "\n"))
	}
	if _, err := os.Stat(k.work); !os.IsNotExist(err) {
		t.Fatalf("the Redis restore's working directory is left: %v", err)
	}
	if !strings.Contains(k.out.String(), "settled the interrupted restore-redis") {
		t.Fatalf("the Redis restore's journal was not settled:\n%s", k.out.String())
	}
	swapped := false
	for _, x := range execs {
		swapped = swapped || strings.Contains(x, "difyctl-restore-new") && strings.Contains(x, "mv")
	}
	if !swapped {
		t.Fatalf("the safety bundle's files were not swapped in: %q", execs)
	}
	if len(k.upServices) != 1 || !slices.Equal(k.upServices[0], jd.Running) {
		t.Fatalf("started %v, want %v", k.upServices, jd.Running)
	}
}

// A journal whose safety bundle is gone, or fails verification: settling
// fails saying so and changes nothing (the pause, the helper and the Redis
// restore's journal stay as the kill left them), and Settle keeps the
// journal.
func TestSettleWithoutAUsableSafetyBundleChangesNothing(t *testing.T) {
	for _, tc := range []struct {
		name   string
		safety func(t *testing.T) string
	}{
		{"gone", func(t *testing.T) string { return filepath.Join(t.TempDir(), "bundle_20260101_000000") }},
		{"corrupted", func(t *testing.T) string {
			p := safetyBundle(t, t.TempDir())
			m, _ := ReadManifest(p)
			f := filepath.Join(p, m.Parts[0].File)
			b, _ := os.ReadFile(f)
			b[len(b)/2] ^= 0xff
			os.WriteFile(f, b, 0o600)
			return p
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			safety := tc.safety(t)
			k := newKilledRestore(t, JournalData{Bundle: "/b/bundle_x", Mode: ModeSame, SafetyBundle: safety, Running: []string{"api"}}, false, killedSteps...)
			before := k.changes()
			o, err := journal.Settle(context.Background(), k.env(), k.dir, "p")
			if err == nil || o != nil {
				t.Fatalf("settled: %+v", o)
			}
			if !strings.Contains(err.Error(), "nothing was changed") || !strings.Contains(err.Error(), safety) || !strings.Contains(err.Error(), "journal is kept") {
				t.Fatalf("error: %v", err)
			}
			if after := k.changes(); !slices.Equal(after, before) {
				t.Fatalf("changed: %v", after[len(before):])
			}
			if j, _ := journal.Load(k.dir, "p"); j == nil {
				t.Fatal("the journal was removed")
			}
			if j, _ := journal.Load(k.work, "p"); j == nil {
				t.Fatal("the Redis restore's journal was removed")
			}
			if c := k.e.Container("p-weaviate-1"); c.Status != container.StatePaused {
				t.Fatalf("weaviate %s", c.Status)
			}
		})
	}
}

// Killed while the safety bundle was taken: nothing had changed but the
// vector store's pause, which is undone; nothing is stopped or started.
func TestSettleKilledDuringTheSafetyBundle(t *testing.T) {
	k := newKilledRestore(t, JournalData{Bundle: "/b/bundle_x", Mode: ModeSame, Running: []string{"api"}}, false, stepSafety)
	before := len(k.changes())
	out, err := k.settle(t)
	if err != nil {
		t.Fatal(err)
	}
	if out.Action != journal.RolledBack || !strings.Contains(out.Detail, "before any change") {
		t.Fatalf("outcome %+v", out)
	}
	ch := k.changes()[before:]
	if !slices.Contains(ch, "unpause p-weaviate-1") {
		t.Fatalf("weaviate left paused: %v", ch)
	}
	for _, c := range ch {
		if strings.HasPrefix(c, "stop ") || strings.HasPrefix(c, "start ") {
			t.Fatalf("a restore that changed nothing made settling %s", c)
		}
	}
	if len(k.upServices) != 0 {
		t.Fatalf("started %v", k.upServices)
	}
}

// Past the stop with no safety bundle recorded (a restore that takes none):
// nothing to roll back to; settling refuses and changes nothing.
func TestSettleWithoutSafetyBundlePastTheStopRefuses(t *testing.T) {
	k := newKilledRestore(t, JournalData{Bundle: "/b/bundle_x", Mode: ModeSame, Running: []string{"api"}}, false, stepStopping)
	before := k.changes()
	if _, err := k.settle(t); err == nil || !strings.Contains(err.Error(), "nothing was changed") {
		t.Fatalf("err %v", err)
	}
	if after := k.changes(); !slices.Equal(after, before) {
		t.Fatalf("changed: %v", after[len(before):])
	}
}

// Committed: finished. What was in flight is settled and every service
// started; the report names the safety bundle that holds the previous data.
func TestSettleCommittedFinishes(t *testing.T) {
	jd := JournalData{Bundle: "/b/bundle_x", Mode: ModeSame, SafetyBundle: "/b/bundle_safety", Services: []string{"api", "db_postgres", "redis", "weaviate"}}
	k := newKilledRestore(t, jd, true, append(killedSteps, "restored redis", "started")...)
	out, err := k.settle(t)
	if err != nil {
		t.Fatal(err)
	}
	if out.Action != journal.Finished || !strings.Contains(out.Detail, "/b/bundle_safety") || !slices.Contains(out.Files, "/b/bundle_safety") {
		t.Fatalf("outcome %+v", out)
	}
	if len(k.upServices) != 1 || !slices.Equal(k.upServices[0], jd.Services) {
		t.Fatalf("started %v, want %v", k.upServices, jd.Services)
	}
	if _, err := os.Stat(k.work); !os.IsNotExist(err) {
		t.Fatalf("the Redis restore's working directory is left: %v", err)
	}
	if c := k.e.Container("p-difyctl-restore-0badf00d"); c != nil {
		t.Fatal("the files' helper container is left")
	}
	if c := k.e.Container("p-weaviate-1"); c.Status != container.StateRunning {
		t.Fatalf("weaviate %s", c.Status)
	}
}

// Into a new project: its containers are removed, not started.
func TestSettleNewProjectRemovesItsContainers(t *testing.T) {
	k := newKilledRestore(t, JournalData{Bundle: "/b/bundle_x", Mode: ModeNew, Services: []string{"api"}}, false, "config written", "containers created")
	out, err := k.settle(t)
	if err != nil {
		t.Fatal(err)
	}
	if out.Action != journal.RolledBack || len(k.upServices) != 0 {
		t.Fatalf("outcome %+v, started %v", out, k.upServices)
	}
	for _, name := range []string{"p-api-1", "p-weaviate-1", "p-difyctl-restore-0badf00d"} {
		if k.e.Container(name) != nil {
			t.Errorf("%s is left", name)
		}
	}
}
