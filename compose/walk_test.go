package compose

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/difyctl/difyctl/health"
)

func pc(svc string, deps ...string) ProjectContainer {
	return ProjectContainer{ID: svc, Name: "p-" + svc + "-1", Service: svc, DependsOn: deps}
}

type order bool

const (
	dependenciesFirst order = false
	dependentsFirst   order = true
)

// walk drives the graph walker the way start (dependencies first: a failed
// dependency blocks) and stop/down (dependents first: keep going) do.
func walk(cs []ProjectContainer, o order, step, then func(ProjectContainer) error) error {
	nodes, edges := containerEdges(cs)
	g := newGraph(nodes, edges)
	if o == dependentsFirst {
		g = reversed(nodes, edges)
	}
	groups := byService(cs)
	var errs errList
	var wg sync.WaitGroup
	g.walk(context.Background(), o == dependentsFirst, func(svc string, own gates, b *blocked) {
		if b != nil {
			for _, c := range groups[svc] {
				errs.add(fmt.Errorf("%s: not started: dependency %s failed", c.Name, b.dep))
			}
			return
		}
		var failed error
		var mu sync.Mutex
		each(groups[svc], func(c ProjectContainer) {
			if err := step(c); err != nil {
				errs.add(fmt.Errorf("%s: %w", c.Name, err))
				mu.Lock()
				failed = err
				mu.Unlock()
			}
		})
		own.open(health.Started, failed)
		if then != nil {
			for _, c := range groups[svc] {
				wg.Add(1)
				go func() { defer wg.Done(); errs.add(then(c)) }()
			}
		}
	})
	wg.Wait()
	return errs.join()
}

// recorder logs the order steps ran in.
type recorder struct {
	mu  sync.Mutex
	seq []string
}

func (r *recorder) step(c ProjectContainer) error {
	r.mu.Lock()
	r.seq = append(r.seq, c.Service)
	r.mu.Unlock()
	return nil
}

func (r *recorder) index(svc string) int {
	for i, s := range r.seq {
		if s == svc {
			return i
		}
	}
	return -1
}

func TestWalkOrders(t *testing.T) {
	// db <- api <- web, db <- worker
	cs := []ProjectContainer{pc("web", "api"), pc("api", "db"), pc("worker", "db"), pc("db")}
	var fwd recorder
	if err := walk(cs, dependenciesFirst, fwd.step, nil); err != nil {
		t.Fatal(err)
	}
	if len(fwd.seq) != 4 || fwd.index("db") != 0 || fwd.index("api") > fwd.index("web") {
		t.Fatalf("dependencies first: %v", fwd.seq)
	}
	var rev recorder
	if err := walk(cs, dependentsFirst, rev.step, nil); err != nil {
		t.Fatal(err)
	}
	if len(rev.seq) != 4 || rev.index("db") != 3 || rev.index("web") > rev.index("api") {
		t.Fatalf("dependents first: %v", rev.seq)
	}
}

// A slow service holds back only what depends on it, not the whole level.
func TestWalkNotLevelByLevel(t *testing.T) {
	cs := []ProjectContainer{pc("slow"), pc("fast"), pc("after-fast", "fast"), pc("after-slow", "slow")}
	release := make(chan struct{})
	afterFast := make(chan struct{})
	errc := make(chan error, 1)
	go func() {
		errc <- walk(cs, dependenciesFirst, func(c ProjectContainer) error {
			switch c.Service {
			case "slow":
				<-release
			case "after-fast":
				close(afterFast)
			}
			return nil
		}, nil)
	}()
	select {
	case <-afterFast:
	case <-time.After(5 * time.Second):
		t.Fatal("after-fast waited for slow, which it does not depend on")
	}
	close(release)
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
}

// then (down's remove) runs after a container's step but does not hold
// back the services that come after it.
func TestWalkThenDoesNotBlock(t *testing.T) {
	cs := []ProjectContainer{pc("api", "db"), pc("db")}
	dbStopped := make(chan struct{})
	var removedDB, removedAPI bool
	err := walk(cs, dependentsFirst, func(c ProjectContainer) error {
		if c.Service == "db" {
			close(dbStopped)
		}
		return nil
	}, func(c ProjectContainer) error {
		if c.Service == "api" {
			select { // api's removal can only finish once db was stopped
			case <-dbStopped:
				removedAPI = true
			case <-time.After(5 * time.Second):
				return errors.New("db's stop waited for api's removal")
			}
		} else {
			removedDB = true
		}
		return nil
	})
	if err != nil || !removedAPI || !removedDB {
		t.Fatalf("err %v, removed api %v db %v", err, removedAPI, removedDB)
	}
}

func TestWalkErrorsAndCycles(t *testing.T) {
	// a and b name each other (hand-edited labels); c hangs off the cycle; d is
	// missing from the project; e fails.
	cs := []ProjectContainer{pc("a", "b"), pc("b", "a"), pc("c", "a", "d"), pc("e")}
	var r recorder
	err := walk(cs, dependenciesFirst, func(c ProjectContainer) error {
		r.step(c)
		if c.Service == "e" {
			return errors.New("boom")
		}
		return nil
	}, nil)
	if err == nil || !strings.Contains(err.Error(), "p-e-1: boom") {
		t.Fatalf("error %v", err)
	}
	if len(r.seq) != 4 {
		t.Fatalf("every container is walked despite the failure and the cycle: %v", r.seq)
	}
	if r.index("c") < r.index("a") {
		t.Fatalf("c runs after a even off a cycle: %v", r.seq)
	}
}

func TestWalkScaledService(t *testing.T) {
	// Two containers of api: db waits for both when stopping.
	a1, a2 := pc("api", "db"), pc("api", "db")
	a2.Name, a2.ID = "p-api-2", "api2"
	var r recorder
	if err := walk([]ProjectContainer{a1, pc("db"), a2}, dependentsFirst, r.step, nil); err != nil {
		t.Fatal(err)
	}
	if r.index("db") != 2 {
		t.Fatalf("db stopped before both api containers: %v", r.seq)
	}
}

// Starting, a service whose dependency failed is not started; stopping,
// every container is still stopped.
func TestWalkFailureStopsDependentsOnlyWhenStarting(t *testing.T) {
	cs := []ProjectContainer{pc("web", "api"), pc("api", "db"), pc("db"), pc("other")}
	failDB := func(r *recorder) func(ProjectContainer) error {
		return func(c ProjectContainer) error {
			r.step(c)
			if c.Service == "db" {
				return errors.New("unhealthy")
			}
			return nil
		}
	}
	var fwd recorder
	err := walk(cs, dependenciesFirst, failDB(&fwd), nil)
	if fwd.index("api") >= 0 || fwd.index("web") >= 0 || fwd.index("other") < 0 {
		t.Fatalf("started %v", fwd.seq)
	}
	for _, want := range []string{"p-db-1: unhealthy", "p-api-1: not started: dependency db failed", "p-web-1: not started: dependency api failed"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("error %v lacks %q", err, want)
		}
	}
	var rev recorder
	if err := walk(cs, dependentsFirst, failDB(&rev), nil); err == nil || len(rev.seq) != 4 {
		t.Fatalf("stopping: %v, walked %v", err, rev.seq)
	}
}
