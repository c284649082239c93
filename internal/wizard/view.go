package wizard

import (
	"fmt"
	"strings"

	"github.com/charmbracelet/lipgloss"
	"github.com/charmbracelet/x/ansi"

	"github.com/difyctl/difyctl/envgen"
	"github.com/difyctl/difyctl/internal/release"
	"github.com/difyctl/difyctl/profiles"
)

// A screen is a header (the title, always on top), a body that scrolls when
// the terminal is short ("↑ N more" / "↓ N more" marks), and a footer: the
// input line, the error, the key help. Every line is wrapped to the width,
// never cut, and the whole fits the height, so nothing scrolls off the top.

type line struct {
	text  string
	style *lipgloss.Style
}

func (l line) render() string {
	if l.style != nil {
		return l.style.Render(l.text)
	}
	return l.text
}

func (m *Model) size() (int, int) {
	return max(m.width, 20), max(m.height, 6)
}

// View implements tea.Model.
func (m *Model) View() string {
	w, h := m.size()
	st := m.styles
	head := []string{st.title.Render("difyctl setup") + "  " + st.dim.Render(ansi.Truncate(fmt.Sprintf("step %d/%d: %s", int(m.step)+1, len(stepTitles), stepTitles[m.step]), w-15, "…"))}
	if h >= 12 {
		head = append(head, "")
	}
	foot := m.footer(w)
	b := m.body(w)
	b.fit(h - len(head) - len(foot))
	rows := max(1, h-len(head)-len(foot)-len(b.pinned))
	out := append(head, m.window(b, rows)...)
	for _, l := range b.pinned {
		out = append(out, l.render())
	}
	out = append(out, foot...)
	return strings.Join(out, "\n")
}

// bodyRows is how many body lines the screen shows now.
func (m *Model) bodyRows() int {
	w, h := m.size()
	head := 1
	if h >= 12 {
		head = 2
	}
	b := m.body(w)
	b.fit(h - head - len(m.footer(w)))
	return max(1, h-head-len(m.footer(w))-len(b.pinned))
}

func (m *Model) footer(w int) []string {
	var out []string
	if m.input != nil {
		v := m.input.value
		if m.input.secret {
			v = strings.Repeat("•", len([]rune(v)))
		}
		out = append(out, "")
		out = append(out, wrap(m.input.label+": "+v+"█", w, "  ")...)
	}
	if m.errMsg != "" {
		for _, l := range wrap(m.errMsg, w, "  ") {
			out = append(out, m.styles.err.Render(l))
		}
	}
	full, short := m.help()
	help := full
	if ansi.StringWidth(full) > w {
		help = short
	}
	out = append(out, "")
	for _, l := range wrapItems(help, w) {
		out = append(out, m.styles.help.Render(l))
	}
	return out
}

// wrapItems breaks a key help between its " • " items, so that a key and
// what it does stay on one line.
func wrapItems(help string, w int) []string {
	var out []string
	cur := ""
	for _, it := range strings.Split(help, " • ") {
		switch {
		case cur == "":
			cur = it
		case ansi.StringWidth(cur+" • "+it) <= w:
			cur += " • " + it
		default:
			out = append(out, cur)
			cur = it
		}
	}
	out = append(out, cur)
	var lines []string
	for _, l := range out {
		lines = append(lines, wrap(l, w, "  ")...)
	}
	return lines
}

// body is the step's content; focus lines (the selection) are kept in view.
type body struct {
	lines      []line
	pinned     []line // below the scrolling lines, always shown (the selection's note)
	focus      int    // first line to keep visible; -1 none
	focusEnd   int
	scrollable bool // the review: scrolled by the operator
}

// fit shortens the pinned lines so that at least three scrolling lines fit
// in avail (only on terminals smaller than 60x15).
func (b *body) fit(avail int) {
	if len(b.pinned) > 0 && avail-len(b.pinned) < 3 && b.pinned[0].text == "" {
		b.pinned = b.pinned[1:]
	}
	if over := 3 - (avail - len(b.pinned)); over > 0 {
		b.pinned = b.pinned[:max(0, len(b.pinned)-over)]
	}
}

func (m *Model) window(b body, rows int) []string {
	n := len(b.lines)
	render := line.render
	var out []string
	if n <= rows {
		for _, l := range b.lines {
			out = append(out, render(l))
		}
		return out
	}
	// visible is how many lines fit below the marks with first on top.
	visible := func(first int) (int, bool) { // lines, and whether a bottom mark shows
		avail := rows
		if first > 0 {
			avail--
		}
		if first+avail < n {
			return avail - 1, true
		}
		return avail, false
	}
	if rows < 3 { // no room for marks
		first := 0
		if b.scrollable {
			m.scroll = min(max(m.scroll, 0), n-rows)
			first = m.scroll
		} else if b.focus >= rows {
			first = b.focus - rows + 1
		}
		for _, l := range b.lines[first:min(first+rows, n)] {
			out = append(out, render(l))
		}
		return out
	}
	first := 0
	if b.scrollable {
		m.scroll = min(max(m.scroll, 0), n-rows+1)
		first = m.scroll
	} else if b.focus >= 0 {
		// Keep the selection in view, moving the list only as far as needed.
		first = min(m.listTop, b.focus, n-1)
		for first < b.focus {
			if v, _ := visible(first); b.focusEnd < first+max(v, 1) {
				break
			}
			first++
		}
		m.listTop = first
	}
	avail, _ := visible(first)
	top := first > 0
	last := min(first+max(avail, 1), n)
	if top {
		out = append(out, m.styles.dim.Render(fmt.Sprintf("  ↑ %d more", first)))
	}
	for _, l := range b.lines[first:min(last, n)] {
		out = append(out, render(l))
	}
	if last < n {
		out = append(out, m.styles.dim.Render(fmt.Sprintf("  ↓ %d more", n-last)))
	}
	return out
}

func (m *Model) body(w int) body {
	st := &m.styles
	b := body{focus: -1}
	add := func(s string, style *lipgloss.Style, indent string) {
		for _, l := range wrap(s, w, indent) {
			b.lines = append(b.lines, line{text: l, style: style})
		}
	}
	blank := func() { b.lines = append(b.lines, line{}) }
	a := m.a()
	switch m.step {
	case StepWelcome:
		add("This writes a .env for Dify (mode 0600), for one metadata database and one vector store, at", nil, "")
		add("  "+m.env.Path, nil, "  ")
		blank()
		if m.env.Existing != nil {
			add("A .env exists there already:", nil, "")
			b.focus, b.focusEnd = len(b.lines)+m.welcome, len(b.lines)+m.welcome
			for i, opt := range []string{"Edit it, keeping every value", "Start fresh (new secrets; a copy of the old one is kept)"} {
				m.item(&b, i == m.welcome, opt, w)
			}
		} else {
			add("Every secret is generated for this host. Press enter to begin.", nil, "")
		}
	case StepRelease:
		if m.releaseFixed() {
			add("The Dify release this deployment runs:", nil, "")
		} else {
			add("The Dify release to deploy: its images, variables and support files.", nil, "")
		}
		blank()
		for i, v := range m.relNames {
			if i == m.cursor {
				b.focus, b.focusEnd = len(b.lines), len(b.lines)
			}
			text := m.releaseLabel(v)
			if m.releaseFixed() && i != m.cursor {
				b.lines = append(b.lines, line{text: "  " + ansi.Truncate(text, w-2, "…"), style: &st.dim})
				continue
			}
			b.lines = append(b.lines, m.itemLine(i == m.cursor, ansi.Truncate(text, w-2, "…")))
		}
		note := releaseNote(m.relNames[min(m.cursor, len(m.relNames)-1)])
		if m.releaseFixed() {
			note = m.fixedNote()
		}
		b.pinned = append(b.pinned, line{})
		for _, l := range wrap(note, w, "  ") {
			b.pinned = append(b.pinned, line{text: l, style: &st.dim})
		}
	case StepDatabase, StepVector:
		names := m.listNames()
		for i, n := range names {
			p, _ := profiles.Get(n)
			text := fmt.Sprintf("%-14s %s", p.Name, p.Description)
			if i == m.cursor {
				b.focus, b.focusEnd = len(b.lines), len(b.lines)
			}
			b.lines = append(b.lines, m.itemLine(i == m.cursor, ansi.Truncate(text, w-2, "…")))
		}
		// The selection's full description and resource notes, never cut.
		p, _ := profiles.Get(names[m.cursor])
		note := p.Name + ": " + p.Description
		if p.Resources != "" {
			note += ". Needs: " + p.Resources
		}
		b.pinned = append(b.pinned, line{})
		for _, l := range wrap(note, w, "  ") {
			b.pinned = append(b.pinned, line{text: l, style: &st.dim})
		}
	case StepAccess:
		vals := []string{orNone(a.PublicURL), a.HTTPPort, a.HTTPSPort, yesNo(a.TLS)}
		lw := min(36, w/2)
		for i, l := range accessLabels {
			text := fmt.Sprintf("%-*s %s", lw, l, vals[i])
			if ansi.StringWidth(text)+2 > w {
				text = l + ": " + vals[i]
			}
			m.item(&b, i == m.cursor, text, w)
		}
		blank()
		add("Ports are checked free on this host; the public URL is scheme://host[:port], nothing after it.", &st.dim, "")
	case StepSecrets:
		names := m.secrets()
		if len(names) == 0 {
			add("This .env holds no secret difyctl generates.", nil, "")
			break
		}
		add("Every value is kept unless you replace it here: r reveals, e replaces, u undoes a replacement.", nil, "")
		blank()
		nw := 0
		for _, n := range names {
			nw = max(nw, len(n))
		}
		nw = min(nw, w-12)
		for i, n := range names {
			v := m.secretValue(n)
			shown := strings.Repeat("•", min(len(v), 12))
			if m.revealed[n] {
				shown = "(shown below)"
			}
			if _, ok := a.Replaced[n]; ok {
				shown += " REPLACED"
			}
			if i == m.cursor {
				b.focus, b.focusEnd = len(b.lines), len(b.lines)
			}
			m.item(&b, i == m.cursor, fmt.Sprintf("%-*s %s", nw, n, shown), w)
		}
		if n := names[min(m.cursor, len(names)-1)]; m.revealed[n] {
			b.pinned = append(b.pinned, line{})
			for _, l := range wrap(n+" = "+m.secretValue(n), w, "  ") {
				b.pinned = append(b.pinned, line{text: l})
			}
		}
	case StepReview:
		b.scrollable = true
		if m.confirm {
			add("Changing these secrets breaks the data this deployment already holds:", &st.err, "")
			for _, r := range m.risks {
				add("! "+r, &st.warn, "  ")
			}
			blank()
			add("Write anyway? y: write it • n or esc: back to the review (esc again to the Secrets screen, u undoes a replacement)", nil, "")
			break
		}
		errs := m.errorCount()
		kept := ""
		if m.releaseFixed() {
			kept = " (kept)"
		}
		add(fmt.Sprintf("Dify %s%s, database %s, vector store %s. env validate: %d error(s), %d warning(s).", a.Release, kept, a.Database, a.Vector, errs, len(m.findings)-errs), nil, "")
		switch {
		case m.env.Existing != nil:
		case m.releaseFixed():
			add("Also writes Dify "+a.Release+"'s support files where missing ("+release.FileName+" stays as it is).", &st.dim, "")
		default:
			add("Also writes Dify "+a.Release+"'s support files where missing and records the release in "+release.FileName+".", &st.dim, "")
		}
		if m.fresh && m.env.Existing != nil {
			add("Start fresh: every secret is new and every value of the old .env is replaced (a copy is kept).", &st.warn, "")
		}
		if cs := m.changedSecrets(); len(cs) > 0 {
			add(fmt.Sprintf("!! %d SECRET(S) CHANGE: %s", len(cs), strings.Join(cs, ", ")), &st.err, "   ")
			for _, r := range m.risks {
				add("! "+r, &st.warn, "  ")
			}
		}
		add(fmt.Sprintf("%d change(s) to .env:", len(m.changes)), nil, "")
		for _, c := range m.changes {
			var style *lipgloss.Style
			if c.Secret && c.Op == "~" {
				style = &st.err
			}
			add("  "+c.String(), style, "      ")
		}
		if len(m.findings) > 0 {
			blank()
			add("env validate:", nil, "")
		}
		for _, f := range m.findings {
			style := &st.warn
			if f.Severity == envgen.Error {
				style = &st.err
			}
			add(fmt.Sprintf("  %s: %s", f.Severity, f.String()), style, "      ")
		}
	case StepDone:
		add("Wrote "+m.env.Path+" (0600) for Dify "+m.res.Release+".", nil, "")
		if m.res.Backup != "" {
			add("Kept the previous one as "+m.res.Backup+".", nil, "")
		}
		blank()
		add("Start Dify now (difyctl up)? y: start now • n or enter: not now", nil, "")
	}
	return b
}

func (m *Model) itemLine(selected bool, s string) line {
	if selected {
		return line{text: "> " + s, style: &m.styles.selected}
	}
	return line{text: "  " + s}
}

func (m *Model) item(b *body, selected bool, s string, w int) {
	for i, l := range wrap(s, w-2, "  ") {
		prefix := "  "
		if i == 0 && selected {
			prefix = "> "
		}
		ln := line{text: prefix + l}
		if selected {
			ln.style = &m.styles.selected
		}
		b.lines = append(b.lines, ln)
	}
}

// help is the key help, full and short; the short one is used when the
// full one does not fit on a line, and wraps rather than being cut.
func (m *Model) help() (full, short string) {
	switch {
	case m.input != nil:
		return "type • enter: accept • esc: cancel • ctrl+u: clear • ctrl+c: quit without writing",
			"enter accept • esc cancel • ctrl+u clear • ctrl+c quit"
	case m.step == StepDone:
		return "y: start now • n/enter: not now • ctrl+c: exit", "y start • n/enter not now"
	case m.confirm:
		return "y: write anyway • n/esc: back", "y write • n/esc back"
	}
	switch m.step {
	case StepWelcome:
		if m.env.Existing == nil {
			return "enter: begin • q: quit without writing", "enter begin • q quit"
		}
		return "↑/↓ j/k: choose • enter: next • q: quit without writing", "↑↓ j/k choose • enter next • q quit"
	case StepRelease:
		if m.releaseFixed() {
			return "enter: next • esc: back • q: quit without writing", "enter next • esc back • q quit"
		}
	case StepAccess:
		return "↑/↓ j/k: move • enter/e: edit • enter/space: toggle • tab: next • esc: back • q: quit",
			"↑↓ j/k move • enter edit/toggle • tab next • esc back • q quit"
	case StepSecrets:
		return "↑/↓ j/k: move • r: reveal • e: replace • u: undo • enter: next • esc: back • q: quit",
			"↑↓ j/k move • r reveal • e replace • u undo • enter next • esc back • q quit"
	case StepReview:
		return "↑/↓ j/k space: scroll • enter: write .env • esc: back • q: quit without writing",
			"↑↓ j/k space scroll • enter write • esc back • q quit"
	}
	return "↑/↓ j/k: move • enter: choose • esc/shift+tab: back • q: quit without writing",
		"↑↓ j/k move • enter choose • esc back • q quit"
}

// wrap breaks s into lines of at most w cells, at spaces where it can,
// continuation lines indented.
func wrap(s string, w int, indent string) []string {
	w = max(w, 8)
	if ansi.StringWidth(s) <= w {
		return []string{s}
	}
	first, _, _ := strings.Cut(ansi.Wrap(s, w, ""), "\n")
	first = strings.TrimRight(first, " ")
	rest, ok := strings.CutPrefix(s, first)
	if !ok || first == "" {
		return strings.Split(ansi.Hardwrap(s, w, true), "\n")
	}
	out := []string{first}
	if rest = strings.TrimLeft(rest, " "); rest != "" {
		for _, l := range strings.Split(ansi.Wrap(rest, w-len(indent), ""), "\n") {
			out = append(out, indent+l)
		}
	}
	return out
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}
