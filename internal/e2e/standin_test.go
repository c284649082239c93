package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/difyctl/difyctl/internal/testenv"
	"github.com/difyctl/difyctl/templates"
)

// freePorts returns n TCP ports free on the host right now, for the ports
// Dify publishes (nginx 80 and 443, the plugin daemon's 5003), so a test
// never takes a port another test or the host uses.
func freePorts(t *testing.T, n int) []int {
	t.Helper()
	var ports []int
	var lns []net.Listener
	for i := 0; i < n; i++ {
		ln, err := net.Listen("tcp", ":0")
		if err != nil {
			t.Fatal(err)
		}
		lns = append(lns, ln)
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	for _, ln := range lns {
		ln.Close()
	}
	return ports
}

// publishedPortVars moves the ports the template publishes to free ones.
func publishedPortVars(t *testing.T) map[string]string {
	p := freePorts(t, 3)
	return map[string]string{
		"EXPOSE_NGINX_PORT":            fmt.Sprint(p[0]),
		"EXPOSE_NGINX_SSL_PORT":        fmt.Sprint(p[1]),
		"EXPOSE_PLUGIN_DEBUGGING_PORT": fmt.Sprint(p[2]),
	}
}

type psRow struct {
	Service string `json:"service"`
	State   string `json:"state"`
	Health  string `json:"health"`
}

func psJSON(t *testing.T, dir, project string) []psRow {
	t.Helper()
	r := run(t, nil, "--project-dir", dir, "-p", project, "ps", "-o", "json")
	if r.code != 0 {
		t.Fatalf("ps: exit %d\n%s", r.code, r.stderr)
	}
	var rows []psRow
	if err := json.Unmarshal([]byte(r.stdout), &rows); err != nil {
		var wrapped struct {
			Containers []psRow `json:"containers"`
		}
		if err2 := json.Unmarshal([]byte(r.stdout), &wrapped); err2 != nil {
			t.Fatalf("ps -o json: %v\n%s", err, r.stdout)
		}
		rows = wrapped.Containers
	}
	return rows
}

// TestEmbeddedTemplateUpWithStandins brings the real embedded Dify template
// (default profiles: postgresql, weaviate, collaboration) up end to end
// with the stand-in images under Dify's real image names: init, up (every
// service running, every healthcheck passing), ps, nginx answering on its
// published port, down -v.
func TestEmbeddedTemplateUpWithStandins(t *testing.T) {
	cli := testenv.Fixtures(t)
	testenv.WithStandins(t, templates.DifyVersion(), testenv.StandinOptions{})
	project := testenv.ProjectName(t, cli)
	dir := t.TempDir()
	base := []string{"--project-dir", dir, "-p", project}
	if r := run(t, nil, append(base, "init")...); r.code != 0 {
		t.Fatalf("init: exit %d\n%s", r.code, r.stderr)
	}
	ports := publishedPortVars(t)
	for k, v := range ports {
		if r := run(t, nil, append(base, "env", "set", k+"="+v)...); r.code != 0 {
			t.Fatalf("env set %s: exit %d\n%s", k, r.code, r.stderr)
		}
	}
	start := time.Now()
	r := run(t, nil, append(base, "up", "--progress", "plain", "--wait-timeout", "5m")...)
	if r.code != 0 {
		t.Fatalf("up: exit %d after %s\n%s", r.code, time.Since(start), r.stderr)
	}
	t.Logf("up took %s", time.Since(start).Round(100*time.Millisecond))

	rows := psJSON(t, dir, project)
	want := []string{"init_permissions", "api", "worker", "worker_beat", "web", "redis", "sandbox", "local_sandbox",
		"plugin_daemon", "agent_backend", "ssrf_proxy", "nginx", "db_postgres", "weaviate", "api_websocket"}
	seen := map[string]psRow{}
	for _, row := range rows {
		seen[row.Service] = row
	}
	for _, svc := range want {
		row, ok := seen[svc]
		switch {
		case !ok:
			t.Errorf("ps lists no %s (rows: %+v)", svc, rows)
		case svc == "init_permissions":
			if row.State != "exited" {
				t.Errorf("init_permissions is %s, want exited (it ran once)", row.State)
			}
		case row.State != "running":
			t.Errorf("%s is %s after up", svc, row.State)
		}
	}
	for _, svc := range []string{"api", "db_postgres", "redis", "sandbox", "local_sandbox"} {
		if h := seen[svc].Health; h != "healthy" {
			t.Errorf("%s health is %q after up, want healthy (its healthcheck ran the stand-in's probe)", svc, h)
		}
	}
	if len(rows) != len(want) {
		t.Errorf("ps lists %d containers, want %d: %+v", len(rows), len(want), rows)
	}

	resp, err := http.Get("http://127.0.0.1:" + ports["EXPOSE_NGINX_PORT"] + "/")
	if err != nil {
		t.Errorf("nginx on its published port: %v", err)
	} else {
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(body), `"standin":"nginx"`) {
			t.Errorf("nginx on its published port answered %d %q", resp.StatusCode, body)
		}
	}

	if r := run(t, nil, append(base, "down", "-v", "--yes")...); r.code != 0 {
		t.Fatalf("down -v: exit %d\n%s", r.code, r.stderr)
	}
	if rows := psJSON(t, dir, project); len(rows) != 0 {
		t.Errorf("containers left after down -v: %+v", rows)
	}
}
