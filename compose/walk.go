package compose

import (
	"context"
	"errors"
	"sort"
	"sync"

	"github.com/difyctl/difyctl/health"
)

// edge is one depends_on relation as a walk sees it: the service waited
// for, and the condition waited on.
type edge struct {
	to   string
	cond health.Condition
}

// gate is a one-time signal with an error.
type gate struct {
	once sync.Once
	ch   chan struct{}
	err  error
}

func newGate() *gate { return &gate{ch: make(chan struct{})} }

func (g *gate) open(err error) {
	g.once.Do(func() { g.err = err; close(g.ch) })
}

func (g *gate) wait(ctx context.Context) error {
	select {
	case <-g.ch:
		return g.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// gates are a service's signals, one per condition a dependent may wait on:
// started, healthy, completed successfully.
type gates map[health.Condition]*gate

func newGates() gates {
	return gates{health.Started: newGate(), health.Healthy: newGate(), health.CompletedSuccessfully: newGate()}
}

// open opens the gate of cond (started for unknown conditions).
func (g gates) open(cond health.Condition, err error) { g.of(cond).open(err) }

// settle opens every gate with err (those already open keep their result).
func (g gates) settle(err error) {
	for _, x := range g {
		x.open(err)
	}
}

func (g gates) of(cond health.Condition) *gate {
	if x, ok := g[cond]; ok {
		return x
	}
	return g[health.Started]
}

// blocked says which edge stopped a service from being stepped.
type blocked struct {
	dep  string
	cond health.Condition
	err  error
}

var errNotReached = errors.New("not reached")

// graph is the dependency graph a walk goes over: each node waits for its
// edges, each on its own condition, so one slow or failed service holds back
// only what depends on it, and a dependent that asks for service_started
// does not wait for health because a sibling asks for it.
type graph struct {
	edges map[string][]edge // node -> what it waits for
	gates map[string]gates
	// waiting, when set, is told before a node waits on an edge.
	waiting func(node string, e edge)
}

// newGraph builds a graph over nodes. Edges to unknown nodes and to the node
// itself are dropped; so are the edges inside a cycle (hand-edited labels),
// whose members then go without ordering among themselves rather than wait
// for ever.
func newGraph(nodes []string, edges map[string][]edge) *graph {
	g := &graph{edges: map[string][]edge{}, gates: map[string]gates{}}
	for _, n := range nodes {
		g.gates[n] = newGates()
	}
	for n, es := range edges {
		if _, ok := g.gates[n]; !ok {
			continue
		}
		seen := map[edge]bool{}
		for _, e := range es {
			if _, ok := g.gates[e.to]; ok && e.to != n && !seen[e] {
				seen[e] = true
				g.edges[n] = append(g.edges[n], e)
			}
		}
		sort.Slice(g.edges[n], func(i, j int) bool { return g.edges[n][i].to < g.edges[n][j].to })
	}
	breakCycles(g.edges)
	return g
}

// reversed is the graph with every edge turned around, each on the
// condition "started" (which a step opens when it is done): for going
// dependents first (stop, down).
func reversed(nodes []string, edges map[string][]edge) *graph {
	rev := map[string][]edge{}
	for n, es := range edges {
		for _, e := range es {
			rev[e.to] = append(rev[e.to], edge{to: n, cond: health.Started})
		}
	}
	return newGraph(nodes, rev)
}

// walk runs visit for every node, each in its own goroutine as soon as the
// gates of its edges are open. When an edge's gate failed, visit gets what
// blocked it (unless keepGoing: then it runs anyway, for stopping as much as
// can be stopped). visit opens the node's gates; those it leaves shut are
// failed when it returns, so nothing waits for ever.
func (g *graph) walk(ctx context.Context, keepGoing bool, visit func(node string, own gates, b *blocked)) {
	var wg sync.WaitGroup
	for n := range g.gates {
		wg.Add(1)
		go func(n string) {
			defer wg.Done()
			var b *blocked
			for _, e := range g.edges[n] {
				if g.waiting != nil {
					g.waiting(n, e)
				}
				if err := g.gates[e.to].of(e.cond).wait(ctx); err != nil && !keepGoing {
					b = &blocked{dep: e.to, cond: e.cond, err: err}
					break
				}
			}
			visit(n, g.gates[n], b)
			g.gates[n].settle(errNotReached)
		}(n)
	}
	wg.Wait()
}

// breakCycles drops the edges inside each dependency cycle (a strongly
// connected component, found with Tarjan's algorithm): its members then
// walk without ordering among themselves, and everything else keeps its
// order.
func breakCycles(edges map[string][]edge) {
	index, low, comp := map[string]int{}, map[string]int{}, map[string]int{}
	onStack := map[string]bool{}
	var stack []string
	next, ncomp := 0, 0
	var visit func(string)
	visit = func(v string) {
		index[v], low[v] = next, next
		next++
		stack = append(stack, v)
		onStack[v] = true
		for _, e := range edges[v] {
			if _, seen := index[e.to]; !seen {
				visit(e.to)
				low[v] = min(low[v], low[e.to])
			} else if onStack[e.to] {
				low[v] = min(low[v], index[e.to])
			}
		}
		if low[v] == index[v] {
			for {
				w := stack[len(stack)-1]
				stack = stack[:len(stack)-1]
				onStack[w] = false
				comp[w] = ncomp
				if w == v {
					break
				}
			}
			ncomp++
		}
	}
	nodes := make([]string, 0, len(edges))
	for n := range edges {
		nodes = append(nodes, n)
	}
	sort.Strings(nodes)
	for _, n := range nodes {
		if _, seen := index[n]; !seen {
			visit(n)
		}
	}
	for n, es := range edges {
		var keep []edge
		for _, e := range es {
			if comp[e.to] != comp[n] {
				keep = append(keep, e)
			}
		}
		edges[n] = keep
	}
}

// containerEdges are the depends_on edges among containers, from their
// labels (whatever created them).
func containerEdges(cs []ProjectContainer) (nodes []string, edges map[string][]edge) {
	edges = map[string][]edge{}
	seen := map[string]bool{}
	for _, c := range cs {
		if !seen[c.Service] {
			seen[c.Service] = true
			nodes = append(nodes, c.Service)
			for _, d := range c.DependsOn {
				edges[c.Service] = append(edges[c.Service], edge{to: d, cond: conditionOf(c.Conditions[d])})
			}
		}
	}
	return nodes, edges
}

// conditionOf maps a depends_on condition to a gate (started for unknown ones).
func conditionOf(c string) health.Condition {
	switch hc := health.Condition(c); hc {
	case health.Healthy, health.CompletedSuccessfully:
		return hc
	}
	return health.Started
}

// byService groups containers by service.
func byService(cs []ProjectContainer) map[string][]ProjectContainer {
	out := map[string][]ProjectContainer{}
	for _, c := range cs {
		out[c.Service] = append(out[c.Service], c)
	}
	return out
}
