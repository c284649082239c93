package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/difyctl/difyctl/envgen"
)

// env import of an older release's docker/ folder, through the binary: the
// old nginx config is not used (the embedded one is, the operator's kept as
// .orig), the data is linked, comments survive, the broker URL carries the
// imported Redis password, the project name is compose's, and the result
// validates without errors.
func TestEnvImportOlderRelease(t *testing.T) {
	up := filepath.Join(t.TempDir(), "-Dify_Old")
	for _, d := range []string{"nginx/conf.d", "ssrf_proxy", "volumes/app/storage"} {
		os.MkdirAll(filepath.Join(up, d), 0o755)
	}
	const oldNginx = "# nginx of an old release\n"
	os.WriteFile(filepath.Join(up, "nginx", "nginx.conf.template"), []byte(oldNginx), 0o644)
	os.WriteFile(filepath.Join(up, "ssrf_proxy", "squid.conf.template"), []byte("# old squid: no private-network deny rules\nhttp_access allow all\n"), 0o644)
	env := "# operator: production settings\nDB_HOST=db\nREDIS_PASSWORD=" + sentinelRedisPW + "\nSECRET_KEY=" + sentinelSecretKey + "\n"
	os.WriteFile(filepath.Join(up, ".env"), []byte(env), 0o600)

	dir := t.TempDir()
	r := run(t, nil, "--project-dir", dir, "env", "import", up, "-o", "json")
	if r.code != 0 {
		t.Fatalf("import: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	checkNoSecrets(t, r)
	var rep struct {
		Project string `json:"project"`
		Folders struct {
			Linked, Replaced []string
		} `json:"folders"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
		t.Fatalf("%v\n%s", err, r.stdout)
	}
	if rep.Project != "dify_old" || strings.Join(rep.Folders.Linked, ",") != "volumes" || len(rep.Folders.Replaced) != 2 {
		t.Errorf("report: %+v", rep)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "nginx", "nginx.conf.template.orig")); string(b) != oldNginx {
		t.Errorf("old nginx config not kept as .orig: %q", b)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "ssrf_proxy", "squid.conf.template")); strings.Contains(string(b), "old squid") {
		t.Error("the old squid config is used")
	}
	b, _ := os.ReadFile(filepath.Join(dir, ".env"))
	d, err := envgen.Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	if url, _ := d.Get("CELERY_BROKER_URL"); !strings.HasPrefix(string(b), "# operator: production settings\nDB_HOST=db_postgres\n") || !strings.Contains(url, ":"+sentinelRedisPW+"@") {
		t.Errorf("comments or the tied broker URL lost:\n%s", b)
	}
	v := run(t, nil, "--project-dir", dir, "env", "validate", "-o", "json")
	checkNoSecrets(t, v)
	var vr struct {
		Errors int `json:"errors"`
	}
	if json.Unmarshal([]byte(v.stdout), &vr); vr.Errors != 0 {
		t.Errorf("the imported file has errors:\n%s", v.stdout)
	}
	if after, _ := os.ReadFile(filepath.Join(up, "nginx", "nginx.conf.template")); string(after) != oldNginx {
		t.Error("the source folder changed")
	}
}
