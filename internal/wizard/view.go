package wizard

import (
	"fmt"
	"strings"

	"github.com/difyctl/difyctl/profiles"
)

// View implements tea.Model. It fits 80×24 and uses the width it is given.
func (m *Model) View() string {
	var b strings.Builder
	st := m.styles
	fmt.Fprintf(&b, "%s  %s\n\n", st.title.Render("difyctl setup"), st.dim.Render(fmt.Sprintf("step %d/%d: %s", int(m.step)+1, len(stepTitles), stepTitles[m.step])))
	switch m.step {
	case StepWelcome:
		b.WriteString("This writes a .env for Dify (mode 0600) at\n  " + m.env.Path + "\n")
		b.WriteString("with fresh secrets, for one metadata database and one vector store.\n\n")
		if m.env.Existing != nil {
			b.WriteString("A .env exists there already:\n")
			for i, opt := range []string{"Edit it, keeping every value", "Start fresh (a copy of the old one is kept)"} {
				b.WriteString(m.item(i == m.cursor, opt) + "\n")
			}
		} else {
			b.WriteString("Press enter to begin.\n")
		}
	case StepDatabase, StepVector:
		names := m.dbNames
		if m.step == StepVector {
			names = m.vecNames
		}
		rows := max(4, m.height-8)
		first := 0
		if m.cursor >= rows {
			first = m.cursor - rows + 1
		}
		for i := first; i < len(names) && i < first+rows; i++ {
			p, _ := profiles.Get(names[i])
			line := fmt.Sprintf("%-14s %s", p.Name, p.Description)
			if p.Resources != "" && i == m.cursor {
				line += " (" + p.Resources + ")"
			}
			b.WriteString(m.item(i == m.cursor, truncate(line, m.width-4)) + "\n")
		}
	case StepAccess:
		vals := []string{orNone(m.a.PublicURL), m.a.HTTPPort, m.a.HTTPSPort, yesNo(m.a.TLS)}
		for i, l := range accessLabels {
			b.WriteString(m.item(i == m.cursor, fmt.Sprintf("%-38s %s", l, vals[i])) + "\n")
		}
	case StepSecrets:
		b.WriteString("Generated for this host. r reveals, e replaces the selected one.\n\n")
		for i, n := range m.secrets {
			v := m.a.Secrets[n]
			if !m.revealed[n] {
				v = strings.Repeat("•", min(len(v), 12))
			}
			b.WriteString(m.item(i == m.cursor, fmt.Sprintf("%-30s %s", n, truncate(v, m.width-38))) + "\n")
		}
	case StepReview:
		fmt.Fprintf(&b, "Database %s, vector store %s. %d change(s) to .env:\n", m.a.Database, m.a.Vector, len(m.review))
		rows := max(3, m.height-12)
		for i, l := range m.review {
			if i == rows {
				fmt.Fprintf(&b, "  ... and %d more\n", len(m.review)-rows)
				break
			}
			b.WriteString("  " + truncate(l, m.width-4) + "\n")
		}
		errs, warns := 0, 0
		for _, f := range m.findings {
			if f.Severity == "error" {
				errs++
			} else {
				warns++
			}
		}
		fmt.Fprintf(&b, "\nenv validate: %d error(s), %d warning(s)\n", errs, warns)
	case StepDone:
		b.WriteString("Wrote " + m.env.Path + ".\n\nStart Dify now (difyctl up)? enter/y: yes, n: later\n")
	}
	if m.input != nil {
		v := m.input.value
		if m.input.secret {
			v = strings.Repeat("•", len(v))
		}
		fmt.Fprintf(&b, "\n%s: %s█\n", m.input.label, v)
	}
	if m.errMsg != "" {
		b.WriteString("\n" + m.styles.err.Render(truncate(m.errMsg, m.width-2)) + "\n")
	}
	b.WriteString("\n" + st.help.Render(m.help()))
	return b.String()
}

func (m *Model) help() string {
	if m.input != nil {
		return "type • enter: accept • esc: cancel • ctrl+c: quit without writing"
	}
	switch m.step {
	case StepAccess:
		return "↑/↓ j/k: move • enter/e: edit • space: toggle • tab: next • esc: back • q: quit"
	case StepSecrets:
		return "↑/↓: move • r: reveal • e: replace • enter: next • esc: back • q: quit"
	case StepReview:
		return "enter: write .env • esc: back • q: quit without writing"
	case StepDone:
		return "enter/y: start now • n/q: exit"
	}
	return "↑/↓ j/k: move • enter: choose • esc/shift+tab: back • q: quit without writing"
}

func (m *Model) item(selected bool, s string) string {
	if selected {
		return m.styles.selected.Render("> " + s)
	}
	return "  " + s
}

func truncate(s string, n int) string {
	if n < 4 || len([]rune(s)) <= n {
		return s
	}
	return string([]rune(s)[:n-3]) + "..."
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
