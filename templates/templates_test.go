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
	var doc struct {
		Services map[string]struct {
			Profiles []string `yaml:"profiles"`
			Volumes  []any    `yaml:"volumes"`
		} `yaml:"services"`
	}
	if err := yaml.Unmarshal(Compose(), &doc); err != nil {
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
			if _, err := fs.Stat(SupportFiles(), src); err != nil {
				t.Errorf("service %s mounts ./%s, which difyctl does not ship", name, src)
			}
			checked++
		}
	}
	if checked < 8 {
		t.Fatalf("only %d mounts checked", checked)
	}
}
