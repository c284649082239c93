package journal

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"

	"github.com/difyctl/difyctl/internal/engine"
)

// Env is what a settler works with.
type Env struct {
	Engine engine.Engine
	Out    io.Writer // stderr: what was found and done
	JSON   bool      // report on Out as JSON lines instead of text
	// Environ is the process environment as the factory sees it (nil:
	// none): settlers load the project and find registry credentials with
	// it, never with the process's own.
	Environ []string
	// Progress, when set, receives the settler's own progress lines.
	Progress func(format string, a ...any)
}

// Printf is a progress line from a settler (nothing when Progress is nil).
func (e Env) Printf(format string, a ...any) {
	if e.Progress != nil {
		e.Progress(format, a...)
	}
}

// Actions a settler reports.
const (
	RolledBack = "rolled-back" // the operation was undone: the project is as before it
	Finished   = "finished"    // the operation was carried to its end
)

// Outcome is what settling did.
type Outcome struct {
	Op      string   `json:"op"`
	Project string   `json:"project"`
	Journal string   `json:"journal"` // the journal file settled (now removed)
	Action  string   `json:"action"`  // RolledBack or Finished
	Detail  string   `json:"detail"`  // what the project holds now, in a sentence
	Files   []string `json:"files"`   // the files involved (restored file, safety copy, ...)
}

// Settler settles a journal of its operation: it undoes the operation when
// j is not committed and finishes it when it is, leaving the journal file to
// Settle. It changes nothing when it cannot settle (a safety copy missing
// or failing verification) and says so in its error.
type Settler func(ctx context.Context, env Env, j *Journal) (Outcome, error)

var (
	mu       sync.Mutex
	settlers = map[string]Settler{}
)

// Register makes s settle the journals of op. A package that writes
// journals registers its settler in an init function.
func Register(op string, s Settler) {
	mu.Lock()
	defer mu.Unlock()
	settlers[op] = s
}

func settlerOf(op string) (Settler, []string) {
	mu.Lock()
	defer mu.Unlock()
	known := make([]string, 0, len(settlers))
	for k := range settlers {
		known = append(known, k)
	}
	sort.Strings(known)
	return settlers[op], known
}

// Settle finds the project's journal (if any) and settles it with its op's
// settler, under the project lock the caller already holds. It says on
// env.Out what it found and what it did, and removes the journal once
// settled. No journal: (nil, nil). A journal it cannot settle stops the
// caller: the error says why and the journal is kept.
func Settle(ctx context.Context, env Env, projectDir, project string) (*Outcome, error) {
	j, err := Load(projectDir, project)
	if err != nil || j == nil {
		return nil, err
	}
	p := Path(projectDir, project)
	s, known := settlerOf(j.Op)
	if s == nil {
		return nil, fmt.Errorf("found the journal %s of an %s, an operation this difyctl cannot settle (it settles: %s); settle it with the difyctl version that started it, then run the command again", p, j.Describe(), strings.Join(known, ", "))
	}
	env.report("found", fmt.Sprintf("found the journal %s: %s; settling it", p, j.Describe()), map[string]any{"journal": p, "op": j.Op, "project": j.Project, "steps": j.Steps, "committed": j.Committed})
	out, err := s(ctx, env, j)
	if err != nil {
		return nil, fmt.Errorf("settling the %s of project %s recorded in %s failed: %w; the journal is kept, and the command did nothing else", j.Op, project, p, err)
	}
	if err := Remove(p); err != nil {
		return nil, err
	}
	out.Op, out.Project, out.Journal = j.Op, project, p
	env.report("settled", fmt.Sprintf("settled the interrupted %s: %s: %s (files: %s); journal removed", j.Op, out.Action, out.Detail, strings.Join(out.Files, ", ")), out)
	return &out, nil
}

// Pending says, without changing anything, whether the project has an
// unsettled journal: one line for ps/status ("" when there is none).
func Pending(projectDir, project string) (string, error) {
	j, err := Load(projectDir, project)
	if err != nil || j == nil {
		return "", err
	}
	return fmt.Sprintf("%s (journal %s); the next up, start, restart, restore or backup settles it", j.Describe(), Path(projectDir, project)), nil
}

// report writes one line of what settling found or did: text, or a JSON
// object {"journal": event, ...}.
func (e Env) report(event, text string, v any) {
	if e.Out == nil {
		return
	}
	if !e.JSON {
		fmt.Fprintln(e.Out, text)
		return
	}
	b, err := json.Marshal(struct {
		Event   string `json:"journal"`
		Message string `json:"message"`
		Detail  any    `json:"detail"`
	}{event, text, v})
	if err != nil {
		fmt.Fprintln(e.Out, text)
		return
	}
	fmt.Fprintln(e.Out, string(b))
}
