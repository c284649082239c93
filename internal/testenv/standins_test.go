package testenv

import (
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"go.yaml.in/yaml/v4"

	"github.com/difyctl/difyctl/templates"
)

// defaultImages reads a compose file and returns the images of the services
// a default deployment starts: no profile, or postgresql, weaviate or
// collaboration. Upstream's file names images literally.
func defaultImages(t *testing.T, data []byte) []string {
	t.Helper()
	var f struct {
		Services map[string]struct {
			Image    string   `yaml:"image"`
			Profiles []string `yaml:"profiles"`
		} `yaml:"services"`
	}
	if err := yaml.Unmarshal(data, &f); err != nil {
		t.Fatal(err)
	}
	set := map[string]bool{}
	for _, s := range f.Services {
		if len(s.Profiles) == 0 || slices.ContainsFunc(s.Profiles, func(p string) bool {
			return p == "postgresql" || p == "weaviate" || p == "collaboration"
		}) {
			set[s.Image] = true
		}
	}
	var out []string
	for i := range set {
		out = append(out, i)
	}
	sort.Strings(out)
	return out
}

func sorted(s []string) []string { s = slices.Clone(s); sort.Strings(s); return s }

func TestStandinImagesMatchTheTemplates(t *testing.T) {
	got, err := StandinReleaseImages(templates.DifyVersion())
	if err != nil {
		t.Fatal(err)
	}
	if want := defaultImages(t, templates.Compose()); !slices.Equal(sorted(got), want) {
		t.Errorf("stand-in images for the embedded %s:\n got %v\nwant %v (the template's default services)", templates.DifyVersion(), sorted(got), want)
	}
	for _, rel := range []string{"1.15.0", "1.16.0"} {
		data, err := os.ReadFile(filepath.Join("..", "..", "..", "shared", "upstream", rel, "docker-compose.yaml"))
		if err != nil {
			if InCI() {
				t.Fatalf("CI=true: upstream %s: %v", rel, err)
			}
			t.Logf("upstream %s not here (%v): not compared", rel, err)
			continue
		}
		got, _ := StandinReleaseImages(rel)
		if want := defaultImages(t, data); !slices.Equal(sorted(got), want) {
			t.Errorf("stand-in images for upstream %s:\n got %v\nwant %v", rel, sorted(got), want)
		}
	}
	if _, err := StandinReleaseImages("0.1"); err == nil {
		t.Error("an unknown release has a list")
	}
}

func TestEveryStandinImageHasARole(t *testing.T) {
	built := standinImages()
	for _, rel := range []string{"1.15.0", "1.16.0"} {
		refs, _ := StandinReleaseImages(rel)
		for _, ref := range refs {
			for _, opts := range []StandinOptions{{}, {StandinRedis: true, RealPostgres: true}} {
				img, err := standinFor(ref, opts)
				if err != nil {
					t.Errorf("%s: %v", ref, err)
					continue
				}
				if _, ok := built[img]; strings.HasPrefix(img, "difyctl-test/standin:") && !ok {
					t.Errorf("%s is played by %s, which is not built", ref, img)
				}
			}
		}
	}
	if img, _ := standinFor("redis:6-alpine", StandinOptions{}); img != ImageRedis {
		t.Errorf("redis is played by %s by default, want the real Redis fixture", img)
	}
	if img, _ := standinFor("docker.io/library/postgres:15-alpine", StandinOptions{RealPostgres: true}); img != ImagePostgres {
		t.Errorf("postgres with RealPostgres is played by %s", img)
	}
	for _, rel := range []string{"1.15.0", "1.16.0"} {
		if img, _ := standinFor("langgenius/dify-api:"+rel, StandinOptions{}); img != "difyctl-test/standin:dify-api-"+rel {
			t.Errorf("Dify %s's api is played by %s, not its release's image (which sets STANDIN_RELEASE)", rel, img)
		}
	}
	if img, _ := standinFor("langgenius/dify-api:0.9.0", StandinOptions{}); img != StandinImage("dify-api") {
		t.Errorf("an api of a release without an image of its own is played by %s", img)
	}
	if _, err := standinFor("example.com/unknown:1", StandinOptions{}); err == nil {
		t.Error("an unknown image has a stand-in")
	}
}
