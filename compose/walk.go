package compose

import (
	"fmt"
	"sort"
	"sync"
)

// order says which way a walk over the dependency graph goes.
type order int

const (
	// dependenciesFirst: a service's step runs once every service it depends
	// on has finished its own (start).
	dependenciesFirst order = iota
	// dependentsFirst: a service's step runs once every service depending on
	// it has finished its own (stop, down).
	dependentsFirst
)

// walk runs step on every container, each as soon as the containers it must
// follow (in the given order, from the depends_on labels) have finished
// their step: not level by level, so one slow container holds back only
// what depends on it. then, when not nil, runs right after a container's
// step without holding anything back (down removes there). Going
// dependencies first, a service whose dependency failed is not stepped (its
// error says so); going dependents first, every container is walked even
// when others fail (stop as much as can be stopped). The errors are joined,
// each naming its container. Services in a dependency cycle (hand-edited
// labels) are walked without ordering among themselves rather than waiting
// for ever.
func walk(cs []ProjectContainer, o order, step, then func(ProjectContainer) error) error {
	bySvc := map[string][]ProjectContainer{}
	for _, c := range cs {
		bySvc[c.Service] = append(bySvc[c.Service], c)
	}
	after := map[string][]string{} // service -> services whose step it waits for
	for svc, list := range bySvc {
		for _, d := range list[0].DependsOn {
			if _, ok := bySvc[d]; !ok || d == svc {
				continue
			}
			if o == dependenciesFirst {
				after[svc] = append(after[svc], d)
			} else {
				after[d] = append(after[d], svc)
			}
		}
	}
	for svc := range after {
		sort.Strings(after[svc])
		after[svc] = dedupe(after[svc])
	}
	breakCycles(bySvc, after)

	done := map[string]chan struct{}{}
	failed := map[string]bool{} // written before done[svc] is closed, read after
	for svc := range bySvc {
		done[svc] = make(chan struct{})
	}
	var (
		mu   sync.Mutex // guards failed
		errs errList
		wg   sync.WaitGroup
	)
	record := func(c ProjectContainer, err error) {
		if err != nil {
			errs.add(fmt.Errorf("%s: %w", c.Name, err))
		}
	}
	for svc, list := range bySvc {
		wg.Add(1)
		go func(svc string, list []ProjectContainer) {
			defer wg.Done()
			var failedDep string
			for _, prev := range after[svc] {
				<-done[prev]
				mu.Lock()
				if failed[prev] && failedDep == "" {
					failedDep = prev
				}
				mu.Unlock()
			}
			if failedDep != "" && o == dependenciesFirst {
				for _, c := range list {
					record(c, fmt.Errorf("not started: dependency %s failed", failedDep))
				}
				mu.Lock()
				failed[svc] = true
				mu.Unlock()
				close(done[svc])
				return
			}
			var swg sync.WaitGroup
			for _, c := range list {
				swg.Add(1)
				go func(c ProjectContainer) {
					defer swg.Done()
					if err := step(c); err != nil {
						record(c, err)
						mu.Lock()
						failed[svc] = true
						mu.Unlock()
					}
				}(c)
			}
			swg.Wait()
			close(done[svc])
			if then == nil {
				return
			}
			for _, c := range list {
				wg.Add(1)
				go func(c ProjectContainer) {
					defer wg.Done()
					record(c, then(c))
				}(c)
			}
		}(svc, list)
	}
	wg.Wait()
	return errs.join()
}

// breakCycles drops the ordering edges inside each dependency cycle (a
// strongly connected component, found with Tarjan's algorithm): its members
// then walk without ordering among themselves, and everything else keeps its
// order, so nothing waits for ever.
func breakCycles(bySvc map[string][]ProjectContainer, after map[string][]string) {
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
		for _, w := range after[v] {
			if _, seen := index[w]; !seen {
				visit(w)
				low[v] = min(low[v], low[w])
			} else if onStack[w] {
				low[v] = min(low[v], index[w])
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
	svcs := make([]string, 0, len(bySvc))
	for svc := range bySvc {
		svcs = append(svcs, svc)
	}
	sort.Strings(svcs)
	for _, svc := range svcs {
		if _, seen := index[svc]; !seen {
			visit(svc)
		}
	}
	for svc, ps := range after {
		var keep []string
		for _, p := range ps {
			if comp[p] != comp[svc] {
				keep = append(keep, p)
			}
		}
		after[svc] = keep
	}
}
