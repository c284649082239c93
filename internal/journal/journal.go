// Package journal is the record an operation that must be finished or
// undone after a kill (a restore, an upgrade) keeps of its progress: one
// file per project, 0600, rewritten atomically (internal/atomicfile) before
// the operation's first change and after each step, removed once the result
// is verified. A later command that changes or starts the project finds a
// journal left by a killed run and settles it, under the project lock, with
// the settler the operation registered: undone before the operation's point
// of no return, finished after it.
package journal

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/difyctl/difyctl/internal/atomicfile"
)

// Path is where a project's journal lives: <projectDir>/.difyctl-journal-<project>.json.
func Path(projectDir, project string) string {
	return filepath.Join(projectDir, ".difyctl-journal-"+project+".json")
}

// Step is one step of an operation, recorded once done.
type Step struct {
	Name string    `json:"name"`
	At   time.Time `json:"at"`
}

// Journal is what an operation records of itself.
type Journal struct {
	Op        string          `json:"op"` // "restore-redis", "restore-all", "upgrade", ...
	Project   string          `json:"project"`
	Dir       string          `json:"dir"` // project directory
	PID       int             `json:"pid"`
	Host      string          `json:"host"`
	Started   time.Time       `json:"started"`
	Steps     []Step          `json:"steps"`     // steps recorded, in order (an operation may record a step both when asked and when done)
	Committed bool            `json:"committed"` // past the point of no return: settling finishes, never undoes
	Data      json.RawMessage `json:"data"`      // the operation's own record (files, safety copy, release...)
}

// Did reports whether step name is recorded as done.
func (j *Journal) Did(name string) bool {
	for _, s := range j.Steps {
		if s.Name == name {
			return true
		}
	}
	return false
}

// Last is the name of the last step done ("" before the first).
func (j *Journal) Last() string {
	if len(j.Steps) == 0 {
		return ""
	}
	return j.Steps[len(j.Steps)-1].Name
}

// Decode reads the operation's Data into v.
func (j *Journal) Decode(v any) error {
	if len(j.Data) == 0 {
		return fmt.Errorf("the %s journal of project %s holds no data", j.Op, j.Project)
	}
	if err := json.Unmarshal(j.Data, v); err != nil {
		return fmt.Errorf("reading the %s journal of project %s: %w", j.Op, j.Project, err)
	}
	return nil
}

// Describe is one line naming the journal's operation and how far it got.
func (j *Journal) Describe() string {
	steps := "no step recorded"
	if len(j.Steps) > 0 {
		names := make([]string, len(j.Steps))
		for i, s := range j.Steps {
			names[i] = s.Name
		}
		steps = "steps recorded: " + strings.Join(names, ", ")
	}
	state := "before its point of no return"
	if j.Committed {
		state = "past its point of no return"
	}
	return fmt.Sprintf("unfinished %s of project %s started %s by pid %d on %s (%s; %s)",
		j.Op, j.Project, j.Started.UTC().Format(time.RFC3339), j.PID, j.Host, steps, state)
}

// ErrPending is what Begin returns when the project has an unsettled journal.
var ErrPending = errors.New("an unfinished operation's journal is pending")

// PendingError names the journal Begin found.
type PendingError struct {
	Path    string
	Journal *Journal
}

func (e *PendingError) Error() string {
	return fmt.Sprintf("%s: %s (%s); run `difyctl up` (or start, restore) to settle it first", ErrPending, e.Journal.Describe(), e.Path)
}

// Unwrap makes errors.Is(err, ErrPending) hold.
func (e *PendingError) Unwrap() error { return ErrPending }

// Handle is a journal being written by the running operation.
type Handle struct {
	path string
	j    Journal
	now  func() time.Time
}

// Begin writes the journal of op before the operation's first change. It
// refuses (a *PendingError, errors.Is ErrPending) when the project already
// has one: that one must be settled first. data is the operation's record.
func Begin(projectDir, project, op string, data any) (*Handle, error) {
	p := Path(projectDir, project)
	if old, err := Load(projectDir, project); err != nil {
		return nil, err
	} else if old != nil {
		return nil, &PendingError{Path: p, Journal: old}
	}
	host, _ := os.Hostname()
	h := &Handle{path: p, now: time.Now, j: Journal{Op: op, Project: project, Dir: projectDir, PID: os.Getpid(), Host: host, Steps: []Step{}}}
	h.j.Started = h.now().UTC()
	if err := h.setData(data); err != nil {
		return nil, err
	}
	if err := h.write(); err != nil {
		return nil, err
	}
	return h, nil
}

// Path is the journal's file.
func (h *Handle) Path() string { return h.path }

// Journal is a copy of what is recorded.
func (h *Handle) Journal() *Journal {
	j := h.j
	j.Steps = append([]Step(nil), h.j.Steps...)
	return &j
}

// Step records step name as done.
func (h *Handle) Step(name string) error {
	h.j.Steps = append(h.j.Steps, Step{Name: name, At: h.now().UTC()})
	return h.write()
}

// SetData replaces the operation's record.
func (h *Handle) SetData(data any) error {
	if err := h.setData(data); err != nil {
		return err
	}
	return h.write()
}

func (h *Handle) setData(data any) error {
	b, err := json.Marshal(data)
	if err != nil {
		return fmt.Errorf("recording the %s journal's data: %w", h.j.Op, err)
	}
	h.j.Data = b
	return nil
}

// Commit marks the point of no return: from here, settling finishes the
// operation and never undoes it.
func (h *Handle) Commit() error {
	h.j.Committed = true
	return h.write()
}

// Done removes the journal once the operation's result is verified (or the
// operation was undone).
func (h *Handle) Done() error { return Remove(h.path) }

func (h *Handle) write() error {
	b, err := json.MarshalIndent(h.j, "", "  ")
	if err != nil {
		return err
	}
	if err := atomicfile.WriteFile(h.path, append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("writing the %s journal %s: %w", h.j.Op, h.path, err)
	}
	return nil
}

// Remove removes a journal file (no error when it is gone already) and
// makes the removal durable.
func Remove(path string) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("removing the journal %s: %w", path, err)
	}
	return atomicfile.SyncDir(filepath.Dir(path))
}

// Load returns the project's journal, or (nil, nil) when there is none.
func Load(projectDir, project string) (*Journal, error) {
	p := Path(projectDir, project)
	b, err := os.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading the journal %s: %w", p, err)
	}
	var j Journal
	if err := json.Unmarshal(b, &j); err != nil {
		return nil, fmt.Errorf("the journal %s is not readable (%v); an operation on project %s was interrupted: see the file, then move it away to go on", p, err, project)
	}
	if j.Op == "" {
		return nil, fmt.Errorf("the journal %s names no operation; see the file, then move it away to go on", p)
	}
	return &j, nil
}
