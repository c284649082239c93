// Package termsafe escapes control characters in text that comes from
// outside difyctl (container names, engine errors, log lines, values read
// from Redis) before it reaches a terminal, so that an escape sequence such
// as ESC]0;title BEL or ESC[1A cannot rewrite the title, move the cursor or
// hide earlier output. C0 and C1 controls, DEL, Unicode bidirectional
// overrides and invalid UTF-8 are shown as Go-style escapes (\x1b, \u202e).
package termsafe

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// String escapes every control character of s, newlines and tabs included:
// for one-line fields (names, values, error messages).
func String(s string) string { return escape(s, false) }

// Line escapes the control characters of one log line, keeping tabs.
func Line(s string) string { return escape(s, true) }

// Text escapes the control characters of a multi-line message (an error
// quoting the engine, a container or Redis), keeping newlines and tabs.
func Text(s string) string {
	if !strings.Contains(s, "\n") {
		return Line(s)
	}
	parts := strings.Split(s, "\n")
	for i, p := range parts {
		parts[i] = Line(p)
	}
	return strings.Join(parts, "\n")
}

func escape(s string, keepTab bool) string {
	if clean(s, keepTab) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 16)
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n == 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case r == '\t' && keepTab:
			b.WriteByte('\t')
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, `\x%02x`, r)
		case unsafeRune(r):
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteString(s[i : i+n])
		}
		i += n
	}
	return b.String()
}

// clean reports whether s needs no escaping (the common case, no copy).
func clean(s string, keepTab bool) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c == 0x7f {
			if c == '\t' && keepTab {
				continue
			}
			return false
		}
		if c >= 0x80 {
			return cleanUTF8(s[i:], keepTab)
		}
	}
	return true
}

func cleanUTF8(s string, keepTab bool) bool {
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		if (r == utf8.RuneError && n == 1) || r < 0x20 || r == 0x7f || unsafeRune(r) {
			if r == '\t' && keepTab {
				i += n
				continue
			}
			return false
		}
		i += n
	}
	return true
}

// unsafeRune: C1 controls and the bidirectional overrides and isolates
// that reorder what a terminal shows.
func unsafeRune(r rune) bool {
	return (r >= 0x80 && r <= 0x9f) || (r >= 0x202a && r <= 0x202e) || (r >= 0x2066 && r <= 0x2069) || r == 0x200e || r == 0x200f
}
