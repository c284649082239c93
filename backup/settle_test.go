package backup

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"

	"github.com/difyctl/difyctl/internal/journal"
)

// interrupted sets up what a restore killed after steps left: the safety
// copy of the current data (5 keys) in bdir, the journal in pdir, and the
// volume as the steps left it. It returns the project directory.
func interrupted(t *testing.T, f *fakeRedis, steps []string, committed bool) (pdir string, rec restoreRecord) {
	t.Helper()
	pdir, bdir := t.TempDir(), t.TempDir()
	safety := backupFile(t, bdir, "old", 5)
	newData := rdbOf("new", 3)
	rec = restoreRecord{File: "/backups/new.rdb", SafetyCopy: safety, Container: f.ID, Name: "proj-redis-1", Image: "sha256:fakeredis",
		Service: "redis", DataDir: "/data", DBFile: "dump.rdb", Keys: 3, KeysLow: 3, KeysHigh: 3, StopTimeout: time.Second, WaitTimeout: 5 * time.Second}
	if f.aof {
		rec.AOF = &aofConfig{FileName: "appendonly.aof", DirName: "appendonlydir"}
		rec.AOFAside = "/data/appendonlydir.difyctl-aside-x"
	}
	h, err := journal.Begin(pdir, "proj", OpRestoreRedis, rec)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range steps {
		switch s {
		case stepStopping:
			f.e.ContainerStop(context.Background(), f.ID, client.ContainerStopOptions{})
		case stepUploading: // part of the upload is in the volume
			f.e.PutFile(f.ID, rec.tempDump(), newData[:7])
		case stepUploaded:
			f.e.PutFile(f.ID, rec.tempDump(), newData)
			if f.aof {
				f.e.PutFile(f.ID, "/data/"+tempPrefix+"appendonlydir/appendonly.aof.1.base.rdb", newData)
			}
		case stepReplaced: // the helper's renames
			if f.aof {
				f.e.Rename(f.ID, "/data/appendonlydir", rec.AOFAside)
				f.e.Rename(f.ID, "/data/"+tempPrefix+"appendonlydir", "/data/appendonlydir")
			}
			f.e.Rename(f.ID, rec.tempDump(), rec.target())
		case stepStarting:
			f.e.ContainerStart(context.Background(), f.ID, client.ContainerStartOptions{})
		}
		if err := h.Step(s); err != nil {
			t.Fatal(err)
		}
	}
	if committed {
		if err := h.Commit(); err != nil {
			t.Fatal(err)
		}
	}
	return pdir, rec
}

func settle(t *testing.T, f *fakeRedis, pdir string) (*journal.Outcome, string, error) {
	t.Helper()
	var out bytes.Buffer
	o, err := journal.Settle(context.Background(), journal.Env{Engine: f.e, Out: &out}, pdir, "proj")
	return o, out.String(), err
}

var allSteps = []string{stepStopping, stepStopped, stepUploading, stepUploaded, stepReplacing, stepReplaced, stepStarting}

// Killed after each step, before the point of no return: settling puts
// Redis back on its previous data, running, and removes the journal and
// the temporaries; with appendonly on, the old AOF is back in place.
func TestSettleRollsBackAfterEachStep(t *testing.T) {
	for _, aof := range []bool{false, true} {
		for n := 1; n <= len(allSteps); n++ {
			f := newFakeRedis(t, aof)
			pdir, rec := interrupted(t, f, allSteps[:n], false)
			out, said, err := settle(t, f, pdir)
			if err != nil {
				t.Fatalf("aof %v, after %s: %v", aof, allSteps[n-1], err)
			}
			if out.Action != journal.RolledBack || !f.running() || f.keys != 5 {
				t.Fatalf("aof %v, after %s: %+v, running %v, %d keys", aof, allSteps[n-1], out, f.running(), f.keys)
			}
			if !strings.Contains(said, "found the journal") || !strings.Contains(said, rec.SafetyCopy) || !strings.Contains(said, rec.File) {
				t.Fatalf("report names neither file: %s", said)
			}
			if left := f.e.Files(f.ID, "/data"); strings.Contains(strings.Join(left, " "), tempPrefix) || strings.Contains(strings.Join(left, " "), "aside") {
				t.Fatalf("aof %v, after %s: temporaries left: %v", aof, allSteps[n-1], left)
			}
			if j, _ := journal.Load(pdir, "proj"); j != nil {
				t.Fatal("journal left")
			}
			if aof && keysOf(f.file("/data/appendonlydir/appendonly.aof.1.base.rdb")) != 5 {
				t.Fatalf("after %s: the old AOF is not back", allSteps[n-1])
			}
		}
	}
}

// A journal written before the first change: nothing to undo, nothing asked
// of the engine.
func TestSettleBeforeAnyChangeTouchesNothing(t *testing.T) {
	f := newFakeRedis(t, false)
	pdir, _ := interrupted(t, f, nil, false)
	before := len(f.e.Calls())
	out, _, err := settle(t, f, pdir)
	if err != nil || out.Action != journal.RolledBack || !strings.Contains(out.Detail, "had not changed anything") {
		t.Fatalf("%+v %v", out, err)
	}
	if calls := f.e.Calls()[before:]; len(calls) != 0 {
		t.Fatalf("engine calls: %v", calls)
	}
}

// Past the point of no return, settling finishes: Redis started on the
// restored data, never rolled back.
func TestSettleFinishesWhenCommitted(t *testing.T) {
	f := newFakeRedis(t, false)
	pdir, rec := interrupted(t, f, allSteps, true)
	f.e.ContainerStop(context.Background(), f.ID, client.ContainerStopOptions{}) // stopped since
	out, _, err := settle(t, f, pdir)
	if err != nil || out.Action != journal.Finished || !f.running() || f.keys != 3 {
		t.Fatalf("%+v %v running %v keys %d", out, err, f.running(), f.keys)
	}
	if !strings.Contains(out.Detail, "restored data of "+rec.File) || !strings.Contains(out.Detail, rec.SafetyCopy) {
		t.Fatalf("detail: %s", out.Detail)
	}
	// Running and healthy already: nothing to start.
	pdir, _ = interrupted(t, f, allSteps, true)
	starts := f.e.Container(f.ID).StartCount
	if out, _, err := settle(t, f, pdir); err != nil || out.Action != journal.Finished || f.e.Container(f.ID).StartCount != starts {
		t.Fatalf("%+v %v", out, err)
	}
}

// A journal whose safety copy is gone or damaged, when the rollback needs
// it, stops the command and changes nothing.
func TestSettleRefusesWithoutAGoodSafetyCopy(t *testing.T) {
	for _, damage := range []string{"gone", "damaged"} {
		f := newFakeRedis(t, false)
		pdir, rec := interrupted(t, f, allSteps[:6], false)
		if damage == "gone" {
			os.Remove(rec.SafetyCopy)
		} else {
			b := mustRead(t, rec.SafetyCopy)
			b[12] ^= 0xff
			os.WriteFile(rec.SafetyCopy, b, 0o600)
		}
		before := len(f.e.Calls())
		dump := f.file("/data/dump.rdb")
		_, _, err := settle(t, f, pdir)
		if err == nil || !strings.Contains(err.Error(), rec.SafetyCopy) || !strings.Contains(err.Error(), "nothing was changed") || !strings.Contains(err.Error(), "journal is kept") {
			t.Fatalf("%s safety copy: %v", damage, err)
		}
		if calls := f.e.Calls()[before:]; len(calls) != 0 || !bytes.Equal(dump, f.file("/data/dump.rdb")) {
			t.Fatalf("%s safety copy: changed things: %v", damage, calls)
		}
		if j, _ := journal.Load(pdir, "proj"); j == nil {
			t.Fatal("journal removed")
		}
	}
}

// Before the replacing began the safety copy is not needed: its loss does
// not block settling.
func TestSettleBeforeReplaceNeedsNoSafetyCopy(t *testing.T) {
	f := newFakeRedis(t, false)
	pdir, rec := interrupted(t, f, allSteps[:4], false)
	os.Remove(rec.SafetyCopy)
	out, _, err := settle(t, f, pdir)
	if err != nil || out.Action != journal.RolledBack || !strings.Contains(out.Detail, "nothing had been replaced") || f.keys != 5 {
		t.Fatalf("%+v %v", out, err)
	}
}

// A stop still being carried out (the container still running) is waited
// for before anything is put back; a helper container a kill left is waited
// for and removed.
func TestSettleWaitsForStopAndHelpers(t *testing.T) {
	f := newFakeRedis(t, false)
	pdir, rec := interrupted(t, f, allSteps[:5], false)
	f.e.ContainerStart(context.Background(), f.ID, client.ContainerStartOptions{}) // the stop had not happened yet
	res, err := f.e.ContainerCreate(context.Background(), client.ContainerCreateOptions{
		Config:     &container.Config{Image: rec.Image, Labels: map[string]string{labelHelper: "restore", labelHelperFor: f.ID}},
		HostConfig: &container.HostConfig{VolumesFrom: []string{f.ID}}})
	if err != nil {
		t.Fatal(err)
	}
	f.noHelper = true
	f.e.ContainerStart(context.Background(), res.ID, client.ContainerStartOptions{})
	f.noHelper = false
	before := len(f.e.Calls())
	out, _, err := settle(t, f, pdir)
	if err != nil || out.Action != journal.RolledBack {
		t.Fatalf("%+v %v", out, err)
	}
	calls := strings.Join(f.e.Calls()[before:], "|")
	if !strings.HasPrefix(calls, "remove ") || !strings.Contains(calls, "stop proj-redis-1") || strings.Index(calls, "stop proj-redis-1") > strings.Index(calls, "copy-to") {
		t.Fatalf("order of calls: %s", calls)
	}
	if f.e.Container(res.ID) != nil {
		t.Fatal("leftover helper not removed")
	}
}

// The Redis container removed since (down, then up recreated it): the
// service's new container is settled.
func TestSettleFindsTheServiceContainerAgain(t *testing.T) {
	f := newFakeRedis(t, false)
	pdir, rec := interrupted(t, f, allSteps[:6], false)
	rec.Container = "0123456789abcdef0123456789abcdef"
	j, _ := journal.Load(pdir, "proj")
	journal.Remove(journal.Path(pdir, "proj"))
	h, _ := journal.Begin(pdir, "proj", OpRestoreRedis, rec)
	for _, s := range j.Steps {
		h.Step(s.Name)
	}
	out, _, err := settle(t, f, pdir)
	if err != nil || out.Action != journal.RolledBack || f.keys != 5 {
		t.Fatalf("%+v %v", out, err)
	}
	// No container at all: a clear error, nothing changed.
	f.e.ContainerRemove(context.Background(), f.ID, client.ContainerRemoveOptions{Force: true})
	pdir2, _ := t.TempDir(), 0
	h, _ = journal.Begin(pdir2, "proj", OpRestoreRedis, rec)
	h.Step(stepStopping)
	if _, _, err := settle(t, f, pdir2); err == nil || !strings.Contains(err.Error(), "is gone") {
		t.Fatalf("settle without container: %v", err)
	}
}

func TestPendingForPs(t *testing.T) {
	f := newFakeRedis(t, false)
	pdir, _ := interrupted(t, f, allSteps[:3], false)
	line, err := journal.Pending(pdir, "proj")
	if err != nil || !strings.Contains(line, "unfinished restore-redis") || !strings.Contains(line, "uploading") {
		t.Fatalf("%q %v", line, err)
	}
}
