package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/client"

	"github.com/difyctl/difyctl/compose"
	"github.com/difyctl/difyctl/internal/journal"
	"github.com/difyctl/difyctl/internal/release"
	"github.com/difyctl/difyctl/internal/testenv"
)

// migratingOverride puts the PostgreSQL fixture under Dify's db_postgres
// and has the api stand-in migrate it on start, as Dify's api runs alembic
// (internal/standin/migrate.go): the 1.15.0 api brings the schema to
// revision r1, the 1.16.0 one to r2.
var migratingOverride = "services:\n" + testenv.DBFixtureService("db_postgres") + "  api:\n    environment:\n      STANDIN_MIGRATE: \"1\"\n"

// deploy115 brings Dify 1.15.0 up with the stand-ins under both releases'
// image names and the override (none when ""), and puts a file in its
// storage volume (the data that must survive).
func deploy115(t *testing.T, override string) (dir, project string, base []string, cli *client.Client) {
	t.Helper()
	cli = testenv.Fixtures(t)
	testenv.WithStandins(t, "1.15.0", testenv.StandinOptions{})
	testenv.WithStandins(t, "1.16.0", testenv.StandinOptions{})
	project = testenv.ProjectName(t, cli)
	dir = t.TempDir()
	base = []string{"--project-dir", dir, "-p", project}
	if r := runWithin(t, time.Minute, append(base, "init", "--release", "1.15.0")...); r.code != 0 {
		t.Fatalf("init --release 1.15.0: exit %d\n%s", r.code, r.stderr)
	}
	for k, v := range publishedPortVars(t) {
		if r := runWithin(t, time.Minute, append(base, "env", "set", k+"="+v)...); r.code != 0 {
			t.Fatalf("env set %s: exit %d\n%s", k, r.code, r.stderr)
		}
	}
	if override != "" {
		if err := os.WriteFile(filepath.Join(dir, "docker-compose.override.yaml"), []byte(override), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if r := runWithin(t, 6*time.Minute, append(base, "up", "--progress", "plain", "--wait-timeout", "5m")...); r.code != 0 {
		t.Fatalf("up: exit %d\n%s", r.code, r.stderr)
	}
	if err := os.WriteFile(filepath.Join(dir, "volumes", "app", "storage", "upload.txt"), []byte("keep me"), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir, project, base, cli
}

// appRows writes n rows into the api's apps table (revision r1's).
func appRows(t *testing.T, cli *client.Client, dir, project string, n int) {
	t.Helper()
	psql(t, cli, bundleProject{dir: dir, name: project}, fmt.Sprintf("INSERT INTO apps (name) SELECT 'app-' || g FROM generate_series(1, %d) g", n))
}

// schema is the database's revision and the shape the migrations give it.
func schema(t *testing.T, cli *client.Client, dir, project string) string {
	t.Helper()
	return schemaIn(t, cli, bundleProject{dir: dir, name: project}.container("db_postgres"))
}

// schemaSQL reads what schema returns.
const schemaSQL = `SELECT 'rev=' || coalesce((SELECT string_agg(version_num, ',') FROM alembic_version), 'none')
 || ' apps=' || coalesce((SELECT string_agg(column_name::text, ',' ORDER BY column_name) FROM information_schema.columns WHERE table_name = 'apps'), 'none')
 || ' app_mode_idx=' || (SELECT count(*) FROM pg_indexes WHERE indexname = 'app_mode_idx')
 || ' agent_sessions=' || coalesce(to_regclass('agent_sessions')::text, 'none')`

// schemaIn is schema of the database "dify" in a PostgreSQL container.
func schemaIn(t *testing.T, cli *client.Client, container string) string {
	t.Helper()
	return dbQuery(t, cli, container, nil, "psql", "-v", "ON_ERROR_STOP=1", "-U", "postgres", "-d", "dify", "-tAc", schemaSQL)
}

// Schemas at each revision (schema's output).
const (
	schemaR1 = "rev=r1 apps=created_at,id,name app_mode_idx=0 agent_sessions=none"
	schemaR2 = "rev=r2 apps=created_at,id,mode,name app_mode_idx=1 agent_sessions=agent_sessions"
)

// rows is the apps table's row count and checksum.
func rows(t *testing.T, cli *client.Client, dir, project string) string {
	t.Helper()
	return psql(t, cli, bundleProject{dir: dir, name: project}, "SELECT count(*) || ' ' || md5(coalesce(string_agg(id || ':' || name, ',' ORDER BY id), '')) FROM apps")
}

func images(t *testing.T, cli *client.Client, project string) map[string]string {
	t.Helper()
	cs, err := compose.List(context.Background(), cli, project, false)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, c := range cs {
		if !c.Oneoff {
			out[c.Service] = c.Image + "@" + c.Release
		}
	}
	return out
}

func recorded(t *testing.T, dir string) string {
	t.Helper()
	r, err := release.Read(dir)
	if err != nil || r == nil {
		t.Fatalf("release record: %v %v", r, err)
	}
	return r.Release
}

func assertOn115(t *testing.T, dir string, cli *client.Client, project, env string) {
	t.Helper()
	img := images(t, cli, project)
	if img["api"] != "langgenius/dify-api:1.15.0@1.15.0" {
		t.Errorf("api runs %s, want 1.15.0", img["api"])
	}
	if _, ok := img["agent_backend"]; ok {
		t.Error("agent_backend (1.16.0 only) still runs")
	}
	if got := recorded(t, dir); got != "1.15.0" {
		t.Errorf("release record %s", got)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, ".env")); string(b) != env {
		t.Error(".env is not the one from before the upgrade")
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "volumes", "app", "storage", "upload.txt")); string(b) != "keep me" {
		t.Error("the data is gone")
	}
	if j, _ := journal.Load(dir, project); j != nil {
		t.Errorf("journal left: %s", j.Describe())
	}
}

// TestUpgradeStandins: 1.15.0 on the PostgreSQL fixture, its api's schema
// at revision r1 with rows in it, a file in storage -> --dry-run changes
// nothing -> upgrade --to 1.16.0 with the safety bundle (new containers,
// new variables, unchanged services kept, the 1.16.0 api migrated the
// database to r2, rows and files intact, release recorded) -> rollback ->
// 1.15.0 again, the database restored from the bundle (schema at r1, the
// same rows).
func TestUpgradeStandins(t *testing.T) {
	dir, project, base, cli := deploy115(t, migratingOverride)
	if got := schema(t, cli, dir, project); got != schemaR1 {
		t.Fatalf("the 1.15.0 api did not migrate the new database to r1: %s", got)
	}
	appRows(t, cli, dir, project, 40)
	data := rows(t, cli, dir, project)
	env, _ := os.ReadFile(filepath.Join(dir, ".env"))
	before := images(t, cli, project)
	ids := map[string]string{}
	cs, _ := compose.List(context.Background(), cli, project, false)
	for _, c := range cs {
		ids[c.Service] = c.ID
	}

	r := runWithin(t, 2*time.Minute, append(base, "upgrade", "--to", "1.16.0", "--dry-run")...)
	if r.code != 0 || !strings.Contains(r.stdout, "+ service agent_backend") || !strings.Contains(r.stdout, "dry run: nothing was changed") {
		t.Fatalf("dry run: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, ".env")); string(b) != string(env) {
		t.Fatal("--dry-run changed .env")
	}
	if got := images(t, cli, project); len(got) != len(before) || got["api"] != before["api"] {
		t.Fatalf("--dry-run changed containers: %v", got)
	}

	r = runWithin(t, 8*time.Minute, append(base, "-o", "json", "upgrade", "--to", "1.16.0", "--yes", "--wait-timeout", "3m")...)
	if r.code != 0 {
		t.Fatalf("upgrade: exit %d\n%s", r.code, r.stderr)
	}
	var res struct {
		Bundle  string           `json:"bundle"`
		Timings map[string]int64 `json:"timings"`
	}
	json.Unmarshal([]byte(r.stdout), &res)
	t.Logf("upgrade timings (ns): %v", res.Timings)
	if st, err := os.Stat(filepath.Join(res.Bundle, "manifest.json")); res.Bundle == "" || err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("no safety bundle (%q): %v", res.Bundle, err)
	}
	if got := schema(t, cli, dir, project); got != schemaR2 {
		t.Errorf("the 1.16.0 api did not migrate the database to r2: %s", got)
	}
	if got := rows(t, cli, dir, project); got != data {
		t.Errorf("apps after the upgrade: %s, want %s", got, data)
	}
	if got := psql(t, cli, bundleProject{dir: dir, name: project}, "SELECT count(*) FROM agent_sessions"); got != "40" {
		t.Errorf("r2's data migration wrote %s agent sessions, want one per app (40)", got)
	}
	img := images(t, cli, project)
	for svc, want := range map[string]string{"api": "langgenius/dify-api:1.16.0", "web": "langgenius/dify-web:1.16.0", "agent_backend": "langgenius/dify-agent-backend:1.16.0"} {
		if img[svc] != want+"@1.16.0" {
			t.Errorf("%s runs %s after the upgrade", svc, img[svc])
		}
	}
	cs, _ = compose.List(context.Background(), cli, project, false)
	for _, c := range cs {
		if (c.Service == "db_postgres" || c.Service == "redis") && c.ID != ids[c.Service] {
			t.Errorf("%s was recreated: its image did not change", c.Service)
		}
	}
	newEnv, _ := os.ReadFile(filepath.Join(dir, ".env"))
	if !strings.Contains(string(newEnv), "DIFY_AGENT_SERVER_SECRET_KEY=") || !strings.Contains(string(newEnv), "NEXT_PUBLIC_ENABLE_AGENT_V2=") {
		t.Error(".env lacks 1.16.0's variables")
	}
	if got := recorded(t, dir); got != "1.16.0" {
		t.Errorf("release record %s", got)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "volumes", "app", "storage", "upload.txt")); string(b) != "keep me" {
		t.Error("the data is gone")
	}
	// ps: the containers the upgrade kept (database, Redis, nginx, ...)
	// carry 1.15.0's label, the recreated ones 1.16.0's; with the record,
	// that is 1.16.0, not an unfinished upgrade.
	if r := runWithin(t, time.Minute, append(base, "ps")...); r.code != 0 || !strings.Contains(r.stdout, "Dify 1.16.0 (recorded") {
		t.Errorf("ps does not show the recorded release: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}

	r = runWithin(t, 8*time.Minute, append(base, "rollback", "--yes", "--wait-timeout", "3m")...)
	if r.code != 0 {
		t.Fatalf("rollback: exit %d\n%s", r.code, r.stderr)
	}
	assertOn115(t, dir, cli, project, string(env))
	if got := schema(t, cli, dir, project); got != schemaR1 {
		t.Errorf("after the rollback the database is not the bundle's (r1): %s", got)
	}
	if got := rows(t, cli, dir, project); got != data {
		t.Errorf("apps after the rollback: %s, want %s", got, data)
	}
}
