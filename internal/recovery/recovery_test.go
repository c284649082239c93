package recovery

import (
	"bytes"
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/difyctl/difyctl/internal/cmdutil"
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
	o, err := Settle(context.Background(), enginefake.New(), Options{Out: &out}, dir, "p")
	if err != nil || o == nil || o.Action != journal.RolledBack {
		t.Fatalf("%+v %v", o, err)
	}
	if !strings.Contains(out.String(), "settled the interrupted restore-redis") || !strings.Contains(out.String(), "/b/s.rdb") {
		t.Fatalf("report: %s", out.String())
	}
	if o, err := Settle(context.Background(), enginefake.New(), Options{Out: &out}, dir, "p"); o != nil || err != nil {
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

// The settlers read the environment the command's factory gave, never the
// process's.
func TestSettlersReadTheFactorysEnvironment(t *testing.T) {
	var got []string
	journal.Register("recovery-test-environ", func(_ context.Context, env journal.Env, _ *journal.Journal) (journal.Outcome, error) {
		got = env.Environ
		return journal.Outcome{Action: journal.RolledBack}, nil
	})
	dir := t.TempDir()
	if _, err := journal.Begin(dir, "p", "recovery-test-environ", nil); err != nil {
		t.Fatal(err)
	}
	t.Setenv("DIFYCTL_RECOVERY_TEST", "process")
	if _, err := Settle(context.Background(), enginefake.New(), Options{ProcEnv: cmdutil.ProcEnv{Environ: []string{"A=factory"}}}, dir, "p"); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, []string{"A=factory"}) {
		t.Fatalf("the settler read %q", got)
	}
}

// Begin takes the project lock in the directory the given environment
// names (a second Begin exits 4 naming the holder), settles the journal,
// and lets go of the lock when settling fails.
func TestBeginLocksThenSettles(t *testing.T) {
	locks, dir := t.TempDir(), t.TempDir()
	o := Options{ProcEnv: cmdutil.ProcEnv{Getenv: func(k string) string { return map[string]string{"DIFYCTL_LOCK_DIR": locks}[k] }}}
	if _, err := journal.Begin(dir, "p", "restore-redis", map[string]string{"file": "/b/x.rdb", "safetyCopy": "/b/s.rdb"}); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	o.Out = &out
	unlock, err := Begin(context.Background(), enginefake.New(), o, dir, "p")
	if err != nil {
		t.Fatal(err)
	}
	if j, _ := journal.Load(dir, "p"); j != nil || !strings.Contains(out.String(), "settled") {
		t.Fatalf("the journal was not settled: %+v %q", j, out.String())
	}
	if _, err := Begin(context.Background(), enginefake.New(), o, dir, "p"); err == nil || cmdutil.ExitCode(err) != cmdutil.ExitLocked {
		t.Fatalf("a second Begin while the lock is held: %v (exit %d)", err, cmdutil.ExitCode(err))
	}
	unlock()
	if _, err := journal.Begin(dir, "p", "an-op-nothing-settles", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := Begin(context.Background(), enginefake.New(), o, dir, "p"); err == nil {
		t.Fatal("a journal no settler knows did not stop Begin")
	}
	unlock, err = Begin(context.Background(), enginefake.New(), o, "", "p") // no project directory: no journal looked for
	if err != nil {
		t.Fatalf("the failed Begin kept the lock: %v", err)
	}
	unlock()
}
