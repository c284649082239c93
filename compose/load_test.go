package compose

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v4"

	"github.com/compose-spec/compose-go/v2/types"

	"github.com/difyctl/difyctl/envgen"
	"github.com/difyctl/difyctl/profiles"
	"github.com/difyctl/difyctl/templates"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// detRand is a deterministic byte stream, so golden renders are stable.
type detRand struct{ n uint64 }

func (r *detRand) Read(p []byte) (int, error) {
	for i := 0; i < len(p); {
		var b [8]byte
		binary.LittleEndian.PutUint64(b[:], r.n)
		r.n++
		sum := sha256.Sum256(b[:])
		i += copy(p[i:], sum[:])
	}
	return len(p), nil
}

func projectFor(t testing.TB, names ...string) (string, profiles.Selection) {
	t.Helper()
	sel, err := profiles.Select(names, false)
	if err != nil {
		t.Fatal(err)
	}
	d, err := envgen.Generate(envgen.DefaultSchema(), sel, &detRand{}, time.Unix(0, 0))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := envgen.WriteFile(filepath.Join(dir, ".env"), d); err != nil {
		t.Fatal(err)
	}
	return dir, sel
}

func load(t testing.TB, dir string) *types.Project {
	t.Helper()
	p, err := Load(context.Background(), LoadOptions{ProjectDir: dir, ProjectName: "dify"})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestGoldenEveryPair renders every database × vector store pair and
// compares its shape with testdata/golden/<db>_<vector>.yaml.
func TestGoldenEveryPair(t *testing.T) {
	for _, db := range profiles.Names(profiles.Database) {
		for _, vs := range profiles.Names(profiles.Vector) {
			dir, sel := projectFor(t, db, vs)
			p := load(t, dir)
			want := map[string]bool{}
			for _, n := range sel.Names() {
				pr, _ := profiles.Get(n)
				for _, s := range pr.Services {
					want[s] = true
				}
			}
			for _, s := range []string{"api", "worker", "worker_beat", "web", "redis", "sandbox", "plugin_daemon", "ssrf_proxy", "nginx", "init_permissions"} {
				want[s] = true
			}
			for s := range want {
				if _, ok := p.Services[s]; !ok {
					t.Errorf("%s+%s: service %s missing", db, vs, s)
				}
			}
			out, err := yaml.Marshal(Summarize(p))
			if err != nil {
				t.Fatal(err)
			}
			golden := filepath.Join("testdata", "golden", db+"_"+vs+".yaml")
			if *update {
				os.MkdirAll(filepath.Dir(golden), 0o755)
				if err := os.WriteFile(golden, out, 0o644); err != nil {
					t.Fatal(err)
				}
				continue
			}
			b, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test ./compose -run Golden -update)", err)
			}
			if string(b) != string(out) {
				t.Errorf("%s+%s: render differs from %s (rerun with -update if intended)", db, vs, golden)
			}
		}
	}
}

func TestLoadRequiresSecrets(t *testing.T) {
	dir, _ := projectFor(t)
	d, _ := envgen.ReadFile(filepath.Join(dir, ".env"))
	d.Set("REDIS_PASSWORD", "")
	envgen.WriteFile(filepath.Join(dir, ".env"), d)
	_, err := Load(context.Background(), LoadOptions{ProjectDir: dir, ProjectName: "dify"})
	if err == nil || !strings.Contains(err.Error(), "REDIS_PASSWORD") {
		t.Fatalf("an empty REDIS_PASSWORD loaded: %v", err)
	}
}

func TestOverrideMerged(t *testing.T) {
	dir, _ := projectFor(t)
	os.WriteFile(filepath.Join(dir, "docker-compose.override.yaml"), []byte("services:\n  nginx:\n    image: nginx:custom\n"), 0o644)
	if img := load(t, dir).Services["nginx"].Image; img != "nginx:custom" {
		t.Fatalf("override not merged: %s", img)
	}
}

// documentedDeviations are the only differences from upstream's compose
// file that the fidelity test accepts (templates/README.md, "Deviations
// from upstream", 1, 3 and 8): our healthcheck, which keeps the password off
// the command line, per service.
var documentedDeviations = map[string]string{
	"redis":    "CMD-SHELL redis-cli ping | grep -q PONG",
	"db_mysql": `CMD-SHELL MYSQL_PWD="$MYSQL_ROOT_PASSWORD" mysqladmin ping -u root`,
	// Deviation 8.
	"oceanbase": `CMD-SHELL MYSQL_PWD="$OB_TENANT_PASSWORD" obclient -h127.0.0.1 -P2881 -uroot@test -e "SELECT 1;"`,
	"seekdb":    `CMD-SHELL MYSQL_PWD="$ROOT_PASSWORD" mysql -h127.0.0.1 -P2881 -uroot -e "SELECT 1;"`,
}

// TestFidelityWithUpstream loads upstream's own docker-compose.yaml of
// every release of the catalogue (../shared/upstream/<version>/) with
// compose-go, beside difyctl's template of that release, with the same .env
// and profiles, for every database x vector store pair, and fails on any
// difference in services, images, depends_on conditions, healthchecks,
// volumes, networks, commands, entrypoints, published ports and environment
// names that is not a documented deviation. Under CI=true a missing upstream
// copy is a failure.
func TestFidelityWithUpstream(t *testing.T) {
	for _, rel := range templates.Releases() {
		t.Run(rel.Version, func(t *testing.T) { fidelity(t, rel) })
	}
}

func fidelity(t *testing.T, rel *templates.Release) {
	up, err := filepath.Abs(filepath.Join("..", "..", "shared", "upstream", rel.Version, "docker-compose.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(up); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("CI=true: upstream's compose file for %s: %v", rel.Version, err)
		}
		t.Skipf("no upstream copy to compare with: %v", err)
	}
	for _, db := range profiles.Names(profiles.Database) {
		for _, vs := range profiles.Names(profiles.Vector) {
			dir, sel := projectForRelease(t, rel, db, vs)
			op := load(t, dir)
			ours := Summarize(op)
			p, err := Load(context.Background(), LoadOptions{ProjectDir: dir, ProjectName: "dify", Files: []string{up}, Profiles: sel.Names()})
			if err != nil {
				t.Fatalf("%s+%s: loading upstream's file: %v", db, vs, err)
			}
			p.WorkingDir = dir
			theirs := Summarize(p)
			for svc, check := range documentedDeviations {
				o, okO := ours.Services[svc]
				u, okU := theirs.Services[svc]
				if !okO || !okU {
					continue
				}
				if o.Healthcheck != check {
					t.Errorf("%s+%s: %s healthcheck %q, documented %q", db, vs, svc, o.Healthcheck, check)
				}
				o.Healthcheck, u.Healthcheck = "", ""
				ours.Services[svc], theirs.Services[svc] = o, u
			}
			for _, d := range diffSummaries(ours, theirs) {
				t.Errorf("%s+%s: undocumented difference from upstream: %s", db, vs, d)
			}
			for _, d := range diffDetails(op, p) {
				t.Errorf("%s+%s: undocumented difference from upstream: %s", db, vs, d)
			}
		}
	}
}

// documentedDetails are the documented deviations (templates/README.md,
// 2 and 9) in what Summary leaves out: commands and environment names.
var documentedDetails = map[string]func(ours, theirs *serviceDetail){
	// 2: the password is read from the environment at start, not put in Cmd.
	"redis": func(o, u *serviceDetail) {
		if o.Command == `sh -c exec docker-entrypoint.sh redis-server --requirepass "$REDISCLI_AUTH"` {
			o.Command, u.Command = "", ""
		}
	},
	// 9: MyScale's users file reads MYSCALE_PASSWORD.
	"myscale": func(o, u *serviceDetail) {
		o.EnvNames = slices.DeleteFunc(o.EnvNames, func(n string) bool { return n == "MYSCALE_PASSWORD" })
	},
}

// serviceDetail is what the fidelity test compares beyond Summary: the
// command, entrypoint, published ports and the names of the environment
// (values differ by design: generated secrets, ${VAR:?} guards).
type serviceDetail struct {
	Command, Entrypoint, Ports string
	EnvNames                   []string
}

func detailOf(s types.ServiceConfig) serviceDetail {
	d := serviceDetail{Command: strings.Join(s.Command, " "), Entrypoint: strings.Join(s.Entrypoint, " "), Ports: fmt.Sprint(s.Ports)}
	for k := range s.Environment {
		d.EnvNames = append(d.EnvNames, k)
	}
	sort.Strings(d.EnvNames)
	return d
}

func diffDetails(ours, theirs *types.Project) []string {
	var out []string
	names := make([]string, 0, len(ours.Services))
	for n := range ours.Services {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		u, ok := theirs.Services[n]
		if !ok {
			continue // diffSummaries reports it
		}
		o, t := detailOf(ours.Services[n]), detailOf(u)
		if fix := documentedDetails[n]; fix != nil {
			fix(&o, &t)
		}
		if o.Command != t.Command || o.Entrypoint != t.Entrypoint || o.Ports != t.Ports || !slices.Equal(o.EnvNames, t.EnvNames) {
			out = append(out, fmt.Sprintf("service %s: difyctl %+v upstream %+v", n, o, t))
		}
	}
	return out
}

func diffSummaries(a, b Summary) []string {
	var out []string
	names := map[string]bool{}
	for n := range a.Services {
		names[n] = true
	}
	for n := range b.Services {
		names[n] = true
	}
	var sorted []string
	for n := range names {
		sorted = append(sorted, n)
	}
	sort.Strings(sorted)
	for _, n := range sorted {
		x, okx := a.Services[n]
		y, oky := b.Services[n]
		switch {
		case !okx:
			out = append(out, "service "+n+" only upstream")
		case !oky:
			out = append(out, "service "+n+" only difyctl")
		case !reflect.DeepEqual(x, y):
			xb, _ := json.Marshal(x)
			yb, _ := json.Marshal(y)
			out = append(out, "service "+n+": difyctl "+string(xb)+" upstream "+string(yb))
		}
	}
	if !reflect.DeepEqual(a.Networks, b.Networks) {
		out = append(out, fmt.Sprintf("networks differ: difyctl %v upstream %v", a.Networks, b.Networks))
	}
	return out
}

// secretValues are the non-empty values of the secret variables of a
// project's .env.
func secretValues(t *testing.T, dir string) map[string]string {
	t.Helper()
	d, err := envgen.ReadFile(filepath.Join(dir, ".env"))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for k, v := range d.Map() {
		if sv, ok := envgen.DefaultSchema().Lookup(k); ok && sv.IsSecret() && !sv.Fixed && len(v) >= 4 {
			out[k] = v
		}
	}
	return out
}

// No secret on any command line: healthchecks, commands and entrypoints of
// every service of every profile are free of the
// .env's secret values (they show in docker inspect, ps and the health log).
func TestNoSecretOnCommandLine(t *testing.T) {
	// A service's lines depend on its own profile only: each database with
	// the default vector store and each vector store with the default
	// database cover every service.
	var pairs [][2]string
	for _, db := range profiles.Names(profiles.Database) {
		pairs = append(pairs, [2]string{db, profiles.DefaultVector})
	}
	for _, vs := range profiles.Names(profiles.Vector) {
		pairs = append(pairs, [2]string{profiles.DefaultDatabase, vs})
	}
	for _, pair := range pairs {
		{
			db, vs := pair[0], pair[1]
			dir, _ := projectFor(t, db, vs)
			secrets := secretValues(t, dir)
			for name, svc := range load(t, dir).Services {
				var lines []string
				if svc.HealthCheck != nil {
					lines = append(lines, strings.Join(svc.HealthCheck.Test, " "))
				}
				lines = append(lines, strings.Join(svc.Command, " "), strings.Join(svc.Entrypoint, " "))
				for _, l := range lines {
					for k, v := range secrets {
						if strings.Contains(l, v) {
							t.Errorf("%s+%s: service %s has %s on a command line", db, vs, name, k)
						}
					}
				}
			}
		}
	}
}

// Every secret difyctl generates for a profile reaches that profile's own
// server: it is in the environment of one of the profile's services (the
// server's side; the API's side reads it from .env). A credential a server
// has built in is marked fixed in the env template instead.
func TestProfileSecretsReachTheirServer(t *testing.T) {
	for _, kind := range []profiles.Kind{profiles.Database, profiles.Vector} {
		for _, name := range profiles.Names(kind) {
			pr, _ := profiles.Get(name)
			if len(pr.Services) == 0 {
				continue
			}
			dir, _ := projectFor(t, name)
			p := load(t, dir)
			env, _ := envgen.ReadFile(filepath.Join(dir, ".env"))
			for _, v := range envgen.DefaultSchema().Vars {
				if !v.Generated() || !slices.Contains(v.Profiles, name) {
					continue
				}
				val, _ := env.Get(v.Name)
				reached := false
				for _, s := range pr.Services {
					for _, e := range p.Services[s].Environment {
						reached = reached || (e != nil && val != "" && strings.Contains(*e, val))
					}
				}
				if !reached {
					t.Errorf("profile %s: %s is generated but none of %v receives it", name, v.Name, pr.Services)
				}
			}
		}
	}
}

// The interpolation environment is read by envgen: what docker compose
// reads (a BOM, CRLF, a key with '-') loads, and a line that cannot be read
// names the file, the line and the variable, never the value.
func TestEnvironmentReadsThroughEnvgen(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, ".env"), []byte("\uFEFFA=1\r\nmy-key=${A}-x\r\nB\r\n"), 0o600)
	env, err := Environment(dir, []string{"B=from-process"})
	if err != nil || env["my-key"] != "1-x" || env["B"] != "from-process" || env["A"] != "1" {
		t.Fatalf("%v %v", env, err)
	}
	const secret = "s3cret-in-a-bad-line"
	os.WriteFile(filepath.Join(dir, ".env"), []byte("A=1\nSECRET_KEY='"+secret+"\x00'\n"), 0o600)
	_, err = Environment(dir, nil)
	if err == nil || strings.Contains(err.Error(), secret) || !strings.Contains(err.Error(), "line 2") || !strings.Contains(err.Error(), "SECRET_KEY") || !strings.Contains(err.Error(), dir) {
		t.Fatalf("error: %v", err)
	}
}

// Given the .env as the factory read it (DotEnv), Load does not read the
// file again for interpolation: a .env that cannot be read (here a
// directory) does not stop it, and its variables are DotEnv's, under the
// process environment's. (A service's env_file is another matter: compose
// reads it for the service, as docker compose does.)
func TestLoadTakesTheReadDotEnv(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "compose.yaml"), []byte("services:\n  a:\n    image: app:${TAG}\n    environment: {NAME: \"${NAME}\"}\n"), 0o644)
	if err := os.Mkdir(filepath.Join(dir, ".env"), 0o700); err != nil {
		t.Fatal(err)
	}
	dotEnv := map[string]string{"TAG": "from-dotenv", "NAME": "from-dotenv"}
	o := LoadOptions{ProjectDir: dir, ProjectName: "p", Files: []string{"compose.yaml"}, Environ: []string{"NAME=from-process"}}
	if _, err := Load(context.Background(), o); err == nil {
		t.Fatal("without DotEnv, Load read a .env that is a directory")
	}
	o.DotEnv = dotEnv
	p, err := Load(context.Background(), o)
	if err != nil {
		t.Fatalf("Load read .env though DotEnv was given: %v", err)
	}
	if img := p.Services["a"].Image; img != "app:from-dotenv" {
		t.Fatalf("image %q, want DotEnv's tag", img)
	}
	if v := p.Services["a"].Environment["NAME"]; v == nil || *v != "from-process" {
		t.Fatalf("NAME = %v: the process environment must win over DotEnv", v)
	}
	if dotEnv["NAME"] != "from-dotenv" || len(dotEnv) != 2 {
		t.Fatal("Load changed the caller's DotEnv map")
	}
	env, err := o.Environment()
	if err != nil || env["TAG"] != "from-dotenv" || env["NAME"] != "from-process" {
		t.Fatalf("LoadOptions.Environment: %v %v", env, err)
	}
}

// The embedded templates load the same from the factory's reading as from
// the file.
func TestLoadDotEnvSameAsFile(t *testing.T) {
	dir, _ := projectFor(t)
	d, err := envgen.ReadFile(filepath.Join(dir, ".env"))
	if err != nil {
		t.Fatal(err)
	}
	read := load(t, dir)
	given, err := Load(context.Background(), LoadOptions{ProjectDir: dir, ProjectName: "dify", DotEnv: d.Map()})
	if err != nil {
		t.Fatal(err)
	}
	a, _ := read.MarshalYAML()
	b, _ := given.MarshalYAML()
	if string(a) != string(b) {
		t.Fatal("the project loaded from DotEnv differs from the one loaded reading .env")
	}
}

// An empty (non-nil) DotEnv says the project has no .env: nothing is read.
func TestLoadEmptyDotEnvReadsNothing(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "compose.yaml"), []byte("services:\n  a:\n    image: app:${TAG:-default}\n"), 0o644)
	os.WriteFile(filepath.Join(dir, ".env"), []byte("TAG=from-file\n"), 0o600)
	p, err := Load(context.Background(), LoadOptions{ProjectDir: dir, ProjectName: "p", Files: []string{"compose.yaml"}, DotEnv: map[string]string{}})
	if err != nil || p.Services["a"].Image != "app:default" {
		t.Fatalf("%v %v", err, p)
	}
	p, err = Load(context.Background(), LoadOptions{ProjectDir: dir, ProjectName: "p", Files: []string{"compose.yaml"}})
	if err != nil || p.Services["a"].Image != "app:from-file" {
		t.Fatalf("without DotEnv the file is read: %v %v", err, p)
	}
}
