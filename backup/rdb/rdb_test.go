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
	for v, want := range map[string]int{"2.8.24": 6, "3.2.12": 7, "4.0.14": 8, "5.0.14": 9, "6.2.14": 9, "7.0.15": 10, "7.2.4": 11, "7.4.1": 12, "8.0.0": 12} {
		if got, _ := LoadableBy(v); got != want {
			t.Errorf("%s: %d, want %d", v, got, want)
		}
	}
}

// realDump makes an RDB with a real redis-server holding every value type.
func realDump(t testing.TB) ([]byte, int64) {
	t.Helper()
	server, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("redis-server missing; make test installs it")
		}
		t.Skip("redis-server not installed (make test installs it)")
	}
	dir := t.TempDir()
	sock := filepath.Join(dir, "r.sock")
	srv := exec.Command(server, "--port", "0", "--unixsocket", sock, "--dir", dir, "--save", "", "--appendonly", "no")
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { srv.Process.Kill(); srv.Wait() }()
	cli := func(args ...string) string {
		out, err := exec.Command("redis-cli", append([]string{"-s", sock}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("redis-cli %v: %v %s", args, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	for i := 0; i < 100; i++ {
		if _, err := os.Stat(sock); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	// One redis-cli reading every command from stdin.
	var cmds strings.Builder
	cmds.WriteString("SET s v\nSET n 12345\nSET big " + strings.Repeat("compressible-", 1000) + "\nSET exp x EX 3600\n")
	cmds.WriteString("RPUSH l a b c\nSADD set 1 2 3\nSADD sset x y\nZADD z 1.5 a 2 b\nHSET h f v g w\n")
	for i := 0; i < 300; i++ { // large enough to leave the compact encodings
		fmt.Fprintf(&cmds, "HSET bigh field%d %s\nRPUSH bigl item%d\nZADD bigz %d m%d\nSADD bigs m%d\n", i, strings.Repeat("v", 70), i, i, i, i)
	}
	cmds.WriteString("XADD st * k v\nXADD st * k2 v2\nXGROUP CREATE st g 0\nXREADGROUP GROUP g c1 COUNT 1 STREAMS st >\n")
	feed := exec.Command("redis-cli", "-s", sock)
	feed.Stdin = strings.NewReader(cmds.String())
	if out, err := feed.CombinedOutput(); err != nil {
		t.Fatalf("redis-cli: %v %s", err, out)
	}
	keys := int64(14)
	cli("SAVE")
	b, err := os.ReadFile(filepath.Join(dir, "dump.rdb"))
	if err != nil {
		t.Fatal(err)
	}
	return b, keys
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
