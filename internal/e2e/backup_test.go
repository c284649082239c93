package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/client"

	"github.com/difyctl/difyctl/backup"
	"github.com/difyctl/difyctl/compose"
	"github.com/difyctl/difyctl/health"
	"github.com/difyctl/difyctl/internal/testenv"
)

const redisPassword = "e2e-redis-password-0123456789"

// startRedis runs the Redis fixture as the project's "redis" service, its
// data in a named volume (or bindDir when set), and waits until healthy.
func startRedis(t *testing.T, cli *client.Client, project, bindDir string, extraArgs ...string) *backup.Redis {
	t.Helper()
	ctx := context.Background()
	m := mount.Mount{Type: mount.TypeVolume, Source: project + "_redisdata", Target: "/data"}
	if bindDir != "" {
		m = mount.Mount{Type: mount.TypeBind, Source: bindDir, Target: "/data"}
	} else if _, err := cli.VolumeCreate(ctx, client.VolumeCreateOptions{Name: m.Source, Labels: map[string]string{compose.LabelProject: project, compose.LabelVolume: "redisdata"}}); err != nil {
		t.Fatal(err)
	}
	script := `exec redis-server --requirepass "$REDISCLI_AUTH" ` + strings.Join(extraArgs, " ")
	cfg := &container.Config{
		Image: testenv.ImageRedis, Cmd: []string{"sh", "-c", script},
		Env:         []string{"REDISCLI_AUTH=" + redisPassword},
		Healthcheck: &container.HealthConfig{Test: []string{"CMD-SHELL", "redis-cli ping | grep -q PONG"}, Interval: 200 * time.Millisecond, Retries: 50},
		Labels:      map[string]string{compose.LabelProject: project, compose.LabelService: "redis", compose.LabelNumber: "1", compose.LabelOneoff: "False"},
	}
	res, err := cli.ContainerCreate(ctx, client.ContainerCreateOptions{Config: cfg, HostConfig: &container.HostConfig{Mounts: []mount.Mount{m}}, Name: project + "-redis-1"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cli.ContainerStart(ctx, res.ID, client.ContainerStartOptions{}); err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	if st, err := health.Wait(wctx, cli, res.ID, health.Healthy); err != nil {
		t.Fatalf("redis fixture: %v %+v", err, st)
	}
	r, err := backup.FindRedis(ctx, cli, project, "redis", "")
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func populate(t *testing.T, r *backup.Redis, prefix string, n int) {
	t.Helper()
	script := fmt.Sprintf("for i=1,%d do redis.call('SET', '%s'..i, string.rep('v', 100)..i) end return %d", n, prefix, n)
	if _, err := r.CLI(context.Background(), "EVAL", script, "0"); err != nil {
		t.Fatal(err)
	}
}

func keyCount(t *testing.T, r *backup.Redis) int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	n, err := r.KeyCount(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestBackupAndRestoreRedis(t *testing.T) {
	cli := testenv.Fixtures(t)
	project := testenv.ProjectName(t, cli)
	r := startRedis(t, cli, project, "")
	populate(t, r, "k", 1000)

	dir := t.TempDir()
	bdir := filepath.Join(dir, "backups", "redis")
	args := []string{"--project-dir", dir, "-p", project}

	res := run(t, nil, append(args, "backup", "redis", "-o", "json")...)
	if res.code != 0 {
		t.Fatalf("backup: exit %d\n%s", res.code, res.stderr)
	}
	var br backup.Result
	if err := json.Unmarshal([]byte(res.stdout), &br); err != nil {
		t.Fatalf("%v\n%s", err, res.stdout)
	}
	if br.Manifest.RDBKeys != 1000 || br.Manifest.Keys != 1000 || br.Manifest.Mode != "bgsave" || br.Manifest.RDBVersion < 9 {
		t.Fatalf("manifest %+v", br.Manifest)
	}
	st, _ := os.Stat(br.Path)
	dst, _ := os.Stat(bdir)
	if st.Mode().Perm() != 0o600 || dst.Mode().Perm() != 0o700 || !strings.HasPrefix(filepath.Base(br.Path), "redis_") {
		t.Fatalf("modes %v %v, name %s", st.Mode(), dst.Mode(), br.Path)
	}
	// The password never reached a command line: not in the exec's Cmd, not in our output.
	if strings.Contains(res.stdout+res.stderr, redisPassword) {
		t.Fatal("password printed")
	}

	// SAVE mode and --quiet: nothing on stdout or stderr.
	res = run(t, nil, append(args, "backup", "redis", "--mode", "save", "--quiet")...)
	if res.code != 0 || res.stdout != "" || res.stderr != "" {
		t.Fatalf("quiet save: exit %d %q %q", res.code, res.stdout, res.stderr)
	}

	// A second run while the lock is held exits 4 and names the holder.
	unlock, err := backup.Lock(bdir, project)
	if err != nil {
		t.Fatal(err)
	}
	res = run(t, nil, append(args, "backup", "redis")...)
	unlock()
	if res.code != 4 || !strings.Contains(res.stderr, fmt.Sprintf("process %d", os.Getpid())) {
		t.Fatalf("locked: exit %d %s", res.code, res.stderr)
	}

	if res = run(t, nil, append(args, "backup", "verify", "all")...); res.code != 0 || strings.Count(res.stdout, "ok ") != 2 {
		t.Fatalf("verify: %d %s %s", res.code, res.stdout, res.stderr)
	}

	// Change the data, then restore the first backup.
	if _, err := r.CLI(context.Background(), "FLUSHALL"); err != nil {
		t.Fatal(err)
	}
	populate(t, r, "other", 10)
	res = run(t, nil, append(args, "restore", "redis", br.Path, "--yes")...)
	if res.code != 0 {
		t.Fatalf("restore: exit %d\n%s", res.code, res.stderr)
	}
	r = startedRedis(t, cli, project)
	if n := keyCount(t, r); n != 1000 {
		t.Fatalf("after restore: %d keys", n)
	}
	if v, _ := r.CLI(context.Background(), "EXISTS", "other1"); v != "0" {
		t.Fatal("data written after the backup survived the restore")
	}
	// The safety copy of the replaced data is a verified backup of its own.
	entries, _ := backup.List(bdir)
	if len(entries) != 3 || entries[2].Manifest == nil || entries[2].Manifest.RDBKeys != 10 || entries[2].Manifest.Reason == "" {
		t.Fatalf("safety copy: %+v", entries)
	}

	// A damaged file is refused and Redis keeps its data.
	bad := filepath.Join(bdir, "redis_20000101_000000.rdb")
	b, _ := os.ReadFile(br.Path)
	b[len(b)/2] ^= 0xff
	os.WriteFile(bad, b, 0o600)
	res = run(t, nil, append(args, "restore", "redis", bad, "--yes")...)
	if res.code != 1 || !strings.Contains(res.stderr, "refusing") {
		t.Fatalf("damaged restore: exit %d %s", res.code, res.stderr)
	}
	if n := keyCount(t, startedRedis(t, cli, project)); n != 1000 {
		t.Fatalf("damaged restore changed data: %d keys", n)
	}
	if res = run(t, nil, append(args, "backup", "verify", bad)...); res.code != 1 {
		t.Fatalf("verify of a damaged file: exit %d", res.code)
	}
}

// startedRedis finds the project's Redis again (its container restarted).
func startedRedis(t *testing.T, cli *client.Client, project string) *backup.Redis {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	r, err := backup.FindRedis(ctx, cli, project, "redis", "")
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestRestoreWithAOFOnBindMount(t *testing.T) {
	cli := testenv.Fixtures(t)
	project := testenv.ProjectName(t, cli)
	data := t.TempDir()
	os.Chmod(data, 0o777)
	r := startRedis(t, cli, project, data, "--appendonly", "yes")
	populate(t, r, "a", 200)
	dir := t.TempDir()
	args := []string{"--project-dir", dir, "-p", project}
	if res := run(t, nil, append(args, "backup", "redis")...); res.code != 0 {
		t.Fatalf("backup: %s", res.stderr)
	}
	populate(t, r, "b", 50) // lands in the AOF, which would win at start-up
	res := run(t, nil, append(args, "restore", "redis", "latest", "--yes")...)
	if res.code != 0 {
		t.Fatalf("restore: exit %d\n%s", res.code, res.stderr)
	}
	// latest is the backup taken just now by hand... the safety copy is newer; restore took
	// the newest at the time it was asked, i.e. the first backup.
	if n := keyCount(t, startedRedis(t, cli, project)); n != 200 {
		t.Fatalf("after restore with AOF: %d keys, want 200", n)
	}
	aside, _ := filepath.Glob(filepath.Join(data, "*.difyctl-aside-*"))
	if len(aside) != 1 {
		t.Fatalf("AOF not moved aside: %v", aside)
	}
}

func TestBackupToFullDiskKeepsOlderBackups(t *testing.T) {
	cli := testenv.Fixtures(t)
	project := testenv.ProjectName(t, cli)
	r := startRedis(t, cli, project, "")
	populate(t, r, "k", 300)
	bdir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=256k,mode=0700", "tmpfs", bdir).CombinedOutput(); err != nil {
		if testenv.InCI() {
			t.Fatalf("mounting a tmpfs (needs root): %v %s", err, out)
		}
		t.Skipf("cannot mount a tmpfs here: %v %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", bdir).Run() })
	args := []string{"--project-dir", t.TempDir(), "-p", project, "backup", "redis", "--backup-dir", bdir}
	if res := run(t, nil, args...); res.code != 0 {
		t.Fatalf("first backup: %s", res.stderr)
	}
	before, _ := backup.List(bdir)
	// Fill the tmpfs, then make the next dump bigger than what is left.
	exec.Command("dd", "if=/dev/zero", "of="+filepath.Join(bdir, "filler"), "bs=4k", "count=1000").Run()
	populate(t, r, "more", 2000)
	res := run(t, nil, args...)
	if res.code == 0 || !strings.Contains(res.stderr, "no space left") {
		t.Fatalf("backup to a full disk: exit %d %s", res.code, res.stderr)
	}
	after, _ := backup.List(bdir)
	if len(after) != len(before) {
		t.Fatalf("backups before %d, after %d", len(before), len(after))
	}
	if _, _, err := backup.VerifyFile(before[0].Path); err != nil {
		t.Fatalf("older backup damaged: %v", err)
	}
	left, _ := filepath.Glob(filepath.Join(bdir, ".*tmp*"))
	if len(left) != 0 {
		t.Fatalf("temporary files left: %v", left)
	}
}

// Rotation on real files after a real backup: the project's old backups
// go, the newest keep-min stay, files that are not the project's (another
// project's manifest, no manifest, other names) are never touched.
func TestBackupRotation(t *testing.T) {
	cli := testenv.Fixtures(t)
	project := testenv.ProjectName(t, cli)
	r := startRedis(t, cli, project, "")
	populate(t, r, "k", 10)
	bdir := t.TempDir()
	old := []string{"redis_20200101_000000.rdb", "redis_20200102_000000.rdb", "redis_20200103_000000.rdb"}
	foreign := []string{"redis_20191231_000000.rdb", "redis_20191230_000000.rdb"}
	for _, n := range append(append(old, foreign...), "notes.txt", "dump.rdb") {
		os.WriteFile(filepath.Join(bdir, n), []byte("x"), 0o600)
	}
	for _, n := range old {
		os.WriteFile(filepath.Join(bdir, n+".json"), []byte(`{"project":"`+project+`"}`), 0o600)
	}
	os.WriteFile(filepath.Join(bdir, foreign[0]+".json"), []byte(`{"project":"another"}`), 0o600) // foreign[1] has none
	res := run(t, nil, "-p", project, "--project-dir", t.TempDir(), "backup", "redis", "--backup-dir", bdir, "--retention-days", "7", "--keep-min", "2")
	if res.code != 0 {
		t.Fatalf("backup: %s", res.stderr)
	}
	var left []string
	des, _ := os.ReadDir(bdir)
	for _, d := range des {
		left = append(left, d.Name())
	}
	got := strings.Join(left, " ")
	for _, gone := range []string{old[0], old[0] + ".json", old[1]} {
		if strings.Contains(got, gone+" ") || strings.HasSuffix(got, gone) {
			t.Errorf("%s not rotated out: %s", gone, got)
		}
	}
	for _, kept := range []string{old[2], old[2] + ".json", foreign[0], foreign[0] + ".json", foreign[1], "notes.txt", "dump.rdb"} {
		if !strings.Contains(got, kept) {
			t.Errorf("%s removed: %s", kept, got)
		}
	}
	if !strings.Contains(res.stderr, "rotated out: "+old[0]+", "+old[1]) {
		t.Errorf("rotation not reported: %s", res.stderr)
	}
}
