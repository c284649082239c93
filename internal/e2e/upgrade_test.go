package e2e

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/moby/moby/client"

	"github.com/difyctl/difyctl/compose"
	"github.com/difyctl/difyctl/internal/journal"
	"github.com/difyctl/difyctl/internal/release"
	"github.com/difyctl/difyctl/internal/testenv"
)

// deploy115 brings Dify 1.15.0 up with the stand-ins under both releases'
// image names, and puts a file in its storage volume (the data that must
// survive).
func deploy115(t *testing.T) (dir, project string, base []string, cli *client.Client) {
	t.Helper()
	cli = testenv.Fixtures(t)
	testenv.WithStandins(t, "1.15.0", testenv.StandinOptions{})
	testenv.WithStandins(t, "1.16.0", testenv.StandinOptions{})
	project = testenv.ProjectName(t, cli)
	dir = t.TempDir()
	base = []string{"--project-dir", dir, "-p", project}
	if r := run(t, nil, append(base, "init", "--release", "1.15.0")...); r.code != 0 {
		t.Fatalf("init --release 1.15.0: exit %d\n%s", r.code, r.stderr)
	}
	for k, v := range publishedPortVars(t) {
		if r := run(t, nil, append(base, "env", "set", k+"="+v)...); r.code != 0 {
			t.Fatalf("env set %s: exit %d\n%s", k, r.code, r.stderr)
		}
	}
	if r := run(t, nil, append(base, "up", "--progress", "plain", "--wait-timeout", "5m")...); r.code != 0 {
		t.Fatalf("up: exit %d\n%s", r.code, r.stderr)
	}
	if err := os.WriteFile(filepath.Join(dir, "volumes", "app", "storage", "upload.txt"), []byte("keep me"), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir, project, base, cli
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

// TestUpgradeStandins: 1.15.0 with data -> --dry-run changes nothing ->
// upgrade --to 1.16.0 (new containers, new variables, unchanged services
// kept, data intact, release recorded) -> rollback -> 1.15.0 again.
func TestUpgradeStandins(t *testing.T) {
	dir, project, base, cli := deploy115(t)
	env, _ := os.ReadFile(filepath.Join(dir, ".env"))
	before := images(t, cli, project)
	ids := map[string]string{}
	cs, _ := compose.List(context.Background(), cli, project, false)
	for _, c := range cs {
		ids[c.Service] = c.ID
	}

	r := run(t, nil, append(base, "upgrade", "--to", "1.16.0", "--dry-run")...)
	if r.code != 0 || !strings.Contains(r.stdout, "+ service agent_backend") || !strings.Contains(r.stdout, "dry run: nothing was changed") {
		t.Fatalf("dry run: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, ".env")); string(b) != string(env) {
		t.Fatal("--dry-run changed .env")
	}
	if got := images(t, cli, project); len(got) != len(before) || got["api"] != before["api"] {
		t.Fatalf("--dry-run changed containers: %v", got)
	}

	r = run(t, nil, append(base, "-o", "json", "upgrade", "--to", "1.16.0", "--yes", "--no-bundle", "--wait-timeout", "3m")...)
	if r.code != 0 {
		t.Fatalf("upgrade: exit %d\n%s", r.code, r.stderr)
	}
	var res struct {
		Timings map[string]int64 `json:"timings"`
	}
	json.Unmarshal([]byte(r.stdout), &res)
	t.Logf("upgrade timings (ns): %v", res.Timings)
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
	if r := run(t, nil, append(base, "ps")...); !strings.Contains(r.stdout, "Dify 1.16.0") {
		t.Errorf("ps does not show the release:\n%s", r.stdout)
	}

	r = run(t, nil, append(base, "rollback", "--yes", "--wait-timeout", "3m")...)
	if r.code != 0 {
		t.Fatalf("rollback: exit %d\n%s", r.code, r.stderr)
	}
	assertOn115(t, dir, cli, project, string(env))
}
