package wizard

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/difyctl/difyctl/envgen"
	"github.com/difyctl/difyctl/internal/catalog"
	"github.com/difyctl/difyctl/internal/release"
	"github.com/difyctl/difyctl/profiles"
	"github.com/difyctl/difyctl/templates"
)

// The release step: a new deployment chooses one of the catalogue's
// releases (the newest preselected); an existing deployment shows the one
// it deploys and keeps it, since moving a deployment to another release
// (images, schema migrations, a bundle to go back to) is `difyctl upgrade`.

// DefaultLabel marks the newest release, as `difyctl releases` marks it.
const DefaultLabel = "(default for new deployments)"

// releaseFixed reports whether the project already deploys a release,
// which the wizard then keeps.
func (m *Model) releaseFixed() bool { return m.env.Deployed != "" }

// rel is the release of the mode in use.
func (m *Model) rel() *templates.Release {
	r, err := templates.Lookup(m.a().Release)
	if err != nil {
		return templates.Latest() // New reported it; Answers.Release is only ever set from the catalogue
	}
	return r
}

// schema is the variable schema of the chosen release: generation,
// validation and the review all judge the .env by it.
func (m *Model) schema() *envgen.Schema { return envgen.SchemaFor(m.rel()) }

// releaseLabel is a release's line in the list.
func (m *Model) releaseLabel(v string) string {
	s := v
	if v == templates.Latest().Version {
		s += "  " + DefaultLabel
	}
	if m.releaseFixed() && v == m.env.Deployed {
		s += "  (deployed here)"
	}
	return s
}

// fixedNote says why the release cannot be changed here.
func (m *Model) fixedNote() string {
	from := m.env.DeployedFrom
	if from == "" {
		from = "recorded"
	}
	return fmt.Sprintf("This project deploys Dify %s (%s). setup keeps it: `difyctl upgrade --to VERSION` changes a deployment's release (see `difyctl releases`).", m.env.Deployed, from)
}

// releaseNote describes the selected release of a new deployment.
func releaseNote(v string) string {
	latest := templates.Latest().Version
	if v == latest {
		return v + ": the newest release this difyctl carries."
	}
	return fmt.Sprintf("%s: an older release (the newest is %s); `difyctl upgrade` moves the deployment on later. `difyctl releases` lists what changes.", v, latest)
}

// profileNames are the database (kind Database) or vector-store profiles
// the chosen release's compose file declares, in the catalogue's order.
func (m *Model) profileNames(k profiles.Kind) []string {
	v := m.a().Release
	n, ok := m.names[v]
	if !ok {
		declared := map[string]bool{}
		if svcs, err := catalog.Services(m.rel()); err == nil {
			for _, s := range svcs {
				for _, p := range s.Profiles {
					declared[p] = true
				}
			}
		}
		n = [2][]string{declaredOnly(profiles.Names(profiles.Database), declared), declaredOnly(profiles.Names(profiles.Vector), declared)}
		m.names[v] = n
	}
	if k == profiles.Vector {
		return n[1]
	}
	return n[0]
}

// declaredOnly keeps the names a release declares (all of them when it
// declares none: a template without profiles says nothing about them).
func declaredOnly(names []string, declared map[string]bool) []string {
	if len(declared) == 0 {
		return names
	}
	var out []string
	for _, n := range names {
		if declared[n] {
			out = append(out, n)
		}
	}
	return out
}

func (m *Model) dbNames() []string  { return m.profileNames(profiles.Database) }
func (m *Model) vecNames() []string { return m.profileNames(profiles.Vector) }

// writeRelease puts the chosen release's support files (where missing) and
// its record beside a new .env, as `difyctl init --release` does. undo
// removes what it wrote, for a .env write that fails after it. An existing
// deployment's release and files are left as they are.
func (m *Model) writeRelease() (undo func(), err error) {
	undo = func() {}
	if m.env.Existing != nil {
		return undo, nil // an existing deployment: only its .env changes
	}
	dir := filepath.Dir(m.env.Path)
	rel := m.rel()
	// The directories the files bring that are not there yet go too.
	var newDirs []string
	fs.WalkDir(rel.SupportFiles(), ".", func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() && p != "." {
			if _, err := os.Lstat(filepath.Join(dir, filepath.FromSlash(p))); errors.Is(err, fs.ErrNotExist) {
				newDirs = append(newDirs, filepath.Join(dir, filepath.FromSlash(p)))
			}
		}
		return nil
	})
	written, err := rel.WriteSupportFiles(dir)
	removeFiles := func() {
		for i := len(written) - 1; i >= 0; i-- {
			os.Remove(written[i])
		}
		for i := len(newDirs) - 1; i >= 0; i-- { // deepest first; only if empty
			os.Remove(newDirs[i])
		}
	}
	if err != nil {
		removeFiles()
		return undo, fmt.Errorf("not written: writing the support files of Dify %s in %s: %w", rel.Version, dir, err)
	}
	if m.releaseFixed() {
		return removeFiles, nil // a record exists; it stays
	}
	if err := release.Write(dir, release.Record{Release: rel.Version, Source: release.SourceInit, At: m.now().UTC()}); err != nil {
		removeFiles()
		return undo, fmt.Errorf("not written: %w", err)
	}
	return func() { os.Remove(release.Path(dir)); removeFiles() }, nil
}
