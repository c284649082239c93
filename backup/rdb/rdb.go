// Package rdb verifies Redis RDB files offline: the REDIS magic, the RDB
// version, a walk over every record to the EOF opcode, and the CRC64 (Jones
// polynomial, as Redis computes it) of the whole file. It reads the file as a
// stream and never holds a value whole in memory.
package rdb

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc64"
	"io"
	"strconv"
)

// MaxVersion is the newest RDB format this verifier walks.
const MaxVersion = 12

// Info is what verification learned about a file.
type Info struct {
	Version  int               `json:"rdbVersion"`
	Keys     int64             `json:"keys"`
	Expires  int64             `json:"expires"`       // keys with an expiry
	Aux      map[string]string `json:"aux,omitempty"` // redis-ver, ctime, used-mem, ...
	Size     int64             `json:"size"`
	Checksum uint64            `json:"crc64"`
	// ChecksumSkipped: the file was saved with rdbchecksum no (CRC of 0).
	ChecksumSkipped bool `json:"checksumSkipped,omitempty"`
}

// Opcodes and value types from Redis's rdb.h.
const (
	opFunction2    = 245
	opModuleAux    = 247
	opIdle         = 248
	opFreq         = 249
	opAux          = 250
	opResizeDB     = 251
	opExpireTimeMs = 252
	opExpireTime   = 253
	opSelectDB     = 254
	opEOF          = 255
	opSlotInfo     = 244
	opFunction     = 246 // pre-GA, rejected by Redis too
)

// The Jones polynomial, reflected, as Redis's crc64.c uses it (init 0, no
// final xor).
var jones = crc64.MakeTable(0x95ac9329ac4bc9b5)

// crcUpdate applies Redis's CRC64 (init 0, no xor) on top of Go's, which
// complements before and after.
func crcUpdate(crc uint64, p []byte) uint64 { return ^crc64.Update(^crc, jones, p) }

// CRC64 is Redis's crc64(0, p).
func CRC64(p []byte) uint64 { return crcUpdate(0, p) }

// Error is a verification failure at a byte offset.
type Error struct {
	Offset int64
	Msg    string
}

func (e *Error) Error() string { return fmt.Sprintf("rdb: offset %d: %s", e.Offset, e.Msg) }

// reader counts and checksums every byte it hands out.
type reader struct {
	r       *bufio.Reader
	off     int64
	crc     uint64
	buf     [8]byte
	scratch []byte // reused by skip
}

func (r *reader) fail(format string, a ...any) error {
	return &Error{Offset: r.off, Msg: fmt.Sprintf(format, a...)}
}

func (r *reader) full(p []byte) error {
	n, err := io.ReadFull(r.r, p)
	r.crc = crcUpdate(r.crc, p[:n])
	r.off += int64(n)
	if err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
			return r.fail("file ends early (truncated)")
		}
		return err
	}
	return nil
}

func (r *reader) byte() (byte, error) {
	if err := r.full(r.buf[:1]); err != nil {
		return 0, err
	}
	return r.buf[0], nil
}

// skip reads and checksums n bytes without keeping them.
func (r *reader) skip(n uint64) error {
	if r.scratch == nil {
		r.scratch = make([]byte, 32<<10)
	}
	for n > 0 {
		m := uint64(len(r.scratch))
		if n < m {
			m = n
		}
		if err := r.full(r.scratch[:m]); err != nil {
			return err
		}
		n -= m
	}
	return nil
}

// length reads an RDB length; special reports an encoded-string marker
// (then the value is the encoding type).
func (r *reader) length() (n uint64, special bool, err error) {
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
			if err := r.full(r.buf[:4]); err != nil {
				return 0, false, err
			}
			return uint64(binary.BigEndian.Uint32(r.buf[:4])), false, nil
		case 0x81:
			if err := r.full(r.buf[:8]); err != nil {
				return 0, false, err
			}
			return binary.BigEndian.Uint64(r.buf[:8]), false, nil
		}
		return 0, false, r.fail("bad length prefix 0x%02x", b)
	}
	return uint64(b & 0x3f), true, nil
}

func (r *reader) plainLength() (uint64, error) {
	n, special, err := r.length()
	if err == nil && special {
		err = r.fail("encoded value where a length was expected")
	}
	return n, err
}

const maxKept = 1 << 16 // strings longer than this are skipped, not kept

// str reads an RDB string; it returns its content only when keep and short.
func (r *reader) str(keep bool) ([]byte, error) {
	n, special, err := r.length()
	if err != nil {
		return nil, err
	}
	if special {
		switch n {
		case 0:
			b, err := r.byte()
			return []byte(strconv.Itoa(int(int8(b)))), err
		case 1:
			err := r.full(r.buf[:2])
			return []byte(strconv.Itoa(int(int16(binary.LittleEndian.Uint16(r.buf[:2]))))), err
		case 2:
			err := r.full(r.buf[:4])
			return []byte(strconv.Itoa(int(int32(binary.LittleEndian.Uint32(r.buf[:4]))))), err
		case 3: // LZF: compressed length, uncompressed length, data
			clen, err := r.plainLength()
			if err != nil {
				return nil, err
			}
			if _, err := r.plainLength(); err != nil {
				return nil, err
			}
			return nil, r.skip(clen)
		}
		return nil, r.fail("unknown string encoding %d", n)
	}
	if keep && n <= maxKept {
		b := make([]byte, n)
		return b, r.full(b)
	}
	return nil, r.skip(n)
}

func (r *reader) skipStrings(n uint64) error {
	for i := uint64(0); i < n; i++ {
		if _, err := r.str(false); err != nil {
			return err
		}
	}
	return nil
}

// Verify walks an RDB stream and checks its checksum.
func Verify(src io.Reader) (Info, error) {
	r := &reader{r: bufio.NewReaderSize(src, 64<<10)}
	info := Info{Aux: map[string]string{}}
	var head [9]byte
	if err := r.full(head[:]); err != nil {
		return info, r.fail("too short for an RDB header")
	}
	if string(head[:5]) != "REDIS" {
		return info, &Error{Offset: 0, Msg: "no REDIS magic: not an RDB file"}
	}
	v, err := strconv.Atoi(string(head[5:9]))
	if err != nil {
		return info, &Error{Offset: 5, Msg: fmt.Sprintf("bad RDB version %q", head[5:9])}
	}
	info.Version = v
	if v < 1 || v > MaxVersion {
		return info, &Error{Offset: 5, Msg: fmt.Sprintf("RDB version %d is not one this verifier knows (1-%d)", v, MaxVersion)}
	}
	for {
		op, err := r.byte()
		if err != nil {
			return info, err
		}
		switch op {
		case opEOF:
			info.Size = r.off
			want := r.crc
			if v >= 5 {
				if _, err := io.ReadFull(r.r, r.buf[:8]); err != nil {
					return info, r.fail("checksum missing (truncated)")
				}
				got := binary.LittleEndian.Uint64(r.buf[:8])
				info.Size += 8
				info.Checksum = got
				if got == 0 {
					info.ChecksumSkipped = true
				} else if got != want {
					return info, &Error{Offset: r.off, Msg: fmt.Sprintf("CRC64 mismatch: file says %016x, content gives %016x", got, want)}
				}
			}
			if _, err := r.r.ReadByte(); err == nil {
				return info, &Error{Offset: info.Size, Msg: "data after the end of the RDB"}
			}
			return info, nil
		case opAux:
			k, err := r.str(true)
			if err != nil {
				return info, err
			}
			val, err := r.str(true)
			if err != nil {
				return info, err
			}
			info.Aux[string(k)] = string(val)
		case opSelectDB:
			if _, err := r.plainLength(); err != nil {
				return info, err
			}
		case opResizeDB:
			if _, err := r.plainLength(); err != nil {
				return info, err
			}
			if _, err := r.plainLength(); err != nil {
				return info, err
			}
		case opSlotInfo:
			for i := 0; i < 3; i++ {
				if _, err := r.plainLength(); err != nil {
					return info, err
				}
			}
		case opExpireTimeMs:
			if err := r.skip(8); err != nil {
				return info, err
			}
			info.Expires++
		case opExpireTime:
			if err := r.skip(4); err != nil {
				return info, err
			}
			info.Expires++
		case opIdle:
			if _, err := r.plainLength(); err != nil {
				return info, err
			}
		case opFreq:
			if err := r.skip(1); err != nil {
				return info, err
			}
		case opFunction2:
			if _, err := r.str(false); err != nil {
				return info, err
			}
		case opModuleAux:
			if _, err := r.plainLength(); err != nil { // module id
				return info, err
			}
			if _, err := r.plainLength(); err != nil { // when
				return info, err
			}
			if err := r.moduleValue(); err != nil {
				return info, err
			}
		case opFunction:
			return info, r.fail("pre-release function opcode: not loadable by any Redis release")
		default:
			if _, err := r.str(false); err != nil { // key
				return info, err
			}
			if err := r.value(op, v); err != nil {
				return info, err
			}
			info.Keys++
		}
	}
}

// value skips one value of type t.
func (r *reader) value(t byte, version int) error {
	switch t {
	case 0: // string
		_, err := r.str(false)
		return err
	case 1, 2: // list, set: n strings
		n, err := r.plainLength()
		if err != nil {
			return err
		}
		return r.skipStrings(n)
	case 3: // zset: member + string score
		n, err := r.plainLength()
		if err != nil {
			return err
		}
		for i := uint64(0); i < n; i++ {
			if _, err := r.str(false); err != nil {
				return err
			}
			l, err := r.byte()
			if err != nil {
				return err
			}
			if l < 253 {
				if err := r.skip(uint64(l)); err != nil {
					return err
				}
			}
		}
		return nil
	case 5: // zset2: member + binary double
		n, err := r.plainLength()
		if err != nil {
			return err
		}
		for i := uint64(0); i < n; i++ {
			if _, err := r.str(false); err != nil {
				return err
			}
			if err := r.skip(8); err != nil {
				return err
			}
		}
		return nil
	case 4: // hash: field, value pairs
		n, err := r.plainLength()
		if err != nil {
			return err
		}
		return r.skipStrings(2 * n)
	case 9, 10, 11, 12, 13, 16, 17, 20: // a single encoded blob (zipmap, ziplist, intset, listpack)
		_, err := r.str(false)
		return err
	case 14: // quicklist: n ziplists
		n, err := r.plainLength()
		if err != nil {
			return err
		}
		return r.skipStrings(n)
	case 18: // quicklist2: n (container, blob)
		n, err := r.plainLength()
		if err != nil {
			return err
		}
		for i := uint64(0); i < n; i++ {
			if _, err := r.plainLength(); err != nil {
				return err
			}
			if _, err := r.str(false); err != nil {
				return err
			}
		}
		return nil
	case 15, 19, 21:
		return r.stream(t)
	case 22, 24: // hash with field expiry metadata (Redis 7.4+): [minExpire] n × (ttl, field, value)
		if t == 24 {
			if err := r.skip(8); err != nil {
				return err
			}
		}
		n, err := r.plainLength()
		if err != nil {
			return err
		}
		for i := uint64(0); i < n; i++ {
			if _, err := r.plainLength(); err != nil {
				return err
			}
			if err := r.skipStrings(2); err != nil {
				return err
			}
		}
		return nil
	case 23, 25: // listpack hash with expiry: [minExpire] blob
		if t == 25 {
			if err := r.skip(8); err != nil {
				return err
			}
		}
		_, err := r.str(false)
		return err
	case 6, 7: // module values
		if _, err := r.plainLength(); err != nil { // module id
			return err
		}
		if t == 6 {
			return r.fail("module value in the pre-4.0 format cannot be walked")
		}
		return r.moduleValue()
	}
	return r.fail("unknown value type %d", t)
}

// moduleValue skips a module's opcode-tagged value (RDB_MODULE_OPCODE_*).
func (r *reader) moduleValue() error {
	for {
		op, err := r.plainLength()
		if err != nil {
			return err
		}
		switch op {
		case 0: // EOF
			return nil
		case 1, 2: // signed / unsigned int
			if _, err := r.plainLength(); err != nil {
				return err
			}
		case 3: // float
			if err := r.skip(4); err != nil {
				return err
			}
		case 4: // double
			if err := r.skip(8); err != nil {
				return err
			}
		case 5: // string
			if _, err := r.str(false); err != nil {
				return err
			}
		default:
			return r.fail("unknown module opcode %d", op)
		}
	}
}

// stream skips a stream value (types 15, 19, 21).
func (r *reader) stream(t byte) error {
	n, err := r.plainLength() // listpacks
	if err != nil {
		return err
	}
	if err := r.skipStrings(2 * n); err != nil { // (master id, listpack) pairs
		return err
	}
	lens := 3 // length, last id ms, last id seq
	if t >= 19 {
		lens += 5 // first id ms/seq, max deleted ms/seq, entries added
	}
	for i := 0; i < lens; i++ {
		if _, err := r.plainLength(); err != nil {
			return err
		}
	}
	groups, err := r.plainLength()
	if err != nil {
		return err
	}
	for g := uint64(0); g < groups; g++ {
		if _, err := r.str(false); err != nil { // name
			return err
		}
		k := 2 // last id ms, seq
		if t >= 19 {
			k++ // entries read
		}
		for i := 0; i < k; i++ {
			if _, err := r.plainLength(); err != nil {
				return err
			}
		}
		pel, err := r.plainLength()
		if err != nil {
			return err
		}
		for i := uint64(0); i < pel; i++ {
			if err := r.skip(16 + 8); err != nil { // raw id, delivery time
				return err
			}
			if _, err := r.plainLength(); err != nil { // delivery count
				return err
			}
		}
		consumers, err := r.plainLength()
		if err != nil {
			return err
		}
		for c := uint64(0); c < consumers; c++ {
			if _, err := r.str(false); err != nil {
				return err
			}
			seen := uint64(8)
			if t >= 21 {
				seen += 8 // active time
			}
			if err := r.skip(seen); err != nil {
				return err
			}
			cpel, err := r.plainLength()
			if err != nil {
				return err
			}
			if err := r.skip(16 * cpel); err != nil {
				return err
			}
		}
	}
	return nil
}

// LoadableBy returns the newest RDB version a Redis server version loads:
// 6.x → 9, 7.0 → 10, 7.2 → 11, newer → 12.
func LoadableBy(redisVersion string) (int, error) {
	var major, minor int
	if _, err := fmt.Sscanf(redisVersion, "%d.%d", &major, &minor); err != nil {
		return 0, fmt.Errorf("unreadable Redis version %q", redisVersion)
	}
	switch {
	case major < 6:
		return 9, nil // 5.x writes and reads 9 too
	case major == 6:
		return 9, nil
	case major == 7 && minor < 2:
		return 10, nil
	case major == 7 && minor < 4:
		return 11, nil
	}
	return 12, nil
}
