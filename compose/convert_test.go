package compose

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/types"

	"github.com/difyctl/difyctl/profiles"
)

// Every service of every profile pair of the embedded templates converts to
// an engine configuration: nothing the templates use is unsupported.
func TestConvertEveryTemplateService(t *testing.T) {
	for _, db := range profiles.Names(profiles.Database) {
		for _, vs := range profiles.Names(profiles.Vector) {
			dir, _ := projectFor(t, db, vs, "certbot", "unstructured")
			p := load(t, dir)
			for name, s := range p.Services {
				hash, err := ServiceHash(s)
				if err != nil {
					t.Fatal(err)
				}
				spec, err := Convert(p, s, map[string]string{LabelConfigHash: hash})
				if err != nil {
					t.Fatalf("%s+%s: %s: %v", db, vs, name, err)
				}
				if spec.Config.Image != s.Image || spec.Config.Labels[LabelConfigHash] != hash {
					t.Fatalf("%s: image or labels lost", name)
				}
			}
		}
	}
}

func TestConvertDetails(t *testing.T) {
	dir, _ := projectFor(t, "postgresql", "opensearch")
	p := load(t, dir)
	osvc := p.Services["opensearch"]
	spec, err := Convert(p, osvc, nil)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, u := range spec.Host.Ulimits {
		names = append(names, u.Name)
	}
	if strings.Join(names, ",") != "memlock,nofile" {
		t.Errorf("ulimits %v", names)
	}
	if spec.Name != "opensearch" { // container_name in the template
		t.Errorf("container name %s", spec.Name)
	}
	api, _ := Convert(p, p.Services["api"], nil)
	if len(api.Networks) != 2 || api.Host.RestartPolicy.Name != "always" || api.Config.Healthcheck == nil {
		t.Errorf("api: networks %v restart %v", api.Networks, api.Host.RestartPolicy)
	}
	for _, m := range api.Host.Mounts {
		if m.Type == "bind" && !filepath.IsAbs(m.Source) {
			t.Errorf("relative bind source %s", m.Source)
		}
	}
}

func TestConvertRefusesWhatItCannotHonour(t *testing.T) {
	dir := t.TempDir()
	for field, yaml := range map[string]string{
		"build":        "    build: .\n",
		"devices":      "    devices: [\"/dev/fuse:/dev/fuse\"]\n",
		"network_mode": "    network_mode: host\n",
		"secrets":      "    secrets: [s]\n",
	} {
		extra := ""
		if field == "secrets" {
			extra = "secrets:\n  s:\n    file: ./s.txt\n"
		}
		os.WriteFile(filepath.Join(dir, "c.yaml"), []byte("services:\n  svc:\n    image: x\n"+yaml+extra), 0o644)
		p, err := Load(context.Background(), LoadOptions{ProjectDir: dir, ProjectName: "t", Files: []string{"c.yaml"}})
		if err != nil {
			t.Fatalf("%s: %v", field, err)
		}
		_, err = Convert(p, p.Services["svc"], nil)
		var ue *UnsupportedError
		if !errors.As(err, &ue) || ue.Service != "svc" || !strings.Contains(err.Error(), field) {
			t.Errorf("%s: want an error naming svc and %s, got %v", field, field, err)
		}
	}
}

// An unparsable dns entry is an error naming the service, not dropped.
func TestConvertRefusesBadDNS(t *testing.T) {
	p := &types.Project{Name: "p", WorkingDir: t.TempDir()}
	s := types.ServiceConfig{Name: "api"}
	s.Image, s.DNS = "x", []string{"1.1.1.1", "dns.example"}
	if _, err := Convert(p, s, nil); err == nil || !strings.Contains(err.Error(), `service api: dns: "dns.example" is not an IP address`) {
		t.Fatalf("err %v", err)
	}
	s.DNS = []string{"1.1.1.1"}
	spec, err := Convert(p, s, nil)
	if err != nil || len(spec.Host.DNS) != 1 {
		t.Fatalf("%v %v", err, spec)
	}
}
