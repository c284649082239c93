package wizard

import (
	"crypto/rand"
	"fmt"
	"net/url"
	"slices"
	"sort"

	"github.com/difyctl/difyctl/envgen"
	"github.com/difyctl/difyctl/profiles"
)

// accessVars are what clearing the public URL resets to the template
// defaults, besides envgen.OriginURLs.
var accessVars = []string{"NEXT_PUBLIC_SOCKET_URL", "ENDPOINT_URL_TEMPLATE", "NGINX_SERVER_NAME"}

// generated returns a fresh .env for the selection, made once per selection
// so that what the Secrets screen shows is what is written.
func (m *Model) generated(db, vec string) (*envgen.Doc, error) {
	rel := m.rel().Version
	key := rel + "+" + db + "+" + vec
	if d, ok := m.gen[key]; ok {
		return d, nil
	}
	sel, err := profiles.Select([]string{db, vec}, false)
	if err != nil {
		return nil, err
	}
	var d *envgen.Doc
	if m.env.Generated != nil && m.env.Generated.TemplateVersion() == rel && m.env.Generated.Map()["DB_TYPE"] == db && m.env.Generated.Map()["VECTOR_STORE"] == vec {
		d = m.env.Generated
	} else if d, err = envgen.Generate(m.schema(), sel, rand.Reader, m.now()); err != nil {
		return nil, err
	}
	m.gen[key] = d
	return d, nil
}

// draft is the .env for the current mode and profiles before the operator's
// replacements and access answers: a fresh one, or the existing one with the
// profile change applied and any missing required secret generated. Made
// once per mode and selection (it draws random secrets).
func (m *Model) draft() (*envgen.Doc, error) {
	a := m.a()
	key := fmt.Sprintf("%v+%s+%s+%s", m.fresh, a.Release, a.Database, a.Vector)
	if d, ok := m.drafts[key]; ok {
		return d, nil
	}
	var d *envgen.Doc
	if m.env.Existing == nil || m.fresh {
		gen, err := m.generated(a.Database, a.Vector)
		if err != nil {
			return nil, err
		}
		d = clone(gen)
	} else {
		d = clone(m.env.Existing)
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
		}
		// What the file lacks (a new profile's variables, or a hand-written
		// .env's secrets) is added as `env upgrade` adds it; every present
		// line is kept as it is. The review lists each addition.
		if _, err := envgen.Upgrade(d, m.schema(), rand.Reader, m.now()); err != nil {
			return nil, err
		}
	}
	m.drafts[key] = d
	return d, nil
}

func clone(d *envgen.Doc) *envgen.Doc {
	c, err := envgen.Parse(d.Bytes())
	if err != nil {
		panic("wizard: a parsed .env does not parse again: " + err.Error())
	}
	return c
}

func isSecondary(name string) bool {
	for _, l := range envgen.Links {
		if l.Secondary == name {
			return true
		}
	}
	return false
}

// secretNames are the secrets shown on the Secrets screen: every generated
// secret of the draft (vector-store ones included), tied copies left out
// since they follow their primary.
func secretNames(d *envgen.Doc, schema *envgen.Schema) []string {
	active := func(string) bool { return true }
	if sel, err := profiles.FromEnv(d.Map()); err == nil {
		active = sel.Active
	}
	var out []string
	for _, v := range schema.Vars {
		if !v.Generated() || isSecondary(v.Name) || !v.InProfiles(active) {
			continue
		}
		if val, ok := d.Get(v.Name); ok && val != "" {
			out = append(out, v.Name)
		}
	}
	return out
}

// build is the .env the answers produce.
func (m *Model) build() (*envgen.Doc, error) {
	base, err := m.draft()
	if err != nil {
		return nil, err
	}
	d := clone(base)
	a, init := m.a(), m.initial()
	names := make([]string, 0, len(a.Replaced))
	for n := range a.Replaced {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if _, ok := d.Get(n); ok {
			envgen.SetLinked(d, n, a.Replaced[n])
		}
	}
	// Only what the operator changed is written: an answer left as found
	// keeps the file's own lines, whatever they hold.
	if a.HTTPPort != init.HTTPPort {
		d.Set("EXPOSE_NGINX_PORT", a.HTTPPort)
	}
	if a.HTTPSPort != init.HTTPSPort {
		d.Set("EXPOSE_NGINX_SSL_PORT", a.HTTPSPort)
	}
	if a.TLS != init.TLS {
		d.Set("NGINX_HTTPS_ENABLED", fmt.Sprint(a.TLS))
	}
	if a.PublicURL != init.PublicURL {
		if a.PublicURL == "" {
			for _, k := range append(slices.Clone(envgen.OriginURLs), accessVars...) {
				if v, ok := m.schema().Lookup(k); ok {
					if _, present := d.Get(k); present || v.Default != "" {
						d.Set(k, v.Default)
					}
				}
			}
		} else {
			u, err := url.Parse(a.PublicURL)
			if err != nil {
				return nil, err
			}
			for _, k := range envgen.OriginURLs {
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
	}
	return d, nil
}

// Change is one line of the review.
type Change struct {
	Op     string // "+", "~" or "-"
	Var    string
	Shown  string // the value, masked for a secret
	Secret bool
}

func (c Change) String() string {
	if c.Op == "-" {
		return "- " + c.Var
	}
	s := c.Op + " " + c.Var + "=" + c.Shown
	if c.Secret && c.Op == "~" {
		s += "   <- SECRET CHANGED"
	}
	return s
}

// Diff lists what writing after changes relative to before (nil: a new
// file), secrets (by schema, the release's) masked.
func Diff(before, after *envgen.Doc, schema *envgen.Schema) []Change {
	var old map[string]string
	if before != nil {
		old = before.Map()
	}
	var out []Change
	for _, k := range after.Keys() {
		v, _ := after.Get(k)
		c := Change{Var: k, Shown: v}
		if sv, ok := schema.Lookup(k); ok && sv.IsSecret() && v != "" {
			c.Shown, c.Secret = "********", true
		}
		switch o, had := old[k]; {
		case before == nil || !had:
			c.Op = "+"
		case o != v:
			c.Op = "~"
		default:
			continue
		}
		out = append(out, c)
	}
	if before != nil {
		now := after.Map()
		for _, k := range before.Keys() {
			if _, ok := now[k]; !ok {
				out = append(out, Change{Op: "-", Var: k})
			}
		}
	}
	return out
}

// dataEffects says, for a changed secret, which data directory was made
// with the old value and what changing it breaks there.
func dataEffects(name string, env map[string]string) (dir, breaks string) {
	dbDir := "volumes/db/data"
	if env["DB_TYPE"] == "mysql" {
		dbDir = "volumes/mysql/data"
	}
	switch name {
	case "DB_PASSWORD":
		return dbDir, "the database there was initialised with the old DB_PASSWORD and refuses the new one: Dify cannot start until the password is changed inside the database too"
	case "SECRET_KEY":
		return dbDir, "Dify encrypts stored model-provider credentials and signs sessions with SECRET_KEY: every stored credential becomes unreadable and every user is signed out"
	case "PGVECTOR_POSTGRES_PASSWORD":
		return "volumes/pgvector/data", "the pgvector database was initialised with the old password and refuses the new one"
	case "OPENSEARCH_INITIAL_ADMIN_PASSWORD":
		return "volumes/opensearch/data", "OpenSearch keeps the admin password it was initialised with"
	}
	return "", ""
}
