package envgen

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"sort"
	"time"

	"github.com/compose-spec/compose-go/v2/loader"
)

// ImportReport says what Import did with an upstream docker/ folder.
type ImportReport struct {
	Sources   []string `json:"sources"`   // files read
	Kept      int      `json:"kept"`      // values carried over
	Unplaced  []string `json:"unplaced"`  // variables the template does not know (kept as they were)
	Added     []string `json:"added"`     // variables the template wants that the folder lacked
	Rederived []string `json:"rederived"` // values the chosen profiles fix (hosts, ports, COMPOSE_PROFILES), set to what this release runs
	Project   string   `json:"project"`   // compose project name the folder's deployment runs under
}

// Import reads an upstream Dify docker/ folder (its .env and envs/**/*.env,
// the latter first, as compose's env_file order gives .env the last word) and
// returns the difyctl .env that adopts it. dir is only read.
//
// The folder's .env is the starting point, byte for byte: its comments,
// order, quoting and line endings stay. Values only envs/**/*.env set are
// appended. Then what this release's template wants and the folder lacks
// is added the way "env upgrade" adds it: a variable tied to one the folder
// has takes that value (CODE_EXECUTION_API_KEY from SANDBOX_API_KEY,
// CELERY_BROKER_URL from REDIS_PASSWORD, ...), others get fresh secrets or
// defaults. Hosts, ports and COMPOSE_PROFILES the chosen profiles fix are
// set to what this release runs (an old DB_HOST=db becomes db_postgres).
// Every other value reads back exactly as docker compose read it in dir.
func Import(dir string, now time.Time) (*Doc, ImportReport, error) {
	return ImportWith(dir, DefaultSchema(), now)
}

// ImportWith is Import against a given release's schema (the folder's own,
// when recognised).
func ImportWith(dir string, schema *Schema, now time.Time) (*Doc, ImportReport, error) {
	var rep ImportReport
	merged := map[string]string{}
	lookup := func(k string) (string, bool) { v, ok := merged[k]; return v, ok }
	var extra []string
	_ = filepath.WalkDir(filepath.Join(dir, "envs"), func(p string, e fs.DirEntry, err error) error {
		if err == nil && !e.IsDir() && filepath.Ext(p) == ".env" {
			extra = append(extra, p)
		}
		return nil
	})
	sort.Strings(extra)
	envPath := filepath.Join(dir, ".env")
	fromExtra := map[string]string{} // variable -> the envs file that set it
	var base *Doc
	for _, p := range append(extra, envPath) {
		d, err := ReadFileWithLookup(p, lookup)
		if err != nil {
			if p == envPath && errors.Is(err, fs.ErrNotExist) {
				return nil, rep, fmt.Errorf("%s: no .env (is %s the docker/ folder of a Dify checkout?)", p, dir)
			}
			return nil, rep, err
		}
		for k, v := range d.Map() {
			merged[k] = v
			if p != envPath {
				fromExtra[k] = p
			} else {
				delete(fromExtra, k)
			}
		}
		rep.Sources = append(rep.Sources, p)
		if p == envPath {
			base = d
		}
	}
	d := base
	// Values compose gave the services from envs/**/*.env only.
	extraKeys := make([]string, 0, len(fromExtra))
	for k := range fromExtra {
		extraKeys = append(extraKeys, k)
	}
	sort.Strings(extraKeys)
	d.AppendComment("")
	d.AppendComment(fmt.Sprintf("== imported by difyctl env import from %s on %s ==", dir, now.UTC().Format("2006-01-02")))
	if len(extraKeys) > 0 {
		d.AppendComment("Values the folder's envs/**/*.env files set:")
		for _, k := range extraKeys {
			d.Set(k, merged[k])
		}
	}
	rep.Kept = len(merged)
	for k := range merged {
		if _, known := schema.Lookup(k); !known {
			rep.Unplaced = append(rep.Unplaced, k)
		}
	}
	sort.Strings(rep.Unplaced)

	// The folder's compose project: COMPOSE_PROJECT_NAME, else the folder's
	// name as docker compose normalises it.
	rep.Project = merged["COMPOSE_PROJECT_NAME"]
	if rep.Project == "" {
		abs, err := filepath.Abs(dir)
		if err != nil {
			return nil, rep, err
		}
		rep.Project = loader.NormalizeProjectName(filepath.Base(abs))
		if rep.Project == "" {
			return nil, rep, fmt.Errorf("%s: docker compose derives no project name from the folder's name %q; set COMPOSE_PROJECT_NAME in %s to the name the deployment runs under", dir, filepath.Base(abs), envPath)
		}
		d.Set("COMPOSE_PROJECT_NAME", rep.Project)
	}

	changed, err := ApplySelection(d, schema, rand.Reader, now)
	if err != nil {
		return nil, rep, fmt.Errorf("%s: %w", envPath, err)
	}
	moved := map[string]bool{}
	for _, k := range changed {
		moved[k] = true
		if _, had := merged[k]; had {
			rep.Rederived = append(rep.Rederived, k)
		} else {
			rep.Added = append(rep.Added, k)
		}
	}
	sort.Strings(rep.Added)
	sort.Strings(rep.Rederived)

	// Every kept value reads back, without dir's envs files and the process
	// environment, as docker compose read it in dir: a ${VAR} that only the
	// envs files resolved is written as its value.
	check, err := Parse(d.Bytes())
	if err != nil {
		return nil, rep, fmt.Errorf("%s: the adopted file does not read back: %w", envPath, err)
	}
	for _, k := range sortedKeys(merged) {
		if got, _ := check.Get(k); !moved[k] && got != merged[k] {
			d.Set(k, merged[k])
		}
	}
	return d, rep, nil
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
