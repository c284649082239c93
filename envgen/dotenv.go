// Package envgen generates, reads, edits, validates and upgrades a project's
// .env file against the variable schema of the embedded env template.
package envgen

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/compose-spec/compose-go/v2/dotenv"
)

// Doc is a .env file as lines, so that editing it keeps every comment, blank
// line and the order of variables. Values are decoded with godotenv's rules
// (quotes, escapes, `export`, inline comments), the rules docker compose uses.
type Doc struct {
	lines []line
}

type line struct {
	raw   string // the text as it stands in the file (may span lines for quoted values)
	key   string // empty for comments and blank lines
	value string // decoded value
}

var assignRe = regexp.MustCompile(`^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_.]*)\s*=`)

// ParseError names the line that could not be read.
type ParseError struct {
	Line int
	Msg  string
}

func (e *ParseError) Error() string { return fmt.Sprintf("line %d: %s", e.Line, e.Msg) }

// Parse reads a .env document.
func Parse(data []byte) (*Doc, error) {
	text := strings.ReplaceAll(string(data), "\r\n", "\n")
	rows := strings.Split(text, "\n")
	if len(rows) > 0 && rows[len(rows)-1] == "" {
		rows = rows[:len(rows)-1]
	}
	d := &Doc{}
	seen := map[string]string{}
	lookup := func(k string) (string, bool) { v, ok := seen[k]; return v, ok }
	for i := 0; i < len(rows); i++ {
		r := rows[i]
		m := assignRe.FindStringSubmatch(r)
		if m == nil {
			t := strings.TrimSpace(r)
			if t != "" && !strings.HasPrefix(t, "#") {
				return nil, &ParseError{Line: i + 1, Msg: fmt.Sprintf("%q is neither KEY=value nor a comment", truncate(t, 40))}
			}
			d.lines = append(d.lines, line{raw: r})
			continue
		}
		start := i
		raw := r
		// A quoted value may continue on the next lines until its closing quote.
		rest := strings.TrimLeft(r[len(m[0]):], " \t")
		if q := quoteOf(rest); q != 0 && !closed(rest[1:], q) {
			for i+1 < len(rows) {
				i++
				raw += "\n" + rows[i]
				if closed(rows[i], q) {
					break
				}
			}
			if !closed(raw[len(m[0])+1:], q) {
				return nil, &ParseError{Line: start + 1, Msg: fmt.Sprintf("%s: unterminated %c quote", m[1], q)}
			}
		}
		env, err := dotenv.UnmarshalWithLookup(raw, lookup)
		if err != nil {
			return nil, &ParseError{Line: start + 1, Msg: fmt.Sprintf("%s: %v", m[1], err)}
		}
		seen[m[1]] = env[m[1]]
		d.lines = append(d.lines, line{raw: raw, key: m[1], value: env[m[1]]})
	}
	return d, nil
}

func quoteOf(s string) byte {
	if s != "" && (s[0] == '"' || s[0] == '\'') {
		return s[0]
	}
	return 0
}

// closed reports whether s holds the closing quote q (not escaped for ").
func closed(s string, q byte) bool {
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && q == '"' {
			i++
			continue
		}
		if s[i] == q {
			return true
		}
	}
	return false
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// Bytes renders the document.
func (d *Doc) Bytes() []byte {
	var b strings.Builder
	for _, l := range d.lines {
		b.WriteString(l.raw)
		b.WriteByte('\n')
	}
	return []byte(b.String())
}

// Get returns the value of key (the last assignment wins, as in godotenv).
func (d *Doc) Get(key string) (string, bool) {
	for i := len(d.lines) - 1; i >= 0; i-- {
		if d.lines[i].key == key {
			return d.lines[i].value, true
		}
	}
	return "", false
}

// Line returns the 1-based line number of key's last assignment, or 0.
func (d *Doc) Line(key string) int {
	n, found := 1, 0
	for _, l := range d.lines {
		if l.key == key {
			found = n
		}
		n += strings.Count(l.raw, "\n") + 1
	}
	return found
}

// Keys returns the assigned keys in file order, each once.
func (d *Doc) Keys() []string {
	seen := map[string]bool{}
	var keys []string
	for _, l := range d.lines {
		if l.key != "" && !seen[l.key] {
			seen[l.key] = true
			keys = append(keys, l.key)
		}
	}
	return keys
}

// Map returns every key's value.
func (d *Doc) Map() map[string]string {
	m := map[string]string{}
	for _, l := range d.lines {
		if l.key != "" {
			m[l.key] = l.value
		}
	}
	return m
}

// Set changes key's value in place (its last assignment), or appends
// KEY=value at the end when the key is absent.
func (d *Doc) Set(key, value string) {
	raw := key + "=" + Quote(value)
	for i := len(d.lines) - 1; i >= 0; i-- {
		if d.lines[i].key == key {
			prefix := ""
			if strings.HasPrefix(strings.TrimSpace(d.lines[i].raw), "export ") {
				prefix = "export "
			}
			d.lines[i] = line{raw: prefix + raw, key: key, value: value}
			return
		}
	}
	d.lines = append(d.lines, line{raw: raw, key: key, value: value})
}

// AppendComment adds a comment line (or a blank line for "").
func (d *Doc) AppendComment(text string) {
	if text == "" {
		d.lines = append(d.lines, line{})
		return
	}
	d.lines = append(d.lines, line{raw: "# " + text})
}

var bareRe = regexp.MustCompile(`^[A-Za-z0-9_./:@,+=%*^~-]*$`)

// Quote encodes a value so that godotenv (and docker compose) read it back
// exactly: bare when it is made of safe characters, single-quoted (no
// escapes, no interpolation) when it has no single quote, no newline and no
// trailing backslash (which would escape the closing quote),
// double-quoted with escapes otherwise.
func Quote(v string) string {
	if bareRe.MatchString(v) {
		return v
	}
	if !strings.ContainsAny(v, "'\n\r") && !strings.HasSuffix(v, `\`) {
		return "'" + v + "'"
	}
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`, "\r", `\r`, "$", `\$`)
	return `"` + r.Replace(v) + `"`
}
