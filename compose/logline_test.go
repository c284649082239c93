package compose

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestLineWriterCapsAndPrefixes(t *testing.T) {
	var out bytes.Buffer
	lo := newLogOut(&out, false)
	lw := newLineWriter(lo, "api | ", false)
	long := strings.Repeat("x", MaxLogLine+1000)
	// Written in odd pieces, the way the engine's frames arrive.
	in := "short\n" + long + "\nsplit "
	for i := 0; i < len(in); i += 777 {
		lw.Write([]byte(in[i:min(i+777, len(in))]))
	}
	lw.Write([]byte("line\nunfinished"))
	lw.flush()
	lo.close()
	want := "api | short\n" + "api | " + strings.Repeat("x", MaxLogLine) + " [... 1000 bytes cut]\n" + "api | split line\n" + "api | unfinished\n"
	if out.String() != want {
		t.Fatalf("got %d bytes, want %d; tail %q", out.Len(), len(want), out.String()[max(0, out.Len()-80):])
	}
}

func TestLineWriterEscapesOnlyWhenAsked(t *testing.T) {
	line := "\x1b]0;pwned\x07\x1b[1Ahello\tworld\n"
	var raw, esc bytes.Buffer
	r, e := newLogOut(&raw, true), newLogOut(&esc, false)
	newLineWriter(r, "", false).Write([]byte(line))
	newLineWriter(e, "", true).Write([]byte(line))
	r.close()
	e.close()
	if raw.String() != line {
		t.Fatalf("raw stream changed: %q", raw.String())
	}
	if esc.String() != `\x1b]0;pwned\x07\x1b[1Ahello`+"\tworld\n" {
		t.Fatalf("escaped: %q", esc.String())
	}
}

// A line far longer than the cap keeps memory at the cap: the buffer never
// grows past MaxLogLine.
func TestLineWriterConstantMemory(t *testing.T) {
	lw := newLineWriter(newLogOut(&bytes.Buffer{}, false), "", false)
	chunk := bytes.Repeat([]byte("y"), 1<<20)
	for range 64 {
		lw.Write(chunk)
	}
	if cap(lw.buf) > MaxLogLine {
		t.Fatalf("buffer grew to %d", cap(lw.buf))
	}
	if lw.cut != 64<<20-MaxLogLine {
		t.Fatalf("cut %d", lw.cut)
	}
}

func TestTailLines(t *testing.T) {
	tl := newTailLines(3)
	for i := range 10 {
		fmt.Fprintf(tl, "line %d\n", i)
	}
	tl.Write([]byte("last \x1b[2J" + strings.Repeat("z", MaxLogLine)))
	got := tl.Lines()
	if len(got) != 3 || got[0] != "line 8" || got[1] != "line 9" || !strings.HasPrefix(got[2], `last \x1b[2J`) || !strings.HasSuffix(got[2], "[... 9 bytes cut]") {
		t.Fatalf("%d lines; last ends %q", len(got), got[len(got)-1][max(0, len(got[len(got)-1])-40):])
	}
	if len(newTailLines(0).Lines()) != 0 {
		t.Fatal("n=0")
	}
}

// Following, lines reach the output within the flush period, not at the end.
func TestLogOutFlushesWhenFollowing(t *testing.T) {
	var buf bytes.Buffer
	o := newLogOut(&buf, true)
	defer o.close()
	o.writeLine([]byte("now\n"))
	deadline := time.Now().Add(5 * time.Second)
	for {
		o.mu.Lock()
		got := buf.String()
		o.mu.Unlock()
		if got == "now\n" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("not flushed: %q", got)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
