// Package iostreams is the set of streams a command reads and writes, and what
// it may assume about them (terminal or not, colour or not).
//
// Results go to Out, progress and diagnostics to ErrOut. Commands take an
// *IOStreams instead of touching os.Stdout, so tests drive them with buffers.
package iostreams

import (
	"bytes"
	"io"
	"os"

	"github.com/mattn/go-isatty"
)

// IOStreams is the I/O a command may use.
type IOStreams struct {
	In     io.Reader
	Out    io.Writer
	ErrOut io.Writer

	stdinTTY  bool
	stdoutTTY bool
	stderrTTY bool
	noColor   bool
}

// System returns the process's own streams.
func System() *IOStreams {
	s := &IOStreams{In: os.Stdin, Out: os.Stdout, ErrOut: os.Stderr}
	s.stdinTTY = isTerminal(os.Stdin)
	s.stdoutTTY = isTerminal(os.Stdout)
	s.stderrTTY = isTerminal(os.Stderr)
	if _, set := os.LookupEnv("NO_COLOR"); set {
		s.noColor = true
	}
	if os.Getenv("TERM") == "dumb" {
		s.noColor = true
	}
	return s
}

// Test returns streams backed by buffers: stdin, stdout, stderr.
func Test() (*IOStreams, *bytes.Buffer, *bytes.Buffer, *bytes.Buffer) {
	in, out, errOut := &bytes.Buffer{}, &bytes.Buffer{}, &bytes.Buffer{}
	return &IOStreams{In: in, Out: out, ErrOut: errOut, noColor: true}, in, out, errOut
}

func isTerminal(f *os.File) bool {
	return isatty.IsTerminal(f.Fd()) || isatty.IsCygwinTerminal(f.Fd())
}

// IsStdinTTY reports whether standard input is a terminal.
func (s *IOStreams) IsStdinTTY() bool { return s.stdinTTY }

// IsStdoutTTY reports whether standard output is a terminal.
func (s *IOStreams) IsStdoutTTY() bool { return s.stdoutTTY }

// IsStderrTTY reports whether standard error is a terminal.
func (s *IOStreams) IsStderrTTY() bool { return s.stderrTTY }

// SetTTY overrides terminal detection (tests).
func (s *IOStreams) SetTTY(stdin, stdout, stderr bool) {
	s.stdinTTY, s.stdoutTTY, s.stderrTTY = stdin, stdout, stderr
}

// DisableColor turns colour off (--no-color).
func (s *IOStreams) DisableColor() { s.noColor = true }

// ColorEnabled reports whether output to stdout may carry ANSI colour: only to
// a terminal, and never with NO_COLOR or --no-color.
func (s *IOStreams) ColorEnabled() bool { return !s.noColor && s.stdoutTTY }

// ColorScheme returns the palette for stdout.
func (s *IOStreams) ColorScheme() *ColorScheme { return &ColorScheme{enabled: s.ColorEnabled()} }

// ColorScheme wraps strings in ANSI colour when enabled.
type ColorScheme struct{ enabled bool }

func (c *ColorScheme) wrap(code, s string) string {
	if !c.enabled {
		return s
	}
	return "\x1b[" + code + "m" + s + "\x1b[0m"
}

// Green colours s green.
func (c *ColorScheme) Green(s string) string { return c.wrap("32", s) }

// Yellow colours s yellow.
func (c *ColorScheme) Yellow(s string) string { return c.wrap("33", s) }

// Red colours s red.
func (c *ColorScheme) Red(s string) string { return c.wrap("31", s) }

// Gray dims s.
func (c *ColorScheme) Gray(s string) string { return c.wrap("90", s) }
