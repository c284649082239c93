// Package templates embeds the Dify releases difyctl deploys, one folder per
// release (templates/<version>/): its compose file (compose/dify.yaml), its
// env template (env/dify.env.tmpl), from which the variable schema and
// generated .env files derive, and the support files the compose file mounts
// (files/). The folders are the catalogue: adding a release is adding a
// folder; the newest is the default for new deployments.
package templates

import (
	"embed"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/difyctl/difyctl/internal/atomicfile"
)

//go:embed */compose/dify.yaml */env/dify.env.tmpl all:*/files
var releasesFS embed.FS

// ComposeFileName is the name the embedded compose file is loaded under
// (relative to the project directory), as docker compose names its default.
const ComposeFileName = "docker-compose.yaml"

// OverrideFileName is the user's customisation file in the project directory,
// merged over the embedded templates as docker compose merges it.
const OverrideFileName = "docker-compose.override.yaml"

// Release is one Dify release of the catalogue.
type Release struct {
	Version string
	compose []byte
	env     []byte
	files   fs.FS
}

// Compose returns the release's compose file.
func (r *Release) Compose() []byte { return r.compose }

// EnvTemplate returns the release's env template.
func (r *Release) EnvTemplate() []byte { return r.env }

// SupportFiles are the configuration files the release's compose file mounts
// from the project directory (nginx and squid templates and entrypoints, the
// sandbox configuration, profile entrypoints), rooted at the project
// directory.
func (r *Release) SupportFiles() fs.FS { return r.files }

var catalogue = sync.OnceValue(func() []*Release {
	entries, err := fs.ReadDir(releasesFS, ".")
	if err != nil {
		panic(err)
	}
	var out []*Release
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		if _, ok := parseVersion(e.Name()); !ok {
			panic("templates: folder " + e.Name() + " is not a release version")
		}
		r := &Release{Version: e.Name()}
		if r.compose, err = fs.ReadFile(releasesFS, path.Join(e.Name(), "compose", "dify.yaml")); err != nil {
			panic(err)
		}
		if r.env, err = fs.ReadFile(releasesFS, path.Join(e.Name(), "env", "dify.env.tmpl")); err != nil {
			panic(err)
		}
		if r.files, err = fs.Sub(releasesFS, path.Join(e.Name(), "files")); err != nil {
			panic(err)
		}
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool { return CompareVersions(out[i].Version, out[j].Version) < 0 })
	return out
})

// Releases lists the catalogue, oldest first.
func Releases() []*Release { return append([]*Release(nil), catalogue()...) }

// Latest is the newest release: the default for new deployments.
func Latest() *Release { c := catalogue(); return c[len(c)-1] }

// Lookup returns the release named version ("1.15.0"; a leading "v" is
// accepted). The error lists the releases there are.
func Lookup(version string) (*Release, error) {
	v := strings.TrimPrefix(strings.TrimSpace(version), "v")
	for _, r := range catalogue() {
		if r.Version == v {
			return r, nil
		}
	}
	return nil, fmt.Errorf("Dify release %q is not in this difyctl's catalogue (it has %s): run `difyctl releases`", version, strings.Join(Versions(), ", "))
}

// Versions lists the catalogue's versions, oldest first.
func Versions() []string {
	var vs []string
	for _, r := range catalogue() {
		vs = append(vs, r.Version)
	}
	return vs
}

// parseVersion reads "X.Y.Z" (any number of numeric parts).
func parseVersion(v string) ([]int, bool) {
	parts := strings.Split(v, ".")
	out := make([]int, len(parts))
	for i, p := range parts {
		n, err := strconv.Atoi(p)
		if err != nil || n < 0 {
			return nil, false
		}
		out[i] = n
	}
	return out, len(out) >= 2
}

// CompareVersions orders two release versions numerically (-1, 0, 1); a
// version that does not parse sorts before every one that does.
func CompareVersions(a, b string) int {
	pa, oka := parseVersion(a)
	pb, okb := parseVersion(b)
	switch {
	case !oka && !okb:
		return strings.Compare(a, b)
	case !oka:
		return -1
	case !okb:
		return 1
	}
	for i := 0; i < len(pa) || i < len(pb); i++ {
		x, y := 0, 0
		if i < len(pa) {
			x = pa[i]
		}
		if i < len(pb) {
			y = pb[i]
		}
		if x != y {
			if x < y {
				return -1
			}
			return 1
		}
	}
	return 0
}

// DifyVersion is the default release: the newest of the catalogue.
func DifyVersion() string { return Latest().Version }

// Compose returns the default release's compose file.
func Compose() []byte { return Latest().compose }

// EnvTemplate returns the default release's env template.
func EnvTemplate() []byte { return Latest().env }

// SupportFiles are the default release's support files.
func SupportFiles() fs.FS { return Latest().files }

// WriteSupportFiles puts every support file of the default release under
// dir where none exists yet (see Release.WriteSupportFiles).
func WriteSupportFiles(dir string) ([]string, error) { return Latest().WriteSupportFiles(dir) }

// FileMode is the mode a support file is written with: scripts 0755, the
// rest 0644.
func FileMode(p string) os.FileMode {
	if strings.HasSuffix(p, ".sh") {
		return 0o755
	}
	return 0o644
}

// WriteSupportFiles puts every support file under dir where none exists yet;
// files the operator has (perhaps edited) are never overwritten. Scripts get
// mode 0755, the rest 0644. It returns the paths it wrote.
func (r *Release) WriteSupportFiles(dir string) ([]string, error) {
	var written []string
	err := fs.WalkDir(r.files, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == "." {
			return err
		}
		target := filepath.Join(dir, filepath.FromSlash(p))
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		if _, err := os.Lstat(target); err == nil {
			return nil
		}
		b, err := fs.ReadFile(r.files, p)
		if err != nil {
			return err
		}
		if err := atomicfile.WriteFile(target, b, FileMode(p)); err != nil {
			return err
		}
		written = append(written, target)
		return nil
	})
	return written, err
}
