package compose

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/difyctl/difyctl/internal/termsafe"
)

// MaxLogLine is the longest log line shown; the rest of a longer line is
// dropped and counted ("[... N bytes cut]"), so that memory stays constant
// whatever a container prints (a 300 MB line without a newline).
const MaxLogLine = 64 << 10

// logOut is the output the containers' lines share: whole lines, one at a
// time, through a 64 KiB buffer (one write per buffer, not per line),
// flushed every 100 ms when following and at the end.
type logOut struct {
	mu   sync.Mutex
	bw   *bufio.Writer
	stop chan struct{}
	done chan struct{}
}

func newLogOut(w io.Writer, follow bool) *logOut {
	o := &logOut{bw: bufio.NewWriterSize(w, 64<<10)}
	if follow {
		o.stop, o.done = make(chan struct{}), make(chan struct{})
		go func() {
			defer close(o.done)
			t := time.NewTicker(100 * time.Millisecond)
			defer t.Stop()
			for {
				select {
				case <-o.stop:
					return
				case <-t.C:
					o.mu.Lock()
					o.bw.Flush()
					o.mu.Unlock()
				}
			}
		}()
	}
	return o
}

func (o *logOut) writeLine(b []byte) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	_, err := o.bw.Write(b)
	return err
}

func (o *logOut) close() error {
	if o.stop != nil {
		close(o.stop)
		<-o.done
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.bw.Flush()
}

// lineWriter cuts a container's log stream into whole lines, each at most
// MaxLogLine bytes, and writes them with a prefix to the shared logOut.
// Each byte is looked at once (linear time); memory is one MaxLogLine
// buffer.
type lineWriter struct {
	out    *logOut
	prefix string
	escape bool // control characters escaped (a terminal)
	buf    []byte
	cut    int64 // bytes dropped from the current line
	emit   func(line []byte, cut int64) error
	line   []byte // reused for each written line
}

func newLineWriter(out *logOut, prefix string, escape bool) *lineWriter {
	// The prefix names the service from a container label: always escaped.
	lw := &lineWriter{out: out, prefix: termsafe.String(prefix), escape: escape, buf: make([]byte, 0, 4096)}
	lw.emit = lw.write
	return lw
}

func (p *lineWriter) Write(b []byte) (int, error) {
	n := len(b)
	for len(b) > 0 {
		i := bytes.IndexByte(b, '\n')
		chunk := b
		if i >= 0 {
			chunk = b[:i]
		}
		if room := MaxLogLine - len(p.buf); room > 0 {
			take := min(room, len(chunk))
			p.buf = append(p.buf, chunk[:take]...)
			p.cut += int64(len(chunk) - take)
		} else {
			p.cut += int64(len(chunk))
		}
		if i < 0 {
			break
		}
		if err := p.emit(p.buf, p.cut); err != nil {
			return 0, err
		}
		p.buf, p.cut = p.buf[:0], 0
		b = b[i+1:]
	}
	return n, nil
}

// flush writes an unfinished last line.
func (p *lineWriter) flush() error {
	if len(p.buf) == 0 && p.cut == 0 {
		return nil
	}
	err := p.emit(p.buf, p.cut)
	p.buf, p.cut = p.buf[:0], 0
	return err
}

func (p *lineWriter) write(line []byte, cut int64) error {
	out := append(p.line[:0], p.prefix...)
	if p.escape {
		out = append(out, termsafe.Line(string(line))...)
	} else {
		out = append(out, line...)
	}
	if cut > 0 {
		out = fmt.Appendf(out, " [... %d bytes cut]", cut)
	}
	out = append(out, '\n')
	p.line = out
	return p.out.writeLine(out)
}

// LogLine is one line of `logs -o json`. Cut counts the bytes dropped from
// a line longer than MaxLogLine.
type LogLine struct {
	Service   string `json:"service"`
	Container string `json:"container"`
	Line      string `json:"line"`
	Cut       int64  `json:"cut,omitempty"`
}

// newJSONLineWriter writes each line as one LogLine object (JSON escapes
// control characters itself).
func newJSONLineWriter(out *logOut, service, container string) *lineWriter {
	lw := &lineWriter{out: out, buf: make([]byte, 0, 4096)}
	lw.emit = func(line []byte, cut int64) error {
		b, err := json.Marshal(LogLine{Service: service, Container: container, Line: string(line), Cut: cut})
		if err != nil {
			return err
		}
		return out.writeLine(append(b, '\n'))
	}
	return lw
}

// tailLines keeps the last n lines of a stream, each capped as in logs and
// escaped for a terminal: up's diagnosis of a failed service. Memory is at
// most n lines of MaxLogLine.
type tailLines struct {
	lw    *lineWriter
	lines []string
	n     int
}

func newTailLines(n int) *tailLines {
	t := &tailLines{n: n}
	t.lw = &lineWriter{buf: make([]byte, 0, 512)}
	t.lw.emit = func(line []byte, cut int64) error {
		if t.n <= 0 {
			return nil
		}
		s := termsafe.Line(string(line))
		if cut > 0 {
			s += fmt.Sprintf(" [... %d bytes cut]", cut)
		}
		if len(t.lines) == t.n {
			copy(t.lines, t.lines[1:])
			t.lines = t.lines[:t.n-1]
		}
		t.lines = append(t.lines, s)
		return nil
	}
	return t
}

func (t *tailLines) Write(b []byte) (int, error) { return t.lw.Write(b) }

// Lines returns the kept lines, the unfinished last one included.
func (t *tailLines) Lines() []string {
	t.lw.flush()
	return t.lines
}
