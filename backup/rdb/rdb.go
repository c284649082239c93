// Package rdb verifies Redis RDB files offline, as a Redis server would load
// them: the REDIS magic, the RDB version (1 to 12: Redis 2.6 to 8.x), every
// record to the EOF opcode (module aux data and module values included), the
// compact encodings inside values (ziplist, listpack, intset, zipmap, LZF)
// and the CRC-64 (Jones polynomial) of the whole file. It reads the file as
// a stream through one fixed buffer and never holds a value whole: memory is
// bounded whatever the file holds.
//
// It counts what the server ends up with: Keys and Expires leave out the keys
// Redis drops on load (empty collections, hashes whose every field has
// expired), which are counted apart in Dropped.
package rdb

import (
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"strconv"
	"time"
)

// MaxVersion is the newest RDB format this verifier walks: 12 is what Redis
// 7.4 to 8.4 write (src/rdb.h, RDB_VERSION), 13 Redis 8.6's (streams with
// idempotent-producer data, key metadata records). Redis 8.8's version 14
// (an array type) is refused by name: its layout is not one this verifier
// has been checked against.
const MaxVersion = 13

// Info is what verification learned about a file.
type Info struct {
	Version int   `json:"rdbVersion"`
	Keys    int64 `json:"keys"`    // keys a server holds after loading the file
	Expires int64 `json:"expires"` // of which with an expiry
	// Dropped: keys in the file that Redis drops on load.
	Dropped Dropped `json:"droppedOnLoad"`
	// FieldExpiryHashes: kept hashes with field expiries (Redis 7.4+); they
	// go away by themselves once every field has expired.
	FieldExpiryHashes int64             `json:"fieldExpiryHashes,omitempty"`
	Aux               map[string]string `json:"aux,omitempty"` // redis-ver, ctime, used-mem, ... (known fields only)
	OtherAux          int64             `json:"otherAux,omitempty"`
	Modules           []string          `json:"modules,omitempty"` // module types whose data the file holds (load them first)
	Functions         int64             `json:"functions,omitempty"`
	MaxDB             uint64            `json:"maxDB"`
	Size              int64             `json:"size"`
	Checksum          uint64            `json:"crc64"`
	// Checked: "crc64" (walked and checksummed) or "none" (walked only:
	// saved with rdbchecksum no, or RDB v4 and older, which have no checksum).
	Checked string `json:"checked"`
	// ChecksumSkipped: the file was saved with rdbchecksum no (CRC of 0).
	ChecksumSkipped bool `json:"checksumSkipped,omitempty"`
	// Trailing: bytes after the checksum (an AOF tail, or junk): Redis
	// ignores them, and so does the walk.
	Trailing int64 `json:"trailingBytes,omitempty"`
}

// Dropped counts keys of the file that a server does not keep.
type Dropped struct {
	Empty         int64 `json:"empty,omitempty"`         // empty collections (Redis skips them)
	FieldsExpired int64 `json:"fieldsExpired,omitempty"` // hashes whose every field had expired at verification
	WithExpiry    int64 `json:"withExpiry,omitempty"`    // of the dropped keys, those with a key expiry
}

// Total is the number of dropped keys.
func (d Dropped) Total() int64 { return d.Empty + d.FieldsExpired }

// Checksummed reports whether the file's CRC-64 was checked.
func (i Info) Checksummed() bool { return i.Checked == "crc64" }

// Integrity says in words what was checked.
func (i Info) Integrity() string {
	switch {
	case i.Checksummed():
		return "CRC-64 ok"
	case i.ChecksumSkipped:
		return "walked, not checksummed (saved with rdbchecksum no)"
	case i.Version > 0 && i.Version < 5:
		return fmt.Sprintf("walked, not checksummed (RDB v%d has no checksum)", i.Version)
	}
	return "not verified"
}

// Opcodes from Redis's rdb.h.
const (
	opKeyMeta      = 243 // RDB 13: module metadata classes of the next key
	opSlotInfo     = 244
	opFunction2    = 245
	opFunction     = 246 // pre-GA (7.0 rc), Redis refuses it
	opModuleAux    = 247
	opIdle         = 248
	opFreq         = 249
	opAux          = 250
	opResizeDB     = 251
	opExpireTimeMs = 252
	opExpireTime   = 253
	opSelectDB     = 254
	opEOF          = 255
)

// Value types from Redis's rdb.h.
const (
	tString             = 0
	tList               = 1
	tSet                = 2
	tZset               = 3
	tHash               = 4
	tZset2              = 5
	tModulePreGA        = 6
	tModule2            = 7
	tHashZipmap         = 9
	tListZiplist        = 10
	tSetIntset          = 11
	tZsetZiplist        = 12
	tHashZiplist        = 13
	tListQuicklist      = 14
	tStreamListpacks    = 15
	tHashListpack       = 16
	tZsetListpack       = 17
	tListQuicklist2     = 18
	tStreamListpacks2   = 19
	tSetListpack        = 20
	tStreamListpacks3   = 21
	tHashMetadataPreGA  = 22
	tHashListpackExPreG = 23
	tHashMetadata       = 24
	tHashListpackEx     = 25
	tStreamListpacks4   = 26 // RDB 13: with idempotent-producer (IDMP) data
)

// ebExpireTimeMax is the largest hash field expiry Redis accepts (48 bits).
const ebExpireTimeMax = 1<<48 - 1

// knownAux are the aux fields Redis writes; only these are kept (bounded),
// others are counted.
var knownAux = map[string]bool{
	"redis-ver": true, "redis-bits": true, "ctime": true, "used-mem": true,
	"aof-preamble": true, "aof-base": true, "repl-stream-db": true,
	"repl-id": true, "repl-offset": true,
}

const (
	maxAuxValue = 256 // longer values of known fields are not kept
	maxModules  = 32  // distinct module names remembered
)

// Error is a verification failure at a byte offset.
type Error struct {
	Offset int64
	Msg    string
}

func (e *Error) Error() string { return fmt.Sprintf("rdb: offset %d: %s", e.Offset, e.Msg) }

// Verify walks an RDB stream and checks its checksum; hash field expiries
// are judged against the current time.
func Verify(src io.Reader) (Info, error) { return VerifyAt(src, time.Now()) }

// VerifyAt is Verify with hash field expiries judged at now.
func VerifyAt(src io.Reader, now time.Time) (Info, error) {
	v := &verifier{r: newReader(src), now: now.UnixMilli()}
	defer func() {
		v.r.release()
		if v.z != nil {
			windows.Put(v.z)
		}
	}()
	err := v.run()
	return v.info, err
}

type verifier struct {
	r       *reader
	info    Info
	now     int64 // unix ms
	z       *lzf  // reused LZF window
	pl      plain
	scratch []byte // aux field names
	expiry  bool   // an expiry opcode came before the next key
}

func (v *verifier) run() error {
	if err := v.header(); err != nil {
		return err
	}
	for {
		op, err := v.r.byte()
		if err != nil {
			return err
		}
		if op == opEOF {
			return v.end()
		}
		if err := v.opcode(op); err != nil {
			return err
		}
	}
}

// header reads the magic and the version.
func (v *verifier) header() error {
	r, info := v.r, &v.info
	head, err := r.next(9)
	if err != nil {
		return &Error{Offset: 0, Msg: "too short for an RDB header"}
	}
	if string(head[:5]) != "REDIS" {
		return &Error{Offset: 0, Msg: "no REDIS magic: not an RDB file"}
	}
	ver, err := strconv.Atoi(string(head[5:9]))
	if err != nil {
		return &Error{Offset: 5, Msg: fmt.Sprintf("bad RDB version %q", head[5:9])}
	}
	info.Version = ver
	if ver == 14 {
		return &Error{Offset: 5, Msg: "RDB version 14 (Redis 8.8) is newer than this verifier knows (1-13, Redis 2.6 to 8.6); verify it with that server's redis-check-rdb"}
	}
	if ver < 1 || ver > MaxVersion {
		return &Error{Offset: 5, Msg: fmt.Sprintf("RDB version %d is not one Redis 2.6 to 8.6 writes (1-%d)", ver, MaxVersion)}
	}
	return nil
}

// opcode reads what follows one opcode (but EOF): a record of the file, or
// a key and its value.
func (v *verifier) opcode(op byte) error {
	r, info := v.r, &v.info
	switch op {
	case opAux:
		return v.aux()
	case opSelectDB:
		db, err := v.plainLength()
		if err != nil {
			return err
		}
		info.MaxDB = max(info.MaxDB, db)
	case opResizeDB:
		return v.lengths(2)
	case opSlotInfo:
		return v.lengths(3)
	case opExpireTimeMs, opExpireTime:
		n := uint64(8)
		if op == opExpireTime {
			n = 4
		}
		if err := r.skip(n); err != nil {
			return err
		}
		v.expiry = true
	case opIdle:
		_, err := v.plainLength()
		return err
	case opFreq:
		return r.skip(1)
	case opFunction2:
		if _, err := v.skipString(); err != nil {
			return err
		}
		info.Functions++
	case opModuleAux:
		return v.moduleAux()
	case opKeyMeta:
		return v.keyMeta()
	case opFunction:
		return r.fail("pre-release function record (Redis 7.0 release candidates): no Redis release loads it")
	default:
		return v.record(op)
	}
	return nil
}

// moduleAux reads module aux data: module id, when-opcode (UINT), when,
// value.
func (v *verifier) moduleAux() error {
	id, err := v.plainLength()
	if err != nil {
		return err
	}
	whenOp, err := v.plainLength()
	if err != nil {
		return err
	}
	if whenOp != modUint {
		return v.r.fail("module aux data of %s: when-marker %d where Redis writes %d", moduleName(id), whenOp, modUint)
	}
	if _, err := v.plainLength(); err != nil {
		return err
	}
	v.module(id)
	return v.moduleValue(id)
}

// keyMeta reads key metadata: the number of classes (at most 7), each a
// 4-byte class spec and a module-style value.
func (v *verifier) keyMeta() error {
	n, err := v.plainLength()
	if err != nil {
		return err
	}
	if n > 7 {
		return v.r.fail("key metadata of %d classes (Redis allows 7)", n)
	}
	for range n {
		if err := v.r.skip(4); err != nil {
			return err
		}
		if err := v.moduleValue(0); err != nil {
			return err
		}
	}
	return nil
}

// end checks the checksum after the EOF opcode.
func (v *verifier) end() error {
	r, info := v.r, &v.info
	want := r.sumUpTo()
	info.Checked = "none"
	if info.Version >= 5 {
		p, err := r.next(8)
		if err != nil {
			return r.fail("checksum missing (truncated)")
		}
		got := binary.LittleEndian.Uint64(p)
		info.Checksum = got
		if got == 0 {
			info.ChecksumSkipped = true
		} else if got != want {
			return &Error{Offset: r.off() - 8, Msg: fmt.Sprintf("CRC-64 mismatch: file says %016x, content gives %016x", got, want)}
		} else {
			info.Checked = "crc64"
		}
	}
	info.Size = r.off()
	n, err := r.rest()
	info.Trailing = n
	return err
}

// record walks one key and its value of type t.
func (v *verifier) record(t byte) error {
	if t > tStreamListpacks4 || t == 8 {
		return v.r.fail("unknown value type %d", t)
	}
	expiry := v.expiry
	v.expiry = false
	start := v.r.off()
	if _, err := v.skipString(); err != nil { // the key
		return err
	}
	drop, err := v.value(t)
	if err != nil {
		if be, ok := err.(*blobError); ok {
			return &Error{Offset: start, Msg: fmt.Sprintf("value of type %d (%s): %s", t, typeName(t), be.msg)}
		}
		if err == errShort {
			return &Error{Offset: start, Msg: fmt.Sprintf("value of type %d (%s) ends before its content", t, typeName(t))}
		}
		return err
	}
	switch drop {
	case keep:
		v.info.Keys++
		if expiry {
			v.info.Expires++
		}
		return nil
	case dropEmpty:
		v.info.Dropped.Empty++
	case dropFieldsExpired:
		v.info.Dropped.FieldsExpired++
	}
	if expiry {
		v.info.Dropped.WithExpiry++
	}
	return nil
}

type fate int

const (
	keep fate = iota
	dropEmpty
	dropFieldsExpired
)

func (v *verifier) aux() error {
	k, err := v.shortString(64, v.scratch[:0])
	if err != nil {
		return err
	}
	if k != nil {
		v.scratch = k[:0]
	}
	if k == nil || !knownAux[string(k)] {
		v.info.OtherAux++
		_, err := v.skipString()
		return err
	}
	val, err := v.shortString(maxAuxValue, nil)
	if err != nil {
		return err
	}
	if val != nil {
		if v.info.Aux == nil {
			v.info.Aux = map[string]string{}
		}
		v.info.Aux[string(k)] = string(val)
		return nil
	}
	v.info.OtherAux++
	return nil
}

func (v *verifier) module(id uint64) {
	name := moduleName(id)
	for _, m := range v.info.Modules {
		if m == name {
			return
		}
	}
	if len(v.info.Modules) < maxModules {
		v.info.Modules = append(v.info.Modules, name)
	}
}

// moduleName is the 9-character module type name in a module id (the low
// 10 bits are the encoding version), as moduleTypeNameByID.
func moduleName(id uint64) string {
	const cset = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	var b [9]byte
	id >>= 10
	for j := 8; j >= 0; j-- {
		b[j] = cset[id&63]
		id >>= 6
	}
	return string(b[:])
}

// length reads an RDB length; special reports an encoded-string marker
// (then the value is the encoding type).
func (v *verifier) length() (n uint64, special bool, err error) {
	r := v.r
	b, err := r.byte()
	if err != nil {
		return 0, false, err
	}
	switch b >> 6 {
	case 0:
		return uint64(b & 0x3f), false, nil
	case 1:
		b2, err := r.byte()
		return uint64(b&0x3f)<<8 | uint64(b2), false, err
	case 2:
		switch b {
		case 0x80:
			p, err := r.next(4)
			if err != nil {
				return 0, false, err
			}
			return uint64(binary.BigEndian.Uint32(p)), false, nil
		case 0x81:
			p, err := r.next(8)
			if err != nil {
				return 0, false, err
			}
			return binary.BigEndian.Uint64(p), false, nil
		}
		return 0, false, r.fail("bad length prefix 0x%02x", b)
	}
	return uint64(b & 0x3f), true, nil
}

func (v *verifier) plainLength() (uint64, error) {
	n, special, err := v.length()
	if err == nil && special {
		err = v.r.fail("encoded value where a length was expected")
	}
	return n, err
}

func (v *verifier) lengths(k int) error {
	for range k {
		if _, err := v.plainLength(); err != nil {
			return err
		}
	}
	return nil
}

// str opens a string value: its uncompressed length and a source of its
// bytes (nil for integer encodings, whose bytes are already read).
func (v *verifier) str() (uint64, bytesSource, error) {
	n, special, err := v.length()
	if err != nil {
		return 0, nil, err
	}
	if !special {
		v.pl = plain{r: v.r, left: n}
		return n, &v.pl, nil
	}
	switch n {
	case 0, 1, 2: // 8, 16, 32-bit integer
		w := 1 << n
		return uint64(w), nil, v.r.skip(uint64(w))
	case 3: // LZF: compressed length, uncompressed length, data
		clen, err := v.plainLength()
		if err != nil {
			return 0, nil, err
		}
		ulen, err := v.plainLength()
		if err != nil {
			return 0, nil, err
		}
		if clen == 0 || ulen == 0 {
			return 0, nil, v.r.fail("LZF string with a length of 0")
		}
		if v.z == nil {
			v.z = windows.Get().(*lzf)
		}
		v.z.reset(v.r, clen, ulen)
		return ulen, v.z, nil
	}
	return 0, nil, v.r.fail("unknown string encoding %d", n)
}

// done finishes a string after its bytes were consumed: all of them, and an
// LZF stream exactly.
func (v *verifier) done(s bytesSource) error {
	switch s := s.(type) {
	case *plain:
		if s.left != 0 {
			return v.r.fail("value has %d bytes after its content", s.left)
		}
	case *lzf:
		if s.wr != s.rd || s.out != 0 {
			return v.r.fail("value has bytes after its content")
		}
		return s.finish()
	}
	return nil
}

// skipString walks a string and returns its length.
func (v *verifier) skipString() (uint64, error) {
	n, s, err := v.str()
	if err != nil || s == nil {
		return n, err
	}
	if err := s.skip(n); err != nil {
		return 0, err
	}
	return n, v.done(s)
}

// shortString returns a string's content, appended to dst, when it is at
// most limit bytes (nil otherwise: walked, not kept).
func (v *verifier) shortString(limit uint64, dst []byte) ([]byte, error) {
	r := v.r
	b, err := r.byte()
	if err != nil {
		return nil, err
	}
	if b>>6 == 3 && b&0x3f <= 2 { // integer encodings
		p, err := r.next(1 << (b & 0x3f))
		if err != nil {
			return nil, err
		}
		u := le(p)
		shift := 64 - 8*uint(len(p))
		return strconv.AppendInt(dst, int64(u<<shift)>>shift, 10), nil
	}
	r.pos-- // let str read the length again
	n, s, err := v.str()
	if err != nil {
		return nil, err
	}
	if n > limit {
		if err := s.skip(n); err != nil {
			return nil, err
		}
		return nil, v.done(s)
	}
	out := dst
	if out == nil {
		out = make([]byte, 0, n)
	}
	for n > 0 {
		k := min(n, 64)
		p, err := s.next(int(k))
		if err != nil {
			return nil, err
		}
		out = append(out, p...)
		n -= k
	}
	return out, v.done(s)
}

// blob walks a string holding a compact encoding with walk.
func (v *verifier) blob(walk func(s bytesSource, n uint64) (uint64, error)) (uint64, error) {
	n, s, err := v.str()
	if err != nil {
		return 0, err
	}
	if s == nil {
		return 0, bad("an integer where an encoded value was expected")
	}
	count, err := walk(s, n)
	if err != nil {
		return 0, err
	}
	return count, v.done(s)
}

func (v *verifier) skipStrings(n uint64) error {
	for i := uint64(0); i < n; i++ {
		if _, err := v.skipString(); err != nil {
			return err
		}
	}
	return nil
}

func emptyIf(zero bool) fate {
	if zero {
		return dropEmpty
	}
	return keep
}

// value walks one value of type t and says whether Redis keeps the key.
// zset reads a sorted set of member and score pairs: a binary double
// (tZset2) or a length-prefixed text (tZset; 253 is NaN, 254 and 255 the
// infinities, with no text).
func (v *verifier) zset(t byte) (fate, error) {
	r := v.r
	n, err := v.plainLength()
	if err != nil {
		return keep, err
	}
	for i := uint64(0); i < n; i++ {
		if _, err := v.skipString(); err != nil {
			return keep, err
		}
		if t == tZset2 {
			p, err := r.next(8)
			if err != nil {
				return keep, err
			}
			if math.IsNaN(math.Float64frombits(binary.LittleEndian.Uint64(p))) {
				return keep, bad("sorted set with a NaN score")
			}
			continue
		}
		l, err := r.byte()
		if err != nil {
			return keep, err
		}
		switch {
		case l == 253:
			return keep, bad("sorted set with a NaN score")
		case l < 253:
			if err := r.skip(uint64(l)); err != nil {
				return keep, err
			}
		}
	}
	return emptyIf(n == 0), nil
}

func (v *verifier) value(t byte) (fate, error) {
	r := v.r
	switch t {
	case tString:
		_, err := v.skipString()
		return keep, err
	case tList, tSet:
		n, err := v.plainLength()
		if err != nil {
			return keep, err
		}
		return emptyIf(n == 0), v.skipStrings(n)
	case tZset, tZset2:
		return v.zset(t)
	case tHash:
		n, err := v.plainLength()
		if err != nil {
			return keep, err
		}
		for i := uint64(0); i < n; i++ { // field, value: no 2*n to overflow
			if err := v.skipStrings(2); err != nil {
				return keep, err
			}
		}
		return emptyIf(n == 0), nil
	case tHashMetadataPreGA, tHashMetadata:
		return v.hashMetadata(t)
	case tHashZipmap:
		_, err := v.blob(zipmap)
		return keep, err // Redis keeps an empty zipmap hash
	case tListZiplist:
		n, err := v.blob(ziplist)
		return emptyIf(n == 0), err
	case tZsetZiplist, tHashZiplist:
		n, err := v.blob(ziplist)
		if err == nil && n%2 != 0 {
			err = bad("%d entries where pairs are expected", n)
		}
		return emptyIf(n == 0), err
	case tSetIntset:
		_, err := v.blob(intset)
		return keep, err
	case tSetListpack, tHashListpack, tZsetListpack:
		n, err := v.blob(func(s bytesSource, size uint64) (uint64, error) { return listpack(s, size, nil, nil) })
		if err == nil && t != tSetListpack && n%2 != 0 {
			err = bad("%d entries where pairs are expected", n)
		}
		return emptyIf(n == 0), err
	case tHashListpackExPreG, tHashListpackEx:
		if t == tHashListpackEx {
			if err := r.skip(8); err != nil { // min expiry
				return keep, err
			}
		}
		return v.listpackEx()
	case tListQuicklist, tListQuicklist2:
		return v.quicklist(t)
	case tStreamListpacks, tStreamListpacks2, tStreamListpacks3, tStreamListpacks4:
		return keep, v.stream(t)
	case tModulePreGA:
		return keep, bad("module value in the Redis 4.0 release-candidate format: no Redis release loads it")
	case tModule2:
		id, err := v.plainLength()
		if err != nil {
			return keep, err
		}
		v.module(id)
		return keep, v.moduleValue(id)
	}
	return keep, r.fail("unknown value type %d", t)
}

// hashMetadata walks a hash with field expiries (types 22, 24): [min
// expiry] n × (ttl, field, value).
func (v *verifier) hashMetadata(t byte) (fate, error) {
	var minExpire uint64
	if t == tHashMetadata {
		p, err := v.r.next(8)
		if err != nil {
			return keep, err
		}
		minExpire = binary.LittleEndian.Uint64(p)
	}
	n, err := v.plainLength()
	if err != nil {
		return keep, err
	}
	expired, withTTL := uint64(0), uint64(0)
	for i := uint64(0); i < n; i++ {
		ttl, err := v.plainLength()
		if err != nil {
			return keep, err
		}
		at := ttl
		if t == tHashMetadata && ttl != 0 { // relative to the minimum, +1
			at = ttl + minExpire - 1
			if at < ttl { // wrapped
				return keep, bad("hash field expiry overflows")
			}
		}
		if at > ebExpireTimeMax {
			return keep, bad("hash field expiry %d beyond the largest Redis accepts", at)
		}
		if at != 0 {
			withTTL++
			if int64(at) < v.now {
				expired++
			}
		}
		if err := v.skipStrings(2); err != nil {
			return keep, err
		}
	}
	return v.hashFate(n, expired, withTTL), nil
}

func (v *verifier) hashFate(n, expired, withTTL uint64) fate {
	switch {
	case n == 0:
		return dropEmpty
	case expired == n:
		return dropFieldsExpired
	}
	if withTTL > 0 {
		v.info.FieldExpiryHashes++
	}
	return keep
}

// listpackEx walks a listpack hash with field expiries (types 23, 25):
// (field, value, ttl) triples, the ttl an integer, 0 for none.
func (v *verifier) listpackEx() (fate, error) {
	var expired, withTTL uint64
	n, err := v.blob(func(s bytesSource, size uint64) (uint64, error) {
		return listpack(s, size, func(i uint64) bool { return i%3 == 2 }, func(i uint64, e *lpEntry) error {
			if i%3 != 2 {
				return nil
			}
			at, ok := e.intValue()
			if !ok || at < 0 || at > ebExpireTimeMax {
				return bad("hash field expiry entry %d is not a valid expiry time", i)
			}
			if at != 0 {
				withTTL++
				if at < v.now {
					expired++
				}
			}
			return nil
		})
	})
	if err != nil {
		return keep, err
	}
	if n%3 != 0 {
		return keep, bad("%d entries where (field, value, expiry) triples are expected", n)
	}
	return v.hashFate(n/3, expired, withTTL), nil
}

// quicklist walks a list of ziplists (14) or of (container, listpack or
// plain element) nodes (18); empty nodes are skipped as Redis does.
func (v *verifier) quicklist(t byte) (fate, error) {
	n, err := v.plainLength()
	if err != nil {
		return keep, err
	}
	total := uint64(0)
	for i := uint64(0); i < n; i++ {
		container := uint64(2) // packed
		if t == tListQuicklist2 {
			if container, err = v.plainLength(); err != nil {
				return keep, err
			}
			if container != 1 && container != 2 {
				return keep, bad("quicklist node container %d (not plain 1 or packed 2)", container)
			}
		}
		walk := ziplist
		switch {
		case container == 1:
			walk = func(s bytesSource, size uint64) (uint64, error) { return 1, s.skip(size) }
		case t == tListQuicklist2:
			walk = func(s bytesSource, size uint64) (uint64, error) { return listpack(s, size, nil, nil) }
		}
		c, err := v.blob(func(s bytesSource, size uint64) (uint64, error) {
			if size == 0 {
				return 0, bad("empty quicklist node")
			}
			return walk(s, size)
		})
		if err != nil {
			return keep, err
		}
		total += c // at most the file's size: no overflow
	}
	return emptyIf(total == 0), nil
}

// moduleValue walks a module's opcode-tagged value (RDB_MODULE_OPCODE_*)
// to its EOF opcode.
const modUint = 2

func (v *verifier) moduleValue(id uint64) error {
	for {
		op, err := v.plainLength()
		if err != nil {
			return err
		}
		switch op {
		case 0: // EOF
			return nil
		case 1, modUint: // signed / unsigned integer
			if _, err := v.plainLength(); err != nil {
				return err
			}
		case 3: // float
			if err := v.r.skip(4); err != nil {
				return err
			}
		case 4: // double
			if err := v.r.skip(8); err != nil {
				return err
			}
		case 5: // string
			if _, err := v.skipString(); err != nil {
				return err
			}
		default:
			return v.r.fail("module %s: unknown value opcode %d", moduleName(id), op)
		}
	}
}

// stream walks a stream value (types 15, 19, 21).
func (v *verifier) stream(t byte) error {
	n, err := v.plainLength() // listpacks
	if err != nil {
		return err
	}
	for i := uint64(0); i < n; i++ {
		k, err := v.skipString() // master entry ID
		if err != nil {
			return err
		}
		if k != 16 {
			return bad("stream node key of %d bytes is not a stream ID (16)", k)
		}
		c, err := v.blob(func(s bytesSource, size uint64) (uint64, error) { return listpack(s, size, nil, nil) })
		if err != nil {
			return err
		}
		if c == 0 {
			return bad("empty listpack inside a stream")
		}
	}
	lens := 3 // length, last id ms, last id seq
	if t >= tStreamListpacks2 {
		lens += 5 // first id ms/seq, max deleted ms/seq, entries added
	}
	if err := v.lengths(lens); err != nil {
		return err
	}
	groups, err := v.plainLength()
	if err != nil {
		return err
	}
	for g := uint64(0); g < groups; g++ {
		if err := v.streamGroup(t); err != nil {
			return err
		}
	}
	if t >= tStreamListpacks4 {
		return v.streamIDMP()
	}
	return nil
}

// streamGroup reads one consumer group: its name, last id (and entries
// read), its pending entries and its consumers.
func (v *verifier) streamGroup(t byte) error {
	r := v.r
	if _, err := v.skipString(); err != nil { // name
		return err
	}
	k := 2 // last id ms, seq
	if t >= tStreamListpacks2 {
		k++ // entries read
	}
	if err := v.lengths(k); err != nil {
		return err
	}
	pel, err := v.plainLength()
	if err != nil {
		return err
	}
	for i := uint64(0); i < pel; i++ {
		if err := r.skip(16 + 8); err != nil { // raw id, delivery time
			return err
		}
		if _, err := v.plainLength(); err != nil { // delivery count
			return err
		}
	}
	consumers, err := v.plainLength()
	if err != nil {
		return err
	}
	for c := uint64(0); c < consumers; c++ {
		if err := v.streamConsumer(t); err != nil {
			return err
		}
	}
	return nil
}

// streamConsumer reads one consumer: name, seen (and active) time, its
// pending ids.
func (v *verifier) streamConsumer(t byte) error {
	r := v.r
	if _, err := v.skipString(); err != nil {
		return err
	}
	seen := uint64(8)
	if t >= tStreamListpacks3 {
		seen += 8 // active time
	}
	if err := r.skip(seen); err != nil {
		return err
	}
	cpel, err := v.plainLength()
	if err != nil {
		return err
	}
	for i := uint64(0); i < cpel; i++ { // raw ids: no 16*n to overflow
		if err := r.skip(16); err != nil {
			return err
		}
	}
	return nil
}

// streamIDMP reads a stream's IDMP state: duration, max entries,
// producers; per producer its id and (iid, stream id) entries; 2 counters.
func (v *verifier) streamIDMP() error {
	if err := v.lengths(2); err != nil {
		return err
	}
	producers, err := v.plainLength()
	if err != nil {
		return err
	}
	for p := uint64(0); p < producers; p++ {
		if _, err := v.skipString(); err != nil {
			return err
		}
		entries, err := v.plainLength()
		if err != nil {
			return err
		}
		for e := uint64(0); e < entries; e++ {
			if _, err := v.skipString(); err != nil {
				return err
			}
			if err := v.lengths(2); err != nil {
				return err
			}
		}
	}
	return v.lengths(2)
}

func typeName(t byte) string {
	names := map[byte]string{
		0: "string", 1: "list", 2: "set", 3: "zset", 4: "hash", 5: "zset-v2", 6: "module-pre-ga", 7: "module-v2",
		9: "hash-zipmap", 10: "list-ziplist", 11: "set-intset", 12: "zset-ziplist", 13: "hash-ziplist",
		14: "quicklist", 15: "stream", 16: "hash-listpack", 17: "zset-listpack", 18: "quicklist-v2",
		19: "stream-v2", 20: "set-listpack", 21: "stream-v3", 22: "hash-hfe-pre-ga", 23: "hash-listpack-hfe-pre-ga",
		24: "hash-hfe", 25: "hash-listpack-hfe", 26: "stream-v4",
	}
	if n, ok := names[t]; ok {
		return n
	}
	return "unknown"
}

// LoadableBy returns the newest RDB version a Redis server version loads:
// 2.6/2.8/3.0 → 6, 3.2 → 7, 4.0 → 8, 5.x/6.x → 9, 7.0 → 10, 7.2 → 11,
// 7.4 to 8.4 → 12, 8.6 → 13, newer → 14.
func LoadableBy(redisVersion string) (int, error) {
	var major, minor int
	if _, err := fmt.Sscanf(redisVersion, "%d.%d", &major, &minor); err != nil {
		return 0, fmt.Errorf("unreadable Redis version %q", redisVersion)
	}
	switch {
	case major < 3 || major == 3 && minor < 2:
		return 6, nil
	case major == 3:
		return 7, nil
	case major == 4:
		return 8, nil
	case major < 7:
		return 9, nil
	case major == 7 && minor < 2:
		return 10, nil
	case major == 7 && minor < 4:
		return 11, nil
	case major < 8 || major == 8 && minor < 6:
		return 12, nil
	case major == 8 && minor < 8:
		return 13, nil
	}
	return 14, nil
}
