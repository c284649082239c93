package envgen

import (
	"crypto/rand"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/difyctl/difyctl/profiles"
	"github.com/difyctl/difyctl/templates"
)

var now = time.Date(2026, 11, 22, 3, 0, 0, 0, time.UTC)

func generate(t *testing.T, names ...string) *Doc {
	t.Helper()
	sel, err := profiles.Select(names, false)
	if err != nil {
		t.Fatal(err)
	}
	d, err := Generate(DefaultSchema(), sel, rand.Reader, now)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func errorsOf(fs []Finding) []Finding {
	var out []Finding
	for _, f := range fs {
		if f.Severity == Error {
			out = append(out, f)
		}
	}
	return out
}

// Every database × vector store pair: a generated .env validates cleanly,
// even with --strict (no insecure default left), and survives a re-parse.
func TestGenerateValidatesForEveryPair(t *testing.T) {
	for _, db := range profiles.Names(profiles.Database) {
		for _, vs := range profiles.Names(profiles.Vector) {
			d := generate(t, db, vs)
			d2, err := Parse(d.Bytes())
			if err != nil {
				t.Fatalf("%s+%s: generated file does not parse: %v", db, vs, err)
			}
			var rest []Finding
			for _, f := range Validate(d2, DefaultSchema()) {
				// A credential the profile's server has built in is
				// always worth a warning (matrixone).
				if v, _ := DefaultSchema().Lookup(f.Var); f.Severity == Warning && v != nil && v.Fixed {
					continue
				}
				rest = append(rest, f)
			}
			if HasErrors(rest, true) {
				t.Errorf("%s+%s: %v", db, vs, rest)
			}
			env := d2.Map()
			if env["DB_TYPE"] != db || env["VECTOR_STORE"] != vs || env["COMPOSE_PROFILES"] != vs+","+db+",collaboration" {
				t.Errorf("%s+%s: DB_TYPE=%s VECTOR_STORE=%s COMPOSE_PROFILES=%s", db, vs, env["DB_TYPE"], env["VECTOR_STORE"], env["COMPOSE_PROFILES"])
			}
		}
	}
}

func TestGeneratedSecretsAreFreshAndTied(t *testing.T) {
	a, b := generate(t).Map(), generate(t).Map()
	for _, k := range []string{"SECRET_KEY", "REDIS_PASSWORD", "DB_PASSWORD", "SANDBOX_API_KEY", "PLUGIN_DAEMON_KEY", "PLUGIN_DIFY_INNER_API_KEY", "WEAVIATE_API_KEY"} {
		if a[k] == "" || a[k] == b[k] {
			t.Errorf("%s not freshly generated: %q / %q", k, a[k], b[k])
		}
		if v, _ := DefaultSchema().Lookup(k); a[k] == v.Default {
			t.Errorf("%s kept the upstream default", k)
		}
	}
	if a["CODE_EXECUTION_API_KEY"] != a["SANDBOX_API_KEY"] {
		t.Error("CODE_EXECUTION_API_KEY != SANDBOX_API_KEY")
	}
	if a["WEAVIATE_AUTHENTICATION_APIKEY_ALLOWED_KEYS"] != a["WEAVIATE_API_KEY"] {
		t.Error("weaviate keys not tied")
	}
	if !strings.Contains(a["CELERY_BROKER_URL"], ":"+a["REDIS_PASSWORD"]+"@redis:6379/1") {
		t.Errorf("CELERY_BROKER_URL %q lacks the Redis password", a["CELERY_BROKER_URL"])
	}
	pg := generate(t, "pgvector").Map()
	if pg["PGVECTOR_PASSWORD"] != pg["PGVECTOR_POSTGRES_PASSWORD"] || pg["PGVECTOR_PASSWORD"] == "" {
		t.Error("pgvector passwords not tied")
	}
}

// Tampering with either side of a cross-variable pair fails validation with
// both names in the message.
func TestTamperedPairsFail(t *testing.T) {
	cases := []struct {
		profiles []string
		set      string
		names    []string
	}{
		{nil, "CODE_EXECUTION_API_KEY", []string{"CODE_EXECUTION_API_KEY", "SANDBOX_API_KEY"}},
		{nil, "SANDBOX_API_KEY", []string{"CODE_EXECUTION_API_KEY", "SANDBOX_API_KEY"}},
		{nil, "WEAVIATE_API_KEY", []string{"WEAVIATE_API_KEY", "WEAVIATE_AUTHENTICATION_APIKEY_ALLOWED_KEYS"}},
		{nil, "WEAVIATE_AUTHENTICATION_APIKEY_ALLOWED_KEYS", []string{"WEAVIATE_API_KEY", "WEAVIATE_AUTHENTICATION_APIKEY_ALLOWED_KEYS"}},
		{[]string{"pgvector"}, "PGVECTOR_PASSWORD", []string{"PGVECTOR_PASSWORD", "PGVECTOR_POSTGRES_PASSWORD"}},
		{[]string{"pgvector"}, "PGVECTOR_POSTGRES_PASSWORD", []string{"PGVECTOR_PASSWORD", "PGVECTOR_POSTGRES_PASSWORD"}},
		{[]string{"chroma"}, "CHROMA_AUTH_CREDENTIALS", []string{"CHROMA_AUTH_CREDENTIALS", "CHROMA_SERVER_AUTHN_CREDENTIALS"}},
		{[]string{"opensearch"}, "OPENSEARCH_PASSWORD", []string{"OPENSEARCH_PASSWORD", "OPENSEARCH_INITIAL_ADMIN_PASSWORD"}},
		{nil, "INNER_API_KEY_FOR_PLUGIN", []string{"INNER_API_KEY_FOR_PLUGIN", "PLUGIN_DIFY_INNER_API_KEY"}},
		{nil, "REDIS_PASSWORD", []string{"CELERY_BROKER_URL", "REDIS_PASSWORD"}},
		{nil, "CELERY_BROKER_URL", []string{"CELERY_BROKER_URL", "REDIS_PASSWORD"}},
		{nil, "DB_TYPE", []string{"COMPOSE_PROFILES", "DB_TYPE"}},
		{nil, "VECTOR_STORE", []string{"COMPOSE_PROFILES", "VECTOR_STORE"}},
		{nil, "DB_HOST", []string{"DB_HOST", "DB_TYPE"}},
		{[]string{"qdrant"}, "QDRANT_URL", []string{"QDRANT_URL", "VECTOR_STORE"}},
	}
	for _, c := range cases {
		d := generate(t, c.profiles...)
		val := "tampered-value-0123456789abcdef"
		switch c.set {
		case "CELERY_BROKER_URL":
			val = "redis://:wrongpassword0123456@redis:6379/1"
		case "DB_TYPE":
			val = "mysql"
		case "VECTOR_STORE":
			val = "qdrant"
		case "DB_HOST":
			val = "db_mysql"
		case "QDRANT_URL":
			val = "http://elsewhere:6333"
		}
		d.Set(c.set, val)
		errs := errorsOf(Validate(d, DefaultSchema()))
		found := false
		for _, f := range errs {
			s := f.String()
			all := true
			for _, n := range c.names {
				all = all && strings.Contains(s, n)
			}
			found = found || all
		}
		if !found {
			t.Errorf("tampering %s: no error naming %v; got %v", c.set, c.names, errs)
		}
	}
}

func TestValidateTypesAndDefaults(t *testing.T) {
	d := generate(t)
	d.Set("DB_PORT", "99999")
	d.Set("DEBUG", "maybe")
	d.Set("LOG_LEVEL", "LOUD")
	d.Set("SERVER_CONSOLE_API_URL", "api:5001")
	d.Set("REDIS_PASSWORD", "difyai123456")
	d.Set("CELERY_BROKER_URL", "redis://:difyai123456@redis:6379/1")
	d.Set("NOT_A_DIFY_VAR", "x")
	fs := Validate(d, DefaultSchema())
	want := map[string]Severity{"DB_PORT": Error, "DEBUG": Error, "LOG_LEVEL": Error, "SERVER_CONSOLE_API_URL": Error, "REDIS_PASSWORD": Warning, "NOT_A_DIFY_VAR": Warning}
	got := map[string]Severity{}
	for _, f := range fs {
		if f.Line == 0 {
			t.Errorf("finding without a line: %v", f)
		}
		got[f.Var] = f.Severity
	}
	for k, sev := range want {
		if got[k] != sev {
			t.Errorf("%s: want %s, got %q (%v)", k, sev, got[k], fs)
		}
	}
	if HasErrors([]Finding{{Severity: Warning}}, false) || !HasErrors([]Finding{{Severity: Warning}}, true) {
		t.Error("strict does not turn warnings into errors")
	}
	d.Set("REDIS_PASSWORD", "")
	for _, f := range Validate(d, DefaultSchema()) {
		if f.Var == "REDIS_PASSWORD" && f.Severity == Error && strings.Contains(f.String(), "is empty") && strings.Contains(f.String(), ".env line") {
			return
		}
	}
	t.Error("empty REDIS_PASSWORD not reported with its line")
}

func TestUpgradeKeepsUserValues(t *testing.T) {
	old := "# my own comment\nDB_TYPE=postgresql\nVECTOR_STORE=qdrant\nCOMPOSE_PROFILES=qdrant,postgresql\n# keep me\nREDIS_PASSWORD=mine-very-long-redis-pw\nSANDBOX_API_KEY=my-sandbox-key-0123456789\nMY_CUSTOM=1\n"
	d, err := Parse([]byte(old))
	if err != nil {
		t.Fatal(err)
	}
	rep, err := Upgrade(d, DefaultSchema(), rand.Reader, now)
	if err != nil {
		t.Fatal(err)
	}
	out := string(d.Bytes())
	if !strings.HasPrefix(out, old) {
		t.Fatalf("upgrade changed existing lines:\n%s", out[:len(old)])
	}
	env := d.Map()
	if env["REDIS_PASSWORD"] != "mine-very-long-redis-pw" || env["CODE_EXECUTION_API_KEY"] != "my-sandbox-key-0123456789" {
		t.Errorf("tied values not carried: CODE_EXECUTION_API_KEY=%q", env["CODE_EXECUTION_API_KEY"])
	}
	if !strings.Contains(env["CELERY_BROKER_URL"], ":mine-very-long-redis-pw@") {
		t.Errorf("broker URL not built from the user's password: %q", env["CELERY_BROKER_URL"])
	}
	if env["QDRANT_URL"] != "http://qdrant:6333" || env["DB_PASSWORD"] == "" || env["DB_PASSWORD"] == "difyai123456" {
		t.Errorf("profile vars or secrets missing: QDRANT_URL=%q DB_PASSWORD=%q", env["QDRANT_URL"], env["DB_PASSWORD"])
	}
	if len(rep.Unknown) != 1 || rep.Unknown[0] != "MY_CUSTOM" || len(rep.Added) < 100 {
		t.Errorf("report: unknown=%v added=%d", rep.Unknown, len(rep.Added))
	}
	if fs := Validate(d, DefaultSchema()); HasErrors(fs, false) {
		t.Errorf("upgraded file has errors: %v", errorsOf(fs))
	}
	// A second upgrade adds nothing.
	rep, _ = Upgrade(d, DefaultSchema(), rand.Reader, now)
	if len(rep.Added) != 0 {
		t.Errorf("second upgrade added %v", rep.Added)
	}
}

// The SECRET_KEY upstream's .env.example shipped up to Dify 1.13 is a
// published value: validation flags it.
func TestValidateCatchesOldUpstreamSecretKey(t *testing.T) {
	d := generate(t)
	d.Set("SECRET_KEY", "sk-9f73s3ljTXVcMT3Blb3ljTqtsKiGHXVcMT3BlbkFJLK7U")
	for _, f := range Validate(d, DefaultSchema()) {
		if f.Var == "SECRET_KEY" && strings.Contains(f.Message, "upstream publishes") && strings.Contains(f.Fix, "env set SECRET_KEY --generate") {
			return
		}
	}
	t.Fatalf("the SECRET_KEY of Dify <= 1.13's .env.example passes validation: %v", Validate(d, DefaultSchema()))
}

// An empty required secret is fixed with env set KEY --generate (env
// upgrade only fills absent variables); an empty SECRET_KEY is Dify's own
// auto-generated key, a warning that says so.
func TestEmptySecretFix(t *testing.T) {
	d := generate(t)
	d.Set("REDIS_PASSWORD", "")
	d.Set("SECRET_KEY", "")
	var redis, key *Finding
	fs := Validate(d, DefaultSchema())
	for i := range fs {
		switch fs[i].Var {
		case "REDIS_PASSWORD":
			redis = &fs[i]
		case "SECRET_KEY":
			key = &fs[i]
		}
	}
	if redis == nil || redis.Severity != Error || !strings.Contains(redis.Fix, `difyctl env set REDIS_PASSWORD --generate`) || strings.Contains(redis.Fix, "upgrade") {
		t.Errorf("empty REDIS_PASSWORD: %+v", redis)
	}
	if key == nil || key.Severity != Warning || !strings.Contains(key.Message, "storage directory") || !strings.Contains(key.Fix, "--generate") {
		t.Errorf("empty SECRET_KEY: %+v", key)
	}
}

// MatrixOne's account is built into its image: the variable is marked
// fixed, never generated, and validation warns while the profile is on.
func TestFixedCredentialWarns(t *testing.T) {
	v, ok := DefaultSchema().Lookup("MATRIXONE_PASSWORD")
	if !ok || !v.Fixed || v.Generated() {
		t.Fatalf("MATRIXONE_PASSWORD: %+v", v)
	}
	d := generate(t, "postgresql", "matrixone")
	if got, _ := d.Get("MATRIXONE_PASSWORD"); got != v.Default {
		t.Fatalf("a value the server never receives was written: %q", got)
	}
	warned := false
	for _, f := range Validate(d, DefaultSchema()) {
		warned = warned || (f.Var == "MATRIXONE_PASSWORD" && f.Severity == Warning && strings.Contains(f.Message, "built in"))
	}
	if !warned {
		t.Fatal("no warning for the fixed credential")
	}
	for _, f := range Validate(generate(t), DefaultSchema()) {
		if f.Var == "MATRIXONE_PASSWORD" {
			t.Fatalf("warned with the profile off: %v", f)
		}
	}
	if _, err := ParseSchema([]byte("#@ type=string secret=pw fixed profile=x\nX=1\n")); err == nil {
		t.Fatal("a generated fixed variable is accepted")
	}
}

// What the compose file escapes ($${FLAG_FILE} in init_permissions' shell
// script) is the container's shell variable, not a .env variable: the
// schema must not hold it, or every .env carries it into every container.
func TestEscapedShellVariablesAreNotVariables(t *testing.T) {
	src := string(templates.Compose())
	escaped := regexp.MustCompile(`\$\$\{?([A-Za-z_][A-Za-z0-9_]*)`).FindAllStringSubmatch(src, -1)
	if len(escaped) == 0 {
		t.Fatal("no escaped variable in the compose template: the test checks nothing")
	}
	unescaped := regexp.MustCompile(`(^|[^$])\$\{([A-Za-z_][A-Za-z0-9_]*)`).FindAllStringSubmatch(src, -1)
	used := map[string]bool{}
	for _, m := range unescaped {
		used[m[2]] = true
	}
	for _, m := range escaped {
		if _, ok := DefaultSchema().Lookup(m[1]); ok && !used[m[1]] {
			t.Errorf("%s is only a shell variable of the compose file ($$%s), yet the env template defines it", m[1], m[1])
		}
	}
	if strings.Contains(string(generate(t).Bytes()), "FLAG_FILE") {
		t.Error("a generated .env carries FLAG_FILE")
	}
}
