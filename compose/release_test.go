package compose

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/difyctl/difyctl/envgen"
	"github.com/difyctl/difyctl/internal/release"
	"github.com/difyctl/difyctl/profiles"
	"github.com/difyctl/difyctl/templates"
)

// projectForRelease is projectFor for a release of the catalogue: its .env
// from that release's schema, and the release recorded in the directory.
func projectForRelease(t testing.TB, rel *templates.Release, names ...string) (string, profiles.Selection) {
	t.Helper()
	sel, err := profiles.Select(names, false)
	if err != nil {
		t.Fatal(err)
	}
	d, err := envgen.Generate(envgen.SchemaFor(rel), sel, &detRand{}, time.Unix(0, 0))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := envgen.WriteFile(filepath.Join(dir, ".env"), d); err != nil {
		t.Fatal(err)
	}
	if err := release.Write(dir, release.Record{Release: rel.Version, Source: release.SourceInit}); err != nil {
		t.Fatal(err)
	}
	return dir, sel
}

// The recorded release decides which compose file loads; LoadOptions.Release
// overrides it.
func TestLoadTheRecordedRelease(t *testing.T) {
	old, _ := templates.Lookup("1.15.0")
	dir, _ := projectForRelease(t, old)
	p := load(t, dir)
	if img := p.Services["api"].Image; img != "langgenius/dify-api:1.15.0" {
		t.Fatalf("api image %s for a 1.15.0 project", img)
	}
	if _, ok := p.Services["agent_backend"]; ok {
		t.Fatal("1.15.0 has no agent_backend")
	}
	if DeployedRelease(LoadOptions{ProjectDir: dir}) != "1.15.0" {
		t.Fatal("DeployedRelease does not read the record")
	}
	d, _ := envgen.ReadFile(filepath.Join(dir, ".env"))
	envgen.Upgrade(d, envgen.SchemaFor(templates.Latest()), &detRand{}, time.Unix(0, 0))
	envgen.WriteFile(filepath.Join(dir, ".env"), d)
	p, err := Load(context.Background(), LoadOptions{ProjectDir: dir, ProjectName: "dify", Release: templates.Latest().Version})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := p.Services["agent_backend"]; !ok {
		t.Fatal("Release did not override the record")
	}
	if _, err := Load(context.Background(), LoadOptions{ProjectDir: dir, ProjectName: "dify", Release: "0.1.0"}); err == nil {
		t.Fatal("an unknown release loaded")
	}
}
