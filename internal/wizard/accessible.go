package wizard

import (
	"bufio"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/difyctl/difyctl/profiles"
)

// Accessible asks the same questions as plain prompts, one per line, with
// no redraws (for screen readers and dumb terminals). It returns the answers
// after writing the .env, or an error; an empty line takes the default.
func Accessible(in io.Reader, out io.Writer, env Env) (Answers, error) {
	m := New(env, false)
	a := m.a
	r := bufio.NewReader(in)
	ask := func(q, def string) (string, error) {
		fmt.Fprintf(out, "%s [%s]: ", q, def)
		line, err := r.ReadString('\n')
		if err != nil && line == "" {
			return "", fmt.Errorf("setup: input ended: %w", err)
		}
		if line = strings.TrimSpace(line); line == "" {
			return def, nil
		}
		return line, nil
	}
	choose := func(title string, names []string, def string) (string, error) {
		fmt.Fprintln(out, title+":")
		for i, n := range names {
			p, _ := profiles.Get(n)
			fmt.Fprintf(out, "  %d. %s: %s\n", i+1, n, p.Description)
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
	fmt.Fprintf(out, "difyctl setup writes %s (mode 0600) with fresh secrets.\n", env.Path)
	var err error
	if env.Existing != nil {
		v, err := ask("A .env exists: edit it keeping every value (e), or start fresh keeping a copy (f)?", "e")
		if err != nil {
			return a, err
		}
		a.Fresh = strings.HasPrefix(strings.ToLower(v), "f")
		if a.Fresh {
			m.resetToGenerated()
			a.Secrets = m.a.Secrets
		}
	}
	if a.Database, err = choose("Metadata database", m.dbNames, a.Database); err != nil {
		return a, err
	}
	if a.Vector, err = choose("Vector store", m.vecNames, a.Vector); err != nil {
		return a, err
	}
	for {
		v, err := ask("Public URL (http(s)://host, or - for Dify's defaults)", orDash(a.PublicURL))
		if err != nil {
			return a, err
		}
		m.input, m.cursor, m.step = &field{value: strings.TrimPrefix(v, "-")}, 0, StepAccess
		if e := m.commitInput(); e != nil {
			fmt.Fprintln(out, e)
			continue
		}
		a.PublicURL, a.TLS = m.a.PublicURL, m.a.TLS
		break
	}
	for i, q := range []string{"HTTP port", "HTTPS port"} {
		for {
			def := []string{a.HTTPPort, a.HTTPSPort}[i]
			v, err := ask(q, def)
			if err != nil {
				return a, err
			}
			if e := m.checkPort(v); e != nil && !(v == def && m.portIsOurs(v)) {
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
	v, err := ask("Does nginx terminate TLS (y/n)?", yesNo(a.TLS))
	if err != nil {
		return a, err
	}
	a.TLS = strings.HasPrefix(strings.ToLower(v), "y")
	fmt.Fprintf(out, "Secrets generated: %s.\n", strings.Join(m.secrets, ", "))
	for {
		n, err := ask("Name a secret to replace, or press enter to keep them all", "")
		if err != nil || n == "" {
			break
		}
		if _, ok := a.Secrets[n]; !ok {
			fmt.Fprintf(out, "%s is not one of them.\n", n)
			continue
		}
		val, err := ask("New value for "+n, "")
		if err != nil {
			return a, err
		}
		if e := CheckSecret(val); e != nil {
			fmt.Fprintln(out, e)
			continue
		}
		a.Secrets[n] = val
	}
	d, err := Build(env, a, time.Now())
	if err != nil {
		return a, err
	}
	before := env.Existing
	if a.Fresh {
		before = nil
	}
	fmt.Fprintf(out, "%d change(s) to .env.\n", len(Diff(before, d)))
	if v, err := ask("Write it", "y"); err != nil || !strings.HasPrefix(strings.ToLower(v), "y") {
		return a, fmt.Errorf("not written")
	}
	if err := WriteEnv(env, a, time.Now()); err != nil {
		return a, err
	}
	fmt.Fprintf(out, "Wrote %s.\n", env.Path)
	v, err = ask("Start Dify now", "n")
	a.StartNow = err == nil && strings.HasPrefix(strings.ToLower(v), "y")
	return a, nil
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
