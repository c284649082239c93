package progress

import (
	"bytes"
	"encoding/json"
	"errors"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/difyctl/difyctl/compose"
	"github.com/difyctl/difyctl/internal/cmdutil"
)

var t0 = time.Date(2026, 11, 22, 3, 0, 0, 0, time.UTC)

func TestPlainAndJSON(t *testing.T) {
	var b bytes.Buffer
	w, err := New(Plain, &b, false, false)
	if err != nil {
		t.Fatal(err)
	}
	w.Event(compose.Event{Time: t0, Service: "api", State: compose.StateWaiting, Detail: "db to be healthy"})
	w.Close()
	if got := b.String(); got != "03:00:00.000 api                  waiting  db to be healthy\n" {
		t.Fatalf("plain: %q", got)
	}
	b.Reset()
	w, _ = New(JSON, &b, false, false)
	w.Event(compose.Event{Time: t0, Service: "db", State: compose.StateHealthy})
	var e compose.Event
	if err := json.Unmarshal(b.Bytes(), &e); err != nil || e.Service != "db" || e.State != "healthy" {
		t.Fatalf("json: %v %s", err, b.String())
	}
	if _, err := New("fancy", &b, false, false); err == nil {
		t.Fatal("unknown mode accepted")
	}
	// auto: plain without a terminal.
	if w, _ := New(Auto, &b, false, false); w == nil {
		t.Fatal("auto gave nothing")
	} else if _, ok := w.(*plain); !ok {
		t.Fatalf("auto without a terminal is %T", w)
	}
}

func TestLiveViewRows(t *testing.T) {
	m := &model{rows: map[string]*row{}, start: t0}
	m.Update(compose.Event{Time: t0.Add(time.Second), Service: "web", State: compose.StateWaiting, Detail: "api to start"})
	m.Update(compose.Event{Time: t0.Add(2 * time.Second), Service: "api", State: compose.StateHealthy, Detail: "after 3 probe(s)"})
	m.Update(compose.Event{Time: t0.Add(3 * time.Second), Service: "job", State: compose.StateFailed, Detail: "exited with code 1"})
	v := m.View()
	lines := strings.Split(strings.TrimRight(v, "\n"), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], " ✔ api") || !strings.HasPrefix(lines[1], " ✘ job") || !strings.HasPrefix(lines[2], " … web") {
		t.Fatalf("view:\n%s", v)
	}
	if !strings.Contains(lines[0], "2.0s") || !strings.Contains(lines[1], "3.0s") {
		t.Fatalf("finished rows should show the time they took:\n%s", v)
	}
	if strings.Contains(v, "\x1b[") {
		t.Fatal("colour without colour enabled")
	}
}

// The live view shows difyctl's probes as they run, and keeps a service's
// restarts in view.
func TestLiveViewProbesAndRestarts(t *testing.T) {
	m := &model{rows: map[string]*row{}, start: t0}
	m.Update(compose.Event{Time: t0, Service: "api", State: compose.StateProbe, Detail: "difyctl probe 2: failed (exit 7) in 12ms: curl: (7)"})
	if v := m.View(); !strings.Contains(v, "probe") || !strings.Contains(v, "difyctl probe 2: failed (exit 7)") {
		t.Fatalf("view:\n%s", v)
	}
	m.Update(compose.Event{Time: t0, Service: "worker", State: compose.StateRestarted, Detail: "restart 1: exited with code 127"})
	m.Update(compose.Event{Time: t0, Service: "worker", State: compose.StateRestarted, Detail: "restart 2: exited with code 127"})
	m.Update(compose.Event{Time: t0, Service: "worker", State: compose.StateFailed, Detail: "crash loop"})
	if v := m.View(); !strings.Contains(v, "[2 restarts] crash loop") {
		t.Fatalf("view:\n%s", v)
	}
}

// With colour, the columns line up as without: escapes take no width.
func TestLiveViewColumnsWithColour(t *testing.T) {
	ansi := regexp.MustCompile("\x1b\\[[0-9;]*m")
	for _, color := range []bool{false, true} {
		m := &model{rows: map[string]*row{}, start: t0, color: color}
		m.Update(compose.Event{Time: t0, Service: "api", State: compose.StateHealthy, Detail: "after 3 probe(s)"})
		m.Update(compose.Event{Time: t0, Service: "web", State: compose.StateWaiting, Detail: "api to start"})
		lines := strings.Split(strings.TrimRight(ansi.ReplaceAllString(m.View(), ""), "\n"), "\n")
		if len(lines) != 2 || strings.Index(lines[0], "after") != strings.Index(lines[1], "api to start") {
			t.Fatalf("colour %v: detail columns differ:\n%s", color, strings.Join(lines, "\n"))
		}
	}
}

// --progress json ends with a JSON event: done, or the error with its exit
// code (and the error is then not printed again as text).
func TestFinishEndsJSONStream(t *testing.T) {
	var b strings.Builder
	w, _ := New(JSON, &b, false, false)
	w.Event(compose.Event{Service: "db", State: compose.StateHealthy})
	err := Finish(w, cmdutil.WithExitCode(cmdutil.ExitFailure, errors.New("db did not come up")), "")
	if cmdutil.ExitCode(err) != cmdutil.ExitFailure || err.Error() != "" && !strings.Contains(err.Error(), "exit") {
		t.Fatalf("returned %v", err)
	}
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	var last struct {
		State, Detail string
		ExitCode      int
	}
	if json.Unmarshal([]byte(lines[len(lines)-1]), &last) != nil || last.State != compose.StateError || last.Detail != "db did not come up" || last.ExitCode != 1 {
		t.Fatalf("last line %q", lines[len(lines)-1])
	}
	b.Reset()
	if err := Finish(w, nil, "project p up"); err != nil || !strings.Contains(b.String(), `"state":"done","detail":"project p up"`) {
		t.Fatalf("%v %q", err, b.String())
	}
	var plainOut strings.Builder
	pw, _ := New(Plain, &plainOut, false, false)
	in := errors.New("x")
	if Finish(pw, in, "") != in || plainOut.Len() != 0 {
		t.Fatal("plain mode must leave the error alone")
	}
}
