package main

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/difyctl/difyctl/bench/internal/benchkit"
)

func TestCriticalPath(t *testing.T) {
	var svcs map[string]configService
	// db (healthy after 3 s) <- plugin (started) <- agent (started) <- api (healthy after 6 s);
	// worker: disabled healthcheck; init: one-shot.
	err := json.Unmarshal([]byte(`{
	  "db_postgres": {"healthcheck": {}},
	  "init_permissions": {},
	  "plugin_daemon": {"depends_on": {"db_postgres": {"condition": "service_healthy"}, "db_mysql": {"condition": "service_healthy"}}},
	  "agent_backend": {"depends_on": {"plugin_daemon": {"condition": "service_started"}}},
	  "api": {"healthcheck": {}, "depends_on": {"agent_backend": {"condition": "service_started"}, "init_permissions": {"condition": "service_completed_successfully"}}},
	  "worker": {"healthcheck": {"disable": true}, "depends_on": {"db_postgres": {"condition": "service_healthy"}}}
	}`), &svcs)
	if err != nil {
		t.Fatal(err)
	}
	bound, chain, levels := criticalPath(svcs, time.Second)
	// 1 s start + 3 s db + 1 + 1 + 1 s starts + 6 s api = 13 s
	if bound != 13*time.Second || levels != 4 || strings.Join(chain, ",") != "db_postgres,plugin_daemon,agent_backend,api" {
		t.Errorf("bound %s, %d levels, chain %v", bound, levels, chain)
	}
}

func TestOverrideFileSetsEveryDelayButRedis(t *testing.T) {
	o := overrideFile()
	for svc := range benchkit.ReadyAfter {
		if has := strings.Contains(o, "\n  "+svc+":\n"); has == (svc == "redis") {
			t.Errorf("override for %s: present %v", svc, has)
		}
	}
}
