// Package envgen generates, reads, edits, validates and upgrades a project's
// .env file against the variable schema of the embedded env template.
package envgen

import (
	"bytes"
	"fmt"
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/compose-spec/compose-go/v2/dotenv"
)

// Doc is a .env file as segments of its exact bytes: statements (one
// assignment each) and the text between them (comments, blank lines, line
// endings). Editing replaces one statement's bytes and keeps every other
// byte: comments, order, quoting, CRLF line endings, a UTF-8 BOM, variables
// the schema does not know.
//
// Statements are found with the rules of compose-go's dotenv parser (the one
// docker compose reads .env with) and each value is decoded by that parser,
// so what docker compose reads, difyctl reads. Reading is linear in the
// file's size.
type Doc struct {
	bom   bool
	eol   string // the line ending the file uses ("\n" or "\r\n")
	segs  []seg
	index map[string]int // key -> its last statement
	// lines is false after an edit that may have moved line numbers.
	lines bool
}

// seg is one statement with the text before it (lead), or text alone (key
// "").
type seg struct {
	lead      string // comments, blank lines and line endings before the statement
	raw       string // the statement's bytes as they stand in the file
	key       string // "" for text alone
	value     string // decoded value
	valueOff  int32  // where the value starts in raw (-1: no '=', inherited)
	line      int32  // 1-based line where the statement starts
	commentAt int32  // >0: raw[commentAt:] is an inline comment to keep on edit
	unset     bool   // an inherited key (KEY alone) that the environment does not set
}

// ParseError names the line and the variable that could not be read. It never
// holds the text of the line: a .env holds secrets.
type ParseError struct {
	Line int
	Key  string // "" when the line has no readable name
	Msg  string
}

func (e *ParseError) Error() string {
	if e.Key != "" {
		return fmt.Sprintf("line %d (%s): %s", e.Line, e.Key, e.Msg)
	}
	return fmt.Sprintf("line %d: %s", e.Line, e.Msg)
}

var (
	utf8BOM  = "\uFEFF"
	exportRe = regexp.MustCompile(`^export\s+`)
)

// isSpace is compose-go's: a space but not a line break.
func isSpace(r rune) bool {
	switch r {
	case '\t', '\v', '\f', '\r', ' ', 0x85, 0xA0:
		return true
	}
	return false
}

// Parse reads a .env document. Values are interpolated against earlier
// values of the same file only (not the process environment), as difyctl
// stores them.
func Parse(data []byte) (*Doc, error) {
	return ParseWithLookup(data, nil)
}

// ParseWithLookup reads a .env document; lookup (may be nil) is consulted
// first for ${VAR} in values and for keys written without '=', as docker
// compose consults the process environment.
func ParseWithLookup(data []byte, lookup func(string) (string, bool)) (*Doc, error) {
	return parseString(string(data), lookup)
}

func parseString(s string, lookup func(string) (string, bool)) (*Doc, error) {
	d := &Doc{eol: "\n", lines: true}
	if strings.HasPrefix(s, utf8BOM) {
		d.bom, s = true, s[len(utf8BOM):]
	}
	// At most one statement a line: allocate once.
	n := strings.Count(s, "\n") + 1
	d.segs = make([]seg, 0, n)
	d.index = make(map[string]int, n)
	if i := strings.IndexByte(s, '\n'); i > 0 && s[i-1] == '\r' {
		d.eol = "\r\n"
	}
	look := func(k string) (string, bool) {
		if lookup != nil {
			if v, ok := lookup(k); ok {
				return v, true
			}
		}
		return d.Get(k) // values read so far
	}
	line, counted := 1, 0 // line number at byte `counted`
	lineAt := func(pos int) int {
		line += strings.Count(s[counted:pos], "\n")
		counted = pos
		return line
	}
	text := 0 // start of the current text segment
	pos := 0
	for {
		// Skip whitespace and comments (getStatementStart).
		start := -1
		for pos < len(s) {
			i := strings.IndexFunc(s[pos:], func(r rune) bool { return !unicode.IsSpace(r) })
			if i < 0 {
				pos = len(s)
				break
			}
			pos += i
			if s[pos] != '#' {
				start = pos
				break
			}
			j := strings.IndexByte(s[pos:], '\n')
			if j < 0 {
				pos = len(s)
				break
			}
			pos += j
		}
		if start < 0 {
			break
		}
		st, end, err := scanStatement(s, start, lineAt(start))
		if err != nil {
			return nil, err
		}
		raw := s[start:end]
		if st.valueOff < 0 {
			v, ok := look(st.key)
			st.value, st.unset = v, !ok
		} else if v, ok := literalValue(raw, st); ok {
			st.value = v
		} else {
			env, err := dotenv.UnmarshalWithLookup(raw, look)
			if err != nil {
				// compose-go's message quotes the text: keep only the kind.
				return nil, &ParseError{Line: int(st.line), Key: st.key, Msg: "the value cannot be read (unbalanced quote or a bad ${...} reference)"}
			}
			st.value = env[st.key]
		}
		if strings.IndexByte(st.value, 0) >= 0 {
			return nil, &ParseError{Line: int(st.line), Key: st.key, Msg: "the value contains a NUL byte, which no process environment can hold; edit the file to remove it"}
		}
		if !utf8.ValidString(st.value) {
			return nil, &ParseError{Line: int(st.line), Key: st.key, Msg: "the value is not valid UTF-8 text; re-save the file as UTF-8"}
		}
		st.raw, st.lead = raw, s[text:start]
		d.index[st.key] = len(d.segs)
		d.segs = append(d.segs, st)
		pos, text = end, end
	}
	if text < len(s) {
		d.segs = append(d.segs, seg{raw: s[text:]})
	}
	return d, nil
}

// literalValue returns the value of a statement that has nothing for
// compose-go's parser to decode (no backslash, no $), as that parser would
// return it: a substring of the file, without allocating. The fuzz test
// compares the two on random input.
func literalValue(raw string, st seg) (string, bool) {
	v := raw[st.valueOff:]
	if v == "" {
		return "", true
	}
	switch v[0] {
	case '\'', '"':
		inner := v[1 : len(v)-1]
		if strings.IndexByte(inner, '\\') >= 0 || (v[0] == '"' && strings.IndexByte(inner, '$') >= 0) {
			return "", false
		}
		return inner, true
	}
	if st.commentAt > 0 {
		v = raw[st.valueOff:st.commentAt]
	}
	if strings.IndexByte(v, '$') >= 0 {
		return "", false
	}
	return strings.TrimRightFunc(v, unicode.IsSpace), true
}

// scanStatement finds the end of the statement at s[start:] as compose-go's
// parser does (locateKeyName, extractVarValue).
func scanStatement(s string, start, line int) (seg, int, error) {
	st := seg{line: int32(line)}
	src := s[start:]
	if exportRe.MatchString(src) {
		src = strings.TrimLeftFunc(strings.TrimPrefix(src, "export"), isSpace)
	}
	base := len(s) - len(src) // offset of src in s
	sep := -1
	var sepRune rune
	for i, r := range src {
		if isSpace(r) {
			continue
		}
		switch r {
		case '=', ':', '\n':
			sep, sepRune = i, r
		case '_', '.', '-', '[', ']':
			continue
		default:
			if unicode.IsLetter(r) || unicode.IsNumber(r) {
				continue
			}
			return st, 0, &ParseError{Line: line, Msg: "this line is neither a comment nor NAME=value (a name holds letters, digits, '_', '.', '-', '[' and ']')"}
		}
		break
	}
	if sep < 0 {
		return st, 0, &ParseError{Line: line, Msg: "this line has a name but no '=' and no line ending; add \"=value\" or remove it"}
	}
	st.key = strings.TrimRightFunc(src[:sep], unicode.IsSpace)
	if st.key == "" {
		return st, 0, &ParseError{Line: line, Msg: "an assignment without a name"}
	}
	if strings.ContainsRune(st.key, ' ') {
		return st, 0, &ParseError{Line: line, Msg: "a name cannot contain a space"}
	}
	if sepRune == '\n' {
		st.valueOff = -1
		end := base + sep
		if end > start && s[end-1] == '\r' {
			end-- // keep the CRLF in the text between statements
		}
		return st, end, nil
	}
	rest := src[sep+1:]
	vs := len(rest) - len(strings.TrimLeftFunc(rest, isSpace))
	st.valueOff = int32(base + sep + 1 + vs - start)
	val := rest[vs:]
	vbase := base + sep + 1 + vs
	if val == "" || (val[0] != '"' && val[0] != '\'') {
		n := strings.IndexByte(val, '\n')
		if n < 0 {
			n = len(val)
		}
		end := vbase + n
		if c := strings.Index(val[:n], " #"); c >= 0 {
			st.commentAt = int32(vbase + c - start)
		}
		if end > start && s[end-1] == '\r' {
			end--
		}
		if int(st.valueOff) > end-start {
			st.valueOff = int32(end - start) // KEY=<spaces and CR>: an empty value
		}
		return st, end, nil
	}
	q := val[0]
	esc := false
	for i := 1; i < len(val); i++ {
		c := val[i]
		if c != q {
			esc = !esc && c == '\\'
			continue
		}
		if esc {
			esc = false
			continue
		}
		return st, vbase + i + 1, nil
	}
	return st, 0, &ParseError{Line: line, Key: st.key, Msg: fmt.Sprintf("the %c quote that opens the value is never closed", q)}
}

// Bytes renders the document: the bytes it was read from, with the edits.
func (d *Doc) Bytes() []byte {
	n := 0
	for _, s := range d.segs {
		n += len(s.lead) + len(s.raw)
	}
	var b bytes.Buffer
	b.Grow(n + len(utf8BOM))
	if d.bom {
		b.WriteString(utf8BOM)
	}
	for _, s := range d.segs {
		b.WriteString(s.lead)
		b.WriteString(s.raw)
	}
	return b.Bytes()
}

func (d *Doc) init() {
	if d.index == nil {
		d.index = map[string]int{}
	}
	if d.eol == "" {
		d.eol = "\n"
	}
}

// Get returns the value of key (the last assignment wins, as in compose).
func (d *Doc) Get(key string) (string, bool) {
	i, ok := d.index[key]
	if !ok || d.segs[i].unset {
		return "", false
	}
	return d.segs[i].value, true
}

// Line returns the 1-based line number of key's last assignment, or 0.
func (d *Doc) Line(key string) int {
	i, ok := d.index[key]
	if !ok {
		return 0
	}
	if !d.lines {
		n := 1
		for j := range d.segs {
			n += strings.Count(d.segs[j].lead, "\n")
			if d.segs[j].key != "" {
				d.segs[j].line = int32(n)
			}
			n += strings.Count(d.segs[j].raw, "\n")
		}
		d.lines = true
	}
	return int(d.segs[i].line)
}

// Keys returns the assigned keys in file order (of their first
// assignment), each once.
func (d *Doc) Keys() []string {
	keys := make([]string, 0, len(d.index))
	seen := make(map[string]bool, len(d.index))
	for _, s := range d.segs {
		if s.key == "" || seen[s.key] {
			continue
		}
		seen[s.key] = true
		if _, ok := d.Get(s.key); ok {
			keys = append(keys, s.key)
		}
	}
	return keys
}

// Map returns every key's value.
func (d *Doc) Map() map[string]string {
	m := make(map[string]string, len(d.index))
	for k, i := range d.index {
		if !d.segs[i].unset {
			m[k] = d.segs[i].value
		}
	}
	return m
}

// endsWithNewline reports whether the rendered document ends a line.
func (d *Doc) endsWithNewline() bool {
	for i := len(d.segs) - 1; i >= 0; i-- {
		if r := d.segs[i].raw; r != "" {
			return strings.HasSuffix(r, "\n")
		}
		if r := d.segs[i].lead; r != "" {
			return strings.HasSuffix(r, "\n")
		}
	}
	return true
}

// appendLine adds one line (without its ending) at the end.
func (d *Doc) appendLine(s seg) {
	d.init()
	if !d.endsWithNewline() {
		d.segs = append(d.segs, seg{raw: d.eol})
	}
	if s.key != "" {
		d.index[s.key] = len(d.segs)
		d.lines = false
	}
	d.segs = append(d.segs, s, seg{raw: d.eol})
}

// Set changes key's value in place (its last assignment), keeping what
// stands before the value (`export`, spacing) and an inline comment after
// it, or appends KEY=value at the end when the key is absent.
func (d *Doc) Set(key, value string) {
	d.init()
	q := Quote(value)
	if i, ok := d.index[key]; ok {
		s := &d.segs[i]
		if s.valueOff >= 0 && int(s.valueOff) < len(s.raw) {
			// Keep the operator's quoting (a quoted value may also be
			// followed on its line by another statement).
			q = quoteLike(s.raw[s.valueOff], value)
		}
		switch {
		case s.valueOff < 0:
			s.raw = s.raw + "=" + q
			s.valueOff = int32(len(s.raw) - len(q))
		default:
			tail := ""
			if s.commentAt > 0 {
				tail = s.raw[s.commentAt:]
			}
			s.raw = s.raw[:s.valueOff] + q + tail
			if s.commentAt > 0 {
				s.commentAt = s.valueOff + int32(len(q))
			}
		}
		s.value, s.unset = value, false
		d.lines = false
		return
	}
	d.appendLine(seg{raw: key + "=" + q, key: key, value: value, valueOff: int32(len(key) + 1)})
}

// AppendComment adds a comment line (or a blank line for "").
func (d *Doc) AppendComment(text string) {
	if text == "" {
		d.appendLine(seg{})
		return
	}
	d.appendLine(seg{raw: "# " + text})
}

// commentLines calls fn with each line of the text between statements
// (comments); fn returns a replacement and true to change that line.
func (d *Doc) commentLines(fn func(l string) (string, bool)) bool {
	for i := range d.segs {
		s := &d.segs[i]
		if editLines(&s.lead, fn) || (s.key == "" && editLines(&s.raw, fn)) {
			return true
		}
	}
	return false
}

// editLines calls fn on each line of *text and replaces the first line fn
// changes.
func editLines(text *string, fn func(l string) (string, bool)) bool {
	t := *text
	for off := 0; off <= len(t); {
		n := strings.IndexByte(t[off:], '\n')
		end := len(t)
		if n >= 0 {
			end = off + n
		}
		l := strings.TrimSuffix(t[off:end], "\r")
		if repl, ok := fn(l); ok {
			*text = t[:off] + repl + t[off+len(l):]
			return true
		}
		if n < 0 {
			break
		}
		off = end + 1
	}
	return false
}

var bareRe = regexp.MustCompile(`^[A-Za-z0-9_./:@,+=%*^~-]*$`)

// Quote encodes a value so that docker compose (and difyctl) read it back
// exactly: bare when it is made of safe characters, single-quoted (no
// escapes, no interpolation) when it has no single quote, no line break and no
// backslash (compose's parser treats \' inside single quotes as an escaped
// quote), double-quoted with escapes otherwise.
func Quote(v string) string {
	if bareRe.MatchString(v) {
		return v
	}
	if !strings.ContainsAny(v, "'\n\r\\") {
		return "'" + v + "'"
	}
	return doubleQuote(v)
}

// quoteLike quotes v as the value it replaces was quoted, when it can.
func quoteLike(orig byte, v string) string {
	switch orig {
	case '\'':
		if !strings.ContainsAny(v, "'\n\r\\") {
			return "'" + v + "'"
		}
		return doubleQuote(v)
	case '"':
		return doubleQuote(v)
	}
	return Quote(v)
}

func doubleQuote(v string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`, "\r", `\r`, "$", `\$`)
	return `"` + r.Replace(v) + `"`
}

var nameRe = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// CheckName refuses a variable name docker compose could not interpolate
// (${NAME} takes letters, digits and '_', not starting with a digit).
func CheckName(key string) error {
	if !nameRe.MatchString(key) {
		return fmt.Errorf("%q is not a variable name: use letters, digits and '_', not starting with a digit", excerpt(key))
	}
	return nil
}

// CheckValue refuses a value no .env can carry to a container.
func CheckValue(v string) error {
	if strings.IndexByte(v, 0) >= 0 {
		return fmt.Errorf("the value contains a NUL byte, which no process environment can hold")
	}
	if !utf8.ValidString(v) {
		return fmt.Errorf("the value is not valid UTF-8 text")
	}
	return nil
}

// ExcerptLen is the longest excerpt of a value a message quotes.
const ExcerptLen = 80

// excerpt cuts s to ExcerptLen characters.
func excerpt(s string) string {
	if utf8.RuneCountInString(s) <= ExcerptLen {
		return s
	}
	n := 0
	for i := range s {
		if n == ExcerptLen {
			return s[:i] + "..."
		}
		n++
	}
	return s
}
