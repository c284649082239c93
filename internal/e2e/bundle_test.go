package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"filippo.io/age"
	"github.com/moby/moby/client"

	"github.com/difyctl/difyctl/backup/bundle"
	"github.com/difyctl/difyctl/envgen"
	"github.com/difyctl/difyctl/internal/testenv"
)

var bundleServices = []string{"db_postgres", "redis", "api", "plugin_daemon"}

// bundleProject is a deployment under test.
type bundleProject struct {
	dir, name string
}

func (p bundleProject) args(a ...string) []string {
	return append([]string{"--project-dir", p.dir, "-p", p.name}, a...)
}

func (p bundleProject) container(svc string) string { return p.name + "-" + svc + "-1" }

// upBundleProject brings up project A with data in every part: tables
// (one with large objects), files in storage and the plugin directory,
// Redis keys.
func upBundleProject(t *testing.T, cli *client.Client) bundleProject {
	t.Helper()
	p := bundleProject{dir: t.TempDir(), name: testenv.ProjectName(t, cli)}
	if err := os.WriteFile(filepath.Join(p.dir, "docker-compose.override.yaml"), []byte(testenv.BundleOverride("db_postgres")), 0o644); err != nil {
		t.Fatal(err)
	}
	if r := runWithin(t, 8*time.Minute, p.args(append([]string{"up", "--progress", "plain", "--wait-timeout", "300s"}, bundleServices...)...)...); r.code != 0 {
		t.Fatalf("up: exit %d\n%s", r.code, r.stderr)
	}
	psql(t, cli, p, `CREATE EXTENSION IF NOT EXISTS "uuid-ossp";
CREATE TABLE accounts (id uuid PRIMARY KEY DEFAULT uuid_generate_v4(), email text NOT NULL, created timestamptz DEFAULT now());
INSERT INTO accounts (email) SELECT 'user' || g || '@example.com' FROM generate_series(1, 2000) g;
CREATE TABLE messages (id bigserial PRIMARY KEY, account uuid REFERENCES accounts(id), body text, meta jsonb);
INSERT INTO messages (account, body, meta) SELECT (SELECT id FROM accounts ORDER BY email LIMIT 1), repeat(md5(g::text), 20), jsonb_build_object('n', g) FROM generate_series(1, 20000) g;
CREATE TABLE uploads (id int PRIMARY KEY, blob oid, data bytea);
INSERT INTO uploads SELECT g, lo_from_bytea(0, decode(repeat(md5(g::text), 200), 'hex')), decode(md5(g::text), 'hex') FROM generate_series(1, 25) g;`)
	storage := filepath.Join(p.dir, "volumes", "app", "storage")
	writeTree(t, filepath.Join(storage, "upload_files", "tenant-1"), 30)
	writeTree(t, filepath.Join(storage, "privkeys", "tenant-1"), 2)
	writeTree(t, filepath.Join(p.dir, "volumes", "plugin_daemon", "cwd", "langgenius", "openai"), 10)
	redisEval(t, cli, p, "for i=1,1500 do redis.call('SET', 'k'..i, string.rep('v', 50)..i) end redis.call('HSET', 'h', 'a', '1', 'b', '2') return 1")
	return p
}

func psql(t *testing.T, cli *client.Client, p bundleProject, sql string) string {
	t.Helper()
	return dbQuery(t, cli, p.container("db_postgres"), nil, "psql", "-v", "ON_ERROR_STOP=1", "-U", "postgres", "-d", "dify", "-tAc", sql)
}

func redisEval(t *testing.T, cli *client.Client, p bundleProject, script string) string {
	t.Helper()
	return dbQuery(t, cli, p.container("redis"), nil, "redis-cli", "EVAL", script, "0")
}

// writeTree writes n files of random sizes (a few bytes to 300 KiB) under dir.
func writeTree(t *testing.T, dir string, n int) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < n; i++ {
		size := []int{7, 1 << 10, 40 << 10, 300 << 10}[i%4] + i
		b := make([]byte, size)
		rand.Read(b)
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("file-%03d.bin", i)), b, 0o640); err != nil {
			t.Fatal(err)
		}
	}
}

// state is what the comparison covers: per table, the row count and a
// checksum of every row; the large objects' contents; the SHA-256 of every
// file of storage and the plugin directory; Redis's keys and values.
type state struct {
	Tables map[string]string
	LOs    string
	Files  map[string]string
	Redis  string
}

func snapshot(t *testing.T, cli *client.Client, p bundleProject) state {
	t.Helper()
	s := state{Tables: map[string]string{}, Files: map[string]string{}}
	for _, tbl := range []string{"accounts", "messages", "uploads"} {
		s.Tables[tbl] = psql(t, cli, p, fmt.Sprintf("SELECT count(*) || ' ' || md5(coalesce(string_agg(x::text, ',' ORDER BY x::text), '')) FROM %s x", tbl))
	}
	s.LOs = psql(t, cli, p, "SELECT count(*) || ' ' || md5(coalesce(string_agg(md5(lo_get(oid)), ',' ORDER BY oid), '')) FROM pg_largeobject_metadata")
	s.Files, s.Redis = filesAndRedis(t, cli, p)
	return s
}

// filesAndRedis is the SHA-256 of every file of storage and the plugin
// directory, and Redis's keys and values, of project p.
func filesAndRedis(t *testing.T, cli *client.Client, p bundleProject) (map[string]string, string) {
	t.Helper()
	files := map[string]string{}
	for _, sub := range []string{"app/storage", "plugin_daemon"} {
		root := filepath.Join(p.dir, "volumes", sub)
		filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if err != nil || !d.Type().IsRegular() {
				return err
			}
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			rel, _ := filepath.Rel(root, path)
			sum := sha256.Sum256(b)
			files[sub+"/"+rel] = hex.EncodeToString(sum[:])
			return nil
		})
	}
	return files, redisEval(t, cli, p, `local ks = redis.call('KEYS', '*') table.sort(ks) local acc = {} for _, k in ipairs(ks) do local ty = redis.call('TYPE', k)['ok'] if ty == 'string' then acc[#acc+1] = k..'='..redis.call('GET', k) else acc[#acc+1] = k..'='..table.concat(redis.call('HGETALL', k), ',') end end return #ks..' '..redis.sha1hex(table.concat(acc, ';'))`)
}

func sameState(t *testing.T, what string, got, want state) {
	t.Helper()
	var keys int
	fmt.Sscanf(want.Redis, "%d", &keys)
	if len(want.Files) < 40 || keys < 1501 || !strings.HasPrefix(want.LOs, "25 ") {
		t.Fatalf("the source holds less than the test wrote: %d files, redis %s, large objects %s", len(want.Files), want.Redis, want.LOs)
	}
	for tbl, w := range want.Tables {
		if got.Tables[tbl] != w {
			t.Errorf("%s: table %s: %q, want %q", what, tbl, got.Tables[tbl], w)
		}
	}
	if got.LOs != want.LOs {
		t.Errorf("%s: large objects %q, want %q", what, got.LOs, want.LOs)
	}
	if got.Redis != want.Redis {
		t.Errorf("%s: redis %q, want %q", what, got.Redis, want.Redis)
	}
	var missing []string
	for f, w := range want.Files {
		if got.Files[f] != w {
			missing = append(missing, f)
		}
	}
	for f := range got.Files {
		if _, ok := want.Files[f]; !ok && !strings.HasSuffix(f, ".init_permissions") {
			missing = append(missing, "extra "+f)
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Errorf("%s: files differ: %v", what, missing)
	}
}

func backupAll(t *testing.T, p bundleProject, extra ...string) bundle.Result {
	t.Helper()
	r := runWithin(t, 10*time.Minute, p.args(append([]string{"backup", "all", "-o", "json"}, extra...)...)...)
	if r.code != 0 {
		t.Fatalf("backup all: exit %d\n%s", r.code, r.stderr)
	}
	var res bundle.Result
	if err := json.Unmarshal([]byte(r.stdout), &res); err != nil {
		t.Fatalf("%v\n%s", err, r.stdout)
	}
	return res
}

func TestBundleMigrateToNewProject(t *testing.T) {
	t.Parallel() // own project, backup directory and data; no stand-in names: the package stays within its time
	cli := testenv.Fixtures(t)
	a := upBundleProject(t, cli)
	before := snapshot(t, cli, a)

	res := backupAll(t, a)
	m := res.Manifest
	names := map[string]bundle.Part{}
	for _, p := range m.Parts {
		names[p.Name] = p
	}
	for _, want := range []string{"database", "redis", "files/api/app/api/storage", "files/plugin_daemon/app/storage", "config"} {
		if _, ok := names[want]; !ok {
			t.Fatalf("the bundle has no part %s: %+v", want, m.Parts)
		}
	}
	if db := names["database"]; db.Counts["tables"] != 3 || db.Counts["largeObjects"] != 25 || db.Method != bundle.MethodPgDump {
		t.Fatalf("database part: %+v", db)
	}
	if r := names["redis"]; r.Counts["keys"] != 1501 {
		t.Fatalf("redis part: %+v", r)
	}
	if m.DBType != "postgresql" || m.Project != a.name || m.DifyVersion == "" {
		t.Fatalf("manifest: %+v", m)
	}
	// Modes: the bundle holds every secret.
	if st, err := os.Stat(res.Path); err != nil || st.Mode().Perm() != 0o700 {
		t.Fatalf("bundle directory: %v %v", st.Mode(), err)
	}
	des, _ := os.ReadDir(res.Path)
	for _, de := range des {
		if info, _ := de.Info(); info.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v", de.Name(), info.Mode())
		}
	}
	// No secret on our output.
	env, _ := os.ReadFile(filepath.Join(a.dir, ".env"))
	for _, l := range strings.Split(string(env), "\n") {
		if k, v, ok := strings.Cut(l, "="); ok && strings.HasSuffix(k, "PASSWORD") && len(v) >= 16 {
			b, _ := json.Marshal(res)
			if bytes.Contains(b, []byte(v)) {
				t.Fatalf("%s's value is in the result", k)
			}
		}
	}

	// Into project B: another directory (not yet there), another name.
	b := bundleProject{dir: filepath.Join(t.TempDir(), "new-host"), name: testenv.ProjectName(t, cli)}
	r := run(t, nil, b.args("restore", "all", res.Path, "--yes")...)
	if r.code != 0 {
		t.Fatalf("restore all into %s: exit %d\n%s\n%s", b.name, r.code, r.stdout, r.stderr)
	}
	for _, want := range []string{"new deployment", "25 largeObjects", "database", "files/api/app/api/storage", "1501 keys"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("restore output lacks %q:\n%s", want, r.stdout)
		}
	}
	// Redis read the dump put in its data directory before its first
	// start (no safety backup, no stop and start of a running Redis).
	if !strings.Contains(r.stderr, "loaded the dump on its first start: 1501 keys") {
		t.Errorf("Redis of B was not restored by its first start:\n%s", r.stderr)
	}
	sameState(t, "project B", snapshot(t, cli, b), before)
	benv, _ := os.ReadFile(filepath.Join(b.dir, ".env"))
	if !bytes.Contains(benv, []byte("COMPOSE_PROJECT_NAME="+b.name)) {
		t.Errorf("B's .env does not name B")
	}
	if st, _ := os.Stat(filepath.Join(b.dir, ".env")); st.Mode().Perm() != 0o600 {
		t.Errorf("B's .env mode %v", st.Mode())
	}
	for _, svc := range bundleServices {
		ins, err := cli.ContainerInspect(context.Background(), b.container(svc), client.ContainerInspectOptions{})
		if err != nil || !ins.Container.State.Running {
			t.Errorf("%s of B is not running: %v", svc, err)
		}
	}
	// A untouched.
	sameState(t, "project A after", snapshot(t, cli, a), before)

	// backup verify and list cover bundles.
	if r := run(t, nil, a.args("backup", "verify", res.Path)...); r.code != 0 || !strings.Contains(r.stdout, "ok") {
		t.Errorf("backup verify of the bundle: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	if r := run(t, nil, a.args("backup", "list", "--backup-dir", filepath.Dir(res.Path))...); r.code != 0 || !strings.Contains(r.stdout, filepath.Base(res.Path)) {
		t.Errorf("backup list does not show the bundle: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
}

// TestBundleEncryptedStream pipes an encrypted bundle from project A's
// backup straight into a restore as project C.
func TestBundleEncryptedStream(t *testing.T) {
	t.Parallel() // own project, backup directory and data; no stand-in names: the package stays within its time
	cli := testenv.Fixtures(t)
	a := upBundleProject(t, cli)
	before := snapshot(t, cli, a)
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	idFile := filepath.Join(t.TempDir(), "identity.txt")
	if err := os.WriteFile(idFile, []byte(id.String()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	// A bundle on disk, encrypted: verify checks the stored bytes without the
	// identity, restore refuses without it.
	res := backupAll(t, a, "--encrypt-to", id.Recipient().String())
	for _, p := range res.Manifest.Parts {
		if p.Encryption != "age" || !strings.HasSuffix(p.File, ".age") {
			t.Fatalf("part %s is not encrypted: %+v", p.Name, p)
		}
		raw, _ := os.ReadFile(filepath.Join(res.Path, p.File))
		if !bytes.HasPrefix(raw, []byte("age-encryption.org/v1")) {
			t.Fatalf("part %s does not start with the age header", p.Name)
		}
	}
	c0 := bundleProject{dir: filepath.Join(t.TempDir(), "c0"), name: testenv.ProjectName(t, cli)}
	if r := run(t, nil, c0.args("restore", "all", res.Path, "--yes")...); r.code == 0 || !strings.Contains(r.stderr, "--identity") {
		t.Fatalf("restore of an encrypted bundle without --identity: exit %d\n%s", r.code, r.stderr)
	}

	c := bundleProject{dir: filepath.Join(t.TempDir(), "c"), name: testenv.ProjectName(t, cli)}
	bin := testenv.Difyctl(t)
	backupCmd := exec.Command(bin, a.args("backup", "all", "--encrypt-to", id.Recipient().String(), "--output", "-")...)
	restoreCmd := exec.Command(bin, c.args("restore", "all", "-", "--identity", idFile, "--yes")...)
	pipe, err := backupCmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	restoreCmd.Stdin = pipe
	var bErr, rOut, rErr bytes.Buffer
	backupCmd.Stderr = &bErr
	restoreCmd.Stdout, restoreCmd.Stderr = &rOut, &rErr
	if err := backupCmd.Start(); err != nil {
		t.Fatal(err)
	}
	if err := restoreCmd.Run(); err != nil {
		t.Fatalf("restore all - : %v\n%s\n%s\nbackup: %s", err, rOut.String(), rErr.String(), bErr.String())
	}
	if err := backupCmd.Wait(); err != nil {
		t.Fatalf("backup all --output - : %v\n%s", err, bErr.String())
	}
	sameState(t, "project C (through the stream)", snapshot(t, cli, c), before)
	sameState(t, "project A after", snapshot(t, cli, a), before)
	// The stream's temporary bundle is gone from A's backup directory.
	des, _ := os.ReadDir(filepath.Join(a.dir, "backups", "all"))
	for _, de := range des {
		if strings.Contains(de.Name(), "stream") {
			t.Errorf("left in the backup directory: %s", de.Name())
		}
	}
}

// TestBundleFaults: a backup killed with SIGKILL leaves no bundle under a
// final name and the next run works; a corrupted part is refused by verify
// and restore; a restore that fails after the stop (the database refuses
// the dump) rolls back and the deployment serves its previous data.
func TestBundleFaults(t *testing.T) {
	t.Parallel() // own project, backup directory and data; no stand-in names: the package stays within its time
	cli := testenv.Fixtures(t)
	a := upBundleProject(t, cli)
	bdir := filepath.Join(a.dir, "backups", "all")

	// SIGKILL while the parts stream.
	first := backupAll(t, a)
	cmd := exec.Command(testenv.Difyctl(t), a.args("backup", "all")...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(2 * time.Minute)
	killed := false
	for time.Now().Before(deadline) && !killed {
		des, _ := os.ReadDir(bdir)
		for _, de := range des {
			if strings.HasPrefix(de.Name(), ".bundle-") {
				parts, _ := os.ReadDir(filepath.Join(bdir, de.Name()))
				if len(parts) > 0 {
					cmd.Process.Signal(syscall.SIGKILL)
					killed = true
				}
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	cmd.Wait()
	if !killed {
		t.Fatal("the backup wrote no part within 2 minutes")
	}
	own, _, err := bundle.Own(bdir, a.name)
	if err != nil || len(own) != 1 || own[0].Path != first.Path {
		t.Fatalf("after the kill, bundles: %+v %v (want only %s)", own, err, first.Path)
	}
	second := backupAll(t, a)
	if len(second.Cleaned) != 1 {
		t.Errorf("the next run did not remove the killed run's directory: %+v", second.Cleaned)
	}
	if _, err := bundle.Verify(first.Path, nil); err != nil {
		t.Errorf("the older bundle: %v", err)
	}

	// A corrupted part: refused by verify and by restore, nothing changed.
	corrupt := filepath.Join(t.TempDir(), "corrupt")
	if err := os.CopyFS(corrupt, os.DirFS(second.Path)); err != nil {
		t.Fatal(err)
	}
	os.Chmod(corrupt, 0o700)
	part := filepath.Join(corrupt, second.Manifest.Parts[len(second.Manifest.Parts)-1].File)
	f, err := os.OpenFile(part, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	one := make([]byte, 1)
	f.ReadAt(one, 100)
	one[0] ^= 0xff
	f.WriteAt(one, 100)
	f.Close()
	if r := run(t, nil, a.args("backup", "verify", corrupt)...); r.code == 0 {
		t.Errorf("verify accepted a corrupted part:\n%s", r.stdout)
	}
	beforeCorrupt := snapshot(t, cli, a)
	if r := run(t, nil, a.args("restore", "all", corrupt, "--yes")...); r.code == 0 || !strings.Contains(r.stderr, "failed verification") {
		t.Errorf("restore of a corrupted bundle: exit %d\n%s", r.code, r.stderr)
	}
	sameState(t, "after the refused restore", snapshot(t, cli, a), beforeCorrupt)

	// A restore the database refuses: the bundle's tables belong to a role
	// that no longer exists when it is restored.
	psql(t, cli, a, "CREATE ROLE bundle_owner; CREATE TABLE owned (x int); ALTER TABLE owned OWNER TO bundle_owner;")
	withRole := backupAll(t, a)
	psql(t, cli, a, "DROP TABLE owned; DROP ROLE bundle_owner; INSERT INTO accounts (email) VALUES ('after-the-bundle@example.com');")
	redisEval(t, cli, a, "redis.call('SET', 'after-the-bundle', '1') return 1")
	writeTree(t, filepath.Join(a.dir, "volumes", "app", "storage", "later"), 2)
	current := snapshot(t, cli, a)
	r := run(t, nil, a.args("restore", "all", withRole.Path, "--yes")...)
	if r.code == 0 || !strings.Contains(r.stderr, "rolled back") || !strings.Contains(r.stderr, "bundle_owner") {
		t.Fatalf("restore that the database refuses: exit %d\n%s", r.code, r.stderr)
	}
	sameState(t, "after the rollback", snapshot(t, cli, a), current)
	if got := psql(t, cli, a, "SELECT count(*) FROM accounts WHERE email = 'after-the-bundle@example.com'"); got != "1" {
		t.Errorf("the row written after the bundle: %s", got)
	}
	for _, svc := range bundleServices {
		ins, err := cli.ContainerInspect(context.Background(), a.container(svc), client.ContainerInspectOptions{})
		if err != nil || !ins.Container.State.Running {
			t.Errorf("%s is not running after the rollback: %v", svc, err)
		}
	}
}

// mountTmpfs mounts a tmpfs of size bytes at a new directory (unmounted in
// t.Cleanup, before the directory is removed) and returns the directory and
// a function that resizes the file system.
func mountTmpfs(t *testing.T, size int64) (string, func(int64)) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "tmpfs")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mount("difyctl-test-full", dir, "tmpfs", 0, fmt.Sprintf("size=%d,mode=0700", size)); err != nil {
		t.Fatalf("mounting a tmpfs at %s (the full-disk test needs root): %v", dir, err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(dir, syscall.MNT_DETACH); err != nil {
			t.Errorf("unmounting the tmpfs %s: %v", dir, err)
		}
	})
	resize := func(n int64) {
		t.Helper()
		if err := syscall.Mount("difyctl-test-full", dir, "tmpfs", syscall.MS_REMOUNT, fmt.Sprintf("size=%d", n)); err != nil {
			t.Fatalf("resizing the tmpfs at %s to %d bytes: %v", dir, n, err)
		}
	}
	return dir, resize
}

// usedBytes is what the file system holding dir uses.
func usedBytes(t *testing.T, dir string) int64 {
	t.Helper()
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	return int64(st.Blocks-st.Bfree) * st.Bsize
}

var neededRe = regexp.MustCompile(`needs about ([0-9.]+) (B|KiB|MiB|GiB)`)

// needed is the size the estimate's refusal names, in bytes.
func needed(t *testing.T, stderr string) int64 {
	t.Helper()
	m := neededRe.FindStringSubmatch(stderr)
	if m == nil {
		t.Fatalf("the refusal names no size needed:\n%s", stderr)
	}
	f, _ := strconv.ParseFloat(m[1], 64)
	unit := map[string]float64{"B": 1, "KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30}[m[2]]
	return int64(f * unit)
}

// bundleDirState is what a backup directory holds: the bundles by name,
// and whatever else is not the lock or the status file.
func bundleDirState(t *testing.T, dir string) (bundles, others []string) {
	t.Helper()
	des, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, de := range des {
		switch {
		case strings.HasPrefix(de.Name(), "bundle_"):
			bundles = append(bundles, de.Name())
		case strings.HasSuffix(de.Name(), ".lock") || strings.Contains(de.Name(), "status"):
		default:
			others = append(others, de.Name())
		}
	}
	return bundles, others
}

// TestBundleFullDisk: the backup directory is a small tmpfs. A bundle that
// does not fit by the estimate is refused before anything is written; one
// that passes the estimate and fills the disk while its parts stream fails
// naming the part and the space needed, leaves nothing half-written under
// any name, and the older bundle stays intact; the next run, with room,
// works.
func TestBundleFullDisk(t *testing.T) {
	t.Parallel() // own project, backup directory and data; no stand-in names: the package stays within its time
	cli := testenv.Fixtures(t)
	a := upBundleProject(t, cli)
	dir, resize := mountTmpfs(t, 1<<20)
	backupTo := func() result {
		return runWithin(t, 10*time.Minute, a.args("backup", "all", "--backup-dir", dir)...)
	}

	// 1. Refused by the estimate: 1 MiB cannot hold the bundle.
	r := backupTo()
	if r.code == 0 || !strings.Contains(r.stderr, "nothing was written") || !strings.Contains(r.stderr, dir) {
		t.Fatalf("backup all into a 1 MiB tmpfs: exit %d\n%s", r.code, r.stderr)
	}
	need := needed(t, r.stderr)
	if bs, others := bundleDirState(t, dir); len(bs)+len(others) > 0 {
		t.Fatalf("the refused bundle wrote %v %v", bs, others)
	}

	// 2. An older bundle, with room for it.
	resize(need + 16<<20)
	older := backupAll(t, a, "--backup-dir", dir)

	// 3. 64 MiB that compress to nothing less than 64 MiB: the dump (bytea
	// as hex, zstd) outgrows the estimate (half the database's size).
	psql(t, cli, a, `CREATE TABLE big (id int PRIMARY KEY, data bytea);
ALTER TABLE big ALTER COLUMN data SET STORAGE EXTERNAL;
INSERT INTO big SELECT g, decode(string_agg(md5(random()::text || g || ':' || h), ''), 'hex') FROM generate_series(1, 64) g, generate_series(1, 65536) h GROUP BY g;`)
	r = backupTo()
	if r.code == 0 || !strings.Contains(r.stderr, "nothing was written") {
		t.Fatalf("backup all with the big table into %d bytes: exit %d\n%s", need+16<<20, r.code, r.stderr)
	}
	need = needed(t, r.stderr)
	// Room for the estimate, not for the bundle.
	resize(usedBytes(t, dir) + need + 4<<20)
	r = backupTo()
	if r.code == 0 {
		t.Fatalf("backup all onto a disk too small for the bundle succeeded:\n%s", r.stderr)
	}
	for _, want := range []string{"no space left", "part ", "needs about", "nothing written under a bundle's name"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("the full disk's error lacks %q:\n%s", want, r.stderr)
		}
	}
	if !regexp.MustCompile(`part (database|redis|config|files/[^:]+): `).MatchString(r.stderr) {
		t.Errorf("the full disk's error names no part:\n%s", r.stderr)
	}
	bs, others := bundleDirState(t, dir)
	if len(bs) != 1 || bs[0] != filepath.Base(older.Path) || len(others) > 0 {
		t.Fatalf("after the full disk the backup directory holds bundles %v and %v; want only %s", bs, others, filepath.Base(older.Path))
	}
	if _, err := bundle.Verify(older.Path, nil); err != nil {
		t.Errorf("the older bundle after the full disk: %v", err)
	}

	// 4. With room again, the next run works and the older bundle is kept.
	resize(usedBytes(t, dir) + 4*need + 64<<20)
	next := backupAll(t, a, "--backup-dir", dir)
	if db, _ := next.Manifest.Part("database"); db == nil || db.RawSize < 64<<20 {
		t.Errorf("the next bundle's database part: %+v", db)
	}
	if bs, _ := bundleDirState(t, dir); len(bs) != 2 {
		t.Errorf("bundles after the next run: %v", bs)
	}
}

var bundleServicesMySQL = []string{"db_mysql", "redis", "api", "plugin_daemon"}

// mysqlQuery runs sql in project p's dify database as root (the password
// from p's .env travels in the exec's environment).
func mysqlQuery(t *testing.T, cli *client.Client, p bundleProject, sql string) string {
	t.Helper()
	env, err := envgen.ReadFile(filepath.Join(p.dir, ".env"))
	if err != nil {
		t.Fatal(err)
	}
	pw, _ := env.Get("DB_PASSWORD")
	db, _ := env.Get("DB_DATABASE")
	if db == "" {
		db = "dify"
	}
	return dbQuery(t, cli, p.container("db_mysql"), []string{"MYSQL_PWD=" + pw}, "mysql", "-uroot", "-N", "-e", "SET SESSION group_concat_max_len = 1073741824; "+sql, db)
}

// snapshotMySQL is snapshot for a project on MariaDB: per table the row
// count and an MD5 of every row, the blobs' count and contents.
func snapshotMySQL(t *testing.T, cli *client.Client, p bundleProject) state {
	t.Helper()
	s := state{Tables: map[string]string{}}
	for tbl, cols := range map[string]string{"accounts": "id, email, created", "messages": "id, account, body, meta", "uploads": "id, HEX(data)"} {
		s.Tables[tbl] = mysqlQuery(t, cli, p, fmt.Sprintf("SELECT CONCAT(COUNT(*), ' ', MD5(COALESCE(GROUP_CONCAT(CONCAT_WS('|', %s) ORDER BY id SEPARATOR ','), ''))) FROM %s", cols, tbl))
	}
	s.LOs = mysqlQuery(t, cli, p, "SELECT CONCAT(COUNT(*), ' ', MD5(COALESCE(GROUP_CONCAT(MD5(data) ORDER BY id), ''))) FROM uploads")
	s.Files, s.Redis = filesAndRedis(t, cli, p)
	return s
}

// TestBundleMySQLMigrateToNewProject: a project with DB_TYPE=mysql on
// Dify's db_mysql service (the MariaDB fixture) → backup all (mysqldump in
// the container) → restore all into project B in another directory under
// another name: B's tables, blobs, files and Redis equal A's.
func TestBundleMySQLMigrateToNewProject(t *testing.T) {
	t.Parallel() // own project, backup directory and data; no stand-in names: the package stays within its time
	cli := testenv.Fixtures(t)
	a := bundleProject{dir: t.TempDir(), name: testenv.ProjectName(t, cli)}
	if err := os.WriteFile(filepath.Join(a.dir, "docker-compose.override.yaml"), []byte(testenv.BundleOverride("db_mysql")), 0o644); err != nil {
		t.Fatal(err)
	}
	if r := runWithin(t, 2*time.Minute, a.args("init", "--profile", "mysql")...); r.code != 0 {
		t.Fatalf("init --profile mysql: exit %d\n%s", r.code, r.stderr)
	}
	if r := runWithin(t, 6*time.Minute, a.args(append([]string{"up", "--progress", "plain", "--wait-timeout", "300s"}, bundleServicesMySQL...)...)...); r.code != 0 {
		t.Fatalf("up: exit %d\n%s", r.code, r.stderr)
	}
	mysqlQuery(t, cli, a, `CREATE TABLE accounts (id int AUTO_INCREMENT PRIMARY KEY, email varchar(255) NOT NULL, created datetime DEFAULT '2025-01-02 03:04:05');
INSERT INTO accounts (email) SELECT CONCAT('user', seq, '@example.com') FROM seq_1_to_2000;
CREATE TABLE messages (id bigint AUTO_INCREMENT PRIMARY KEY, account int, body text, meta json, FOREIGN KEY (account) REFERENCES accounts(id));
INSERT INTO messages (account, body, meta) SELECT 1 + seq % 2000, REPEAT(MD5(seq), 20), JSON_OBJECT('n', seq) FROM seq_1_to_20000;
CREATE TABLE uploads (id int PRIMARY KEY, data longblob);
INSERT INTO uploads SELECT seq, UNHEX(REPEAT(MD5(seq), 200)) FROM seq_1_to_25;
CREATE TRIGGER accounts_lower BEFORE INSERT ON accounts FOR EACH ROW SET NEW.email = LOWER(NEW.email);`)
	storage := filepath.Join(a.dir, "volumes", "app", "storage")
	writeTree(t, filepath.Join(storage, "upload_files", "tenant-1"), 30)
	writeTree(t, filepath.Join(storage, "privkeys", "tenant-1"), 2)
	writeTree(t, filepath.Join(a.dir, "volumes", "plugin_daemon", "cwd", "langgenius", "openai"), 10)
	redisEval(t, cli, a, "for i=1,1500 do redis.call('SET', 'k'..i, string.rep('v', 50)..i) end redis.call('HSET', 'h', 'a', '1', 'b', '2') return 1")
	before := snapshotMySQL(t, cli, a)

	res := backupAll(t, a)
	m := res.Manifest
	db, ok := m.Part("database")
	if m.DBType != "mysql" || !ok || db.Method != bundle.MethodMysqldump || db.Service != "db_mysql" {
		t.Fatalf("manifest: db type %q, database part %+v", m.DBType, db)
	}
	if _, err := bundle.Verify(res.Path, nil); err != nil {
		t.Fatal(err)
	}

	b := bundleProject{dir: filepath.Join(t.TempDir(), "new-host"), name: testenv.ProjectName(t, cli)}
	r := runWithin(t, 10*time.Minute, b.args("restore", "all", res.Path, "--yes")...)
	if r.code != 0 {
		t.Fatalf("restore all into %s: exit %d\n%s\n%s", b.name, r.code, r.stdout, r.stderr)
	}
	for _, want := range []string{"new deployment", "database", "files/api/app/api/storage", "1501 keys"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("restore output lacks %q:\n%s", want, r.stdout)
		}
	}
	sameState(t, "project B", snapshotMySQL(t, cli, b), before)
	if got := mysqlQuery(t, cli, b, "SELECT COUNT(*) FROM information_schema.triggers WHERE trigger_schema = DATABASE()"); got != "1" {
		t.Errorf("B's triggers: %s, want 1", got)
	}
	for _, svc := range bundleServicesMySQL {
		ins, err := cli.ContainerInspect(context.Background(), b.container(svc), client.ContainerInspectOptions{})
		if err != nil || !ins.Container.State.Running {
			t.Errorf("%s of B is not running: %v", svc, err)
		}
	}
	sameState(t, "project A after", snapshotMySQL(t, cli, a), before)
}
