package journal

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/difyctl/difyctl/internal/engine/enginefake"
)

type record struct {
	File   string `json:"file"`
	Safety string `json:"safety"`
}

func TestBeginStepCommitDone(t *testing.T) {
	dir := t.TempDir()
	h, err := Begin(dir, "p1", "restore-redis", record{File: "a.rdb", Safety: "s.rdb"})
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(Path(dir, "p1"))
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("journal mode %v, want 0600", st.Mode().Perm())
	}
	if err := h.Step("stopping"); err != nil {
		t.Fatal(err)
	}
	if err := h.Step("stopped"); err != nil {
		t.Fatal(err)
	}
	j, err := Load(dir, "p1")
	if err != nil || j == nil {
		t.Fatalf("Load: %v %v", j, err)
	}
	if j.Op != "restore-redis" || j.Project != "p1" || j.Dir != dir || j.PID != os.Getpid() || j.Committed {
		t.Fatalf("loaded %+v", j)
	}
	if !j.Did("stopping") || !j.Did("stopped") || j.Did("started") || j.Last() != "stopped" {
		t.Fatalf("steps %+v", j.Steps)
	}
	var r record
	if err := j.Decode(&r); err != nil || r.File != "a.rdb" || r.Safety != "s.rdb" {
		t.Fatalf("data %+v %v", r, err)
	}
	if err := h.SetData(record{File: "b.rdb"}); err != nil {
		t.Fatal(err)
	}
	if err := h.Commit(); err != nil {
		t.Fatal(err)
	}
	j, _ = Load(dir, "p1")
	if !j.Committed || j.Decode(&r) != nil || r.File != "b.rdb" {
		t.Fatalf("after commit %+v", j)
	}
	if !strings.Contains(j.Describe(), "past its point of no return") || !strings.Contains(j.Describe(), "stopping, stopped") {
		t.Fatalf("describe: %s", j.Describe())
	}
	// No temporary file is left beside the journal.
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 {
		t.Fatalf("directory holds %d entries, want the journal only", len(ents))
	}
	if err := h.Done(); err != nil {
		t.Fatal(err)
	}
	if j, err := Load(dir, "p1"); j != nil || err != nil {
		t.Fatalf("after Done: %v %v", j, err)
	}
}

func TestBeginRefusesPending(t *testing.T) {
	dir := t.TempDir()
	if _, err := Begin(dir, "p", "upgrade", nil); err != nil {
		t.Fatal(err)
	}
	_, err := Begin(dir, "p", "restore-redis", nil)
	if !errors.Is(err, ErrPending) {
		t.Fatalf("second Begin: %v, want ErrPending", err)
	}
	if !strings.Contains(err.Error(), "unfinished upgrade") || !strings.Contains(err.Error(), Path(dir, "p")) {
		t.Fatalf("error does not name the pending journal: %v", err)
	}
	// Another project's journal is its own.
	if _, err := Begin(dir, "q", "restore-redis", nil); err != nil {
		t.Fatal(err)
	}
}

func TestLoadUnreadable(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(Path(dir, "p"), []byte("{trunc"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(dir, "p"); err == nil || !strings.Contains(err.Error(), "not readable") {
		t.Fatalf("Load of a broken journal: %v", err)
	}
	if _, err := Begin(dir, "p", "x", nil); err == nil {
		t.Fatal("Begin over a broken journal succeeded")
	}
}

func TestSettleNoJournal(t *testing.T) {
	out, err := Settle(context.Background(), Env{Engine: enginefake.New()}, t.TempDir(), "p")
	if out != nil || err != nil {
		t.Fatalf("Settle without journal: %v %v", out, err)
	}
}

func TestSettleUnknownOp(t *testing.T) {
	dir := t.TempDir()
	if _, err := Begin(dir, "p", "test-unknown-op", nil); err != nil {
		t.Fatal(err)
	}
	_, err := Settle(context.Background(), Env{Engine: enginefake.New()}, dir, "p")
	if err == nil || !strings.Contains(err.Error(), "cannot settle") || !strings.Contains(err.Error(), "test-unknown-op") {
		t.Fatalf("Settle of an unknown op: %v", err)
	}
	if j, _ := Load(dir, "p"); j == nil {
		t.Fatal("the journal was removed though nothing settled it")
	}
}

func TestSettleRunsSettlerAndRemovesJournal(t *testing.T) {
	dir := t.TempDir()
	var saw *Journal
	Register("test-op", func(ctx context.Context, env Env, j *Journal) (Outcome, error) {
		saw = j
		if j.Committed {
			return Outcome{Action: Finished, Detail: "done", Files: []string{"new"}}, nil
		}
		return Outcome{Action: RolledBack, Detail: "undone", Files: []string{"old"}}, nil
	})
	h, _ := Begin(dir, "p", "test-op", record{File: "f"})
	_ = h.Step("one")
	var buf bytes.Buffer
	out, err := Settle(context.Background(), Env{Engine: enginefake.New(), Out: &buf}, dir, "p")
	if err != nil {
		t.Fatal(err)
	}
	if saw == nil || saw.Last() != "one" || out.Action != RolledBack || out.Journal != Path(dir, "p") || out.Op != "test-op" {
		t.Fatalf("outcome %+v, settler saw %+v", out, saw)
	}
	if !strings.Contains(buf.String(), "found the journal") || !strings.Contains(buf.String(), "rolled-back: undone (files: old)") {
		t.Fatalf("report: %s", buf.String())
	}
	if j, _ := Load(dir, "p"); j != nil {
		t.Fatal("journal left after settling")
	}

	h, _ = Begin(dir, "p", "test-op", nil)
	_ = h.Commit()
	buf.Reset()
	out, err = Settle(context.Background(), Env{Engine: enginefake.New(), Out: &buf, JSON: true}, dir, "p")
	if err != nil || out.Action != Finished {
		t.Fatalf("committed: %+v %v", out, err)
	}
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("JSON report: %q", buf.String())
	}
	var last struct {
		Journal string
		Detail  Outcome
	}
	if err := json.Unmarshal([]byte(lines[1]), &last); err != nil || last.Journal != "settled" || last.Detail.Action != Finished {
		t.Fatalf("JSON settled line %q: %v", lines[1], err)
	}
}

func TestSettleFailureKeepsJournal(t *testing.T) {
	dir := t.TempDir()
	Register("test-fail", func(ctx context.Context, env Env, j *Journal) (Outcome, error) {
		return Outcome{}, errors.New("the safety copy /x is missing")
	})
	_, _ = Begin(dir, "p", "test-fail", nil)
	_, err := Settle(context.Background(), Env{}, dir, "p")
	if err == nil || !strings.Contains(err.Error(), "/x is missing") || !strings.Contains(err.Error(), "journal is kept") {
		t.Fatalf("Settle: %v", err)
	}
	if j, _ := Load(dir, "p"); j == nil {
		t.Fatal("journal removed after a failed settle")
	}
	line, err := Pending(dir, "p")
	if err != nil || !strings.Contains(line, "unfinished test-fail") {
		t.Fatalf("Pending: %q %v", line, err)
	}
	if line, err := Pending(dir, "other"); line != "" || err != nil {
		t.Fatalf("Pending without journal: %q %v", line, err)
	}
}
