package compose

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/compose-spec/compose-go/v2/types"

	"github.com/difyctl/difyctl/health"
	"github.com/difyctl/difyctl/internal/engine/enginefake"
)

func TestPriorities(t *testing.T) {
	// db <- plugin <- agent <- api <- nginx; redis <- api; web (alone);
	// api and web have healthchecks; plugin waits for db to be healthy.
	g := newGraph([]string{"db", "plugin", "agent", "api", "nginx", "redis", "web"}, map[string][]edge{
		"plugin": {{to: "db", cond: health.Healthy}},
		"agent":  {{to: "plugin", cond: health.Started}},
		"api":    {{to: "agent", cond: health.Started}, {to: "redis", cond: health.Started}},
		"nginx":  {{to: "api", cond: health.Started}},
	})
	hc := map[string]bool{"api": true, "web": true}
	got := g.priorities(func(n string) int {
		if hc[n] {
			return healthWeight
		}
		return 0
	})
	w := healthWeight
	want := map[string]int{"api": w, "agent": w + 1, "redis": w + 1, "plugin": w + 2, "db": 2*w + 3, "nginx": 0, "web": w}
	for n, h := range want {
		if got[n] != h {
			t.Errorf("priority of %s = %d, want %d (all: %v)", n, got[n], h, got)
		}
	}
	if p := g.priorities(nil); p["db"] != w+4 || p["api"] != 1 {
		t.Errorf("without healthchecks: %v", p)
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
	s := newStartSlots(1, map[string]int{"low": 0, "mid": 1, "high": 5}, nil, nil)
	ctx := context.Background()
	release, err := s.acquire(ctx, "first")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var order []string
	var wg sync.WaitGroup
	for _, n := range []string{"low", "mid", "high"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rel, err := s.acquire(ctx, n)
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			order = append(order, n)
			mu.Unlock()
			rel()
		}()
	}
	waitQueued(t, s, 3)
	release()
	wg.Wait()
	if want := []string{"high", "mid", "low"}; !equalStrings(order, want) {
		t.Fatalf("granted in order %v, want %v", order, want)
	}
}

func TestStartSlotsCancelledWaiterLeavesQueue(t *testing.T) {
	s := newStartSlots(1, nil, nil, nil)
	release, err := s.acquire(context.Background(), "a")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := s.acquire(ctx, "b")
		done <- err
	}()
	waitQueued(t, s, 1)
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled acquire: %v", err)
	}
	release()
	release() // a second call gives nothing back
	// The slot is free again: a new acquire does not wait.
	c2, cancel2 := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel2()
	if _, err := s.acquire(c2, "c"); err != nil {
		t.Fatalf("slot not given back after a cancelled waiter: %v", err)
	}
}

func TestNilStartSlotsDoNotBound(t *testing.T) {
	var s *startSlots
	release, err := s.acquire(context.Background(), "x")
	if err != nil {
		t.Fatal(err)
	}
	release()
	s.skip("x", 1)
}

// The service alone at the top priority among the starts still to come is
// started alone: granted although every slot is taken, and nobody else is
// granted until it gave its slot back. A tie at the top is not critical.
func TestStartSlotsCriticalStartsAlone(t *testing.T) {
	gatherLong(t)
	prio := map[string]int{"db": 9, "plugin": 6, "cache": 6, "web": 1, "leaf": 0}
	s := newStartSlots(1, prio, map[string]int{"db": 1, "plugin": 1, "cache": 1, "web": 1, "leaf": 1}, nil)
	ctx := context.Background()
	grant := func(svc string) chan func() {
		ch := make(chan func(), 1)
		go func() {
			rel, err := s.acquire(ctx, svc)
			if err != nil {
				t.Error(err)
			}
			ch <- rel
		}()
		return ch
	}
	granted := func(ch chan func(), want bool, what string) func() {
		t.Helper()
		select {
		case rel := <-ch:
			if !want {
				t.Fatalf("%s granted, want it held", what)
			}
			return rel
		case <-time.After(600 * time.Millisecond):
			if want {
				t.Fatalf("%s not granted", what)
			}
			return nil
		}
	}
	// leaf holds the only slot; db (alone at the top) is granted anyway.
	leafCh := grant("leaf")
	relLeaf := granted(leafCh, true, "leaf")
	dbCh := grant("db")
	relDB := granted(dbCh, true, "db (critical, beyond the slots)")
	// plugin and cache tie at the top now: neither is critical. While db's
	// start runs, nothing else is granted, even with a slot free.
	relLeaf()
	webCh := grant("web")
	granted(webCh, false, "web while the critical db starts")
	relDB()
	relWeb := granted(webCh, true, "web once db gave its slot back")
	pluginCh := grant("plugin")
	granted(pluginCh, false, "plugin (tied with cache: not critical) while web holds the slot")
	s.skip("cache", 1) // cache will not start: plugin is alone at the top now
	relPlugin := granted(pluginCh, true, "plugin once cache was skipped")
	relWeb()
	relPlugin()
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

// While the critical service waits for its dependencies, the others keep a
// slot free for it: with two slots, one start at a time.
func TestStartSlotsKeepASlotForTheCriticalPath(t *testing.T) {
	gatherLong(t)
	prio := map[string]int{"plugin": 6, "a": 0, "b": 0}
	s := newStartSlots(2, prio, map[string]int{"plugin": 1, "a": 1, "b": 1}, nil)
	ctx := context.Background()
	got := make(chan string, 2)
	rels := make(chan func(), 2)
	for _, n := range []string{"a", "b"} {
		go func() {
			rel, err := s.acquire(ctx, n)
			if err != nil {
				t.Error(err)
			}
			rels <- rel
			got <- n
		}()
	}
	<-got
	select {
	case n := <-got:
		t.Fatalf("%s granted beside the first while plugin is still to come", n)
	case <-time.After(600 * time.Millisecond):
	}
	s.skip("plugin", 1) // nothing to keep the slot for any more
	select {
	case <-got:
	case <-time.After(5 * time.Second):
		t.Fatal("second start not granted once plugin was skipped")
	}
	(<-rels)()
	(<-rels)()
}

func TestReadyWeight(t *testing.T) {
	d := func(s time.Duration) *types.Duration { v := types.Duration(s); return &v }
	for _, c := range []struct {
		hc   *types.HealthCheckConfig
		want int
	}{
		{nil, 0},
		{&types.HealthCheckConfig{Disable: true}, 0},
		{&types.HealthCheckConfig{Test: []string{"NONE"}}, 0},
		{&types.HealthCheckConfig{Test: []string{"CMD", "true"}}, healthWeight},
		{&types.HealthCheckConfig{Test: []string{"CMD", "true"}, StartPeriod: d(30 * time.Second)}, healthWeight + 3},
	} {
		if got := readyWeight(c.hc); got != c.want {
			t.Errorf("readyWeight(%+v) = %d, want %d", c.hc, got, c.want)
		}
	}
}

// Right after a critical start returned, the others wait for the critical
// path's next step to ask (criticalHold): it is granted first, alone.
func TestStartSlotsHoldForTheNextCriticalStep(t *testing.T) {
	old := criticalHold
	criticalHold = 2 * time.Second
	t.Cleanup(func() { criticalHold = old })
	prio := map[string]int{"db": 9, "api": 5, "leaf": 0}
	s := newStartSlots(2, prio, map[string]int{"db": 1, "api": 1, "leaf": 1}, nil)
	ctx := context.Background()
	relDB, err := s.acquire(ctx, "db")
	if err != nil {
		t.Fatal(err)
	}
	leaf := make(chan func(), 1)
	go func() {
		rel, err := s.acquire(ctx, "leaf")
		if err != nil {
			t.Error(err)
		}
		leaf <- rel
	}()
	waitQueued(t, s, 1)
	relDB() // critical: leaf waits for api to ask
	select {
	case <-leaf:
		t.Fatal("leaf granted right after the critical db returned, before api could ask")
	case <-time.After(300 * time.Millisecond):
	}
	start := time.Now()
	relAPI, err := s.acquire(ctx, "api")
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("api (the next critical step) waited %v: the hold held it too", d)
	}
	select {
	case <-leaf:
		t.Fatal("leaf granted beside the critical api")
	case <-time.After(300 * time.Millisecond):
	}
	relAPI()
	select {
	case rel := <-leaf:
		rel()
	case <-time.After(5 * time.Second):
		t.Fatal("leaf never granted")
	}
}

// A start that weighs no more than the wait for a service already started
// and not yet ready is not critical: the run ends behind that wait (an
// upgrade's api coming up), and the starts left share the slots. Once that
// service is ready, the top start is critical again.
func TestStartSlotsNotCriticalBehindAReadyWait(t *testing.T) {
	gatherLong(t)
	prio := map[string]int{"api": 7, "sandbox": 4, "web": 1}
	own := map[string]int{"api": 7, "sandbox": 4}
	s := newStartSlots(2, prio, map[string]int{"api": 1, "sandbox": 1, "web": 1}, own)
	ctx := context.Background()
	relAPI, err := s.acquire(ctx, "api")
	if err != nil {
		t.Fatal(err)
	}
	relAPI() // started; not ready yet
	s.mu.Lock()
	if _, ok := s.criticalNext(); ok {
		s.mu.Unlock()
		t.Fatal("sandbox critical while api, weighing more, is not ready")
	}
	s.mu.Unlock()
	s.ready("api")
	s.mu.Lock()
	next, ok := s.criticalNext()
	s.mu.Unlock()
	if !ok || next != "sandbox" {
		t.Fatalf("criticalNext after api is ready = %q, %v; want sandbox, true", next, ok)
	}
	// Granted while api still comes up, sandbox and web run side by side.
	s.readying["api"]++
	got := make(chan func(), 2)
	for _, n := range []string{"sandbox", "web"} {
		go func() {
			rel, err := s.acquire(ctx, n)
			if err != nil {
				t.Error(err)
			}
			got <- rel
		}()
	}
	for range 2 {
		select {
		case rel := <-got:
			defer rel()
		case <-time.After(5 * time.Second):
			t.Fatal("sandbox and web not granted together behind api's wait")
		}
	}
}

// whileQuiet (the gate of the probes only the end of the run waits for)
// blocks while a critical start runs, and lets go when it returns.
func TestStartSlotsQuietWhileNoCriticalStart(t *testing.T) {
	ctx := context.Background()
	s := newStartSlots(2, map[string]int{"db": 9, "leaf": 0}, map[string]int{"db": 1, "leaf": 1}, nil)
	if err := s.whileQuiet(ctx); err != nil {
		t.Fatal(err)
	}
	rel, err := s.acquire(ctx, "db")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.whileQuiet(ctx) }()
	select {
	case <-done:
		t.Fatal("a probe let go while the critical db start runs")
	case <-time.After(300 * time.Millisecond):
	}
	rel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the probe still held after the critical start returned")
	}
	short, cancel := context.WithCancel(ctx)
	cancel()
	if err := (*startSlots)(nil).whileQuiet(short); err != nil {
		t.Fatalf("no scheduler: %v", err)
	}
}

// The first grant of a run waits firstGather: a critical service whose
// dependencies already run asks a few tens of milliseconds in (after an
// inspection) and goes first, alone; the start off the path that asked at
// once is not run beside it.
func TestStartSlotsFirstGatherWaitsForTheCriticalStart(t *testing.T) {
	old := firstGather
	firstGather = 400 * time.Millisecond
	t.Cleanup(func() { firstGather = old })
	s := newStartSlots(2, map[string]int{"plugin": 6, "sandbox": 4}, map[string]int{"plugin": 1, "sandbox": 1}, nil)
	ctx := context.Background()
	sandbox := make(chan func(), 1)
	go func() {
		rel, err := s.acquire(ctx, "sandbox")
		if err != nil {
			t.Error(err)
		}
		sandbox <- rel
	}()
	time.Sleep(100 * time.Millisecond)
	start := time.Now()
	rel, err := s.acquire(ctx, "plugin")
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 250*time.Millisecond {
		t.Errorf("the critical plugin waited %v for its slot", d)
	}
	select {
	case <-sandbox:
		t.Fatal("sandbox granted before or beside the critical plugin")
	case <-time.After(500 * time.Millisecond):
	}
	rel()
	select {
	case r := <-sandbox:
		r()
	case <-time.After(5 * time.Second):
		t.Fatal("sandbox never granted")
	}
}
