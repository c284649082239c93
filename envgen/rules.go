package envgen

import (
	"fmt"
	"net/url"
	"slices"
	"strings"
)

// Relation between two variables.
type Relation string

// Relations.
const (
	Equal  Relation = "equal"  // both must hold the same value
	IfSet  Relation = "if-set" // Secondary, when set, must equal Primary
	Member Relation = "member" // Primary must be one of Secondary's comma-separated values
)

// Link ties two variables that two services must agree on. The table below is
// the one place these pairs are written: generation copies Primary into
// Secondary, validation checks the relation, upgrade keeps them tied.
type Link struct {
	Primary, Secondary string
	Relation           Relation
	Profile            string // only when this profile is active; "" always
	Why                string
}

// Links is every cross-variable rule difyctl enforces.
var Links = []Link{
	{"SANDBOX_API_KEY", "CODE_EXECUTION_API_KEY", Equal, "", "the API calls the sandbox with CODE_EXECUTION_API_KEY, which the sandbox checks against SANDBOX_API_KEY"},
	{"PLUGIN_DIFY_INNER_API_KEY", "INNER_API_KEY_FOR_PLUGIN", IfSet, "", "the plugin daemon calls the API with PLUGIN_DIFY_INNER_API_KEY; the API expects INNER_API_KEY_FOR_PLUGIN"},
	{"PLUGIN_DIFY_INNER_API_KEY", "DIFY_AGENT_INNER_API_KEY", IfSet, "", "the agent backend calls the API's inner endpoints with this key"},
	{"PLUGIN_DAEMON_KEY", "DIFY_AGENT_PLUGIN_DAEMON_API_KEY", IfSet, "", "the agent backend calls the plugin daemon with this key"},
	{"WEAVIATE_API_KEY", "WEAVIATE_AUTHENTICATION_APIKEY_ALLOWED_KEYS", Member, "weaviate", "Weaviate accepts only the keys it lists"},
	{"PGVECTOR_POSTGRES_PASSWORD", "PGVECTOR_PASSWORD", Equal, "pgvector", "the API logs in to the pgvector server created with PGVECTOR_POSTGRES_PASSWORD"},
	{"PGVECTOR_PGUSER", "PGVECTOR_USER", Equal, "pgvector", "the API logs in as the user the pgvector server was created with"},
	{"PGVECTOR_POSTGRES_PASSWORD", "PGVECTO_RS_PASSWORD", Equal, "pgvecto-rs", "the pgvecto-rs server is created with PGVECTOR_POSTGRES_PASSWORD"},
	{"CHROMA_SERVER_AUTHN_CREDENTIALS", "CHROMA_AUTH_CREDENTIALS", Equal, "chroma", "the API authenticates to Chroma with the token Chroma was started with"},
	{"OPENSEARCH_INITIAL_ADMIN_PASSWORD", "OPENSEARCH_PASSWORD", Equal, "opensearch", "the API logs in to OpenSearch as the admin created with OPENSEARCH_INITIAL_ADMIN_PASSWORD"},
}

// Active reports whether the link applies with these profiles active.
func (l Link) Active(active func(string) bool) bool { return l.Profile == "" || active(l.Profile) }

// Holds checks the relation on the values of env.
func (l Link) Holds(env map[string]string) bool {
	p, s := env[l.Primary], env[l.Secondary]
	switch l.Relation {
	case IfSet:
		return s == "" || s == p
	case Member:
		return slices.Contains(splitList(s), p)
	}
	return p == s
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// brokerURL builds CELERY_BROKER_URL from the Redis settings, as upstream's
// default does (database 1 of the same Redis).
func brokerURL(env map[string]string) string {
	scheme := "redis"
	if strings.EqualFold(env["REDIS_USE_SSL"], "true") {
		scheme = "rediss"
	}
	u := url.URL{Scheme: scheme, Host: fmt.Sprintf("%s:%s", orDefault(env["REDIS_HOST"], "redis"), orDefault(env["REDIS_PORT"], "6379")), Path: "/1"}
	u.User = url.UserPassword(env["REDIS_USERNAME"], env["REDIS_PASSWORD"])
	return u.String()
}

func orDefault(v, d string) string {
	if v == "" {
		return d
	}
	return v
}

// checkBroker verifies that CELERY_BROKER_URL reaches the Redis the rest of
// the configuration names, with its password. It returns "" when it does.
func checkBroker(env map[string]string) string {
	raw := env["CELERY_BROKER_URL"]
	if raw == "" || !strings.EqualFold(orDefault(env["CELERY_BACKEND"], "redis"), "redis") {
		return ""
	}
	u, err := url.Parse(raw)
	if err != nil {
		return "is not a URL"
	}
	if !strings.HasPrefix(u.Scheme, "redis") {
		return "" // another broker (sentinel, AMQP): not ours to check
	}
	pw, _ := u.User.Password()
	if pw != env["REDIS_PASSWORD"] {
		return "carries a password different from REDIS_PASSWORD"
	}
	if h := u.Hostname(); env["REDIS_HOST"] != "" && h != env["REDIS_HOST"] {
		return fmt.Sprintf("points at host %q, REDIS_HOST is %q", h, env["REDIS_HOST"])
	}
	return ""
}
