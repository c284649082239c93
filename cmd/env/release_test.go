package env

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/difyctl/difyctl/internal/iostreams"
	"github.com/difyctl/difyctl/internal/release"
)

// An imported upstream folder's release is recognised from its images and
// recorded; its .env is read against that release's variables.
func TestImportRecognisesTheRelease(t *testing.T) {
	up, _ := filepath.Abs(filepath.Join("..", "..", "..", "shared", "upstream", "1.15.0"))
	if _, err := os.Stat(up); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("CI=true: %v", err)
		}
		t.Skip(err)
	}
	src := t.TempDir()
	for _, f := range []string{"docker-compose.yaml", ".env.example"} {
		b, err := os.ReadFile(filepath.Join(up, f))
		if err != nil {
			t.Fatal(err)
		}
		name := f
		if f == ".env.example" {
			name = ".env"
		}
		os.WriteFile(filepath.Join(src, name), b, 0o600)
	}
	dir := t.TempDir()
	io, _, _, errOut := iostreams.Test()
	if err := Import(&ImportOptions{IO: io, ProjectDir: dir, Source: src, Now: time.Now}); err != nil {
		t.Fatal(err)
	}
	rec, err := release.Read(dir)
	if err != nil || rec == nil || rec.Release != "1.15.0" || rec.Source != release.SourceImport {
		t.Fatalf("record %+v %v (%s)", rec, err, errOut)
	}
	b, _ := os.ReadFile(filepath.Join(dir, ".env"))
	if !strings.Contains(string(b), "ENABLE_AGENT_V2=false") || strings.Contains(string(b), "DIFY_AGENT_SERVER_SECRET_KEY") {
		t.Fatal(".env was not read against 1.15.0's variables")
	}
}
