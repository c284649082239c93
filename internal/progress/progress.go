// Package progress shows what up and down are doing: one line per state
// change with timestamps (plain), one JSON object per event (json), or a
// live view with one line per service (tty, bubbletea). It writes to stderr;
// results go to stdout.
package progress

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"time"

	tea "github.com/charmbracelet/bubbletea"

	"github.com/difyctl/difyctl/compose"
	"github.com/difyctl/difyctl/internal/cmdutil"
	"github.com/difyctl/difyctl/internal/termsafe"
)

// Modes.
const (
	Auto  = "auto"
	TTY   = "tty"
	Plain = "plain"
	JSON  = "json"
	Quiet = "quiet"
)

// Usage describes the --progress flag.
const Usage = "progress output: auto (tty on a terminal, else plain), tty, plain, json, quiet"

// Writer receives events and renders them; Close ends the view.
type Writer interface {
	Event(compose.Event)
	Close()
}

// New returns the writer for mode ("auto": tty on a terminal, else plain).
func New(mode string, w io.Writer, isTTY, color bool) (Writer, error) {
	if mode == Auto {
		mode = Plain
		if isTTY {
			mode = TTY
		}
	}
	switch mode {
	case Plain:
		return &plain{w: w}, nil
	case JSON:
		enc := json.NewEncoder(w)
		enc.SetEscapeHTML(false)
		return &jsonW{enc: enc}, nil
	case Quiet:
		return quiet{}, nil
	case TTY:
		return newLive(w, color), nil
	}
	return nil, fmt.Errorf("--progress %q: use auto, tty, plain, json or quiet", mode)
}

type quiet struct{}

func (quiet) Event(compose.Event) {}
func (quiet) Close()              {}

type plain struct {
	mu sync.Mutex
	w  io.Writer
}

func (p *plain) Event(e compose.Event) {
	e = escaped(e)
	p.mu.Lock()
	defer p.mu.Unlock()
	line := fmt.Sprintf("%s %-20s %s", e.Time.UTC().Format("15:04:05.000"), e.Service, e.State)
	if e.Detail != "" {
		line += "  " + e.Detail
	}
	fmt.Fprintln(p.w, line)
}

func (p *plain) Close() {}

type jsonW struct {
	mu  sync.Mutex
	enc *json.Encoder
}

func (j *jsonW) Event(e compose.Event) {
	j.mu.Lock()
	defer j.mu.Unlock()
	_ = j.enc.Encode(e)
}

func (j *jsonW) Close() {}

// live is the terminal view.
type live struct {
	prog *tea.Program
	done chan struct{}
}

type row struct {
	state, detail string
	since         time.Time
	restarts      int // the engine restarted it this many times (crash loop in the making)
}

type model struct {
	rows  map[string]*row
	order []string
	start time.Time
	color bool
	final bool
}

type tick time.Time
type quitMsg struct{}

func (m *model) Init() tea.Cmd { return tickCmd() }

func tickCmd() tea.Cmd {
	return tea.Tick(200*time.Millisecond, func(t time.Time) tea.Msg { return tick(t) })
}

func (m *model) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	switch msg := msg.(type) {
	case compose.Event:
		r, ok := m.rows[msg.Service]
		if !ok {
			r = &row{}
			m.rows[msg.Service] = r
			m.order = append(m.order, msg.Service)
			sort.Strings(m.order)
		}
		r.state, r.detail, r.since = msg.State, msg.Detail, msg.Time
		if msg.State == compose.StateRestarted {
			r.restarts++
		}
	case tick:
		return m, tickCmd()
	case quitMsg:
		m.final = true
		return m, tea.Quit
	case tea.KeyMsg:
		if msg.String() == "ctrl+c" {
			return m, tea.Interrupt
		}
	}
	return m, nil
}

func (m *model) View() string {
	var b strings.Builder
	for _, s := range m.order {
		r := m.rows[s]
		mark := map[string]string{compose.StateHealthy: "✔", compose.StateCompleted: "✔", compose.StateUnchanged: "✔", compose.StateRemoved: "✔", compose.StateStopped: "✔",
			compose.StatePulled: "✔", compose.StateFailed: "✘", compose.StateRolledBack: "✘", compose.StateSkipped: "-", compose.StateInterrupted: "!"}[r.state]
		if mark == "" {
			mark = "…"
		}
		state := fmt.Sprintf("%-12s", r.state) // padded before colouring: escapes have no width
		if m.color {
			switch mark {
			case "✔":
				state = "\x1b[32m" + state + "\x1b[0m"
			case "✘":
				state = "\x1b[31m" + state + "\x1b[0m"
			}
		}
		detail := r.detail
		if r.restarts > 0 && r.state != compose.StateRestarted {
			// Restarts stay in view whatever comes next (the failure).
			detail = fmt.Sprintf("[%d restarts] %s", r.restarts, detail)
		}
		if len(detail) > 60 {
			detail = detail[:57] + "..."
		}
		elapsed := time.Since(m.start)
		if mark != "…" { // finished: the time it took
			elapsed = r.since.Sub(m.start)
		}
		fmt.Fprintf(&b, " %s %-22s %s %-60s %5.1fs\n", mark, s, state, detail, elapsed.Seconds())
	}
	return b.String()
}

func newLive(w io.Writer, color bool) *live {
	m := &model{rows: map[string]*row{}, start: time.Now(), color: color}
	l := &live{done: make(chan struct{})}
	l.prog = tea.NewProgram(m, tea.WithOutput(w), tea.WithInput(nil), tea.WithoutSignalHandler())
	go func() {
		_, _ = l.prog.Run()
		close(l.done)
	}()
	return l
}

func (l *live) Event(e compose.Event) { l.prog.Send(escaped(e)) }

// escaped: names, states and details (probe output, engine errors) come
// from outside; their control characters are shown escaped.
func escaped(e compose.Event) compose.Event {
	e.Service, e.State, e.Detail = termsafe.String(e.Service), termsafe.String(e.State), termsafe.String(e.Detail)
	return e
}

func (l *live) Close() {
	l.prog.Send(quitMsg{})
	<-l.done
}

// Finish ends a --progress json stream with one last event: "done" with
// summary, or "error" with the command's error and exit code, so the
// stream is JSON to its last line (the error is then not printed again as
// text). Other modes leave err to be printed as usual.
func Finish(w Writer, err error, summary string) error {
	j, ok := w.(*jsonW)
	if !ok {
		return err
	}
	e := struct {
		compose.Event
		ExitCode int `json:"exitCode"`
	}{Event: compose.Event{Time: time.Now(), State: compose.StateDone, Detail: summary}}
	if err != nil {
		e.State, e.Detail, e.ExitCode = compose.StateError, err.Error(), cmdutil.ExitCode(err)
		if e.Detail == "" || isSilent(err) {
			e.Detail = fmt.Sprintf("exit %d", e.ExitCode)
		}
	}
	j.mu.Lock()
	_ = j.enc.Encode(e)
	j.mu.Unlock()
	if err == nil {
		return nil
	}
	return cmdutil.ReportedError(cmdutil.ExitCode(err))
}

func isSilent(err error) bool {
	var ee *cmdutil.ExitError
	return errors.As(err, &ee) && ee.Err == nil
}
