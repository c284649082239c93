package doctor

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestSecurityChecks(t *testing.T) {
	dir := t.TempDir()
	opts := &Options{ProjectDir: dir}
	os.Mkdir(filepath.Join(dir, "volumes"), 0o755)
	os.WriteFile(filepath.Join(dir, ".env"), nil, 0o600)
	os.Chmod(filepath.Join(dir, ".env"), 0o666)
	var files, data *Check
	for _, c := range securityChecks(opts) {
		c := c
		switch c.Name {
		case "project files":
			files = &c
		case "data directory":
			data = &c
		}
	}
	if files == nil || files.Status == OK || !strings.Contains(files.Detail, filepath.Join(dir, ".env")) || !strings.Contains(files.Hint, "chmod go-w") {
		t.Fatalf("writable .env: %+v", files)
	}
	if os.Geteuid() == 0 && files.Status != Fail {
		t.Fatalf("as root a writable .env fails: %+v", files)
	}
	if data == nil || data.Status != Warn || !strings.Contains(data.Hint, "chmod 700") {
		t.Fatalf("volumes 0755: %+v", data)
	}
}
