package envgen

import (
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/difyctl/difyctl/profiles"
)

// Severity of a finding.
type Severity string

// Severities.
const (
	Error   Severity = "error"
	Warning Severity = "warning"
)

// Finding is one problem in a .env: which variable, where, what was expected
// and how to fix it.
type Finding struct {
	Severity Severity `json:"severity"`
	Var      string   `json:"var"`
	Line     int      `json:"line,omitempty"`
	Message  string   `json:"message"`
	Fix      string   `json:"fix"`
}

func (f Finding) String() string {
	s := f.Var + " " + f.Message
	if f.Fix != "" {
		s += "; " + f.Fix
	}
	if f.Line > 0 {
		s += fmt.Sprintf(" (.env line %d)", f.Line)
	}
	return s
}

// insecureDefaults are values upstream publishes in its examples: anyone can
// read them, so a deployment must not keep them.
var insecureDefaults = []string{
	"difyai123456", "dify-sandbox", "QaHbTe77CtuXmsfyhR7+vRjI/+XbV1AaFy691iy+kGDv2Jvy0/eAh8Y1",
	"lYkiYYT6owG+71oLerGzA7GXCgOT++6ovaezWAjpCjf+Sjc3ZtU+qUEi", "WVF5YThaHlkYwhGUSmCRgsX3tD5ngdN8pkih",
	"MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY", "minioadmin", "admin", "elastic", "Qazwsxedc!@#123",
	"Difyai123456", "Dify@123", "Dify@1234", "Dify123456", "dify", "111", "password",
	// The SECRET_KEY docker/.env.example shipped up to Dify 1.13.
	"sk-9f73s3ljTXVcMT3Blb3ljTqtsKiGHXVcMT3BlbkFJLK7U",
}

// selfKeyed are secrets the service makes for itself when .env leaves them
// empty: Dify (since 1.14) generates SECRET_KEY once and keeps it in its
// storage directory.
var selfKeyed = map[string]string{
	"SECRET_KEY": "Dify generates its own key and keeps it in its storage directory (volumes/app/storage), which .env does not hold",
}

const minSecretLen = 16

// MaxFindings is how many findings a report lists; the rest are counted.
const MaxFindings = 50

// Report is the result of validating a .env: the first findings and counts
// of all of them.
type Report struct {
	Findings []Finding `json:"findings"`
	Omitted  int       `json:"omitted"` // findings not listed
	Errors   int       `json:"errors"`
	Warnings int       `json:"warnings"`
}

// Failed reports whether the report holds an error, or with strict a warning.
func (r Report) Failed(strict bool) bool {
	return r.Errors > 0 || (strict && r.Warnings > 0)
}

// Validate checks d against the schema and the cross-variable rules and
// returns every finding.
func Validate(d *Doc, schema *Schema) []Finding {
	return ValidateReport(d, schema, -1).Findings
}

// ValidateReport is Validate keeping only the first max findings (all when
// max < 0) and counting the rest, so a huge file costs no more memory than
// its own size. It is linear in the size of d.
func ValidateReport(d *Doc, schema *Schema, max int) Report {
	rep := Report{Findings: []Finding{}}
	validate(d, schema, func(f Finding) {
		if f.Severity == Error {
			rep.Errors++
		} else {
			rep.Warnings++
		}
		if max >= 0 && len(rep.Findings) >= max {
			rep.Omitted++
			return
		}
		rep.Findings = append(rep.Findings, f)
	})
	return rep
}

func validate(d *Doc, schema *Schema, emit func(Finding)) {
	env := d.Map()
	add := func(sev Severity, name, msg, fix string) {
		emit(Finding{Severity: sev, Var: name, Line: d.Line(name), Message: msg, Fix: fix})
	}
	unknownMsg := fmt.Sprintf("is not a variable of Dify %s's templates", templateVersion())

	// Profiles.
	sel, selErr := selectionOf(env)
	if selErr != nil {
		name := "DB_TYPE"
		if strings.Contains(selErr.Error(), "vector") {
			name = "VECTOR_STORE"
		}
		add(Error, name, selErr.Error(), `choose with "difyctl init --profile" or fix it in .env`)
	}
	active := func(p string) bool { return selErr == nil && sel.Active(p) }

	// Types and required values.
	for _, k := range d.Keys() {
		v, ok := schema.Lookup(k)
		if !ok {
			add(Warning, k, unknownMsg, "remove it, or keep it if you added it on purpose")
			continue
		}
		if msg := checkType(v, env[k]) + originMsg(k, env[k]); msg != "" {
			add(Error, k, msg, fmt.Sprintf("set a valid value (default: %q)", v.Default))
		}
	}
	for _, v := range schema.Vars {
		if v.Fixed && v.InProfiles(active) && len(v.Profiles) > 0 {
			add(Warning, v.Name, fmt.Sprintf("is a credential the %s server has built in (its image or start-up scripts set it): the server does not read it from .env, so difyctl cannot change it", strings.Join(v.Profiles, "/")),
				"keep the server's port off untrusted networks; if you changed the password in the server itself, set the same value here")
			continue
		}
		if !v.Generated() || !v.InProfiles(active) || (v.Optional && len(v.Profiles) == 0) {
			continue
		}
		val, present := env[v.Name]
		switch {
		case (!present || val == "") && selfKeyed[v.Name] != "":
			add(Warning, v.Name, "is empty: "+selfKeyed[v.Name],
				fmt.Sprintf(`keep it empty to go on with that key, or run "difyctl env set %s --generate" to use a key of .env instead (Dify's own key is then no longer used: everyone is signed out)`, v.Name))
		case !present || val == "":
			add(Error, v.Name, "is empty", fmt.Sprintf(`run "difyctl env set %s --generate" to generate it, or set it in .env`, v.Name))
		case slices.Contains(insecureDefaults, val):
			add(Warning, v.Name, "still has the value upstream publishes in its examples", fmt.Sprintf(`run "difyctl env set %s --generate", or set a secret of your own ("difyctl env set %s --stdin")`, v.Name, v.Name))
		case len(val) < minSecretLen && v.Secret != "complexpw":
			add(Warning, v.Name, fmt.Sprintf("is only %d characters long", len(val)), fmt.Sprintf("use at least %d random characters", minSecretLen))
		}
	}

	if selErr == nil {
		// COMPOSE_PROFILES must start the services DB_TYPE and VECTOR_STORE name,
		// so that plain docker compose in the project directory agrees.
		cp := splitList(env["COMPOSE_PROFILES"])
		for _, name := range []struct{ v, p string }{{"DB_TYPE", sel.Database}, {"VECTOR_STORE", sel.Vector}} {
			if !slices.Contains(cp, name.p) {
				add(Error, "COMPOSE_PROFILES", fmt.Sprintf("does not include %q, which %s names", name.p, name.v),
					fmt.Sprintf("set COMPOSE_PROFILES=%s", strings.Join(sel.Names(), ",")))
			}
		}
		// Hosts and ports the chosen profiles fix.
		for k, want := range sel.Vars() {
			if k == "COMPOSE_PROFILES" {
				continue
			}
			if got, ok := env[k]; ok && got != want {
				by := "DB_TYPE=" + sel.Database
				if p, _ := profiles.Get(sel.Vector); p != nil && p.Vars[k] != "" {
					by = "VECTOR_STORE=" + sel.Vector
				}
				add(Error, k, fmt.Sprintf("is %q but %s runs it at %q", excerpt(got), by, want), fmt.Sprintf("set %s=%s", k, want))
			}
		}
	}

	// Pairs two services must agree on.
	for _, l := range Links {
		if !l.Active(active) {
			continue
		}
		_, p := env[l.Primary]
		_, s := env[l.Secondary]
		if !p && !s {
			continue
		}
		if !l.Holds(env) {
			rel := "must equal"
			if l.Relation == Member {
				rel = "must be listed in"
			}
			add(Error, l.Secondary, fmt.Sprintf("and %s disagree: %s %s %s (%s)", l.Primary, l.Primary, rel, l.Secondary, l.Why),
				fmt.Sprintf("set both to the same secret, e.g. with \"difyctl env set %s=...\"", l.Primary))
		}
	}
	for _, f := range fieldFindings(d, env, schema) {
		emit(f)
	}
	if msg := checkBroker(env); msg != "" {
		add(Error, "CELERY_BROKER_URL", msg+" (workers reach Redis through it)", "rebuild it as redis://:<REDIS_PASSWORD>@<REDIS_HOST>:<REDIS_PORT>/1")
	}
}

func selectionOf(env map[string]string) (profiles.Selection, error) {
	db, vs := env["DB_TYPE"], env["VECTOR_STORE"]
	if db == "" {
		db = profiles.DefaultDatabase
	}
	if p, ok := profiles.Get(db); !ok || p.Kind != profiles.Database {
		return profiles.Selection{}, fmt.Errorf("%q is not a database profile; choose one of: %s", db, strings.Join(profiles.Names(profiles.Database), ", "))
	}
	if vs == "" {
		vs = profiles.DefaultVector
	}
	if p, ok := profiles.Get(vs); !ok || p.Kind != profiles.Vector {
		return profiles.Selection{}, fmt.Errorf("%q is not a vector store profile difyctl can run; choose one of: %s", vs, strings.Join(profiles.Names(profiles.Vector), ", "))
	}
	return profiles.FromEnv(map[string]string{"DB_TYPE": db, "VECTOR_STORE": vs, "COMPOSE_PROFILES": env["COMPOSE_PROFILES"]})
}

// checkType returns what is wrong with val for v's type, or "".
func checkType(v *Var, val string) string {
	if val == "" {
		return "" // empty means "use the service's own default"
	}
	shown := excerpt(val)
	if v.IsSecret() {
		shown = "(a secret, not shown)"
	}
	switch v.Type {
	case TypeInt:
		if _, err := strconv.ParseInt(val, 10, 64); err != nil {
			return fmt.Sprintf("is %q, not an integer", shown)
		}
	case TypeFloat:
		if _, err := strconv.ParseFloat(val, 64); err != nil {
			return fmt.Sprintf("is %q, not a number", shown)
		}
	case TypePort:
		if p := portProblem(val); p != "" {
			return fmt.Sprintf("is %q, %s", shown, p)
		}
	case TypeBool:
		switch strings.ToLower(val) {
		case "true", "false", "1", "0", "yes", "no", "on", "off":
		default:
			return fmt.Sprintf("is %q, not true or false", shown)
		}
	case TypeURL:
		u, err := url.Parse(val)
		if err != nil || u.Scheme == "" || u.Host == "" {
			return fmt.Sprintf("is %q, not an absolute URL (scheme://host...)", shown)
		}
	case TypeDuration:
		if _, err := time.ParseDuration(val); err != nil {
			return fmt.Sprintf("is %q, not a duration like 30s or 5m", shown)
		}
	case TypeEnum:
		if !slices.Contains(v.Enum, val) {
			return fmt.Sprintf("is %q; expected one of %s", shown, strings.Join(v.Enum, ", "))
		}
	}
	return ""
}

// HasErrors reports whether findings hold an error, or with strict a warning.
func HasErrors(fs []Finding, strict bool) bool {
	for _, f := range fs {
		if f.Severity == Error || strict {
			return true
		}
	}
	return false
}
