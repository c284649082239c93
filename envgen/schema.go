package envgen

import (
	"bufio"
	"bytes"
	"fmt"
	"strings"
	"sync"

	"github.com/difyctl/difyctl/templates"
)

// Type is a variable's value type.
type Type string

// Types a variable may have.
const (
	TypeString   Type = "string"
	TypeInt      Type = "int"
	TypeFloat    Type = "float"
	TypeBool     Type = "bool"
	TypePort     Type = "port"
	TypeURL      Type = "url"
	TypeDuration Type = "duration"
	TypeEnum     Type = "enum"
)

// Var is one variable of the schema.
type Var struct {
	Name     string   `json:"name"`
	Default  string   `json:"default"`
	Type     Type     `json:"type"`
	Enum     []string `json:"enum,omitempty"`
	Secret   string   `json:"secret,omitempty"`   // generator name, "derived" or "user"; empty: not a secret
	Profiles []string `json:"profiles,omitempty"` // written only when one of these profiles is active
	Optional bool     `json:"optional,omitempty"`
	// Fixed: the profile's server has this credential built in (its image
	// does not read it from the environment); validation warns.
	Fixed       bool   `json:"fixed,omitempty"`
	Group       string `json:"group"`
	Description string `json:"description,omitempty"`
	RenamedFrom string `json:"renamed_from,omitempty"` // the name an older release gave this variable
}

// InProfiles reports whether v belongs to an active profile; a variable of
// no profile belongs to all.
func (v *Var) InProfiles(active func(string) bool) bool {
	if len(v.Profiles) == 0 {
		return true
	}
	for _, p := range v.Profiles {
		if active(p) {
			return true
		}
	}
	return false
}

// IsSecret reports whether the value must be masked and never logged.
func (v *Var) IsSecret() bool { return v.Secret != "" }

// Schema is the set of variables the templates know, in template order.
type Schema struct {
	Vars    []*Var
	Release string // the Dify release whose template this is ("" : parsed from elsewhere)
	byName  map[string]*Var
}

// Lookup returns the variable named name.
func (s *Schema) Lookup(name string) (*Var, bool) {
	v, ok := s.byName[name]
	return v, ok
}

// defaultSchema is parsed on first use, not at start-up: most commands
// (ps, logs, version) never need it.
var schemas sync.Map // release version -> *Schema

// DefaultSchema is the schema of the default (newest) release's env template.
func DefaultSchema() *Schema { return SchemaFor(templates.Latest()) }

// SchemaFor is the schema of a release's env template, parsed once.
func SchemaFor(r *templates.Release) *Schema {
	if s, ok := schemas.Load(r.Version); ok {
		return s.(*Schema)
	}
	s := mustSchema(r.EnvTemplate())
	s.Release = r.Version
	actual, _ := schemas.LoadOrStore(r.Version, s)
	return actual.(*Schema)
}

// version is the release the schema describes, the default release when
// it was not parsed from one.
func (s *Schema) version() string {
	if s.Release != "" {
		return s.Release
	}
	return templates.DifyVersion()
}

func mustSchema(b []byte) *Schema {
	s, err := ParseSchema(b)
	if err != nil {
		panic("embedded env template: " + err.Error())
	}
	return s
}

// ParseSchema reads an env template: "## group" lines start a group, "# text"
// lines describe the next variable, "#@ key=value ..." lines annotate it, and
// NAME=default defines it.
func ParseSchema(b []byte) (*Schema, error) {
	s := &Schema{byName: map[string]*Var{}}
	group, desc := "", []string{}
	var ann map[string]string
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	n := 0
	for sc.Scan() {
		n++
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "## "):
			group, desc, ann = strings.TrimSpace(line[3:]), nil, nil
		case strings.HasPrefix(line, "#@"):
			ann = map[string]string{}
			for _, f := range strings.Fields(line[2:]) {
				k, v, _ := strings.Cut(f, "=")
				ann[k] = v
			}
		case strings.HasPrefix(line, "#"):
			if t := strings.TrimSpace(strings.TrimLeft(line, "#")); t != "" {
				desc = append(desc, t)
			}
		case strings.TrimSpace(line) == "":
			desc, ann = nil, nil
		default:
			name, def, ok := strings.Cut(line, "=")
			if !ok {
				return nil, fmt.Errorf("env template line %d: not NAME=default", n)
			}
			if ann == nil {
				return nil, fmt.Errorf("env template line %d: %s has no #@ annotation", n, name)
			}
			v := &Var{Name: name, Default: def, Group: group, Description: strings.Join(desc, " "),
				Secret: ann["secret"], RenamedFrom: ann["renamed-from"]}
			if p := ann["profile"]; p != "" {
				v.Profiles = strings.Split(p, ",")
			}
			_, v.Optional = ann["optional"]
			_, v.Fixed = ann["fixed"]
			if v.Fixed && v.Generated() {
				return nil, fmt.Errorf("env template line %d: %s is fixed: a generated value would never reach its server", n, name)
			}
			t := ann["type"]
			if enum, ok := strings.CutPrefix(t, "enum:"); ok {
				v.Type, v.Enum = TypeEnum, strings.Split(enum, ",")
			} else {
				v.Type = Type(t)
			}
			switch v.Type {
			case TypeString, TypeInt, TypeFloat, TypeBool, TypePort, TypeURL, TypeDuration, TypeEnum:
			default:
				return nil, fmt.Errorf("env template line %d: %s has unknown type %q", n, name, t)
			}
			if _, dup := s.byName[name]; dup {
				return nil, fmt.Errorf("env template line %d: %s defined twice", n, name)
			}
			s.Vars = append(s.Vars, v)
			s.byName[name] = v
			desc, ann = nil, nil
		}
	}
	return s, sc.Err()
}
