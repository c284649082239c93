package envgen

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/difyctl/difyctl/profiles"
	"github.com/difyctl/difyctl/templates"
)

// HeaderMarker starts the comment that records which template a file was
// written from; upgrade reads it.
const HeaderMarker = "# difyctl-template: dify "

// wanted reports whether a generated .env carries v for this selection: the
// essential variables, those of the active profiles, and those the profiles
// set.
func wanted(v *Var, sel profiles.Selection, implied map[string]string) bool {
	if _, ok := implied[v.Name]; ok {
		return true
	}
	if len(v.Profiles) > 0 {
		return v.InProfiles(sel.Active)
	}
	return !v.Optional
}

// filler computes values for variables being added to a file: the profile's
// implied value, a fresh secret, a value tied to another variable, or the
// default.
type filler struct {
	sel     profiles.Selection
	implied map[string]string
	rand    io.Reader
	env     map[string]string // values so far
}

func (f *filler) value(v *Var) (string, error) {
	if x, ok := f.implied[v.Name]; ok {
		return x, nil
	}
	for _, l := range Links {
		if l.Secondary == v.Name && l.Active(f.sel.Active) && l.Relation != IfSet {
			if p, ok := f.env[l.Primary]; ok {
				return p, nil
			}
		}
		if l.Primary == v.Name && l.Active(f.sel.Active) && l.Relation != IfSet {
			if s, ok := f.env[l.Secondary]; ok && s != "" {
				if l.Relation == Member {
					return splitList(s)[0], nil
				}
				return s, nil
			}
		}
	}
	if v.Generated() {
		return generateSecret(v.Secret, f.rand)
	}
	return v.Default, nil
}

// Generate writes a complete .env for the selection: every wanted variable
// of the template, grouped and described as there, with fresh secrets.
func Generate(schema *Schema, sel profiles.Selection, rand io.Reader, now time.Time) (*Doc, error) {
	d := &Doc{}
	d.AppendComment(fmt.Sprintf("Dify %s environment, written by difyctl on %s.", schema.version(), now.UTC().Format(time.RFC3339)))
	d.AppendComment("Profiles: " + strings.Join(sel.Names(), ", ") + ". Secrets below were generated for this host: keep this file private (mode 0600).")
	d.appendLine(seg{raw: HeaderMarker + schema.version()})
	f := &filler{sel: sel, implied: sel.Vars(), rand: rand, env: map[string]string{}}
	group := ""
	for _, v := range schema.Vars {
		if !wanted(v, sel, f.implied) {
			continue
		}
		if v.Group != group {
			group = v.Group
			d.AppendComment("")
			d.AppendComment("== " + group + " ==")
		}
		val, err := f.value(v)
		if err != nil {
			return nil, fmt.Errorf("generating %s: %w", v.Name, err)
		}
		f.env[v.Name] = val
		if v.Description != "" {
			d.AppendComment(v.Description)
		}
		d.Set(v.Name, val)
	}
	if _, ok := f.env["CELERY_BROKER_URL"]; ok {
		d.Set("CELERY_BROKER_URL", brokerURL(d.Map()))
	}
	return d, nil
}

// UpgradeReport says what Upgrade changed.
type UpgradeReport struct {
	From    string   `json:"from"`              // template version the file was written for ("" if unknown)
	To      string   `json:"to"`                // template version now
	Added   []string `json:"added"`             // variables added, with defaults or fresh secrets
	Renamed []string `json:"renamed,omitempty"` // "OLD -> NEW": NEW added with OLD's value (OLD kept, unread)
	Unknown []string `json:"unknown"`           // variables the template no longer knows (kept)
}

// TemplateVersion reads the template version a file records, or "".
func (d *Doc) TemplateVersion() string {
	version := ""
	d.commentLines(func(l string) (string, bool) {
		if v, ok := strings.CutPrefix(l, HeaderMarker); ok && version == "" {
			version = strings.TrimSpace(v)
		}
		return "", false // only reading
	})
	return version
}

// Upgrade adds to d every variable the current template wants for the
// selection d describes and d lacks, at the end under a dated comment;
// every existing line, value, comment and their order stay as they are.
func Upgrade(d *Doc, schema *Schema, rand io.Reader, now time.Time) (UpgradeReport, error) {
	rep := UpgradeReport{From: d.TemplateVersion(), To: schema.version()}
	env := d.Map()
	sel, err := profiles.FromEnv(env)
	if err != nil {
		return rep, fmt.Errorf("the profiles this .env names: %w", err)
	}
	f := &filler{sel: sel, implied: sel.Vars(), rand: rand, env: env}
	var add []*Var
	for _, v := range schema.Vars {
		if _, ok := env[v.Name]; !ok && wanted(v, sel, f.implied) {
			add = append(add, v)
		}
	}
	for _, k := range d.Keys() {
		if _, ok := schema.Lookup(k); !ok {
			rep.Unknown = append(rep.Unknown, k)
		}
	}
	if len(add) > 0 {
		d.AppendComment("")
		d.AppendComment(fmt.Sprintf("== added by difyctl env upgrade on %s for Dify %s ==", now.UTC().Format("2006-01-02"), rep.To))
	}
	for _, v := range add {
		val, err := f.value(v)
		if err != nil {
			return rep, fmt.Errorf("generating %s: %w", v.Name, err)
		}
		if old, ok := env[v.RenamedFrom]; ok && v.RenamedFrom != "" {
			val = old // the release renamed it: the operator's value carries over
			rep.Renamed = append(rep.Renamed, v.RenamedFrom+" -> "+v.Name)
		}
		if v.Name == "CELERY_BROKER_URL" {
			val = brokerURL(env)
		}
		env[v.Name] = val
		if v.Description != "" {
			d.AppendComment(v.Description)
		}
		d.Set(v.Name, val)
		rep.Added = append(rep.Added, v.Name)
	}
	if rep.From != rep.To {
		d.setHeader(rep.To)
	}
	return rep, nil
}

// setHeader records the template version: in place when the marker exists,
// else at the end, so no line the user wrote moves.
func (d *Doc) setHeader(version string) {
	if d.commentLines(func(l string) (string, bool) {
		return HeaderMarker + version, strings.HasPrefix(l, HeaderMarker)
	}) {
		return
	}
	d.appendLine(seg{raw: HeaderMarker + version})
}

func templateVersion() string { return templates.DifyVersion() }

// SelectionVars are the variables whose values follow from DB_TYPE and
// VECTOR_STORE: setting either through ApplySelection moves them with it.
var SelectionVars = []string{"DB_TYPE", "VECTOR_STORE"}

// ApplySelection makes d agree with the profiles its DB_TYPE and
// VECTOR_STORE name (after one of them was set): every variable the
// selection fixes (COMPOSE_PROFILES, hosts, ports, ...) is set to the
// selection's value, and what the newly chosen profiles need and d lacks is
// added as env upgrade adds it (fresh secrets included). It returns the
// names it changed or added, in that order. Extras in COMPOSE_PROFILES stay.
func ApplySelection(d *Doc, schema *Schema, rand io.Reader, now time.Time) ([]string, error) {
	sel, err := profiles.FromEnv(d.Map())
	if err != nil {
		return nil, err
	}
	env := d.Map()
	vars := sel.Vars()
	keys := make([]string, 0, len(vars))
	for k := range vars {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var changed []string
	for _, k := range keys {
		if cur, ok := env[k]; !ok || cur != vars[k] {
			d.Set(k, vars[k])
			changed = append(changed, k)
		}
	}
	rep, err := Upgrade(d, schema, rand, now)
	if err != nil {
		return changed, err
	}
	return append(changed, rep.Added...), nil
}
