package e2e

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/difyctl/difyctl/backup"
	"github.com/difyctl/difyctl/internal/testenv"
)

// A BGSAVE that does not finish within --save-timeout fails the backup with
// what Redis reports about its save, and keeps nothing.
func TestBackupSaveTimeoutNamesWhatRedisReports(t *testing.T) {
	cli := testenv.Fixtures(t)
	project := testenv.ProjectName(t, cli)
	r := startRedis(t, cli, project, "", "--rdb-key-save-delay", "200000") // 0.2 s per key
	populate(t, r, "k", 300)                                               // a minute of saving
	// A save already running (as a scheduled one would be) is waited for.
	if _, err := r.CLI(context.Background(), "BGSAVE"); err != nil {
		t.Fatal(err)
	}
	bdir := t.TempDir()
	res := run(t, nil, "-p", project, "--project-dir", t.TempDir(), "backup", "redis", "--backup-dir", bdir, "--save-timeout", "5s")
	if res.code == 0 || !strings.Contains(res.stderr, "BGSAVE in "+project+"-redis-1 did not finish within 5s") || !strings.Contains(res.stderr, "rdb_bgsave_in_progress=1") {
		t.Fatalf("exit %d\n%s", res.code, res.stderr)
	}
	if left, _ := filepath.Glob(filepath.Join(bdir, "redis_*")); len(left) != 0 {
		t.Fatalf("kept %v", left)
	}
}

// Redis saving without a checksum (rdbchecksum no): the backup, verify and
// list all say the file was walked, not checksummed, and what stood in.
func TestBackupWithoutChecksumSaysSo(t *testing.T) {
	cli := testenv.Fixtures(t)
	project := testenv.ProjectName(t, cli)
	r := startRedis(t, cli, project, "", "--rdbchecksum", "no")
	populate(t, r, "k", 20)
	dir := t.TempDir()
	args := []string{"--project-dir", dir, "-p", project}
	res := run(t, nil, append(args, "backup", "redis")...)
	if res.code != 0 || !strings.Contains(res.stdout, "walked, not checksummed") {
		t.Fatalf("backup: exit %d\n%s\n%s", res.code, res.stdout, res.stderr)
	}
	res = run(t, nil, append(args, "backup", "verify", "all")...)
	if res.code != 0 || !strings.Contains(res.stdout, "walked, not checksummed (saved with rdbchecksum no), SHA-256 matches the manifest") {
		t.Fatalf("verify: exit %d\n%s\n%s", res.code, res.stdout, res.stderr)
	}
	res = run(t, nil, append(args, "backup", "list")...)
	if res.code != 0 || !strings.Contains(res.stdout, "walked, not checksummed") {
		t.Fatalf("list: exit %d\n%s\n%s", res.code, res.stdout, res.stderr)
	}
	res = run(t, nil, append(args, "backup", "list", "--verify", "-o", "json")...)
	var out struct {
		Backups []struct {
			Checked  string           `json:"checked"`
			Manifest *backup.Manifest `json:"manifest"`
		} `json:"backups"`
	}
	err := json.Unmarshal([]byte(res.stdout), &out)
	listed := out.Backups
	if err != nil || len(listed) != 1 || listed[0].Manifest.RDBChecked != "none" || !strings.HasPrefix(listed[0].Checked, "walked, not checksummed") {
		t.Fatalf("list json: %v\n%s", err, res.stdout)
	}
}

// Redis's own asset of empty keys (one of each kind, which Redis skips on
// load): the restore loads 0 keys and says so; counting the empty keys, as
// the verifier did, rolled this correct restore back.
func TestRestoreOfKeysRedisDrops(t *testing.T) {
	file := filepath.Join("..", "..", "..", "shared", "rdb-corpus", "redis", "corrupt_empty_keys.rdb")
	if _, err := os.Stat(file); err != nil {
		if testenv.InCI() {
			t.Fatalf("RDB corpus missing: %v", err)
		}
		t.Skipf("RDB corpus not here: %v", err)
	}
	cli := testenv.Fixtures(t)
	project := testenv.ProjectName(t, cli)
	r := startRedis(t, cli, project, "")
	populate(t, r, "k", 5)
	dir := t.TempDir()
	res := run(t, nil, "--project-dir", dir, "-p", project, "backup", "verify", file)
	if res.code != 0 || !strings.Contains(res.stdout, "0 keys and 9 that Redis drops on load") {
		t.Fatalf("verify: exit %d\n%s\n%s", res.code, res.stdout, res.stderr)
	}
	res = run(t, nil, "--project-dir", dir, "-p", project, "restore", "redis", file, "--yes", "-o", "json")
	var rr backup.RestoreResult
	if res.code != 0 || json.Unmarshal([]byte(res.stdout), &rr) != nil || rr.Keys != 0 {
		t.Fatalf("restore: exit %d\n%s\n%s", res.code, res.stdout, res.stderr)
	}
	if n := keyCount(t, startedRedis(t, cli, project)); n != 0 {
		t.Fatalf("after restore: %d keys", n)
	}
}
