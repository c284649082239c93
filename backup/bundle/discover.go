package bundle

import (
	"context"
	"fmt"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/client"

	"github.com/difyctl/difyctl/compose"
	"github.com/difyctl/difyctl/internal/engine"
	"github.com/difyctl/difyctl/profiles"
)

// Data services keep running while a restore replaces the data of the
// application services; the database and Redis are restored through their
// own tools, the vector store through its dump or its files.
const (
	ServicePostgres = "db_postgres"
	ServiceMySQL    = "db_mysql"
	ServiceRedis    = "redis"
	ServicePgvector = "pgvector"
)

// vectorServices are the services of the vector-store profiles (weaviate,
// qdrant, pgvector, milvus and its etcd and MinIO, ...).
func vectorServices() map[string]string {
	m := map[string]string{}
	for _, p := range profiles.All() {
		if p.Kind == profiles.Vector {
			for _, s := range p.Services {
				m[s] = p.Name
			}
		}
	}
	return m
}

// IsDataService reports whether a restore keeps svc running while the
// application services are stopped.
func IsDataService(svc string) bool {
	if svc == ServicePostgres || svc == ServiceMySQL || svc == ServiceRedis {
		return true
	}
	_, ok := vectorServices()[svc]
	return ok
}

// pgServices are dumped with pg_dump (their data directory is not copied).
var pgServices = map[string]bool{ServicePostgres: true, ServicePgvector: true, "pgvecto-rs": true}

// dbTarget is a database container to dump.
type dbTarget struct {
	Service, ID, Name, Image string
	Type                     string // postgresql or mysql
	User, Database           string
	Env                      []string // the password, for the exec's environment
	DataDir                  string   // its data mount, not copied as files
}

// fileTarget is one mount of a running service to copy.
type fileTarget struct {
	Service, ID, Path, Mount string
	Paused                   bool // a vector store without a snapshot API: paused for the copy
}

// deployment is what a backup reads from the running project.
type deployment struct {
	DB       *dbTarget
	Vector   *dbTarget // pgvector and pgvecto-rs: dumped with pg_dump
	Redis    string    // the Redis container's ID ("" when not running)
	Files    []fileTarget
	Services []string
	Images   map[string]string
}

// mountCand is a mount that may become a files part.
type mountCand struct {
	ft  fileTarget
	src string // bind source, for nesting
}

// discover finds the running services of project and what each holds.
// Bind mounts under projectDir but outside volumes/ are support files
// (the config part holds them); read-only mounts are configuration.
func discover(ctx context.Context, e engine.Engine, project, projectDir string) (*deployment, error) {
	cs, err := compose.List(ctx, e, project, false)
	if err != nil {
		return nil, err
	}
	d := &deployment{Images: map[string]string{}}
	vec := vectorServices()
	seen := map[string]bool{}
	var cands []mountCand
	for _, c := range cs {
		if c.State != string(container.StateRunning) || c.Oneoff {
			continue
		}
		ins, err := e.ContainerInspect(ctx, c.ID, client.ContainerInspectOptions{})
		if err != nil {
			return nil, fmt.Errorf("inspecting %s: %w", c.Name, err)
		}
		ct := ins.Container
		if !seen[c.Service] {
			d.Services = append(d.Services, c.Service)
			seen[c.Service] = true
		}
		if ct.Config != nil {
			d.Images[c.Service] = ct.Config.Image
		}
		skip := d.addDataService(c, envMap(ct.Config), vec)
		paused := vec[c.Service] != "" && !pgServices[c.Service]
		cands = append(cands, mountCands(c, ct.Mounts, skip, paused, projectDir)...)
	}
	d.Files = distinctFiles(cands)
	sort.Slice(d.Files, func(i, j int) bool {
		a, b := d.Files[i], d.Files[j]
		return a.Service < b.Service || a.Service == b.Service && a.Path < b.Path
	})
	sort.Strings(d.Services)
	return d, nil
}

// addDataService records c in d when it is the database, a PostgreSQL
// vector store or Redis, and returns the data directory its logical dump
// covers ("" for other services).
func (d *deployment) addDataService(c compose.ProjectContainer, env, vec map[string]string) string {
	switch {
	case c.Service == ServicePostgres || (pgServices[c.Service] && vec[c.Service] != ""):
		t := &dbTarget{Service: c.Service, ID: c.ID, Name: c.Name, Image: d.Images[c.Service], Type: "postgresql",
			User: first(env["POSTGRES_USER"], env["PGUSER"], "postgres"), Database: first(env["POSTGRES_DB"], env["PGDATABASE"], env["POSTGRES_USER"], "postgres")}
		if pw := env["POSTGRES_PASSWORD"]; pw != "" {
			t.Env = []string{"PGPASSWORD=" + pw}
		}
		if c.Service == ServicePostgres {
			d.DB = t
		} else {
			d.Vector = t
		}
		return "/var/lib/postgresql/data"
	case c.Service == ServiceMySQL:
		d.DB = &dbTarget{Service: c.Service, ID: c.ID, Name: c.Name, Image: d.Images[c.Service], Type: "mysql", User: "root",
			Database: first(env["MYSQL_DATABASE"], "dify"), Env: []string{"MYSQL_PWD=" + env["MYSQL_ROOT_PASSWORD"]}}
		return "/var/lib/mysql"
	case c.Service == ServiceRedis:
		d.Redis = c.ID
		return "/data"
	}
	return ""
}

// mountCands lists c's writable volume and bind mounts to copy: not those
// at or below skip (a dumped data directory), nor support files bound from
// projectDir outside volumes/.
func mountCands(c compose.ProjectContainer, mounts []container.MountPoint, skip string, paused bool, projectDir string) []mountCand {
	var cands []mountCand
	for _, m := range mounts {
		if !m.RW || skip != "" && (m.Destination == skip || strings.HasPrefix(m.Destination, skip+"/")) {
			continue
		}
		ft := fileTarget{Service: c.Service, ID: c.ID, Path: m.Destination, Paused: paused}
		switch m.Type {
		case mount.TypeVolume:
			ft.Mount = "volume:" + m.Name
			cands = append(cands, mountCand{ft: ft})
		case mount.TypeBind:
			if projectDir != "" && within(m.Source, projectDir) && !within(m.Source, filepath.Join(projectDir, "volumes")) {
				continue // a support file or directory: in the config part
			}
			ft.Mount = "bind:" + m.Source
			cands = append(cands, mountCand{ft: ft, src: m.Source})
		}
	}
	return cands
}

// distinctFiles keeps one part per mount source (storage is mounted by api
// and worker), and none for a bind mount nested in another that is copied
// (certbot's conf/live inside conf).
func distinctFiles(cands []mountCand) []fileTarget {
	taken := map[string]bool{}
	var binds []string
	for _, c := range cands {
		if c.src != "" {
			binds = append(binds, c.src)
		}
	}
	var files []fileTarget
	for _, c := range cands {
		if taken[c.ft.Mount] {
			continue
		}
		nested := false
		if c.src != "" {
			for _, b := range binds {
				if b != c.src && within(c.src, b) {
					nested = true
				}
			}
		}
		if nested {
			continue
		}
		taken[c.ft.Mount] = true
		files = append(files, c.ft)
	}
	return files
}

// within reports whether p is dir or below it.
func within(p, dir string) bool {
	rel, err := filepath.Rel(dir, p)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, "../") && !filepath.IsAbs(rel)
}

func envMap(cfg *container.Config) map[string]string {
	m := map[string]string{}
	if cfg == nil {
		return m
	}
	for _, kv := range cfg.Env {
		k, v, _ := strings.Cut(kv, "=")
		m[k] = v
	}
	return m
}

func first(vs ...string) string {
	for _, v := range vs {
		if v != "" {
			return v
		}
	}
	return ""
}

var unsafeChars = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

// filesPartName names the part of a service's mount: files/<service><path>.
func filesPartName(service, path string) string { return "files/" + service + path }

// filesPartFile is its file name in the bundle.
func filesPartFile(service, path string) string {
	return "files-" + service + "-" + strings.Trim(unsafeChars.ReplaceAllString(path, "_"), "_") + ".tar.zst"
}
