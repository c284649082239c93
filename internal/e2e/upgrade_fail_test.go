package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/difyctl/difyctl/internal/journal"
	"github.com/difyctl/difyctl/internal/testenv"
)

// failingOverride makes the api never healthy once .env has 1.16.0's
// NEXT_PUBLIC_ENABLE_AGENT_V2 (1.15.0 names it ENABLE_AGENT_V2): the
// upgrade's api fails its health gate, the rolled-back one passes.
const failingOverride = "services:\n  api:\n    environment:\n      STANDIN_NEVER_READY: ${NEXT_PUBLIC_ENABLE_AGENT_V2:-}\n"

// TestUpgradeFailureRollsBack: the upgraded api never becomes healthy ->
// the upgrade fails, says so, and leaves 1.15.0's containers, .env, record
// and data.
func TestUpgradeFailureRollsBack(t *testing.T) {
	dir, project, base, cli := deploy115(t)
	if err := os.WriteFile(filepath.Join(dir, "docker-compose.override.yaml"), []byte(failingOverride), 0o644); err != nil {
		t.Fatal(err)
	}
	if r := run(t, nil, append(base, "up", "--wait-timeout", "3m")...); r.code != 0 {
		t.Fatalf("up with the override: exit %d\n%s", r.code, r.stderr)
	}
	env, _ := os.ReadFile(filepath.Join(dir, ".env"))
	r := run(t, nil, append(base, "upgrade", "--to", "1.16.0", "--yes", "--no-bundle", "--wait-timeout", "40s")...)
	if r.code == 0 || !strings.Contains(r.stderr, "rolled back: the deployment runs Dify 1.15.0 as before") {
		t.Fatalf("upgrade with a failing api: exit %d\n%s", r.code, r.stderr)
	}
	assertOn115(t, dir, cli, project, string(env))
}

// TestUpgradeKilledThenRollback: SIGKILL while the containers are being
// replaced -> the journal stays -> rollback undoes the upgrade.
func TestUpgradeKilledThenRollback(t *testing.T) {
	dir, project, base, cli := deploy115(t)
	if err := os.WriteFile(filepath.Join(dir, "docker-compose.override.yaml"), []byte(failingOverride), 0o644); err != nil {
		t.Fatal(err)
	}
	if r := run(t, nil, append(base, "up", "--wait-timeout", "3m")...); r.code != 0 {
		t.Fatalf("up with the override: exit %d\n%s", r.code, r.stderr)
	}
	env, _ := os.ReadFile(filepath.Join(dir, ".env"))
	cmd := exec.Command(testenv.Difyctl(t), append(base, "upgrade", "--to", "1.16.0", "--yes", "--no-bundle", "--wait-timeout", "3m")...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(2 * time.Minute)
	for {
		j, _ := journal.Load(dir, project)
		if j != nil && j.Did("containers") {
			time.Sleep(2 * time.Second) // into the recreation
			break
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatal("the upgrade never reached its containers step")
		}
		time.Sleep(100 * time.Millisecond)
	}
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	if j, _ := journal.Load(dir, project); j == nil {
		t.Fatal("no journal after the kill")
	}
	r := run(t, nil, append(base, "rollback", "--yes", "--wait-timeout", "3m")...)
	if r.code != 0 || !strings.Contains(r.stdout, "undone") {
		t.Fatalf("rollback after the kill: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	assertOn115(t, dir, cli, project, string(env))
}
