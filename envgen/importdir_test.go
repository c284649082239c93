package envgen

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// upstreamDir writes a docker/ folder with .env (and envs files) in a
// folder named name.
func upstreamDir(t *testing.T, name, env string, envs map[string]string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, ".env"), []byte(env), 0o600)
	for p, s := range envs {
		os.MkdirAll(filepath.Dir(filepath.Join(dir, "envs", p)), 0o755)
		os.WriteFile(filepath.Join(dir, "envs", p), []byte(s), 0o600)
	}
	return dir
}

// The operator's file is kept byte for byte (comments, CRLF, order): what
// import adds comes after it.
func TestImportKeepsTheOperatorsFile(t *testing.T) {
	src := "# my deployment\r\n# keep this comment\r\nDB_TYPE=postgresql\r\nDB_HOST=db_postgres\r\nREDIS_PASSWORD='op-redis-pw-0123456789' # chosen by me\r\nMY_FLAG=1\r\n"
	d, rep, err := Import(upstreamDir(t, "docker", src, nil), now)
	if err != nil {
		t.Fatal(err)
	}
	out := string(d.Bytes())
	if !strings.HasPrefix(out, src) {
		t.Fatalf("the operator's file did not survive:\n%q", out[:min(len(out), len(src)+40)])
	}
	if strings.Contains(strings.ReplaceAll(out, "\r\n", ""), "\n") {
		t.Error("lines added with LF endings to a CRLF file")
	}
	if len(rep.Unplaced) != 1 || rep.Unplaced[0] != "MY_FLAG" {
		t.Errorf("unplaced: %v", rep.Unplaced)
	}
}

// Tied values are derived from the imported side: a broker URL with the
// folder's REDIS_PASSWORD, the sandbox key the folder's sandbox has.
func TestImportRederivesTiedValues(t *testing.T) {
	src := "DB_HOST=db\nREDIS_PASSWORD=op-redis-pw-0123456789\nSANDBOX_API_KEY=op-sandbox-key-0123456789\nPLUGIN_DAEMON_KEY=op-plugin-key-0123456789\n"
	d, rep, err := Import(upstreamDir(t, "docker", src, nil), now)
	if err != nil {
		t.Fatal(err)
	}
	env := d.Map()
	if !strings.Contains(env["CELERY_BROKER_URL"], ":op-redis-pw-0123456789@") {
		t.Errorf("CELERY_BROKER_URL does not carry the imported REDIS_PASSWORD")
	}
	if env["CODE_EXECUTION_API_KEY"] != "op-sandbox-key-0123456789" {
		t.Errorf("CODE_EXECUTION_API_KEY not derived from the imported SANDBOX_API_KEY")
	}
	// 1.1.3's service was "db"; this release runs db_postgres.
	if env["DB_HOST"] != "db_postgres" || !strings.Contains(strings.Join(rep.Rederived, ","), "DB_HOST") {
		t.Errorf("DB_HOST=%q rederived=%v", env["DB_HOST"], rep.Rederived)
	}
	for _, f := range Validate(d, DefaultSchema()) {
		if f.Severity == Error {
			t.Errorf("imported file: %s", f)
		}
	}
}

// The project name is the folder's name as docker compose normalises it:
// lowercased, other characters dropped, leading '_' and '-' dropped.
func TestImportProjectName(t *testing.T) {
	for name, want := range map[string]string{"_My.Dify-1": "mydify-1", "-docker": "docker", "Docker": "docker"} {
		_, rep, err := Import(upstreamDir(t, name, "A=1\n", nil), now)
		if err != nil || rep.Project != want {
			t.Errorf("%s: project %q (%v), want %q", name, rep.Project, err, want)
		}
	}
	if _, _, err := Import(upstreamDir(t, "___", "A=1\n", nil), now); err == nil || !strings.Contains(err.Error(), "COMPOSE_PROJECT_NAME") {
		t.Errorf("a folder name compose derives nothing from: %v", err)
	}
	_, rep, _ := Import(upstreamDir(t, "x", "COMPOSE_PROJECT_NAME=prod\n", nil), now)
	if rep.Project != "prod" {
		t.Errorf("COMPOSE_PROJECT_NAME of the file not kept: %q", rep.Project)
	}
}

// Values only envs/**/*.env sets are added; a ${VAR} of .env that only
// those files resolve is written as its value, so the file reads the same
// without them.
func TestImportEnvsFiles(t *testing.T) {
	dir := upstreamDir(t, "docker", "VECTOR_STORE=qdrant\nQDRANT_URL=http://${QDRANT_HOST_X}:6333\n",
		map[string]string{"vectorstores/qdrant.env": "QDRANT_API_KEY=op-qdrant-key-0123456789\nQDRANT_HOST_X=qdrant\n"})
	d, _, err := Import(dir, now)
	if err != nil {
		t.Fatal(err)
	}
	d2, err := Parse(d.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]string{"QDRANT_API_KEY": "op-qdrant-key-0123456789", "QDRANT_URL": "http://qdrant:6333"} {
		if got, _ := d2.Get(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
}

// A real upstream folder (1.15.0's examples, from ../shared) imports into
// a file with no validation error.
func TestImportUpstreamRelease(t *testing.T) {
	up := filepath.Join("..", "..", "shared", "upstream", "1.15.0")
	if _, err := os.Stat(up); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("CI=true: %v", err)
		}
		t.Skip(err)
	}
	dir := filepath.Join(t.TempDir(), "docker")
	os.MkdirAll(dir, 0o755)
	b, _ := os.ReadFile(filepath.Join(up, ".env.example"))
	os.WriteFile(filepath.Join(dir, ".env"), b, 0o600)
	d, rep, err := Import(dir, now)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(d.Bytes()), string(b)) {
		t.Error("upstream's comments and values did not survive")
	}
	for _, f := range Validate(d, DefaultSchema()) {
		if f.Severity == Error {
			t.Errorf("%s", f)
		}
	}
	if rep.Project != "docker" {
		t.Errorf("project %q", rep.Project)
	}
}
