package deploy

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/difyctl/difyctl/internal/cmdutil"
	"github.com/difyctl/difyctl/internal/release"
)

func TestWriteOlderRelease(t *testing.T) {
	dir := t.TempDir()
	res, err := WriteRelease(dir, "p", "1.15.0", nil, false, time.Unix(0, 0))
	if err != nil {
		t.Fatal(err)
	}
	if res.Release != "1.15.0" {
		t.Fatalf("result release %q", res.Release)
	}
	b, _ := os.ReadFile(filepath.Join(dir, ".env"))
	if !strings.Contains(string(b), "# difyctl-template: dify 1.15.0") || strings.Contains(string(b), "DIFY_AGENT_SERVER_SECRET_KEY") {
		t.Fatal(".env is not 1.15.0's")
	}
	if !strings.Contains(string(b), "ENABLE_AGENT_V2=") || strings.Contains(string(b), "NEXT_PUBLIC_ENABLE_AGENT_V2") {
		t.Fatal("1.15.0 names the agent switch ENABLE_AGENT_V2")
	}
	if r, err := release.Read(dir); err != nil || r.Release != "1.15.0" || r.Source != release.SourceInit {
		t.Fatalf("record %+v %v", r, err)
	}
	sb, _ := os.ReadFile(filepath.Join(dir, "volumes", "sandbox", "conf", "config.yaml"))
	if !strings.Contains(string(sb), "python_path") {
		t.Fatal("support files are not 1.15.0's")
	}
	if _, err := WriteRelease(t.TempDir(), "p", "0.9.9", nil, false, time.Unix(0, 0)); err == nil || cmdutil.ExitCode(err) != cmdutil.ExitUsage {
		t.Fatalf("unknown release: %v", err)
	}
}
