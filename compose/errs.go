package compose

import (
	"errors"
	"sort"
	"sync"
)

// errList collects errors from goroutines; join returns them sorted, so
// that messages come out in a stable order.
type errList struct {
	mu   sync.Mutex
	errs []error
}

func (l *errList) add(err error) {
	if err == nil {
		return
	}
	l.mu.Lock()
	l.errs = append(l.errs, err)
	l.mu.Unlock()
}

func (l *errList) join() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	sort.Slice(l.errs, func(i, j int) bool { return l.errs[i].Error() < l.errs[j].Error() })
	return errors.Join(l.errs...)
}

// parallel runs fn for every key of set at once and joins their errors.
func parallel(set map[string]bool, fn func(string) error) error {
	var errs errList
	var wg sync.WaitGroup
	for key := range set {
		wg.Go(func() { errs.add(fn(key)) })
	}
	wg.Wait()
	return errs.join()
}
