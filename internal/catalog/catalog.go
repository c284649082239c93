// Package catalog compares the releases of the embedded catalogue
// (templates/<version>/) and recognises a release from the images a
// deployment runs. Everything here is computed from the templates: no
// change list is written by hand.
package catalog

import (
	"bytes"
	"fmt"
	"io/fs"
	"sort"
	"strings"

	"go.yaml.in/yaml/v4"

	"github.com/difyctl/difyctl/compose"

	"github.com/difyctl/difyctl/envgen"
	"github.com/difyctl/difyctl/templates"
)

// Service is one service of a release's compose file.
type Service struct {
	Name     string   `json:"name"`
	Image    string   `json:"image"`
	Profiles []string `json:"profiles,omitempty"`
}

// Services reads a release's services (name -> service).
func Services(r *templates.Release) (map[string]Service, error) {
	return servicesOf(r.Compose())
}

func servicesOf(b []byte) (map[string]Service, error) {
	var doc struct {
		Services map[string]struct {
			Image    string   `yaml:"image"`
			Profiles []string `yaml:"profiles"`
		} `yaml:"services"`
	}
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("reading the compose file's services: %w", err)
	}
	out := map[string]Service{}
	for n, s := range doc.Services {
		out[n] = Service{Name: n, Image: s.Image, Profiles: s.Profiles}
	}
	return out, nil
}

// ImageChange is a service whose image differs between two releases.
type ImageChange struct {
	Service  string   `json:"service"`
	From     string   `json:"from"`
	To       string   `json:"to"`
	Profiles []string `json:"profiles,omitempty"`
}

// Rename is a variable the newer release reads under another name.
type Rename struct {
	From string `json:"from"`
	To   string `json:"to"`
}

// DefaultChange is a variable whose default differs.
type DefaultChange struct {
	Name string `json:"name"`
	From string `json:"from"`
	To   string `json:"to"`
}

// Changes is what differs between two releases.
type Changes struct {
	From            string          `json:"from"`
	To              string          `json:"to"`
	Images          []ImageChange   `json:"images"`
	ServicesAdded   []Service       `json:"servicesAdded"`
	ServicesRemoved []Service       `json:"servicesRemoved"`
	VarsAdded       []string        `json:"variablesAdded"`
	VarsRenamed     []Rename        `json:"variablesRenamed"`
	VarsRemoved     []string        `json:"variablesRemoved"`
	DefaultsChanged []DefaultChange `json:"defaultsChanged"`
	FilesAdded      []string        `json:"filesAdded"`
	FilesChanged    []string        `json:"filesChanged"`
	FilesRemoved    []string        `json:"filesRemoved"`
}

// Empty reports whether nothing differs.
func (c *Changes) Empty() bool {
	return len(c.Images)+len(c.ServicesAdded)+len(c.ServicesRemoved)+len(c.VarsAdded)+len(c.VarsRenamed)+
		len(c.VarsRemoved)+len(c.DefaultsChanged)+len(c.FilesAdded)+len(c.FilesChanged)+len(c.FilesRemoved) == 0
}

// Diff computes what changes from one release to another (either
// direction: a downgrade's changes are the upgrade's, reversed).
func Diff(from, to *templates.Release) (*Changes, error) {
	c := &Changes{From: from.Version, To: to.Version}
	a, err := Services(from)
	if err != nil {
		return nil, fmt.Errorf("release %s: %w", from.Version, err)
	}
	b, err := Services(to)
	if err != nil {
		return nil, fmt.Errorf("release %s: %w", to.Version, err)
	}
	for _, n := range sortedKeys(b) {
		s := b[n]
		old, ok := a[n]
		switch {
		case !ok:
			c.ServicesAdded = append(c.ServicesAdded, s)
		case old.Image != s.Image:
			c.Images = append(c.Images, ImageChange{Service: n, From: old.Image, To: s.Image, Profiles: s.Profiles})
		}
	}
	for _, n := range sortedKeys(a) {
		if _, ok := b[n]; !ok {
			c.ServicesRemoved = append(c.ServicesRemoved, a[n])
		}
	}
	c.diffVars(envgen.SchemaFor(from), envgen.SchemaFor(to))
	if err := c.diffFiles(from.SupportFiles(), to.SupportFiles()); err != nil {
		return nil, err
	}
	return c, nil
}

func (c *Changes) diffVars(a, b *envgen.Schema) {
	renamedAway := map[string]bool{}
	// Renames are annotated on the newer release (renamed-from=OLD); a
	// downgrade reads them backwards.
	newer, older := b, a
	backwards := templates.CompareVersions(c.From, c.To) > 0
	if backwards {
		newer, older = a, b
	}
	for _, v := range newer.Vars {
		if v.RenamedFrom == "" {
			continue
		}
		if _, ok := older.Lookup(v.RenamedFrom); !ok {
			continue
		}
		if _, ok := newer.Lookup(v.RenamedFrom); ok {
			continue // both names exist in the newer release: not a rename between these two
		}
		if backwards {
			c.VarsRenamed = append(c.VarsRenamed, Rename{From: v.Name, To: v.RenamedFrom})
			renamedAway[v.Name], renamedAway[v.RenamedFrom] = true, true
		} else {
			c.VarsRenamed = append(c.VarsRenamed, Rename{From: v.RenamedFrom, To: v.Name})
			renamedAway[v.RenamedFrom], renamedAway[v.Name] = true, true
		}
	}
	for _, v := range b.Vars {
		if renamedAway[v.Name] {
			continue
		}
		old, ok := a.Lookup(v.Name)
		switch {
		case !ok:
			c.VarsAdded = append(c.VarsAdded, v.Name)
		case old.Default != v.Default && !v.IsSecret():
			c.DefaultsChanged = append(c.DefaultsChanged, DefaultChange{Name: v.Name, From: old.Default, To: v.Default})
		}
	}
	for _, v := range a.Vars {
		if _, ok := b.Lookup(v.Name); !ok && !renamedAway[v.Name] {
			c.VarsRemoved = append(c.VarsRemoved, v.Name)
		}
	}
}

func (c *Changes) diffFiles(a, b fs.FS) error {
	fa, err := files(a)
	if err != nil {
		return err
	}
	fb, err := files(b)
	if err != nil {
		return err
	}
	for _, p := range sortedKeys(fb) {
		old, ok := fa[p]
		switch {
		case !ok:
			c.FilesAdded = append(c.FilesAdded, p)
		case !bytes.Equal(old, fb[p]):
			c.FilesChanged = append(c.FilesChanged, p)
		}
	}
	for _, p := range sortedKeys(fa) {
		if _, ok := fb[p]; !ok {
			c.FilesRemoved = append(c.FilesRemoved, p)
		}
	}
	return nil
}

// files reads every support file of a release (path -> content).
func files(fsys fs.FS) (map[string][]byte, error) {
	out := map[string][]byte{}
	err := fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(fsys, p)
		out[p] = b
		return err
	})
	return out, err
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// Detect recognises the catalogue release a deployment runs from its
// containers' images (service -> image reference): the release every one of
// whose services present agrees on its image, with the most agreeing. It
// returns "" when no release fits (images of a release difyctl does not
// carry, or a mix).
func Detect(running map[string]string) string {
	best, bestN := "", 0
	for _, r := range templates.Releases() {
		svcs, err := Services(r)
		if err != nil {
			continue
		}
		n, ok := 0, true
		for svc, img := range running {
			s, known := svcs[svc]
			if !known {
				continue
			}
			if s.Image != img {
				ok = false
				break
			}
			n++
		}
		// Ties go to the newer release (the catalogue is oldest first).
		if ok && n > 0 && n >= bestN && distinctive(r, running) {
			best, bestN = r.Version, n
		}
	}
	return best
}

// distinctive reports whether running includes at least one service whose
// image in r is r's own (differs in some other release): images every
// release shares (redis, nginx) say nothing about which one runs.
func distinctive(r *templates.Release, running map[string]string) bool {
	mine, _ := Services(r)
	for svc, img := range running {
		if mine[svc].Image != img {
			continue
		}
		for _, o := range templates.Releases() {
			if o == r {
				continue
			}
			theirs, _ := Services(o)
			if s, ok := theirs[svc]; !ok || s.Image != img {
				return true
			}
		}
	}
	return false
}

// DetectCompose recognises the release of an upstream docker-compose.yaml
// (an `env import`-ed folder) from the images it names.
func DetectCompose(b []byte) (string, error) {
	svcs, err := servicesOf(b)
	if err != nil {
		return "", err
	}
	running := map[string]string{}
	for n, s := range svcs {
		running[n] = s.Image
	}
	return Detect(running), nil
}

// RunningRelease says, in one line for ps, which Dify release a project's
// containers run. recorded is the release the project directory records
// (.difyctl-release; "" none). An upgrade recreates only the services the
// new release changed: the others keep their containers, labelled with the
// release that created them. So a container labelled with another release
// than the recorded one is "kept" when the two releases give its service
// the same image, and only one whose service the recorded release changed
// means an upgrade (or its rollback) did not finish. Without a record: the
// containers' labels when they agree, else the release recognised from
// their images.
func RunningRelease(cs []compose.ProjectContainer, recorded string) string {
	labels := map[string]bool{}
	images := map[string]string{}
	for _, c := range cs {
		if c.Oneoff {
			continue
		}
		if c.Release != "" {
			labels[c.Release] = true
		}
		images[c.Service] = c.Image
	}
	if recorded != "" && (len(labels) == 0 || labels[recorded]) {
		if stale := changedSince(cs, recorded); len(stale) > 0 {
			return "Dify: containers of several releases (" + strings.Join(sortedKeys(labels), ", ") + "; " + strings.Join(stale, ", ") +
				" not yet on " + recorded + "): an upgrade did not finish; `difyctl upgrade` or `difyctl rollback` settles it"
		}
		if len(labels) > 1 {
			return "Dify " + recorded + " (recorded; services it did not change keep their containers from " + strings.Join(otherKeys(labels, recorded), ", ") + ")"
		}
		return "Dify " + recorded + " (recorded)"
	}
	if len(labels) == 1 {
		for r := range labels {
			return "Dify " + r + " (from the containers' labels)"
		}
	}
	if r := Detect(images); r != "" {
		return "Dify " + r + " (recognised from the images)"
	}
	if len(labels) > 1 {
		vs := sortedKeys(labels)
		return "Dify: containers of several releases (" + strings.Join(vs, ", ") + "): an upgrade did not finish; `difyctl upgrade` or `difyctl rollback` settles it"
	}
	return "Dify release: unknown (images of no release in this difyctl's catalogue)"
}

// changedSince lists the services whose container was created by another
// release than recorded, where the two releases' templates give the service
// different images (a service one of them lacks counts as changed; a
// release the catalogue does not carry is not judged).
func changedSince(cs []compose.ProjectContainer, recorded string) []string {
	cur := servicesOfRelease(recorded)
	var out []string
	seen := map[string]bool{}
	parsed := map[string]map[string]Service{} // each release's template parsed once
	for _, c := range cs {
		if c.Oneoff || c.Release == "" || c.Release == recorded || seen[c.Service] {
			continue
		}
		old, ok := parsed[c.Release]
		if !ok {
			old = servicesOfRelease(c.Release)
			parsed[c.Release] = old
		}
		if cur == nil || old == nil {
			continue // a release this difyctl does not carry: nothing to compare, not counted as stale
		}
		a, okA := cur[c.Service]
		b, okB := old[c.Service]
		if !okA || !okB || a.Image != b.Image {
			seen[c.Service] = true
			out = append(out, c.Service)
		}
	}
	sort.Strings(out)
	return out
}

func servicesOfRelease(version string) map[string]Service {
	r, err := templates.Lookup(version)
	if err != nil {
		return nil
	}
	svcs, _ := Services(r)
	return svcs
}

func otherKeys(m map[string]bool, not string) []string {
	var out []string
	for _, k := range sortedKeys(m) {
		if k != not {
			out = append(out, k)
		}
	}
	return out
}
