package wizard

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/charmbracelet/x/term"

	"github.com/difyctl/difyctl/profiles"
	"github.com/difyctl/difyctl/templates"
)

// ErrNotWritten: the operator declined to write.
var ErrNotWritten = errors.New("nothing written")

// Accessible asks the same questions as plain prompts, one per line, with
// no redraws and no escape sequences (screen readers, TERM=dumb). It drives
// the same model as the full-screen wizard, so the answers, checks and the
// .env are the same. A secret typed here is never echoed: from a terminal it
// is read with echo off. An empty line takes the default.
//
// ctx ends it (ctrl+c): a read in progress is abandoned and ctx's error
// returned.
func Accessible(ctx context.Context, in io.Reader, out io.Writer, env Env) (Result, error) {
	env.Color = false
	m := New(env)
	r := bufio.NewReader(in)
	// read runs one blocking read in the background so that ctx can end the
	// wait; the reader is not used again after that.
	read := func(f func() (string, error)) (string, error) {
		type got struct {
			s   string
			err error
		}
		ch := make(chan got, 1)
		go func() { s, err := f(); ch <- got{s, err} }()
		select {
		case <-ctx.Done():
			fmt.Fprintln(out)
			return "", ctx.Err()
		case g := <-ch:
			return g.s, g.err
		}
	}
	readLine := func() (string, error) {
		return read(func() (string, error) {
			line, err := r.ReadString('\n')
			if err != nil && line == "" {
				return "", fmt.Errorf("input ended: %w", err)
			}
			return strings.TrimSpace(line), nil
		})
	}
	ask := func(q, def string) (string, error) {
		fmt.Fprintf(out, "%s [%s]: ", q, def)
		line, err := readLine()
		if err != nil {
			return "", err
		}
		if line == "" {
			return def, nil
		}
		return line, nil
	}
	askSecret := func(q string) (string, error) {
		fmt.Fprintf(out, "%s (not shown): ", q)
		if f, ok := in.(*os.File); ok && term.IsTerminal(f.Fd()) && r.Buffered() == 0 {
			// Echo comes back also when ctrl+c abandons the read.
			if st, err := term.GetState(f.Fd()); err == nil {
				defer term.Restore(f.Fd(), st)
			}
			s, err := read(func() (string, error) {
				b, err := term.ReadPassword(f.Fd())
				return strings.TrimSpace(string(b)), err
			})
			fmt.Fprintln(out)
			return s, err
		}
		return readLine()
	}
	yes := func(q string, def bool) (bool, error) {
		d := "n"
		if def {
			d = "y"
		}
		v, err := ask(q+" (y/n)", d)
		return strings.HasPrefix(strings.ToLower(v), "y"), err
	}
	choose := func(title string, names []string, def string) (string, error) {
		fmt.Fprintln(out, title+":")
		for i, n := range names {
			p, _ := profiles.Get(n)
			note := ""
			if p.Resources != "" {
				note = " (needs " + p.Resources + ")"
			}
			fmt.Fprintf(out, "  %d. %s: %s%s\n", i+1, n, p.Description, note)
		}
		for {
			v, err := ask("number or name", def)
			if err != nil {
				return "", err
			}
			if i, err := strconv.Atoi(v); err == nil && i >= 1 && i <= len(names) {
				return names[i-1], nil
			}
			for _, n := range names {
				if n == v {
					return n, nil
				}
			}
			fmt.Fprintf(out, "%q is not one of the choices.\n", v)
		}
	}

	fmt.Fprintf(out, "difyctl setup writes %s (mode 0600).\n", env.Path)
	if env.Existing != nil {
		v, err := ask("A .env exists: edit it keeping every value (e), or start fresh with new secrets, keeping a copy (f)?", "e")
		if err != nil {
			return m.res, err
		}
		m.fresh = strings.HasPrefix(strings.ToLower(v), "f")
	}
	a := m.a()
	var err error
	if m.releaseFixed() {
		fmt.Fprintln(out, "Dify release: "+m.fixedNote())
	} else {
		fmt.Fprintln(out, "Dify release:")
		for i, v := range m.relNames {
			fmt.Fprintf(out, "  %d. %s\n", i+1, m.releaseLabel(v))
		}
		for {
			v, err := ask("number or version", a.Release)
			if err != nil {
				return m.res, err
			}
			if i, err := strconv.Atoi(v); err == nil && i >= 1 && i <= len(m.relNames) {
				a.Release = m.relNames[i-1]
				break
			}
			if r, err := templates.Lookup(v); err == nil {
				a.Release = r.Version
				break
			}
			fmt.Fprintf(out, "%q is not one of the choices.\n", v)
		}
	}
	if a.Database, err = choose("Metadata database", m.dbNames(), a.Database); err != nil {
		return m.res, err
	}
	if a.Vector, err = choose("Vector store", m.vecNames(), a.Vector); err != nil {
		return m.res, err
	}
	m.step = StepAccess
	for {
		v, err := ask("Public URL (http(s)://host[:port], or - for Dify's defaults)", orDash(a.PublicURL))
		if err != nil {
			return m.res, err
		}
		if v == "-" {
			v = ""
		}
		if e := m.setURL(v); e != nil {
			fmt.Fprintln(out, e)
			continue
		}
		break
	}
	for i, q := range []string{"HTTP port", "HTTPS port"} {
		for {
			v, err := ask(q, []string{a.HTTPPort, a.HTTPSPort}[i])
			if err != nil {
				return m.res, err
			}
			if e := m.checkPort(v, i+1); e != nil {
				fmt.Fprintln(out, e)
				continue
			}
			if i == 0 {
				a.HTTPPort = v
			} else {
				a.HTTPSPort = v
			}
			break
		}
	}
	tls, err := yes("Does nginx terminate TLS", a.TLS)
	if err != nil {
		return m.res, err
	}
	if tls != a.TLS {
		a.TLS, a.tlsTouched = tls, true
	}
	m.step = StepSecrets
	names := m.secrets()
	fmt.Fprintf(out, "Secrets (kept unless you replace one): %s.\n", strings.Join(names, ", "))
	for {
		n, err := ask("Name a secret to replace, or press enter to keep them as they are", "")
		if err != nil {
			return m.res, err
		}
		if n == "" {
			break
		}
		if index(names, n) < 0 || names[index(names, n)] != n {
			fmt.Fprintf(out, "%s is not one of them.\n", n)
			continue
		}
		val, err := askSecret("New value for " + n)
		if err != nil {
			return m.res, err
		}
		m.input = &field{name: n, value: val, secret: true}
		if e := m.commitInput(); e != nil {
			fmt.Fprintln(out, e)
		} else {
			fmt.Fprintf(out, "%s will be replaced.\n", n)
		}
		m.input = nil
	}
	m.step = StepReview
	m.prepareReview()
	if m.doc == nil {
		return m.res, errors.New(m.errMsg)
	}
	if m.fresh && env.Existing != nil {
		fmt.Fprintln(out, "Start fresh: every secret is new and every value of the old .env is replaced (a copy is kept).")
	}
	if cs := m.changedSecrets(); len(cs) > 0 {
		fmt.Fprintf(out, "WARNING: %d secret(s) change: %s.\n", len(cs), strings.Join(cs, ", "))
	}
	fmt.Fprintf(out, "Dify %s, database %s, vector store %s.\n", a.Release, a.Database, a.Vector)
	fmt.Fprintf(out, "%d change(s) to .env:\n", len(m.changes))
	for _, c := range m.changes {
		fmt.Fprintln(out, "  "+c.String())
	}
	fmt.Fprintf(out, "env validate: %d error(s), %d warning(s)\n", m.errorCount(), len(m.findings)-m.errorCount())
	for _, f := range m.findings {
		fmt.Fprintf(out, "  %s: %s\n", f.Severity, f.String())
	}
	if m.errorCount() > 0 {
		return m.res, fmt.Errorf("not written: env validate finds %d error(s)", m.errorCount())
	}
	for _, rk := range m.risks {
		fmt.Fprintln(out, "WARNING: "+rk)
	}
	ok, err := yes("Write .env", len(m.risks) == 0)
	if err != nil {
		return m.res, err
	}
	if !ok {
		return m.res, ErrNotWritten
	}
	if err := m.write(); err != nil {
		return m.res, err
	}
	fmt.Fprintln(out, m.writtenMessage())
	if m.res.StartNow, err = yes("Start Dify now (difyctl up)", false); err != nil {
		m.res.StartNow = false
		if ctx.Err() != nil {
			return m.res, err
		}
	}
	return m.res, nil
}

// writtenMessage says what was written and where the previous file went.
func (m *Model) writtenMessage() string {
	return WrittenMessage(m.env.Path, m.res)
}

// WrittenMessage is the line that reports a write.
func WrittenMessage(path string, r Result) string {
	s := "wrote " + path
	if r.Release != "" {
		s += " for Dify " + r.Release
	}
	if r.Backup != "" {
		s += ", kept the previous one as " + r.Backup
	}
	return s
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
