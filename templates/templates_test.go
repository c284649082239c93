package templates

import (
	"io/fs"
	"os"
	"path"
	"strings"

	"go.yaml.in/yaml/v4"
	"path/filepath"
	"testing"
)

func TestWriteSupportFiles(t *testing.T) {
	dir := t.TempDir()
	written, err := WriteSupportFiles(dir)
	if err != nil || len(written) < 8 {
		t.Fatalf("%d files, %v", len(written), err)
	}
	st, err := os.Stat(filepath.Join(dir, "nginx", "docker-entrypoint.sh"))
	if err != nil || st.Mode().Perm() != 0o755 {
		t.Fatalf("entrypoint: %v %v", st, err)
	}
	// The operator's edits are never overwritten.
	conf := filepath.Join(dir, "ssrf_proxy", "squid.conf.template")
	os.WriteFile(conf, []byte("mine"), 0o644)
	again, err := WriteSupportFiles(dir)
	if err != nil || len(again) != 0 {
		t.Fatalf("second run wrote %v (%v)", again, err)
	}
	if b, _ := os.ReadFile(conf); string(b) != "mine" {
		t.Fatal("an edited file was overwritten")
	}
}

// Every configuration file the compose template bind-mounts from the
// project directory (not data directories) is shipped.
func TestEveryMountedFileIsShipped(t *testing.T) {
	for _, r := range Releases() {
		t.Run(r.Version, func(t *testing.T) { everyMountedFileIsShipped(t, r) })
	}
}

func everyMountedFileIsShipped(t *testing.T, r *Release) {
	var doc struct {
		Services map[string]struct {
			Profiles []string `yaml:"profiles"`
			Volumes  []any    `yaml:"volumes"`
		} `yaml:"services"`
	}
	if err := yaml.Unmarshal(r.Compose(), &doc); err != nil {
		t.Fatal(err)
	}
	// Profiles whose extra files difyctl does not ship (see README.md).
	notShipped := map[string]bool{"certbot": true, "iris": true, "oracle": true}
	checked := 0
	for name, s := range doc.Services {
		if len(s.Profiles) > 0 && notShipped[s.Profiles[0]] {
			continue
		}
		for _, vol := range s.Volumes {
			v, ok := vol.(string)
			if !ok {
				continue // long syntax: named volumes only in this template
			}
			src, _, _ := strings.Cut(v, ":")
			isFile := strings.Contains(".yml .yaml .xml .conf .sh .template .txt .json .script", path.Ext(src)) && path.Ext(src) != "" && path.Ext(src) != ".d"
			if !strings.HasPrefix(src, "./") || (strings.HasPrefix(src, "./volumes/") || strings.HasPrefix(src, "./vastbase/")) && !isFile {
				continue // data directories are created empty
			}
			src = strings.TrimPrefix(src, "./")
			if strings.HasPrefix(src, "volumes/certbot") || strings.HasPrefix(src, "${") {
				continue
			}
			if _, err := fs.Stat(r.SupportFiles(), src); err != nil {
				t.Errorf("service %s mounts ./%s, which difyctl does not ship", name, src)
			}
			checked++
		}
	}
	if checked < 8 {
		t.Fatalf("only %d mounts checked", checked)
	}
}

func TestCatalogue(t *testing.T) {
	vs := Versions()
	if len(vs) < 2 || vs[0] != "1.15.0" || Latest().Version != vs[len(vs)-1] || DifyVersion() != Latest().Version {
		t.Fatalf("catalogue %v, latest %s", vs, Latest().Version)
	}
	for _, v := range vs {
		r, err := Lookup("v" + v)
		if err != nil || r.Version != v {
			t.Fatalf("Lookup(v%s): %v", v, err)
		}
		if !strings.Contains(string(r.Compose()), "langgenius/dify-api:"+v) {
			t.Errorf("%s: compose file does not run dify-api:%s", v, v)
		}
		if !strings.Contains(string(r.EnvTemplate()), "env template for Dify "+v+".") {
			t.Errorf("%s: env template names another release", v)
		}
	}
	if _, err := Lookup("1.2.3"); err == nil || !strings.Contains(err.Error(), strings.Join(vs, ", ")) {
		t.Fatalf("unknown release: %v", err)
	}
	for _, c := range []struct {
		a, b string
		want int
	}{{"1.15.0", "1.16.0", -1}, {"1.16.0", "1.15.0", 1}, {"1.9.0", "1.10.0", -1}, {"1.16", "1.16.0", 0}, {"x", "1.0.0", -1}} {
		if got := CompareVersions(c.a, c.b); got != c.want {
			t.Errorf("CompareVersions(%s, %s) = %d", c.a, c.b, got)
		}
	}
}
