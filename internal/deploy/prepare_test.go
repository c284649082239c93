package deploy

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/difyctl/difyctl/envgen"
	"github.com/difyctl/difyctl/internal/cmdutil"
	"github.com/difyctl/difyctl/internal/iostreams"
)

// prepare runs Prepare on dir as up does: with the .env as the factory
// reads it (nil when there is none).
func prepare(t *testing.T, dir string, dryRun bool, profiles ...string) (Prepared, string, error) {
	t.Helper()
	io, _, _, errOut := iostreams.Test()
	var env *envgen.Doc
	if d, err := envgen.ReadFile(filepath.Join(dir, ".env")); err == nil {
		env = d
	}
	p, err := Prepare(PrepareOptions{Dir: dir, Project: "dify", Embedded: true, Profiles: profiles, DryRun: dryRun, Env: env, Now: time.Now(), Report: io.ErrOut})
	return p, errOut.String(), err
}

func TestPrepareWritesEnvAndSupportFiles(t *testing.T) {
	dir := t.TempDir()
	p, said, err := prepare(t, dir, false, "mysql", "qdrant")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(said, "wrote "+filepath.Join(dir, ".env")) || p.Wrote == nil {
		t.Fatal("did not say where it wrote .env")
	}
	d, err := envgen.ReadFile(filepath.Join(dir, ".env"))
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := d.Get("DB_TYPE"); v != "mysql" {
		t.Fatalf("DB_TYPE %q", v)
	}
	if v, _ := p.Env.Get("DB_TYPE"); v != "mysql" {
		t.Fatalf("the document returned is not the one written: DB_TYPE %q", v)
	}
	if _, err := os.Stat(filepath.Join(dir, "nginx", "docker-entrypoint.sh")); err != nil {
		t.Fatalf("support files not written: %v", err)
	}
}

func TestPrepareDryRunWritesNothing(t *testing.T) {
	dir := t.TempDir()
	if _, _, err := prepare(t, dir, true); cmdutil.ExitCode(err) != cmdutil.ExitUsage || !strings.Contains(err.Error(), "difyctl init") {
		t.Fatalf("dry run without .env: %v", err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Fatalf("a dry run wrote %v", ents)
	}
}

func TestPrepareRefusesContradictionAndErrors(t *testing.T) {
	dir := t.TempDir()
	p, _, err := prepare(t, dir, false)
	if err != nil || p.Profiles != nil {
		t.Fatalf("%v %v: without --profile the loader reads COMPOSE_PROFILES", err, p.Profiles)
	}
	before, _ := os.ReadFile(filepath.Join(dir, ".env"))
	_, _, err = prepare(t, dir, false, "mysql")
	if cmdutil.ExitCode(err) != cmdutil.ExitUsage || !strings.Contains(err.Error(), "DB_TYPE=postgresql") {
		t.Fatalf("contradicting --profile: %v", err)
	}
	if after, _ := os.ReadFile(filepath.Join(dir, ".env")); string(after) != string(before) {
		t.Fatal("a refused up changed .env")
	}
	d, _ := envgen.ReadFile(filepath.Join(dir, ".env"))
	d.Set("REDIS_PASSWORD", "")
	envgen.WriteFile(filepath.Join(dir, ".env"), d)
	if _, _, err := prepare(t, dir, false); cmdutil.ExitCode(err) != cmdutil.ExitFailure || !strings.Contains(err.Error(), "REDIS_PASSWORD is empty") {
		t.Fatalf("invalid .env: %v", err)
	}
	// An extra profile on the command line is added to what .env enables.
	d.Set("REDIS_PASSWORD", "a-long-enough-redis-password-123")
	d.Set("CELERY_BROKER_URL", "redis://:a-long-enough-redis-password-123@redis:6379/1")
	envgen.WriteFile(filepath.Join(dir, ".env"), d)
	p, _, err = prepare(t, dir, false, "certbot")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(p.Profiles, ",") != "weaviate,postgresql,collaboration,certbot" {
		t.Fatalf("profiles %v", p.Profiles)
	}
}

// With -f files nothing is written or checked; --profile is passed on.
func TestPrepareWithFilesOnlyPassesProfiles(t *testing.T) {
	dir := t.TempDir()
	p, err := Prepare(PrepareOptions{Dir: dir, Profiles: []string{"x"}, Now: time.Now()})
	if err != nil || strings.Join(p.Profiles, ",") != "x" {
		t.Fatalf("%v %v", p.Profiles, err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Fatalf("wrote %v", ents)
	}
}
