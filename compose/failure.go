package compose

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/difyctl/difyctl/health"
	"github.com/difyctl/difyctl/internal/engine"
)

// Failure explains why a service did not come up.
type Failure struct {
	Service string         `json:"service"`
	Reason  string         `json:"reason"`
	Probes  []health.Probe `json:"probes,omitempty"`
	Logs    []string       `json:"logs,omitempty"`
}

// FailedError: some services did not come up.
type FailedError struct {
	Failures []Failure
	// Err, when set, is every error of the run, one per container, the
	// services left unstarted because of a failure included (start).
	Err error
}

func (e *FailedError) Unwrap() error { return e.Err }

func (e *FailedError) Error() string {
	var names []string
	for _, f := range e.Failures {
		names = append(names, f.Service+" ("+f.Reason+")")
	}
	return "services failed: " + strings.Join(names, ", ")
}

// Diagnose writes, for each failure, the service, the reason, its last
// probe outputs and its last log lines, for an operator to read.
func (e *FailedError) Diagnose(w io.Writer) {
	for _, f := range e.Failures {
		fmt.Fprintf(w, "\n%s failed: %s\n", f.Service, f.Reason)
		for i, pr := range f.Probes {
			fmt.Fprintf(w, "  probe %d (exit %d): %s\n", i+1, pr.ExitCode, pr.Output)
		}
		if len(f.Logs) > 0 {
			fmt.Fprintf(w, "  last %d log lines:\n", len(f.Logs))
			for _, l := range f.Logs {
				fmt.Fprintln(w, "    "+l)
			}
		}
	}
}

// diagnosisLogLines is how many of its last log lines a failure carries.
const diagnosisLogLines = 20

// failures collects the failures of a run (up, start) and builds their
// report: the one place a failure report is made.
type failures struct {
	mu    sync.Mutex
	items []Failure
	ids   []string // container whose logs explain each item ("" none)
}

func (f *failures) add(svc, containerID, reason string, st *health.State) {
	fl := Failure{Service: svc, Reason: reason}
	if st != nil {
		fl.Probes = st.Probes
	}
	f.mu.Lock()
	f.items = append(f.items, fl)
	f.ids = append(f.ids, containerID)
	f.mu.Unlock()
}

// report is nil when nothing failed, else the failures by service, each
// with its container's last log lines.
func (f *failures) report(ctx context.Context, cli engine.Engine, err error) *FailedError {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.items) == 0 {
		return nil
	}
	diagCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	for i := range f.items {
		if f.ids[i] != "" {
			f.items[i].Logs = lastLogs(diagCtx, cli, f.ids[i], diagnosisLogLines)
		}
	}
	out := append([]Failure(nil), f.items...)
	sort.SliceStable(out, func(i, j int) bool { return out[i].Service < out[j].Service })
	return &FailedError{Failures: out, Err: err}
}
