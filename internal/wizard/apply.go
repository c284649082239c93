package wizard

import (
	"crypto/rand"
	"fmt"
	"net/url"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/difyctl/difyctl/envgen"
	"github.com/difyctl/difyctl/profiles"
)

// urlVars take the public URL; upstream leaves them empty (Dify then derives
// them from the request).
var urlVars = []string{"CONSOLE_API_URL", "CONSOLE_WEB_URL", "SERVICE_API_URL", "APP_API_URL", "APP_WEB_URL", "FILES_URL", "TRIGGER_URL"}

// Build turns the answers into the .env to write: a fresh one (init's
// generation) or the existing one edited in place (env set / upgrade).
func Build(env Env, a Answers, now time.Time) (*envgen.Doc, error) {
	var d *envgen.Doc
	if env.Existing == nil || a.Fresh {
		sel, err := profiles.Select([]string{a.Database, a.Vector}, false)
		if err != nil {
			return nil, err
		}
		if d, err = envgen.Generate(envgen.DefaultSchema(), sel, rand.Reader, now); err != nil {
			return nil, err
		}
	} else {
		var err error
		if d, err = envgen.Parse(env.Existing.Bytes()); err != nil {
			return nil, err
		}
		cur := d.Map()
		if cur["DB_TYPE"] != a.Database || cur["VECTOR_STORE"] != a.Vector {
			old, _ := profiles.FromEnv(cur)
			sel, err := profiles.Select(append([]string{a.Database, a.Vector}, old.Extras...), true)
			if err != nil {
				return nil, err
			}
			for k, v := range sel.Vars() {
				d.Set(k, v)
			}
			if _, err := envgen.Upgrade(d, envgen.DefaultSchema(), rand.Reader, now); err != nil {
				return nil, err
			}
		}
	}
	names := make([]string, 0, len(a.Secrets))
	for n := range a.Secrets {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if v, _ := d.Get(n); v != a.Secrets[n] {
			envgen.SetLinked(d, n, a.Secrets[n])
		}
	}
	d.Set("EXPOSE_NGINX_PORT", a.HTTPPort)
	d.Set("EXPOSE_NGINX_SSL_PORT", a.HTTPSPort)
	d.Set("NGINX_HTTPS_ENABLED", fmt.Sprint(a.TLS))
	if a.PublicURL != "" {
		u, err := url.Parse(a.PublicURL)
		if err != nil {
			return nil, err
		}
		for _, k := range urlVars {
			d.Set(k, a.PublicURL)
		}
		ws := "ws"
		if u.Scheme == "https" {
			ws = "wss"
		}
		d.Set("NEXT_PUBLIC_SOCKET_URL", ws+"://"+u.Host)
		d.Set("ENDPOINT_URL_TEMPLATE", a.PublicURL+"/e/{hook_id}")
		d.Set("NGINX_SERVER_NAME", u.Hostname())
	}
	return d, nil
}

// Diff lists what writing d changes relative to before (nil: a new file),
// secrets masked.
func Diff(before, after *envgen.Doc) []string {
	var old map[string]string
	if before != nil {
		old = before.Map()
	}
	var out []string
	for _, k := range after.Keys() {
		v, _ := after.Get(k)
		shown := v
		if sv, ok := envgen.DefaultSchema().Lookup(k); ok && sv.IsSecret() && v != "" {
			shown = "********"
		}
		switch o, had := old[k]; {
		case before == nil:
			out = append(out, "+ "+k+"="+shown)
		case !had:
			out = append(out, "+ "+k+"="+shown)
		case o != v:
			out = append(out, "~ "+k+"="+shown)
		}
	}
	return out
}

func (m *Model) prepareReview() {
	d, err := Build(m.env, m.a, time.Now())
	if err != nil {
		m.errMsg = err.Error()
		m.review = nil
		return
	}
	before := m.env.Existing
	if m.a.Fresh {
		before = nil
	}
	m.review = Diff(before, d)
	if m.env.Validate != nil {
		m.findings = m.env.Validate(d)
	}
}

// write builds and writes the .env.
func (m *Model) write() error {
	if err := WriteEnv(m.env, m.a, time.Now()); err != nil {
		return err
	}
	m.written = true
	return nil
}

// WriteEnv builds the .env from the answers, validates it, and writes it
// atomically (0600), keeping a copy of an existing one.
func WriteEnv(env Env, a Answers, now time.Time) error {
	d, err := Build(env, a, now)
	if err != nil {
		return err
	}
	if fs := envgen.Validate(d, envgen.DefaultSchema()); envgen.HasErrors(fs, false) {
		var msgs []string
		for _, f := range fs {
			if f.Severity == envgen.Error {
				msgs = append(msgs, f.String())
			}
		}
		return fmt.Errorf("not written: %s", strings.Join(msgs, "; "))
	}
	if _, err := os.Stat(env.Path); err == nil {
		if _, err := envgen.Backup(env.Path, now); err != nil {
			return err
		}
	}
	return envgen.WriteFile(env.Path, d)
}
