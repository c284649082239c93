package e2e

import (
	"context"
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

// TestUpgradeFailureRollsBack: the 1.16.0 api's migration fails half-way
// (revision r2 commits its first steps, then raises: the database is left
// half-migrated, the api never healthy) -> the upgrade fails, says so, and
// rolls back: the database restored from the safety bundle (schema at r1,
// the same rows), 1.15.0's containers, .env, record and files.
func TestUpgradeFailureRollsBack(t *testing.T) {
	dir, project, base, cli := deploy115(t, migratingOverride+"      STANDIN_MIGRATE_FAIL: r2\n")
	if got := schema(t, cli, dir, project); got != schemaR1 {
		t.Fatalf("the 1.15.0 api did not migrate the new database to r1: %s", got)
	}
	appRows(t, cli, dir, project, 25)
	data := rows(t, cli, dir, project)
	env, _ := os.ReadFile(filepath.Join(dir, ".env"))
	r := runWithin(t, 8*time.Minute, append(base, "upgrade", "--to", "1.16.0", "--yes", "--wait-timeout", "60s")...)
	if r.code == 0 || !strings.Contains(r.stderr, "rolled back: the deployment runs Dify 1.15.0 as before") {
		t.Fatalf("upgrade with a failing migration: exit %d\n%s", r.code, r.stderr)
	}
	if !strings.Contains(r.stderr, "restoring the database and data from the safety bundle") {
		t.Errorf("the rollback did not restore the database from the bundle:\n%s", r.stderr)
	}
	assertOn115(t, dir, cli, project, string(env))
	if got := schema(t, cli, dir, project); got != schemaR1 {
		t.Errorf("after the rollback the schema is not r1's (the half-migrated database was kept?): %s", got)
	}
	if got := rows(t, cli, dir, project); got != data {
		t.Errorf("apps after the rollback: %s, want %s", got, data)
	}
}

// TestUpgradeKilledThenRollback: SIGKILL while the containers are being
// replaced -> the journal stays -> rollback undoes the upgrade.
func TestUpgradeKilledThenRollback(t *testing.T) {
	dir, project, base, cli := deploy115(t, failingOverride)
	env, _ := os.ReadFile(filepath.Join(dir, ".env"))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, testenv.Difyctl(t), append(base, "upgrade", "--to", "1.16.0", "--yes", "--no-bundle", "--wait-timeout", "3m")...)
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
	r := runWithin(t, 5*time.Minute, append(base, "rollback", "--yes", "--wait-timeout", "3m")...)
	if r.code != 0 || !strings.Contains(r.stdout, "undone") {
		t.Fatalf("rollback after the kill: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	assertOn115(t, dir, cli, project, string(env))
}
