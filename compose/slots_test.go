package compose

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/difyctl/difyctl/health"
	"github.com/difyctl/difyctl/internal/engine/enginefake"
)

func TestHeights(t *testing.T) {
	// db <- plugin <- agent <- api <- nginx; redis <- api; web (alone).
	g := newGraph([]string{"db", "plugin", "agent", "api", "nginx", "redis", "web"}, map[string][]edge{
		"plugin": {{to: "db", cond: health.Healthy}},
		"agent":  {{to: "plugin", cond: health.Started}},
		"api":    {{to: "agent", cond: health.Started}, {to: "redis", cond: health.Started}},
		"nginx":  {{to: "api", cond: health.Started}},
	})
	got := g.heights()
	want := map[string]int{"db": 4, "plugin": 3, "agent": 2, "redis": 2, "api": 1, "nginx": 0, "web": 0}
	for n, h := range want {
		if got[n] != h {
			t.Errorf("height of %s = %d, want %d (all: %v)", n, got[n], h, got)
		}
	}
}

// gatherLong makes the gathering window long enough for goroutines started
// together to queue on a loaded machine under the race detector.
func gatherLong(t *testing.T) {
	old := startGather
	startGather = 200 * time.Millisecond
	t.Cleanup(func() { startGather = old })
}

func TestStartSlotsGrantHighestFirst(t *testing.T) {
	gatherLong(t)
	s := newStartSlots(1, map[string]int{"low": 0, "mid": 1, "high": 5})
	ctx := context.Background()
	if err := s.acquire(ctx, "first"); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var order []string
	var wg sync.WaitGroup
	for _, n := range []string{"low", "mid", "high"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := s.acquire(ctx, n); err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			order = append(order, n)
			mu.Unlock()
			s.release()
		}()
	}
	waitQueued(t, s, 3)
	s.release()
	wg.Wait()
	if want := []string{"high", "mid", "low"}; !equalStrings(order, want) {
		t.Fatalf("granted in order %v, want %v", order, want)
	}
}

func TestStartSlotsCancelledWaiterLeavesQueue(t *testing.T) {
	s := newStartSlots(1, nil)
	if err := s.acquire(context.Background(), "a"); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.acquire(ctx, "b") }()
	waitQueued(t, s, 1)
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled acquire: %v", err)
	}
	s.release()
	// The slot is free again: a new acquire does not wait.
	c2, cancel2 := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel2()
	if err := s.acquire(c2, "c"); err != nil {
		t.Fatalf("slot not given back after a cancelled waiter: %v", err)
	}
}

func TestNilStartSlotsDoNotBound(t *testing.T) {
	var s *startSlots
	if err := s.acquire(context.Background(), "x"); err != nil {
		t.Fatal(err)
	}
	s.release()
}

// With one CPU, up starts the service most of the project waits behind
// before the ones nothing waits for, although all are ready to start.
func TestUpStartsCriticalPathFirst(t *testing.T) {
	gatherLong(t)
	fake := enginefake.New()
	fake.SetCPUs(1)
	var mu sync.Mutex
	var started []string
	fake.OnStart(func(c *enginefake.Container) {
		mu.Lock()
		started = append(started, c.Service())
		mu.Unlock()
	})
	yaml := `services:
  a1: {image: busybox}
  a2: {image: busybox}
  a3: {image: busybox}
  db: {image: busybox}
  api:
    image: busybox
    depends_on: [db]
`
	fake.AddImage("busybox", enginefake.Image{ID: "sha256:bbbb000000000001"})
	if _, _, err := up(t, fake, project(t, yaml)); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(started) == 0 || started[0] != "db" {
		t.Fatalf("started in order %v, want db first (api waits for it)", started)
	}
}

func waitQueued(t *testing.T, s *startSlots, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		s.mu.Lock()
		q := len(s.queue)
		s.mu.Unlock()
		if q == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d waiters queued, want %d", q, n)
		}
		time.Sleep(time.Millisecond)
	}
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
