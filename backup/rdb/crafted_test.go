package rdb

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

// rdbFile builds an RDB by hand, as Redis's rdb.c writes it.
type rdbFile struct{ bytes.Buffer }

func newRDB(version int) *rdbFile {
	f := &rdbFile{}
	f.WriteString("REDIS")
	f.WriteString(strings.Repeat("0", 4-len(itoa(version))) + itoa(version))
	return f
}

func itoa(n int) string { return string(appendInt(nil, n)) }

func appendInt(b []byte, n int) []byte {
	if n >= 10 {
		b = appendInt(b, n/10)
	}
	return append(b, byte('0'+n%10))
}

func (f *rdbFile) op(b ...byte) *rdbFile { f.Write(b); return f }

// length writes an RDB length in its shortest form (64-bit when large).
func (f *rdbFile) length(n uint64) *rdbFile {
	switch {
	case n < 1<<6:
		f.WriteByte(byte(n))
	case n < 1<<14:
		f.WriteByte(byte(n>>8) | 0x40)
		f.WriteByte(byte(n))
	case n <= 0xffffffff:
		f.WriteByte(0x80)
		binary.Write(f, binary.BigEndian, uint32(n))
	default:
		f.WriteByte(0x81)
		binary.Write(f, binary.BigEndian, n)
	}
	return f
}

func (f *rdbFile) str(s string) *rdbFile { f.length(uint64(len(s))); f.WriteString(s); return f }

func (f *rdbFile) u64(v uint64) *rdbFile { binary.Write(f, binary.LittleEndian, v); return f }

// end writes EOF and the CRC-64 of everything before it.
func (f *rdbFile) end() []byte {
	f.WriteByte(opEOF)
	b := f.Bytes()
	return binary.LittleEndian.AppendUint64(append([]byte(nil), b...), CRC64(b))
}

// listpackOf encodes string entries (and small non-negative ints) as a listpack.
func listpackOf(entries ...any) string {
	var body []byte
	for _, e := range entries {
		var enc []byte
		switch e := e.(type) {
		case string:
			if len(e) > 63 {
				panic("short strings only")
			}
			enc = append([]byte{0x80 | byte(len(e))}, e...)
		case int64: // as int64 (0xf4)
			enc = binary.LittleEndian.AppendUint64([]byte{0xf4}, uint64(e))
		case int:
			enc = []byte{byte(e) & 0x7f}
		}
		body = append(body, enc...)
		body = append(body, byte(len(enc))) // back-length (entries < 128 bytes)
	}
	total := 6 + len(body) + 1
	out := binary.LittleEndian.AppendUint32(nil, uint32(total))
	out = binary.LittleEndian.AppendUint16(out, uint16(len(entries)))
	return string(append(append(out, body...), 0xff))
}

func header(v int) *rdbFile {
	f := newRDB(v)
	f.op(opAux).str("redis-ver").str("7.4.1")
	f.op(opSelectDB).length(0)
	return f
}

func mustRefuse(t *testing.T, name string, b []byte) {
	t.Helper()
	if info, err := VerifyAt(bytes.NewReader(b), time.Now()); err == nil {
		t.Errorf("%s: accepted (%+v)", name, info)
	} else {
		var re *Error
		if !errors.As(err, &re) {
			t.Errorf("%s: error %v is not an *rdb.Error", name, err)
		}
	}
}

// Counts that the old reader multiplied (2*n, 16*n) wrap to a few records:
// crafted with a valid checksum, each must be refused, not walked short.
func TestCraftedOverflowsRefused(t *testing.T) {
	// hash of 2^63+1 pairs: 2*n wraps to 2, one pair follows.
	mustRefuse(t, "hash 2*n", header(9).op(tHash).str("h").length(1<<63+1).str("f").str("v").end())
	// stream with 2^63+1 listpacks: 2*n wraps to 2.
	st := header(10).op(tStreamListpacks2).str("s").length(1<<63 + 1).str(strings.Repeat("\x00", 16)).str(listpackOf("a"))
	mustRefuse(t, "stream listpacks 2*n", st.end())
	// consumer PEL of 2^60+1 ids: 16*n wraps to 16 bytes.
	c := header(10).op(tStreamListpacks2).str("s").length(0).length(0).length(0).length(0) // no listpacks, length, last id
	c.length(0).length(0).length(0).length(0).length(0)                                    // first id, max deleted id, entries added
	c.length(1).str("g").length(0).length(0).length(0)                                     // one group: name, last id, entries read
	c.length(0)                                                                            // group PEL
	c.length(1).str("consumer").u64(0).length(1<<60 + 1).op(make([]byte, 16)...)           // consumer seen time, PEL 2^60+1, one id
	mustRefuse(t, "consumer PEL 16*n", c.end())
	// ziplist entry of 2^32-1 bytes inside a small value: offsets must not wrap.
	zl := []byte{0, 0, 0, 0, 10, 0, 0, 0, 1, 0, 0, 0x80, 0xff, 0xff, 0xff, 0xff, 0xff}
	binary.LittleEndian.PutUint32(zl, uint32(len(zl)))
	mustRefuse(t, "ziplist entry length", header(9).op(tListZiplist).str("l").str(string(zl)).end())
	// listpack string entry of 2^32-1 bytes.
	lp := []byte{0, 0, 0, 0, 1, 0, 0xf0, 0xff, 0xff, 0xff, 0xff, 0xff}
	binary.LittleEndian.PutUint32(lp, uint32(len(lp)))
	mustRefuse(t, "listpack entry length", header(10).op(tSetListpack).str("s").str(string(lp)).end())
	// hash field expiry relative to a minimum near 2^64: ttl+min wraps.
	mustRefuse(t, "hash field ttl+min", header(12).op(tHashMetadata).str("h").u64(1<<64-2).length(1).length(10).str("f").str("v").end())
	// LZF string declaring 2^64-1 bytes from 3 compressed bytes.
	mustRefuse(t, "LZF length", header(9).op(tString).str("k").op(0xc3).length(3).length(1<<64-1).op(2, 'a', 'b', 'c').end())
	// a string of 2^64-1 bytes in a short file.
	mustRefuse(t, "string length", header(9).op(tString).str("k").length(1<<64-1).op('x').end())
	// intset of 2^31 × 8 bytes.
	is := binary.LittleEndian.AppendUint32(binary.LittleEndian.AppendUint32(nil, 8), 1<<31)
	mustRefuse(t, "intset count", header(9).op(tSetIntset).str("i").str(string(is)+"12345678").end())
}

// A module aux record as rdb.c writes it since Redis 5: module id, the
// when-opcode marker (UINT = 2), when, then the opcode-tagged value to its
// EOF; and a module value (type 7).
func TestModuleAuxAndModuleValue(t *testing.T) {
	id := uint64(0x1234567890ab) << 10
	f := header(9)
	f.op(opModuleAux).length(id).length(2).length(2) // when = REDISMODULE_AUX_AFTER_RDB
	f.length(2).length(42).length(5).str("aux-data").length(4).u64(0).length(3).op(0, 0, 0, 0).length(1).length(7).length(0)
	f.op(tModule2).str("mk").length(id).length(5).str("value").length(0)
	f.op(tString).str("plain").str("v")
	b := f.end()
	info, err := VerifyAt(bytes.NewReader(b), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if info.Keys != 2 || len(info.Modules) != 1 || info.Modules[0] != moduleName(id) {
		t.Fatalf("%+v", info)
	}
	// Redis's own checker reads the hand-written file the same way.
	if out, err := checkRDB(t, b); err != nil || !strings.Contains(out, "2 keys read") {
		t.Fatalf("redis-check-rdb: %v\n%s", err, out)
	}
	// Redis refuses a when-marker other than UINT ("bad when_opcode").
	g := header(9).op(opModuleAux).length(id).length(1).length(2).length(0)
	mustRefuse(t, "when-marker 1", g.end())
	// And the pre-5.0 layout without the marker is not what Redis reads.
	h := header(9).op(opModuleAux).length(id).length(2).length(5).str("x").length(0)
	mustRefuse(t, "aux without when-marker", h.end())
}

// checkRDB runs the Debian redis-check-rdb on b.
func checkRDB(t *testing.T, b []byte) (string, error) {
	t.Helper()
	if _, err := exec.LookPath("redis-check-rdb"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("redis-check-rdb missing; make test installs redis-server")
		}
		t.Skip("redis-check-rdb not installed")
	}
	p := filepath.Join(t.TempDir(), "f.rdb")
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("redis-check-rdb", p).CombinedOutput()
	return string(out), err
}

func TestModuleName(t *testing.T) {
	// "ReJSON-RL" as RedisJSON registers it, encoding version 3.
	var id uint64
	for _, c := range "ReJSON-RL" {
		id = id<<6 | uint64(strings.IndexRune("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", c))
	}
	if got := moduleName(id<<10 | 3); got != "ReJSON-RL" {
		t.Fatal(got)
	}
}

// Keys Redis drops on load are counted apart: empty collections of every
// kind, and hashes whose every field has expired (types 24 and 25, and the
// 7.4 release-candidate types 22 and 23).
func TestDroppedOnLoad(t *testing.T) {
	now := time.UnixMilli(1_800_000_000_000)
	past, future := uint64(now.UnixMilli()-1000), uint64(now.UnixMilli()+3600_000)
	f := header(12)
	f.op(tList).str("l0").length(0)
	f.op(tSet).str("s0").length(0)
	f.op(tZset2).str("z0").length(0)
	f.op(opExpireTimeMs).u64(future).op(tHash).str("h0").length(0) // dropped, with an expiry
	f.op(tSetListpack).str("slp0").str(listpackOf())
	f.op(tListQuicklist2).str("q0").length(1).length(2).str(listpackOf()) // one empty node
	// type 24: min expiry, n × (ttl relative to min +1, field, value)
	f.op(tHashMetadata).str("hfe-all-expired").u64(past - 10).length(2).length(1).str("a").str("1").length(11).str("b").str("2")
	f.op(tHashMetadata).str("hfe-some-left").u64(past).length(2).length(1).str("a").str("1").length(0).str("b").str("2")
	f.op(tHashMetadata).str("hfe-future").u64(future).length(1).length(1).str("a").str("1")
	// type 25: min expiry, listpack of (field, value, ttl)
	f.op(tHashListpackEx).str("lpex-all-expired").u64(past).str(listpackOf("a", "1", int64(past), "b", "2", int64(past)))
	f.op(tHashListpackEx).str("lpex-one-left").u64(past).str(listpackOf("a", "1", int64(past), "b", "2", 0))
	// type 22 (7.4 RC): absolute ttls
	f.op(tHashMetadataPreGA).str("rc-all-expired").length(1).length(past).str("a").str("1")
	f.op(opExpireTimeMs).u64(future).op(tString).str("kept").str("v")
	info, err := VerifyAt(bytes.NewReader(f.end()), now)
	if err != nil {
		t.Fatal(err)
	}
	want := Dropped{Empty: 6, FieldsExpired: 3, WithExpiry: 1}
	if info.Keys != 4 || info.Expires != 1 || info.Dropped != want || info.FieldExpiryHashes != 3 {
		t.Fatalf("keys %d expires %d dropped %+v field-expiry hashes %d; want 4, 1, %+v, 3", info.Keys, info.Expires, info.Dropped, info.FieldExpiryHashes, want)
	}
}

// A file without a checksum is walked and says so.
func TestNoChecksumSaysSo(t *testing.T) {
	b := header(9).op(tString).str("k").str("v").end()
	copy(b[len(b)-8:], make([]byte, 8)) // rdbchecksum no writes 0
	info, err := Verify(bytes.NewReader(b))
	if err != nil || info.Checksummed() || !strings.Contains(info.Integrity(), "walked, not checksummed") || info.Checked != "none" {
		t.Fatalf("%+v %v", info, err)
	}
	old := newRDB(4).op(opSelectDB).length(0).op(tString).str("k").str("v").op(opEOF).Bytes()
	info, err = Verify(bytes.NewReader(old))
	if err != nil || info.Checksummed() || info.Integrity() != "walked, not checksummed (RDB v4 has no checksum)" {
		t.Fatalf("%+v %v", info, err)
	}
	info, err = Verify(bytes.NewReader(header(9).end()))
	if err != nil || !info.Checksummed() || info.Integrity() != "CRC-64 ok" {
		t.Fatalf("%+v %v", info, err)
	}
}

// auxStream generates an RDB of n aux fields (distinct unknown names,
// 200-byte values) and its CRC on the fly, without allocating per field:
// the file is never in memory.
type auxStream struct {
	n, i  int
	field []byte // one aux record, its name's digits rewritten per field
	out   []byte // pending bytes
	crc   uint64
	done  bool
}

func (a *auxStream) Read(p []byte) (int, error) {
	if a.field == nil {
		f := &rdbFile{}
		f.op(opAux).str("x-field-00000000").str(strings.Repeat("v", 200))
		a.field = f.Bytes()
		a.out = []byte("REDIS0011")
		a.crc = crcUpdate(0, a.out)
	}
	if len(a.out) == 0 {
		switch {
		case a.i < a.n:
			a.i++
			for d, k := 0, a.i; d < 8; d, k = d+1, k/10 {
				a.field[2+len("x-field-")+7-d] = byte('0' + k%10)
			}
			a.out = a.field
			a.crc = crcUpdate(a.crc, a.out)
		case !a.done:
			a.done = true
			a.crc = crcUpdate(a.crc, []byte{opEOF})
			a.out = binary.LittleEndian.AppendUint64([]byte{opEOF}, a.crc)
		default:
			return 0, io.EOF
		}
	}
	n := copy(p, a.out)
	a.out = a.out[n:]
	return n, nil
}

// Memory stays bounded: 100k aux fields (22 MB) allocate far less than
// the file's size; only known fields are kept.
func TestAuxMemoryBounded(t *testing.T) {
	var m0, m1 runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&m0)
	info, err := Verify(&auxStream{n: 100_000})
	runtime.ReadMemStats(&m1)
	if err != nil {
		t.Fatal(err)
	}
	alloc := m1.TotalAlloc - m0.TotalAlloc
	if info.OtherAux != 100_000 || len(info.Aux) != 0 || info.Size < 20<<20 {
		t.Fatalf("%+v", info)
	}
	// The reader's buffer and little else: not the 22 MB (nor 2 × that
	// in a map, as before).
	if alloc > 2<<20 {
		t.Fatalf("%d bytes allocated walking %d bytes of aux fields", alloc, info.Size)
	}
}

// Each LZF rule of lzf_decompress as Redis checks it.
func TestLZF(t *testing.T) {
	ok := func(c []byte, ulen uint64) []byte {
		return header(9).op(tString).str("k").op(0xc3).length(uint64(len(c))).length(ulen).op(c...).end()
	}
	// "abcabcabc": literal "abc", back reference of 6 at distance 3.
	good := []byte{2, 'a', 'b', 'c', 4 << 5, 2}
	if _, err := Verify(bytes.NewReader(ok(good, 9))); err != nil {
		t.Fatal(err)
	}
	mustRefuse(t, "longer than declared", ok(good, 8))
	mustRefuse(t, "shorter than declared", ok(good, 10))
	mustRefuse(t, "reference before start", ok([]byte{0, 'a', 1 << 5, 5}, 4))
	mustRefuse(t, "literal past the data", ok([]byte{5, 'a'}, 6))
	mustRefuse(t, "reference cut short", ok([]byte{0, 'a', 1 << 5}, 4))
}

// RDB 13 (Redis 8.6): a stream with idempotent-producer data (type 26) and
// a key-metadata record (opcode 243) before a key, as librdb's Redis 8.6
// dumps hold them (checked against those files by hand: both verify).
func TestRDB13StreamIDMPAndKeyMeta(t *testing.T) {
	f := header(13)
	f.op(tStreamListpacks4).str("s").length(1).str(strings.Repeat("\x00", 16)).str(listpackOf("a", "b"))
	f.length(1).length(5).length(0)                     // length, last id
	f.length(0).length(0).length(0).length(0).length(1) // first id, max deleted id, entries added
	f.length(0)                                         // no groups
	f.length(100).length(1000).length(1)                // IDMP: duration, max entries, one producer
	f.str("producer-1").length(1).str("iid-1").length(5).length(0)
	f.length(1).length(0) // iids added, duplicates
	f.op(opKeyMeta).length(1).op('K', 'M', 'T', '1').length(2).length(7).length(0)
	f.op(tString).str("with-meta").str("v")
	info, err := Verify(bytes.NewReader(f.end()))
	if err != nil || info.Keys != 2 || info.Version != 13 {
		t.Fatalf("%+v %v", info, err)
	}
	g := header(13).op(opKeyMeta).length(8)
	mustRefuse(t, "8 key-metadata classes", g.op(tString).str("k").str("v").end())
	_, err = Verify(bytes.NewReader(header(14).end()))
	if err == nil || !strings.Contains(err.Error(), "Redis 8.8") {
		t.Fatalf("RDB 14: %v", err)
	}
}
