package rdb

import (
	"encoding/binary"
	"fmt"
	"strconv"
)

// The compact encodings Redis stores as one string value (ziplist,
// listpack, intset, zipmap) are walked entry by entry from a bytesSource:
// never held whole, so a value of any size takes the same memory. Each
// walker checks the structure the way Redis's loader would before it uses
// the value, and returns the element count Redis would see.

type blobError struct{ msg string }

func (e *blobError) Error() string { return e.msg }

func bad(format string, a ...any) error {
	if len(a) == 0 {
		return &blobError{format}
	}
	return &blobError{fmt.Sprintf(format, a...)}
}

// ziplist walks a ziplist (Redis 2.6 to 6.2 lists, hashes, zsets) of size
// bytes with the checks of ziplistValidateIntegrity(deep): header size, tail
// offset, each entry's prevlen, the count, the end byte.
func ziplist(s bytesSource, size uint64) (uint64, error) {
	const header = 10
	if size < header+1 {
		return 0, bad("ziplist of %d bytes is shorter than its header", size)
	}
	h, err := s.next(header)
	if err != nil {
		return 0, err
	}
	zlbytes, tail, zllen := uint64(binary.LittleEndian.Uint32(h)), uint64(binary.LittleEndian.Uint32(h[4:])), uint64(binary.LittleEndian.Uint16(h[8:]))
	if zlbytes != size {
		return 0, bad("ziplist header says %d bytes, the value holds %d", zlbytes, size)
	}
	pos, prevLen, last, count := uint64(header), uint64(0), uint64(header), uint64(0)
	for {
		p, err := s.next(1)
		if err != nil {
			return 0, err
		}
		b := p[0]
		if b == 0xff {
			pos++
			break
		}
		start := pos
		hl, data, err := ziplistEntryHeader(s, b, count, prevLen)
		if err != nil {
			return 0, err
		}
		if data > size-pos-hl || size-pos-hl-data < 1 { // room left for the end byte
			return 0, bad("ziplist entry %d runs past the end", count)
		}
		if err := s.skip(data); err != nil {
			return 0, err
		}
		pos += hl + data
		prevLen, last = pos-start, start
		count++
	}
	if pos != size {
		return 0, bad("ziplist ends at %d of %d bytes", pos, size)
	}
	if tail != last {
		return 0, bad("ziplist tail offset %d, last entry at %d", tail, last)
	}
	if zllen != 0xffff && zllen != count {
		return 0, bad("ziplist header says %d entries, holds %d", zllen, count)
	}
	return count, nil
}

// ziplistEntryHeader reads the rest of a ziplist entry's header after its
// first byte b: the prevlen (checked against the previous entry's size) and
// the encoding. It returns the header's size and the data's.
func ziplistEntryHeader(s bytesSource, b byte, count, prevLen uint64) (hl, data uint64, err error) {
	var prev uint64
	if b < 254 {
		prev, hl = uint64(b), 1
	} else {
		q, err := s.next(4)
		if err != nil {
			return 0, 0, err
		}
		prev, hl = uint64(binary.LittleEndian.Uint32(q)), 5
	}
	if prev != prevLen {
		return 0, 0, bad("ziplist entry %d: prevlen %d, previous entry is %d bytes", count, prev, prevLen)
	}
	p, err := s.next(1)
	if err != nil {
		return 0, 0, err
	}
	e := p[0]
	hl++
	switch e >> 6 {
	case 0:
		data = uint64(e & 0x3f)
	case 1:
		q, err := s.next(1)
		if err != nil {
			return 0, 0, err
		}
		data, hl = uint64(e&0x3f)<<8|uint64(q[0]), hl+1
	case 2:
		q, err := s.next(4)
		if err != nil {
			return 0, 0, err
		}
		data, hl = uint64(binary.BigEndian.Uint32(q)), hl+4
	default:
		switch {
		case e == 0xc0:
			data = 2
		case e == 0xd0:
			data = 4
		case e == 0xe0:
			data = 8
		case e == 0xf0:
			data = 3
		case e == 0xfe:
			data = 1
		case e >= 0xf1 && e <= 0xfd:
			data = 0
		default:
			return 0, 0, bad("ziplist entry %d: unknown encoding 0x%02x", count, e)
		}
	}
	return hl, data, nil
}

// lpBacklen is the size of a listpack entry's back-length field for an
// entry of l bytes.
func lpBacklen(l uint64) uint64 {
	switch {
	case l <= 127:
		return 1
	case l < 16383:
		return 2
	case l < 2097151:
		return 3
	case l < 268435455:
		return 4
	}
	return 5
}

// lpEntry is one listpack entry: an integer, or a string of length n (the
// string's bytes are skipped unless keep).
type lpEntry struct {
	isInt bool
	i     int64
	n     uint64
	str   []byte // kept strings only (short)
}

// lpEntryHeader reads a listpack entry's encoding after its first byte b:
// an integer is decoded into e; for a string it returns the header's size
// and the data's.
func lpEntryHeader(s bytesSource, b byte, count uint64, e *lpEntry) (hl, data uint64, err error) {
	switch {
	case b&0x80 == 0:
		e.isInt, e.i, hl = true, int64(b&0x7f), 1
	case b&0xc0 == 0x80:
		hl, data = 1, uint64(b&0x3f)
	case b&0xe0 == 0xc0:
		q, err := s.next(1)
		if err != nil {
			return 0, 0, err
		}
		v := int64(b&0x1f)<<8 | int64(q[0])
		if v >= 1<<12 {
			v -= 1 << 13
		}
		e.isInt, e.i, hl = true, v, 2
	case b&0xf0 == 0xe0:
		q, err := s.next(1)
		if err != nil {
			return 0, 0, err
		}
		hl, data = 2, uint64(b&0x0f)<<8|uint64(q[0])
	case b == 0xf0:
		q, err := s.next(4)
		if err != nil {
			return 0, 0, err
		}
		hl, data = 5, uint64(binary.LittleEndian.Uint32(q))
	case b >= 0xf1 && b <= 0xf4:
		w := int(b-0xf0) + 1 // 2, 3, 4 bytes
		if b == 0xf4 {
			w = 8
		}
		q, err := s.next(w)
		if err != nil {
			return 0, 0, err
		}
		u := le(q)
		shift := 64 - 8*uint(w)
		e.isInt, e.i, hl = true, int64(u<<shift)>>shift, 1+uint64(w)
	default:
		return 0, 0, bad("listpack entry %d: unknown encoding 0x%02x", count, b)
	}
	return hl, data, nil
}

// listpack walks a listpack (Redis 7+ compact encodings, streams) of size
// bytes: header size and count, each entry's encoding and back-length, the
// end byte; each(i, e) sees every entry (nil: skip the values).
func listpack(s bytesSource, size uint64, keep func(i uint64) bool, each func(i uint64, e *lpEntry) error) (uint64, error) {
	const header = 6
	if size < header+1 {
		return 0, bad("listpack of %d bytes is shorter than its header", size)
	}
	h, err := s.next(header)
	if err != nil {
		return 0, err
	}
	total, num := uint64(binary.LittleEndian.Uint32(h)), uint64(binary.LittleEndian.Uint16(h[4:]))
	if total != size {
		return 0, bad("listpack header says %d bytes, the value holds %d", total, size)
	}
	pos, count := uint64(header), uint64(0)
	var e lpEntry
	for {
		p, err := s.next(1)
		if err != nil {
			return 0, err
		}
		b := p[0]
		if b == 0xff {
			pos++
			break
		}
		e = lpEntry{}
		hl, data, err := lpEntryHeader(s, b, count, &e)
		if err != nil {
			return 0, err
		}
		entry := hl + data
		bl := lpBacklen(entry)
		if pos > size || entry > size-pos || bl > size-pos-entry || size-pos-entry-bl < 1 {
			return 0, bad("listpack entry %d runs past the end", count)
		}
		if !e.isInt {
			e.n = data
			if keep != nil && keep(count) && data <= 64 {
				q, err := s.next(int(data))
				if err != nil {
					return 0, err
				}
				e.str = q
			} else if err := s.skip(data); err != nil {
				return 0, err
			}
		}
		if each != nil {
			if err := each(count, &e); err != nil {
				return 0, err
			}
		}
		q, err := s.next(int(bl))
		if err != nil {
			return 0, err
		}
		if !backlenIs(q, entry) {
			return 0, bad("listpack entry %d: back-length does not match its %d bytes", count, entry)
		}
		pos += entry + bl
		count++
	}
	if pos != size {
		return 0, bad("listpack ends at %d of %d bytes", pos, size)
	}
	if num != 0xffff && num != count {
		return 0, bad("listpack header says %d entries, holds %d", num, count)
	}
	return count, nil
}

// backlenIs checks p is lpEncodeBacklen(l): big-endian 7-bit groups, every
// byte but the first flagged with 128.
func backlenIs(p []byte, l uint64) bool {
	var v uint64
	for i, b := range p {
		if i > 0 && b&128 == 0 {
			return false
		}
		v = v<<7 | uint64(b&127)
	}
	return v == l
}

// intValue is an entry as an integer, as lpGetIntegerValue reads it.
func (e *lpEntry) intValue() (int64, bool) {
	if e.isInt {
		return e.i, true
	}
	if e.str == nil {
		return 0, false
	}
	v, err := strconv.ParseInt(string(e.str), 10, 64)
	return v, err == nil
}

// intset checks an intset (sets of integers): encoding 2, 4 or 8, the
// length fits the value exactly, not empty.
func intset(s bytesSource, size uint64) (uint64, error) {
	if size < 8 {
		return 0, bad("intset of %d bytes is shorter than its header", size)
	}
	h, err := s.next(8)
	if err != nil {
		return 0, err
	}
	enc, n := uint64(binary.LittleEndian.Uint32(h)), uint64(binary.LittleEndian.Uint32(h[4:]))
	if enc != 2 && enc != 4 && enc != 8 {
		return 0, bad("intset encoding %d (not 2, 4 or 8)", enc)
	}
	if n*enc != size-8 { // n < 2^32, enc <= 8: no overflow
		return 0, bad("intset of %d × %d bytes in a value of %d", n, enc, size)
	}
	if n == 0 {
		return 0, bad("empty intset")
	}
	return n, s.skip(size - 8)
}

// zipmap walks a zipmap (Redis 2.4 and older small hashes) as
// zipmapValidateIntegrity(deep) does and returns its number of fields.
func zipmap(s bytesSource, size uint64) (uint64, error) {
	if size < 2 {
		return 0, bad("zipmap of %d bytes is too short", size)
	}
	p, err := s.next(1)
	if err != nil {
		return 0, err
	}
	zmlen := uint64(p[0])
	pos, count := uint64(1), uint64(0)
	length := func() (uint64, uint64, bool, error) { // value, field size, end marker
		p, err := s.next(1)
		if err != nil {
			return 0, 0, false, err
		}
		switch p[0] {
		case 255:
			return 0, 1, true, nil
		case 254:
			q, err := s.next(4)
			if err != nil {
				return 0, 0, false, err
			}
			return uint64(binary.LittleEndian.Uint32(q)), 5, false, nil
		}
		return uint64(p[0]), 1, false, nil
	}
	for {
		l, ls, end, err := length()
		if err != nil {
			return 0, err
		}
		if end {
			pos++
			break
		}
		if ls > size-pos || l > size-pos-ls {
			return 0, bad("zipmap field %d runs past the end", count)
		}
		if err := s.skip(l); err != nil {
			return 0, err
		}
		pos += ls + l
		if pos >= size {
			return 0, bad("zipmap field %d runs past the end", count)
		}
		l, ls, end, err = length()
		if err != nil {
			return 0, err
		}
		if end || ls > size-pos || size-pos-ls < 1 {
			return 0, bad("zipmap value %d runs past the end", count)
		}
		pos += ls
		f, err := s.next(1)
		if err != nil {
			return 0, err
		}
		pos++
		free := uint64(f[0])
		if l > size-pos || free > size-pos-l || size-pos-l-free < 1 {
			return 0, bad("zipmap value %d runs past the end", count)
		}
		if err := s.skip(l + free); err != nil {
			return 0, err
		}
		pos += l + free
		count++
	}
	if pos != size {
		return 0, bad("zipmap ends at %d of %d bytes", pos, size)
	}
	if zmlen < 254 && zmlen != count {
		return 0, bad("zipmap header says %d fields, holds %d", zmlen, count)
	}
	return count, nil
}
