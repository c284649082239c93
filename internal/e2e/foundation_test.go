package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"

	"github.com/difyctl/difyctl/compose"
	"github.com/difyctl/difyctl/health"
	"github.com/difyctl/difyctl/internal/testenv"
)

func TestVersionReportsEngine(t *testing.T) {
	cli := testenv.Engine(t)
	want, err := cli.ServerVersion(context.Background(), client.ServerVersionOptions{})
	if err != nil {
		t.Fatal(err)
	}
	r := run(t, nil, "version", "--output", "json")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	var rep struct {
		Client struct{ Version, GoVersion string }
		Engine *struct{ Version, APIVersion, ClientAPI string }
	}
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, r.stdout)
	}
	if rep.Engine == nil || rep.Engine.Version != want.Version || rep.Engine.APIVersion != want.APIVersion {
		t.Fatalf("engine in report %+v, engine says %s / API %s", rep.Engine, want.Version, want.APIVersion)
	}
	if rep.Engine.ClientAPI == "" || rep.Client.GoVersion == "" {
		t.Fatalf("incomplete report: %s", r.stdout)
	}
}

func TestDoctorWithEngine(t *testing.T) {
	testenv.Engine(t)
	r := run(t, nil, "doctor", "--project-dir", t.TempDir(), "-o", "json")
	var rep struct {
		OK     bool
		Checks []struct{ Name, Status, Detail, Hint string }
	}
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
		t.Fatalf("not JSON (exit %d): %v\n%s\n%s", r.code, err, r.stdout, r.stderr)
	}
	found := false
	for _, c := range rep.Checks {
		if c.Name == "docker engine" {
			found = true
			if c.Status != "ok" || !strings.Contains(c.Detail, "API 1.") {
				t.Fatalf("engine check: %+v", c)
			}
		}
	}
	if !found {
		t.Fatalf("no engine check: %s", r.stdout)
	}
	if rep.OK != (r.code == 0) {
		t.Fatalf("ok=%v but exit %d", rep.OK, r.code)
	}
}

func TestDoctorEngineDown(t *testing.T) {
	sock := "unix://" + filepath.Join(t.TempDir(), "no-engine.sock")
	r := run(t, []string{"DOCKER_HOST=" + sock}, "doctor", "--project-dir", t.TempDir())
	if r.code != 1 {
		t.Fatalf("want exit 1 with the engine down, got %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if !strings.Contains(r.stdout, "fail  docker engine") || !strings.Contains(r.stdout, "fix: start the engine") {
		t.Fatalf("no failing engine line with a fix:\n%s", r.stdout)
	}
	// version still prints the client version, says the engine is unreachable, exits 3.
	v := run(t, []string{"DOCKER_HOST=" + sock}, "version")
	if v.code != 3 || !strings.Contains(v.stdout, "unreachable") || !strings.Contains(v.stdout, "Version:") {
		t.Fatalf("version with engine down: exit %d\n%s", v.code, v.stdout)
	}
}

// startFixture creates and starts a container of the test project.
func startFixture(t *testing.T, cli *client.Client, project, service string, cfg *container.Config) string {
	t.Helper()
	ctx := context.Background()
	cfg.Labels = map[string]string{compose.LabelProject: project, compose.LabelService: service, compose.LabelNumber: "1", compose.LabelOneoff: "False"}
	res, err := cli.ContainerCreate(ctx, client.ContainerCreateOptions{Config: cfg, HostConfig: &container.HostConfig{}, Name: project + "-" + service + "-1"})
	if err != nil {
		t.Fatalf("create %s: %v", service, err)
	}
	if _, err := cli.ContainerStart(ctx, res.ID, client.ContainerStartOptions{}); err != nil {
		t.Fatalf("start %s: %v", service, err)
	}
	return res.ID
}

func TestFixtureHealthThroughDifyctlClient(t *testing.T) {
	cli := testenv.Fixtures(t)
	project := testenv.ProjectName(t, cli)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	probe := &container.HealthConfig{Interval: 100 * time.Millisecond, Timeout: time.Second, Retries: 3}

	// An exec-form probe turns healthy once the service says so.
	// (Enough retries to outlast the 500 ms: an unhealthy state fails the wait, as in compose.)
	hc := *probe
	hc.Test = []string{"CMD", "/testsvc", "probe"}
	patient := hc
	patient.Retries = 50
	id := startFixture(t, cli, project, "web", &container.Config{Image: testenv.ImageTestsvc, Cmd: []string{"--healthy-after", "500ms"}, Healthcheck: &patient})
	st, err := health.Wait(ctx, cli, id, health.Healthy)
	if err != nil || st.Health != container.Healthy {
		t.Fatalf("web: %+v, %v", st, err)
	}
	if len(st.Probes) == 0 || st.Probes[len(st.Probes)-1].Output != "probe: ok" {
		t.Fatalf("web probes: %+v", st.Probes)
	}

	// The Redis fixture with Dify's CMD-SHELL healthcheck, the password in the environment.
	rc := *probe
	rc.Retries = 50
	rc.Test = []string{"CMD-SHELL", "redis-cli ping | grep -q PONG"}
	id = startFixture(t, cli, project, "redis", &container.Config{
		Image: testenv.ImageRedis, Cmd: []string{"sh", "-c", `exec redis-server --requirepass "$REDISCLI_AUTH"`},
		Env: []string{"REDISCLI_AUTH=e2e-secret"}, Healthcheck: &rc,
	})
	if st, err := health.Wait(ctx, cli, id, health.Healthy); err != nil || st.Health != container.Healthy {
		t.Fatalf("redis: %+v, %v", st, err)
	}

	// A service that never becomes healthy is reported unhealthy with its probe output.
	id = startFixture(t, cli, project, "stuck", &container.Config{Image: testenv.ImageTestsvc, Cmd: []string{"--never-healthy"}, Healthcheck: &hc})
	st, err = health.Wait(ctx, cli, id, health.Healthy)
	var fe *health.FailedError
	if !errors.As(err, &fe) || fe.Reason != "unhealthy" || len(st.Probes) == 0 || st.Probes[0].Output != "probe: not healthy yet" {
		t.Fatalf("stuck: %+v, %v", st, err)
	}

	// A one-shot job that exits 0 completes successfully; one that exits 3 fails.
	id = startFixture(t, cli, project, "init", &container.Config{Image: testenv.ImageTestsvc, Cmd: []string{"--exit-after", "200ms"}})
	if _, err := health.Wait(ctx, cli, id, health.CompletedSuccessfully); err != nil {
		t.Fatalf("init: %v", err)
	}
	id = startFixture(t, cli, project, "broken", &container.Config{Image: testenv.ImageTestsvc, Cmd: []string{"--exit-after", "200ms", "--exit-code", "3"}})
	if _, err := health.Wait(ctx, cli, id, health.CompletedSuccessfully); err == nil || !strings.Contains(err.Error(), "exited with code 3") {
		t.Fatalf("broken: %v", err)
	}
}
