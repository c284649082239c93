package backup

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/moby/moby/client"

	"github.com/difyctl/difyctl/internal/engine/enginefake"
	"github.com/difyctl/difyctl/internal/journal"
)

func TestRestoreReplacesThroughTempAndRename(t *testing.T) {
	for _, aof := range []bool{false, true} {
		f := newFakeRedis(t, aof)
		pdir, bdir := t.TempDir(), t.TempDir()
		file := backupFile(t, t.TempDir(), "new", 3)
		var lines []string
		o := restoreOpts(pdir, bdir, file)
		o.Progress = func(format string, a ...any) { lines = append(lines, format) }
		res, err := Restore(context.Background(), f.e, o)
		if err != nil {
			t.Fatalf("aof %v: %v", aof, err)
		}
		want, _ := os.ReadFile(file)
		if !bytes.Equal(f.file("/data/dump.rdb"), want) || res.Keys != 3 || !f.running() {
			t.Fatalf("aof %v: dump not replaced (%d keys, running %v)", aof, res.Keys, f.running())
		}
		if _, ok := f.e.File(f.ID, "/data/"+tempPrefix+"dump.rdb"); ok {
			t.Fatal("temporary dump left")
		}
		if aof {
			if !bytes.Equal(f.file("/data/appendonlydir/appendonly.aof.1.base.rdb"), want) || res.AOFMoved == "" {
				t.Fatalf("AOF not replaced: %+v", res)
			}
			if keysOf(f.file(res.AOFMoved+"/appendonly.aof.1.base.rdb")) != 5 {
				t.Fatal("the old AOF was not kept aside")
			}
		}
		if j, _ := journal.Load(pdir, "proj"); j != nil {
			t.Fatalf("journal left: %+v", j)
		}
		if keysOf(mustRead(t, res.SafetyCopy)) != 5 {
			t.Fatal("safety copy does not hold the previous data")
		}
		if strings.Join(lines, "|") == "" || !strings.Contains(strings.Join(lines, "|"), "replacing") {
			t.Fatalf("progress: %v", lines)
		}
	}
}

func mustRead(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// A key count that does not match the file rolls back to the safety copy.
func TestRestoreRollsBackOnKeyCountMismatch(t *testing.T) {
	f := newFakeRedis(t, false)
	pdir, bdir := t.TempDir(), t.TempDir()
	file := backupFile(t, t.TempDir(), "new", 3)
	f.lieNext = 100
	_, err := Restore(context.Background(), f.e, restoreOpts(pdir, bdir, file))
	if err == nil || !strings.Contains(err.Error(), "rolled back") || !strings.Contains(err.Error(), "safety copy") {
		t.Fatalf("Restore: %v", err)
	}
	if keysOf(f.file("/data/dump.rdb")) != 5 || !f.running() {
		t.Fatal("the previous data is not back, or Redis is not running")
	}
	if j, _ := journal.Load(pdir, "proj"); j != nil {
		t.Fatal("journal left after an in-process rollback")
	}
}

// stopCanceled is an engine whose ContainerStop carries the stop out but
// returns "context canceled", as the real client does on Ctrl-C while the
// engine goes on stopping.
type stopCanceled struct {
	*enginefake.Engine
	once bool
}

func (s *stopCanceled) ContainerStop(ctx context.Context, id string, o client.ContainerStopOptions) (client.ContainerStopResult, error) {
	if s.once {
		return s.Engine.ContainerStop(ctx, id, o)
	}
	s.once = true
	_, _ = s.Engine.ContainerStop(ctx, id, o)
	return client.ContainerStopResult{}, context.Canceled
}

// An interrupt during the stop is a failure like any other: Redis is
// started again with its data, and the error says so.
func TestRestoreInterruptedDuringStopStartsRedisAgain(t *testing.T) {
	f := newFakeRedis(t, false)
	pdir, bdir := t.TempDir(), t.TempDir()
	file := backupFile(t, t.TempDir(), "new", 3)
	_, err := Restore(context.Background(), &stopCanceled{Engine: f.e}, restoreOpts(pdir, bdir, file))
	if err == nil || !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "rolled back") {
		t.Fatalf("Restore: %v", err)
	}
	if !f.running() || keysOf(f.file("/data/dump.rdb")) != 5 {
		t.Fatalf("Redis running %v with %d keys in its dump", f.running(), keysOf(f.file("/data/dump.rdb")))
	}
	if j, _ := journal.Load(pdir, "proj"); j != nil {
		t.Fatal("journal left")
	}
}

// A pending journal stops a new restore before it changes anything.
func TestRestoreRefusesPendingJournal(t *testing.T) {
	f := newFakeRedis(t, false)
	pdir, bdir := t.TempDir(), t.TempDir()
	if _, err := journal.Begin(pdir, "proj", "upgrade", nil); err != nil {
		t.Fatal(err)
	}
	_, err := Restore(context.Background(), f.e, restoreOpts(pdir, bdir, backupFile(t, t.TempDir(), "new", 3)))
	if !errors.Is(err, journal.ErrPending) || !f.running() || keysOf(f.file("/data/dump.rdb")) != 5 {
		t.Fatalf("Restore over a pending journal: %v", err)
	}
}

func TestRestoreRefusesNewerRDB(t *testing.T) {
	f := newFakeRedis(t, false)
	p := filepath.Join(t.TempDir(), "x.rdb")
	b := rdbOf("k", 1)
	copy(b, "REDIS0099")
	os.WriteFile(p, b, 0o600)
	_, err := Restore(context.Background(), f.e, restoreOpts(t.TempDir(), t.TempDir(), p))
	if err == nil || !strings.Contains(err.Error(), "refusing") {
		t.Fatalf("Restore of a damaged/newer file: %v", err)
	}
}

func TestRunTakesAndRotates(t *testing.T) {
	f := newFakeRedis(t, false)
	bdir := t.TempDir()
	o := restoreOpts("", bdir, "").Options
	o.KeepMin = 1
	res, err := Run(context.Background(), f.e, o)
	if err != nil {
		t.Fatal(err)
	}
	if res.Manifest.Keys != 5 || res.Manifest.RDBKeys != 5 || res.Manifest.Container != "proj-redis-1" {
		t.Fatalf("manifest %+v", res.Manifest)
	}
	if _, _, err := VerifyFile(res.Path); err != nil {
		t.Fatal(err)
	}
	// Without a running Redis there is nothing to back up.
	f.e.ContainerStop(context.Background(), f.ID, client.ContainerStopOptions{})
	if _, err := Run(context.Background(), f.e, o); !errors.Is(err, ErrNoContainer) {
		t.Fatalf("Run without Redis: %v", err)
	}
}

// The restore's helper containers go with their anonymous volumes: an
// image declaring VOLUME /data (as Redis's does) gives each helper one the
// engine would otherwise keep for good. A restore leaves no volume that no
// container holds.
func TestRestoreHelpersLeaveNoVolume(t *testing.T) {
	f := newFakeRedis(t, false)
	f.e.AddImage(fakeImage, enginefake.Image{ID: "sha256:fakeredis", Volumes: []string{"/data"}}) // the helpers' image now declares it
	file := backupFile(t, t.TempDir(), "new", 3)
	if _, err := Restore(context.Background(), f.e, restoreOpts(t.TempDir(), t.TempDir(), file)); err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	helpers := f.helpers
	f.mu.Unlock()
	if helpers == 0 {
		t.Fatal("no helper container ran: the test proves nothing")
	}
	held := map[string]bool{}
	for _, c := range f.e.Containers() {
		for _, m := range c.Mounts {
			held[m.Name] = true
		}
	}
	vs, err := f.e.VolumeList(context.Background(), client.VolumeListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range vs.Items {
		if !held[v.Name] {
			t.Errorf("volume %s left by a helper container (%d helpers ran)", v.Name, helpers)
		}
	}
}
