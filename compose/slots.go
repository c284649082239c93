package compose

import (
	"container/heap"
	"context"
	"runtime"
	"sync"
	"time"

	"github.com/moby/moby/client"

	"github.com/difyctl/difyctl/internal/engine"
)

// startSlots bounds how many container starts the engine is asked for at
// once, and hands a free slot to the waiting service that most of the
// project waits behind first: the one with the longest chain of dependents
// above it (its height in the graph).
//
// A container start costs the engine CPU (runc, the network namespace, the
// mounts): on a small host, ten starts asked at once all finish late,
// including the database that everything else waits for. Started first,
// the database is running in the time one start takes, and the services
// nobody waits for share what is left. This is the critical-path-first
// order of a build scheduler; the total work is the same.
type startSlots struct {
	mu      sync.Mutex
	free    int
	height  map[string]int
	queue   slotQueue
	seq     int
	pending bool // a dispatch is scheduled
}

// newStartSlots allows n starts at once (at least 1), ordered by height.
func newStartSlots(n int, height map[string]int) *startSlots {
	return &startSlots{free: max(n, 1), height: height}
}

// startGather is how long a freed slot waits for services that became
// ready to start at the same moment (a walk's first level all at once) to
// queue, so that the highest of them gets it rather than the first
// goroutine the scheduler happened to run. Against a container start of
// half a second or more, it costs nothing.
var startGather = 5 * time.Millisecond

// acquire waits for a slot for svc; release gives it back. A nil
// *startSlots has no bound.
func (s *startSlots) acquire(ctx context.Context, svc string) error {
	if s == nil {
		return nil
	}
	s.mu.Lock()
	w := &slotWaiter{svc: svc, height: s.height[svc], seq: s.seq, ready: make(chan struct{})}
	s.seq++
	heap.Push(&s.queue, w)
	s.schedule()
	s.mu.Unlock()
	select {
	case <-w.ready:
		return nil
	case <-ctx.Done():
		s.mu.Lock()
		defer s.mu.Unlock()
		select {
		case <-w.ready: // granted meanwhile: give it back
			s.free++
			s.schedule()
		default:
			heap.Remove(&s.queue, w.index)
		}
		return ctx.Err()
	}
}

func (s *startSlots) release() {
	if s == nil {
		return
	}
	s.mu.Lock()
	s.free++
	s.schedule()
	s.mu.Unlock()
}

// schedule arranges a dispatch startGather from now when a slot is free
// and somebody waits (one at a time). s.mu is held.
func (s *startSlots) schedule() {
	if s.pending || s.free == 0 || len(s.queue) == 0 {
		return
	}
	s.pending = true
	time.AfterFunc(startGather, s.dispatch)
}

// dispatch hands the free slots to the highest waiters.
func (s *startSlots) dispatch() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pending = false
	for s.free > 0 && len(s.queue) > 0 {
		w := heap.Pop(&s.queue).(*slotWaiter)
		s.free--
		close(w.ready)
	}
}

type slotWaiter struct {
	svc    string
	height int
	seq    int
	index  int
	ready  chan struct{}
}

// slotQueue is a max-heap on height, first come first served among equals.
type slotQueue []*slotWaiter

func (q slotQueue) Len() int { return len(q) }
func (q slotQueue) Less(i, j int) bool {
	if q[i].height != q[j].height {
		return q[i].height > q[j].height
	}
	return q[i].seq < q[j].seq
}
func (q slotQueue) Swap(i, j int) {
	q[i], q[j] = q[j], q[i]
	q[i].index, q[j].index = i, j
}
func (q *slotQueue) Push(x any) {
	w := x.(*slotWaiter)
	w.index = len(*q)
	*q = append(*q, w)
}
func (q *slotQueue) Pop() any {
	old := *q
	w := old[len(old)-1]
	*q = old[:len(old)-1]
	return w
}

// heights is, for every node of a graph, the length of the longest chain of
// dependents above it (0: nothing waits for it). The graph has no cycles
// (newGraph broke them).
func (g *graph) heights() map[string]int {
	dependents := map[string][]string{}
	for n, es := range g.edges {
		for _, e := range es {
			dependents[e.to] = append(dependents[e.to], n)
		}
	}
	h := map[string]int{}
	var visit func(n string) int
	visit = func(n string) int {
		if v, ok := h[n]; ok {
			return v
		}
		h[n] = 0
		best := 0
		for _, d := range dependents[n] {
			best = max(best, visit(d)+1)
		}
		h[n] = best
		return best
	}
	for n := range g.gates {
		visit(n)
	}
	return h
}

// engineCPUs is how many CPUs the engine's host has (its /info), or this
// host's when the engine does not say: the number of container starts
// asked for at once.
func engineCPUs(ctx context.Context, cli engine.Engine) int {
	if info, err := cli.Info(ctx, client.InfoOptions{}); err == nil && info.Info.NCPU > 0 {
		return info.Info.NCPU
	}
	return runtime.NumCPU()
}
