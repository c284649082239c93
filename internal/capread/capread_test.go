package capread

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "m.json")
	os.WriteFile(p, []byte("12345"), 0o600)
	if b, err := File(p, 5); err != nil || string(b) != "12345" {
		t.Fatal(b, err)
	}
	if _, err := File(p, 4); err == nil || !strings.Contains(err.Error(), "larger than 4 bytes") {
		t.Fatal(err)
	}
	// An endless file stops at the cap.
	if _, err := File("/dev/zero", 1<<20); err == nil {
		t.Fatal("/dev/zero read")
	}
}
