package compose

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"sort"
	"strings"

	"github.com/compose-spec/compose-go/v2/types"

	"github.com/difyctl/difyctl/health"
)

// ServiceHash is the config-hash label: a digest of the service definition
// that matters to its container. Fields that do not change the container
// (build, scale, pull policy, dependencies, profiles) are left out, as docker
// compose leaves them out, so re-ordering dependencies recreates nothing.
func ServiceHash(s types.ServiceConfig) (string, error) {
	s.Build = nil
	s.PullPolicy = ""
	s.Scale = nil
	if s.Deploy != nil {
		d := *s.Deploy
		d.Replicas = nil
		s.Deploy = &d
	}
	s.DependsOn = nil
	s.Profiles = nil
	b, err := json.Marshal(s)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:]), nil
}

// dependsOnLabel renders depends_on as compose's label does:
// "service:condition:restart,...".
func dependsOnLabel(s types.ServiceConfig) string {
	var parts []string
	for name, d := range s.DependsOn {
		parts = append(parts, name+":"+d.Condition+":"+boolStr(d.Restart))
	}
	sort.Strings(parts)
	return strings.Join(parts, ",")
}

func boolStr(b bool) string {
	if b {
		return "true"
	}
	return "false"
}

// parseDependsOnLabel reads the label back (for down/stop/start on
// containers whatever created them): the services depended on, sorted, and
// the condition on each ("service_started" where the label has none).
func parseDependsOnLabel(v string) ([]string, map[string]string) {
	var names []string
	conds := map[string]string{}
	for _, p := range strings.Split(v, ",") {
		name, rest, _ := strings.Cut(p, ":")
		if name == "" {
			continue
		}
		cond, _, _ := strings.Cut(rest, ":")
		if cond == "" {
			cond = string(health.Started)
		}
		names = append(names, name)
		conds[name] = cond
	}
	return names, conds
}
