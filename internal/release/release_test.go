package release

import (
	"os"
	"strings"
	"testing"

	"github.com/difyctl/difyctl/templates"
)

func TestRecord(t *testing.T) {
	dir := t.TempDir()
	if r, err := Read(dir); r != nil || err != nil {
		t.Fatalf("empty dir: %v %v", r, err)
	}
	if rel, err := Of(dir); err != nil || rel != templates.Latest() {
		t.Fatalf("no record: %v %v", rel, err)
	}
	if err := Write(dir, Record{Release: "1.15.0", Source: SourceInit}); err != nil {
		t.Fatal(err)
	}
	if rel, err := Of(dir); err != nil || rel.Version != "1.15.0" {
		t.Fatalf("recorded 1.15.0: %v %v", rel, err)
	}
	r, _ := Read(dir)
	if r.Source != SourceInit || r.At.IsZero() {
		t.Fatalf("record %+v", r)
	}
	Write(dir, Record{Release: "0.0.1", Source: SourceInit})
	if _, err := Of(dir); err == nil || !strings.Contains(err.Error(), "0.0.1") {
		t.Fatalf("unknown recorded release: %v", err)
	}
	os.WriteFile(Path(dir), []byte("junk"), 0o644)
	if _, err := Read(dir); err == nil || !strings.Contains(err.Error(), FileName) {
		t.Fatalf("junk record: %v", err)
	}
}
