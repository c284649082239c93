package recovery

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/difyctl/difyctl/internal/engine/enginefake"
	"github.com/difyctl/difyctl/internal/journal"
)

// The restore-redis settler is registered through this package's imports,
// and a journal written before any change settles without the engine.
func TestSettleKnowsRestoreRedis(t *testing.T) {
	dir := t.TempDir()
	if _, err := journal.Begin(dir, "p", "restore-redis", map[string]string{"file": "/b/x.rdb", "safetyCopy": "/b/s.rdb"}); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	o, err := Settle(context.Background(), enginefake.New(), &out, false, dir, "p")
	if err != nil || o == nil || o.Action != journal.RolledBack {
		t.Fatalf("%+v %v", o, err)
	}
	if !strings.Contains(out.String(), "settled the interrupted restore-redis") || !strings.Contains(out.String(), "/b/s.rdb") {
		t.Fatalf("report: %s", out.String())
	}
	if o, err := Settle(context.Background(), enginefake.New(), &out, false, dir, "p"); o != nil || err != nil {
		t.Fatalf("second settle: %+v %v", o, err)
	}
}

func TestReportChangesNothing(t *testing.T) {
	dir := t.TempDir()
	var out bytes.Buffer
	Report(&out, false, dir, "p")
	if out.Len() != 0 {
		t.Fatalf("report without journal: %q", out.String())
	}
	h, _ := journal.Begin(dir, "p", "restore-redis", nil)
	h.Step("stopping")
	Report(&out, false, dir, "p")
	if !strings.HasPrefix(out.String(), "WARNING: unfinished restore-redis of project p") {
		t.Fatalf("text: %q", out.String())
	}
	out.Reset()
	Report(&out, true, dir, "p")
	var v struct{ Journal, Message string }
	if err := json.Unmarshal(out.Bytes(), &v); err != nil || v.Journal != "pending" || !strings.Contains(v.Message, "stopping") {
		t.Fatalf("json: %q %v", out.String(), err)
	}
	if j, _ := journal.Load(dir, "p"); j == nil {
		t.Fatal("Report removed the journal")
	}
}
