package envgen

import (
	"crypto/rand"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/compose-spec/compose-go/v2/dotenv"

	"github.com/difyctl/difyctl/profiles"
)

// ImportReport says what Import did with an upstream docker/ folder.
type ImportReport struct {
	Sources  []string `json:"sources"`  // files read
	Kept     int      `json:"kept"`     // values carried over
	Unplaced []string `json:"unplaced"` // variables the template does not know (kept in their own section)
	Added    []string `json:"added"`    // variables the template wants that the folder lacked
	Project  string   `json:"project"`  // compose project name the folder's deployment runs under
}

// Import reads an upstream Dify docker/ folder (its .env and envs/**/*.env,
// the latter first, as compose's env_file order gives .env the last word) and
// returns a difyctl .env that keeps every value. dir is only read.
func Import(dir string, now time.Time) (*Doc, ImportReport, error) {
	return ImportWith(dir, DefaultSchema(), now)
}

// ImportWith is Import against a given release's schema (the folder's own,
// when recognised).
func ImportWith(dir string, schema *Schema, now time.Time) (*Doc, ImportReport, error) {
	var rep ImportReport
	merged := map[string]string{}
	var extra []string
	_ = filepath.WalkDir(filepath.Join(dir, "envs"), func(p string, e fs.DirEntry, err error) error {
		if err == nil && !e.IsDir() && filepath.Ext(p) == ".env" {
			extra = append(extra, p)
		}
		return nil
	})
	sort.Strings(extra)
	for _, p := range append(extra, filepath.Join(dir, ".env")) {
		b, err := os.ReadFile(p)
		if err != nil {
			if p == filepath.Join(dir, ".env") {
				return nil, rep, fmt.Errorf("reading %s: %w (is %s the docker/ folder of a Dify checkout?)", p, err, dir)
			}
			return nil, rep, err
		}
		m, err := dotenv.UnmarshalBytesWithLookup(b, func(k string) (string, bool) { v, ok := merged[k]; return v, ok })
		if err != nil {
			return nil, rep, fmt.Errorf("reading %s: %w", p, err)
		}
		for k, v := range m {
			merged[k] = v
		}
		rep.Sources = append(rep.Sources, p)
	}
	sel, err := profiles.FromEnv(merged)
	if err != nil {
		return nil, rep, fmt.Errorf("%s: %w", dir, err)
	}
	d, err := Generate(schema, sel, rand.Reader, now)
	if err != nil {
		return nil, rep, err
	}
	generated := d.Map()
	keys := make([]string, 0, len(merged))
	for k := range merged {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if _, known := schema.Lookup(k); !known {
			rep.Unplaced = append(rep.Unplaced, k)
			continue
		}
		d.Set(k, merged[k])
		rep.Kept++
	}
	if len(rep.Unplaced) > 0 {
		d.AppendComment("")
		d.AppendComment("== imported from " + dir + ": not variables of this template, kept as they were ==")
		for _, k := range rep.Unplaced {
			d.Set(k, merged[k])
			rep.Kept++
		}
	}
	for k := range generated {
		if _, ok := merged[k]; !ok {
			rep.Added = append(rep.Added, k)
		}
	}
	sort.Strings(rep.Added)
	// The folder's compose project: COMPOSE_PROJECT_NAME, else the folder's name.
	rep.Project = merged["COMPOSE_PROJECT_NAME"]
	if rep.Project == "" {
		abs, _ := filepath.Abs(dir)
		rep.Project = normalizeProjectName(filepath.Base(abs))
	}
	d.Set("COMPOSE_PROJECT_NAME", rep.Project)
	return d, rep, nil
}

// normalizeProjectName lowercases and drops what compose drops.
func normalizeProjectName(s string) string {
	out := make([]byte, 0, len(s))
	for _, c := range []byte(s) {
		switch {
		case c >= 'A' && c <= 'Z':
			out = append(out, c+'a'-'A')
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '-', c == '_':
			out = append(out, c)
		}
	}
	return string(out)
}
