package rdb

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestCRC64Jones(t *testing.T) {
	// Redis's own test vector (src/crc64.c).
	if got := CRC64([]byte("123456789")); got != 0xe9c6d914c4b8d9ca {
		t.Fatalf("crc64 = %016x", got)
	}
}

func TestLoadableBy(t *testing.T) {
	for v, want := range map[string]int{"2.8.24": 6, "3.2.12": 7, "4.0.14": 8, "5.0.14": 9, "6.2.14": 9, "7.0.15": 10, "7.2.4": 11, "7.4.1": 12, "8.0.0": 12, "8.4.0": 12, "8.6.0": 13, "8.8.1": 14} {
		if got, _ := LoadableBy(v); got != want {
			t.Errorf("%s: %d, want %d", v, got, want)
		}
	}
}

// redisServer is a local Debian redis-server on a unix socket in dir,
// stopped when the test ends.
type redisServer struct {
	t    testing.TB
	dir  string
	sock string
}

func startServer(t testing.TB, dir string, args ...string) *redisServer {
	t.Helper()
	server, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("redis-server missing; make test installs it")
		}
		t.Skip("redis-server not installed (make test installs it)")
	}
	sock := filepath.Join(dir, "r.sock")
	srv := exec.Command(server, append([]string{"--port", "0", "--unixsocket", sock, "--dir", dir, "--save", "", "--appendonly", "no"}, args...)...)
	var log bytes.Buffer
	srv.Stdout, srv.Stderr = &log, &log
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { srv.Wait(); close(exited) }()
	t.Cleanup(func() { srv.Process.Kill(); <-exited })
	r := &redisServer{t: t, dir: dir, sock: sock}
	for i := 0; ; i++ {
		if _, err := os.Stat(sock); err == nil {
			if out, err := exec.Command("redis-cli", "-s", sock, "PING").CombinedOutput(); err == nil && strings.TrimSpace(string(out)) == "PONG" {
				return r
			}
		}
		select {
		case <-exited:
			t.Fatalf("redis-server exited: %s", log.String())
		case <-time.After(20 * time.Millisecond):
		}
		if i > 500 {
			t.Fatalf("redis-server did not answer: %s", log.String())
		}
	}
}

func (r *redisServer) cli(args ...string) string {
	r.t.Helper()
	out, err := exec.Command("redis-cli", append([]string{"-s", r.sock}, args...)...).CombinedOutput()
	if err != nil {
		r.t.Fatalf("redis-cli %v: %v %s", args, err, out)
	}
	return strings.TrimSpace(string(out))
}

// feed sends commands, one per line, through one redis-cli.
func (r *redisServer) feed(cmds string) {
	r.t.Helper()
	c := exec.Command("redis-cli", "-s", r.sock)
	c.Stdin = strings.NewReader(cmds)
	if out, err := c.CombinedOutput(); err != nil {
		r.t.Fatalf("redis-cli: %v %s", err, out)
	}
}

// realDump makes an RDB with a real redis-server holding every value type;
// args go to redis-server (rdbchecksum, rdbcompression, ...).
func realDump(t testing.TB, args ...string) ([]byte, int64) {
	t.Helper()
	r := startServer(t, t.TempDir(), args...)
	var cmds strings.Builder
	cmds.WriteString("SET s v\nSET n 12345\nSET big " + strings.Repeat("compressible-", 1000) + "\nSET exp x EX 3600\n")
	cmds.WriteString("RPUSH l a b c\nSADD set 1 2 3\nSADD sset x y\nZADD z 1.5 a 2 b\nHSET h f v g w\n")
	for i := 0; i < 130; i++ { // past the 128 entries of the compact encodings
		fmt.Fprintf(&cmds, "HSET bigh field%d %s\nRPUSH bigl item%d\nZADD bigz %d m%d\nSADD bigs m%d\n", i, strings.Repeat("v", 70), i, i, i, i)
	}
	cmds.WriteString("XADD st * k v\nXADD st * k2 v2\nXGROUP CREATE st g 0\nXREADGROUP GROUP g c1 COUNT 1 STREAMS st >\n")
	cmds.WriteString("FUNCTION LOAD \"#!lua name=lib\\nredis.register_function('f', function() return 1 end)\"\n")
	cmds.WriteString("SELECT 3\nSET other-db v\n")
	r.feed(cmds.String())
	keys := int64(15)
	r.cli("SAVE")
	b, err := os.ReadFile(filepath.Join(r.dir, "dump.rdb"))
	if err != nil {
		t.Fatal(err)
	}
	return b, keys
}

// loadedBy starts a fresh redis-server on b and returns the keys and
// expiries it holds.
func loadedBy(t *testing.T, b []byte) (keys, expires int64) {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "dump.rdb"), b, 0o600); err != nil {
		t.Fatal(err)
	}
	r := startServer(t, dir)
	for _, l := range strings.Split(r.cli("INFO", "keyspace"), "\n") {
		var db int
		var k, e, avg int64
		if n, _ := fmt.Sscanf(strings.TrimSpace(l), "db%d:keys=%d,expires=%d,avg_ttl=%d", &db, &k, &e, &avg); n == 4 {
			keys, expires = keys+k, expires+e
		}
	}
	return keys, expires
}

// Files the Debian redis-server writes, with checksums and without, with
// LZF and without: the verifier counts what the same server loads back.
func TestRealServerLoadsWhatVerifierCounts(t *testing.T) {
	for _, args := range [][]string{nil, {"--rdbchecksum", "no"}, {"--rdbcompression", "no"}} {
		b, want := realDump(t, args...)
		info, err := Verify(bytes.NewReader(b))
		if err != nil {
			t.Fatalf("%v: %v", args, err)
		}
		keys, expires := loadedBy(t, b)
		if info.Keys != want || info.Keys != keys || info.Expires != expires || info.Functions != 1 || info.MaxDB != 3 {
			t.Errorf("%v: verifier %d keys/%d expires, server loads %d/%d (%+v)", args, info.Keys, info.Expires, keys, expires, info)
		}
		if noCRC := len(args) > 0 && args[1] == "no" && args[0] == "--rdbchecksum"; noCRC == info.Checksummed() {
			t.Errorf("%v: %s", args, info.Integrity())
		}
	}
}

// Keys Redis drops on load, in a file written by hand in the RDB v10 a
// Redis 7.0 server loads: the server holds what the verifier says it will.
func TestRealServerDropsWhatVerifierDrops(t *testing.T) {
	f := header(10)
	f.op(tList).str("empty-list").length(0)
	f.op(tSet).str("empty-set").length(0)
	f.op(tZset2).str("empty-zset").length(0)
	f.op(tHash).str("empty-hash").length(0)
	f.op(tHashListpack).str("empty-lp-hash").str(listpackOf())
	f.op(tZsetListpack).str("empty-lp-zset").str(listpackOf())
	f.op(tListQuicklist2).str("empty-quicklist").length(1).length(2).str(listpackOf())
	f.op(tListQuicklist2).str("one-empty-node").length(2).length(2).str(listpackOf()).length(2).str(listpackOf("a"))
	f.op(opExpireTimeMs).u64(uint64(time.Now().Add(time.Hour).UnixMilli())).op(tString).str("kept").str("v")
	f.op(tHashListpack).str("kept-hash").str(listpackOf("f", "v"))
	b := f.end()
	info, err := Verify(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	keys, expires := loadedBy(t, b)
	if info.Keys != 3 || info.Dropped.Empty != 7 || keys != info.Keys || expires != info.Expires {
		t.Fatalf("verifier %d keys (%+v dropped), server holds %d/%d", info.Keys, info.Dropped, keys, expires)
	}
}

func TestVerifyRealDump(t *testing.T) {
	b, keys := realDump(t)
	info, err := Verify(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	if info.Keys != keys || info.Size != int64(len(b)) || info.Aux["redis-ver"] == "" || info.Version < 9 {
		t.Fatalf("info %+v (want %d keys, %d bytes)", info, keys, len(b))
	}
}

func TestVerifyRejectsDamage(t *testing.T) {
	b, _ := realDump(t)
	// Every single flipped byte and every truncation is caught.
	for i := 0; i < len(b); i++ {
		c := append([]byte(nil), b...)
		c[i] ^= 0x41
		if _, err := Verify(bytes.NewReader(c)); err == nil {
			t.Fatalf("flipped byte %d of %d accepted", i, len(b))
		}
	}
	for _, n := range []int{0, 5, 9, len(b) / 2, len(b) - 9, len(b) - 1} {
		if _, err := Verify(bytes.NewReader(b[:n])); err == nil {
			t.Fatalf("truncation to %d bytes accepted", n)
		}
	}
	// Bytes after the checksum: Redis ignores them; they are reported.
	if info, err := Verify(bytes.NewReader(append(append([]byte(nil), b...), 'x'))); err != nil || info.Trailing != 1 || info.Size != int64(len(b)) {
		t.Fatalf("trailing byte: %+v %v", info, err)
	}
}

// FuzzVerify: corrupted files never panic or hang, a file accepted with a
// checksum carries one that matches, and counts never exceed what the bytes
// can hold. Seeded with every corpus file (read in place) and the crafted
// ones.
func FuzzVerify(f *testing.F) {
	f.Add([]byte("REDIS0010\xff\x00\x00\x00\x00\x00\x00\x00\x00"))
	if b, err := os.ReadFile(filepath.Join("testdata", "seed.rdb")); err == nil {
		f.Add(b)
	}
	if _, err := os.Stat(filepath.Join(corpusDir, "verdicts.tsv")); err == nil || os.Getenv("CI") == "true" {
		for _, c := range corpus(f) {
			b, err := os.ReadFile(c.path)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(b)
		}
	}
	now := time.UnixMilli(1_800_000_000_000)
	f.Fuzz(func(t *testing.T, b []byte) {
		info, err := VerifyAt(bytes.NewReader(b), now)
		if err != nil {
			return
		}
		if info.Checksummed() && (info.Size < 8 || info.Checksum != CRC64(b[:info.Size-8])) {
			t.Fatalf("accepted with a wrong checksum")
		}
		if info.Size+info.Trailing != int64(len(b)) || info.Keys+info.Dropped.Total() > int64(len(b)) || info.Expires > info.Keys {
			t.Fatalf("counts beyond the input: %+v for %d bytes", info, len(b))
		}
	})
}
