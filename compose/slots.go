package compose

import (
	"container/heap"
	"context"
	"maps"
	"runtime"
	"sync"
	"time"

	"github.com/compose-spec/compose-go/v2/types"
	"github.com/moby/moby/client"

	"github.com/difyctl/difyctl/health"
	"github.com/difyctl/difyctl/internal/engine"
)

// startSlots bounds how many container starts the engine is asked for at
// once, and hands a free slot to the waiting service that most of the
// project waits behind first: the one with the longest weighted chain of
// dependents above it (its priority, graph.priorities).
//
// A container start costs the engine CPU (runc, the network namespace, the
// mounts, dockerd's own hooks): on a small host, ten starts asked at once
// all finish late, including the database that everything else waits for.
// Started first, the database is running in the time one start takes, and
// the services nobody waits for share what is left. This is the
// critical-path-first order of a build scheduler; the total work is the
// same.
//
// One step further: the service alone on top of the starts still to come
// (the critical path's next step; a tie means parallel chains, none of them
// alone critical) is started on its own. It gets a slot even when all are
// taken, and no other start is asked until its own returned: the starts
// already asked finish beside it, none is added. While it is still to come
// (its dependencies not yet healthy), the others keep one slot free for it.
// Services off the critical path have slack, and use it.
type startSlots struct {
	mu        sync.Mutex
	slots     int // starts at once
	free      int
	priority  map[string]int
	pending   map[string]int // starts still to be granted, per service (nil: not known)
	queue     slotQueue
	seq       int
	critical  int       // critical starts granted and not yet given back
	planned   bool      // a dispatch is scheduled,
	plannedAt time.Time // for then
	// holdUntil: the others wait for the critical path's next step to
	// ask until then (criticalHold after a critical start returned).
	holdUntil time.Time
	born      time.Time // when the run began (firstGather)
	granted   bool      // a start was granted in this run
	// ownReady is what up's own wait for each service weighs (readyWeight;
	// nil: nothing waits); readying counts, per service, the starts
	// granted whose service is not yet ready. A start is not critical when
	// one of those weighs as much: the run ends behind that wait.
	ownReady map[string]int
	readying map[string]int
	// quiet is closed while no critical start runs (probes that only the
	// end of the run waits for are put off until then).
	quiet chan struct{}
}

// newStartSlots allows n starts at once (at least 1), ordered by priority (graph.priorities).
// starts, when known, is how many starts each service will ask for: a
// service whose start is the only one left at the top priority is started
// alone.
// ownReady (nil: none) is what the end of the run waiting for each service
// to be ready weighs (readyWeight).
func newStartSlots(n int, priority map[string]int, starts map[string]int, ownReady map[string]int) *startSlots {
	var pending map[string]int
	if starts != nil {
		pending = maps.Clone(starts)
	}
	quiet := make(chan struct{})
	close(quiet)
	return &startSlots{slots: max(n, 1), free: max(n, 1), priority: priority, pending: pending,
		ownReady: ownReady, readying: map[string]int{}, quiet: quiet, born: time.Now()}
}

// ready says svc's start is behind it and it is ready (or will not be:
// failed, interrupted): its wait no longer holds the run.
func (s *startSlots) ready(svc string) {
	if s == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.readying[svc] > 0 {
		s.readying[svc]--
		s.schedule()
	}
}

// whileQuiet waits until no critical start runs: a probe that only the end
// of the run waits for costs the engine an exec, and is put off while the
// critical path's start has the engine to itself.
func (s *startSlots) whileQuiet(ctx context.Context) error {
	if s == nil {
		return nil
	}
	s.mu.Lock()
	q := s.quiet
	s.mu.Unlock()
	select {
	case <-q:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// startGather is how long a freed slot waits for services that became
// ready to start at the same moment (a walk's first level all at once, the
// dependents of a start that just returned) to queue, so that the highest
// of them gets it rather than the first goroutine the scheduler happened
// to run. Against a container start of half a second or more, it costs
// little; too short, and a start off the critical path takes the engine
// just before the critical one asks.
var startGather = 20 * time.Millisecond

// acquire waits for a slot for svc; the function it returns gives the slot
// back. A nil *startSlots has no bound.
func (s *startSlots) acquire(ctx context.Context, svc string) (func(), error) {
	if s == nil {
		return func() {}, nil
	}
	s.mu.Lock()
	w := &slotWaiter{svc: svc, priority: s.priority[svc], seq: s.seq, ready: make(chan struct{})}
	s.seq++
	if s.pending[svc] <= 0 {
		// Not announced (or more starts than announced): priority only.
		s.pending = nil
	}
	heap.Push(&s.queue, w)
	s.schedule()
	s.mu.Unlock()
	select {
	case <-w.ready:
		return sync.OnceFunc(func() { s.put(w) }), nil
	case <-ctx.Done():
		select {
		case <-w.ready: // granted meanwhile: give it back
			s.put(w)
		default:
			s.mu.Lock()
			heap.Remove(&s.queue, w.index)
			s.skipLocked(svc, 1)
			s.schedule()
			s.mu.Unlock()
		}
		return func() {}, ctx.Err()
	}
}

// skip says svc will ask for n fewer starts than announced (its dependency
// failed, it was not started after all): the starts above it no longer
// wait for it to be granted.
func (s *startSlots) skip(svc string, n int) {
	if s == nil {
		return
	}
	s.mu.Lock()
	s.skipLocked(svc, n)
	s.schedule()
	s.mu.Unlock()
}

func (s *startSlots) skipLocked(svc string, n int) {
	if s.pending != nil {
		s.pending[svc] = max(s.pending[svc]-n, 0)
	}
}

// put returns w's slot.
func (s *startSlots) put(w *slotWaiter) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.free++
	if w.critical {
		s.critical--
		if s.critical == 0 {
			close(s.quiet)
		}
		// Its dependents are about to ask: the next step of the critical
		// path is among them, and a start off the path granted now would
		// run beside it.
		s.holdUntil = time.Now().Add(criticalHold)
	}
	s.schedule()
}

// firstGather is how long the first grant of a run waits: beside the
// services of the walk's first level, those whose dependencies are
// containers already running (an upgrade's plugin daemon behind the
// unchanged database) ask once an inspection showed them healthy, a few
// tens of milliseconds in; a start off the critical path granted before
// that runs beside the critical one.
var firstGather = 150 * time.Millisecond

// criticalHold is how long, after a critical start returned, the next
// critical service has to ask for its slot before the others are served.
var criticalHold = 150 * time.Millisecond

// schedule arranges a dispatch startGather from now when somebody waits
// (one at a time). s.mu is held.
func (s *startSlots) schedule() {
	at := time.Now().Add(startGather)
	if next, ok := s.criticalNext(); ok && len(s.queue) > 0 && s.queue[0].svc == next {
		at = time.Now() // the critical start asked: nothing to gather
	} else if !s.granted {
		at = maxTime(at, s.born.Add(firstGather))
	}
	s.scheduleAt(at)
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// scheduleAt arranges a dispatch at at, unless one is planned by then.
// s.mu is held.
func (s *startSlots) scheduleAt(at time.Time) {
	if len(s.queue) == 0 || s.planned && !s.plannedAt.After(at) {
		return
	}
	s.planned, s.plannedAt = true, at
	time.AfterFunc(time.Until(at), s.dispatch)
}

// dispatch hands the free slots to the highest waiters: to the critical
// one whatever the free slots, and to nobody while a critical start runs.
// While the critical one is still to come (waiting for its dependencies'
// health), one slot is kept for it: it will not share the engine with
// more starts than one fewer than the slots. Right after a critical start
// returned, the others wait up to criticalHold for the next one to ask.
func (s *startSlots) dispatch() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.planned = false
	for len(s.queue) > 0 && s.critical == 0 {
		top := s.queue[0]
		next, ok := s.criticalNext()
		top.critical = ok && next == top.svc
		if ok && !top.critical {
			if time.Now().Before(s.holdUntil) {
				s.scheduleAt(s.holdUntil)
				return
			}
		}
		keep := 0
		if ok && !top.critical && s.slots > 1 {
			keep = 1
		}
		if !top.critical && s.free <= keep {
			return
		}
		heap.Pop(&s.queue)
		s.free--
		s.granted = true
		if s.pending != nil {
			s.pending[top.svc]--
		}
		if top.critical {
			if s.critical == 0 {
				s.quiet = make(chan struct{})
			}
			s.critical++
		}
		if s.ownReady[top.svc] > 0 {
			s.readying[top.svc]++
		}
		close(top.ready)
	}
}

// criticalNext is the service alone at the top priority among those with
// starts still to be granted, when something waits for it and it weighs
// more than every wait for a service already started and not yet ready
// (the end of the run is behind that one: an upgrade's api, six seconds to
// come up, against a sandbox's start). s.mu is held.
func (s *startSlots) criticalNext() (string, bool) {
	if s.pending == nil {
		return "", false
	}
	best, top, alone := "", 0, false
	for svc, n := range s.readying {
		if n > 0 {
			top = max(top, s.ownReady[svc])
		}
	}
	for svc, n := range s.pending {
		switch h := s.priority[svc]; {
		case n <= 0:
		case h > top:
			best, top, alone = svc, h, true
		case h == top:
			alone = false
		}
	}
	return best, alone && top > 0
}

type slotWaiter struct {
	svc      string
	priority int
	seq      int
	index    int
	critical bool // granted as the critical start
	ready    chan struct{}
}

// slotQueue is a max-heap on priority, first come first served among equals.
type slotQueue []*slotWaiter

func (q slotQueue) Len() int { return len(q) }
func (q slotQueue) Less(i, j int) bool {
	if q[i].priority != q[j].priority {
		return q[i].priority > q[j].priority
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

// healthWeight is what waiting for a service to be healthy weighs in a
// priority, in container starts: readiness takes seconds, a start half of
// one.
const healthWeight = 4

// readyWeight is what waiting for a service with healthcheck hc to be
// healthy weighs: healthWeight, and one more for every 10 s of its
// start_period (a service that says it takes 30 s to come up is likely the
// last to be ready). 0: no healthcheck, or a disabled one.
func readyWeight(hc *types.HealthCheckConfig) int {
	if hc == nil || hc.Disable || len(hc.Test) > 0 && hc.Test[0] == "NONE" {
		return 0
	}
	w := healthWeight
	if hc.StartPeriod != nil {
		w += int(time.Duration(*hc.StartPeriod) / (10 * time.Second))
	}
	return w
}

// priorities is, for every node of a graph, the weight of the longest
// chain of what waits for it, in container starts: each start on the chain
// counts one, each wait for health healthWeight more; the end of `up`
// itself waits for every service with a healthcheck to be healthy
// (ownReady: its readyWeight). 0: nothing waits for the node. The graph
// has no cycles (newGraph broke them).
func (g *graph) priorities(ownReady func(string) int) map[string]int {
	type dependent struct {
		node    string
		healthy bool
	}
	dependents := map[string][]dependent{}
	for n, es := range g.edges {
		for _, e := range es {
			dependents[e.to] = append(dependents[e.to], dependent{n, e.cond == health.Healthy})
		}
	}
	p := map[string]int{}
	var visit func(n string) int
	visit = func(n string) int {
		if v, ok := p[n]; ok {
			return v
		}
		p[n] = 0
		best := 0
		if ownReady != nil {
			best = ownReady(n)
		}
		for _, d := range dependents[n] {
			w := visit(d.node) + 1
			if d.healthy {
				w += healthWeight
			}
			best = max(best, w)
		}
		p[n] = best
		return best
	}
	for n := range g.gates {
		visit(n)
	}
	return p
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
