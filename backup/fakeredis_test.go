package backup

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"

	"github.com/difyctl/difyctl/backup/rdb"
	"github.com/difyctl/difyctl/compose"
	"github.com/difyctl/difyctl/internal/engine/enginefake"
)

// rdbOf is an RDB v9 holding n string keys named prefix0..prefixN-1, with
// its CRC-64.
func rdbOf(prefix string, n int) []byte {
	b := []byte("REDIS0009\xfe\x00")
	for i := 0; i < n; i++ {
		k := prefix + strconv.Itoa(i)
		b = append(b, 0x00, byte(len(k)))
		b = append(b, k...)
		b = append(b, 1, 'v')
	}
	b = append(b, 0xff)
	return binary.LittleEndian.AppendUint64(b, rdb.CRC64(b))
}

// keysOf is how many keys Redis loads from an RDB (-1: it refuses it).
func keysOf(b []byte) int64 {
	info, err := rdb.Verify(bytes.NewReader(b))
	if err != nil {
		return -1
	}
	return info.Keys
}

// fakeRedis is a Redis container in the fake engine: redis-cli answered
// from its state, its data loaded from /data/dump.rdb (or the AOF base
// with appendonly on) when it starts, BGSAVE writing the dump, and the
// restore's helper containers doing what their scripts say.
type fakeRedis struct {
	t        *testing.T
	e        *enginefake.Engine
	ID       string
	project  string
	mu       sync.Mutex
	keys     int64
	saves    int
	aof      bool
	lie      int64 // added to the key count INFO reports
	lieNext  int64 // lie from the next start on, for one run
	helpers  int
	noHelper bool // helpers do nothing (a script that changed nothing)
}

const fakeImage = "difyctl-test/redis:fake"

func newFakeRedis(t *testing.T, aof bool) *fakeRedis {
	t.Helper()
	e := enginefake.New()
	e.AddImage(fakeImage, enginefake.Image{ID: "sha256:fakeredis"})
	e.Behave("", enginefake.Behaviour{Exit: enginefake.Exit(0)}) // helper containers finish at once
	f := &fakeRedis{t: t, e: e, project: "proj", aof: aof}
	res, err := e.ContainerCreate(context.Background(), client.ContainerCreateOptions{Name: "proj-redis-1",
		Config: &container.Config{Image: fakeImage, Env: []string{"REDISCLI_AUTH=pw"},
			Labels: map[string]string{compose.LabelProject: "proj", compose.LabelService: "redis"}},
		HostConfig: &container.HostConfig{}})
	if err != nil {
		t.Fatal(err)
	}
	f.ID = res.ID
	e.HandleExec(f.exec)
	e.OnStart(f.started)
	f.setData(rdbOf("old", 5))
	if _, err := e.ContainerStart(context.Background(), f.ID, client.ContainerStartOptions{}); err != nil {
		t.Fatal(err)
	}
	return f
}

// setData puts a dump (and with appendonly an AOF starting from it) in
// the data directory.
func (f *fakeRedis) setData(b []byte) {
	f.e.PutFile(f.ID, "/data/dump.rdb", b)
	if f.aof {
		f.e.PutFile(f.ID, "/data/appendonlydir/appendonly.aof.1.base.rdb", b)
		f.e.PutFile(f.ID, "/data/appendonlydir/appendonly.aof.manifest", []byte("file appendonly.aof.1.base.rdb seq 1 type b\n"))
	}
}

func (f *fakeRedis) file(p string) []byte {
	b, _ := f.e.File(f.ID, p)
	return b
}

func (f *fakeRedis) started(c *enginefake.Container) {
	if c.ID == f.ID {
		src := "/data/dump.rdb"
		if f.aof {
			src = "/data/appendonlydir/appendonly.aof.1.base.rdb"
		}
		f.mu.Lock()
		f.keys = keysOf(f.file(src))
		f.lie, f.lieNext = f.lieNext, 0
		f.mu.Unlock()
		return
	}
	if c.Config.Labels[labelHelper] == "" {
		return
	}
	f.mu.Lock()
	f.helpers++
	f.mu.Unlock()
	if f.noHelper {
		return
	}
	script, a := c.Config.Entrypoint[2], c.Config.Cmd
	exists := func(p string) bool {
		if _, ok := f.e.File(f.ID, p); ok {
			return true
		}
		return len(f.e.Files(f.ID, p)) > 0
	}
	switch script {
	case swapScript:
		if a[3] != "" {
			f.e.Rename(f.ID, a[3], a[5])
			f.e.Rename(f.ID, a[4], a[3])
		}
		f.e.Rename(f.ID, a[1], a[2])
	case rollbackScript:
		if a[3] != "" && exists(a[5]) {
			for _, p := range f.e.Files(f.ID, a[3]) {
				f.e.PutFile(f.ID, p, nil)
			}
			f.e.Rename(f.ID, a[5], a[3])
		}
		if a[4] != "" {
			for _, p := range f.e.Files(f.ID, a[4]) {
				f.e.PutFile(f.ID, p, nil)
			}
		}
		if a[6] == "put" {
			f.e.Rename(f.ID, a[1], a[2])
		} else {
			f.e.PutFile(f.ID, a[1], nil)
		}
	default:
		f.t.Errorf("helper container runs an unknown script")
	}
}

func (f *fakeRedis) exec(c *enginefake.Container, cmd, env []string) enginefake.ExecReply {
	if len(cmd) < 2 || cmd[0] != "redis-cli" {
		return enginefake.ExecReply{Stderr: "not redis-cli", ExitCode: 127}
	}
	if !contains(env, "REDISCLI_AUTH=pw") {
		return enginefake.ExecReply{Stdout: "NOAUTH Authentication required."}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	args := strings.Join(cmd[1:], " ")
	appendonly := map[bool]string{false: "no", true: "yes"}[f.aof]
	out, ok := map[string]string{
		"INFO server":                 "# Server\r\nredis_version:7.0.15\r\n",
		"INFO memory":                 "used_memory:1000\r\n",
		"CONFIG GET dir":              "dir\n/data",
		"CONFIG GET dbfilename":       "dbfilename\ndump.rdb",
		"CONFIG GET appendonly":       "appendonly\n" + appendonly,
		"CONFIG GET appendfilename":   "appendfilename\nappendonly.aof",
		"CONFIG GET appenddirname":    "appenddirname\nappendonlydir",
		"INFO keyspace":               fmt.Sprintf("# Keyspace\r\ndb0:keys=%d,expires=0,avg_ttl=0\r\n", f.keys+f.lie),
		"INFO persistence":            fmt.Sprintf("rdb_bgsave_in_progress:0\r\nrdb_saves:%d\r\nrdb_last_bgsave_status:ok\r\n", f.saves),
		"BGSAVE":                      "Background saving started",
		"SAVE":                        "OK",
		"CONFIG GET nonexistent-test": "",
	}[args]
	if !ok {
		return enginefake.ExecReply{Stdout: "ERR unknown command"}
	}
	if args == "BGSAVE" || args == "SAVE" {
		f.saves++
		f.e.PutFile(f.ID, "/data/dump.rdb", rdbOf("cur", int(f.keys)))
	}
	return enginefake.ExecReply{Stdout: out + "\n"}
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// running tells whether the Redis container runs.
func (f *fakeRedis) running() bool {
	return f.e.Container(f.ID).Status == container.StateRunning
}

// restoreOpts are options restoring file in project dir pdir, backups in bdir.
func restoreOpts(pdir, bdir, file string) RestoreOptions {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	return RestoreOptions{
		Options:    Options{Project: "proj", Service: "redis", Dir: bdir, Mode: "bgsave", Now: func() time.Time { now = now.Add(time.Second); return now }},
		ProjectDir: pdir, File: file, StopTimeout: time.Second, WaitTimeout: 5 * time.Second,
	}
}

// backupFile writes an RDB of n keys as a backup file and returns its path.
func backupFile(t *testing.T, dir, prefix string, n int) string {
	t.Helper()
	p := filepath.Join(dir, "redis_20250101_000000.rdb")
	if err := os.WriteFile(p, rdbOf(prefix, n), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}
