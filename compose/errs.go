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
