package rdb

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"
)

// bufSize is the reader's one buffer: reads and checksums happen in chunks of
// this size, so the CRC runs over long runs of bytes, not record by record.
const bufSize = 256 << 10

// reader hands out the bytes of an RDB stream, counting them and folding
// every byte it has handed out into the CRC-64 lazily, one chunk at a time.
type reader struct {
	src     io.Reader
	buf     []byte
	pos     int   // next unread byte in buf
	end     int   // bytes of buf that hold data
	crcFrom int   // buf[crcFrom:pos] is handed out but not yet checksummed
	base    int64 // file offset of buf[0]
	crc     uint64
	srcErr  error // sticky error from src (io.EOF at the end)
}

// buffers are the readers' buffers, reused across verifications: a verify
// of a small file (or many, as restore and list --verify do) does not
// allocate 256 KiB each time.
var buffers = sync.Pool{New: func() any { return new([bufSize]byte) }}

func newReader(src io.Reader) *reader {
	return &reader{src: src, buf: buffers.Get().(*[bufSize]byte)[:]}
}

var windows = sync.Pool{New: func() any { return new(lzf) }}

// release returns the buffer; the reader is not used after.
func (r *reader) release() {
	buffers.Put((*[bufSize]byte)(r.buf))
	r.buf = nil
}

// off is the file offset of the next byte.
func (r *reader) off() int64 { return r.base + int64(r.pos) }

func (r *reader) fail(format string, a ...any) error {
	return &Error{Offset: r.off(), Msg: fmt.Sprintf(format, a...)}
}

// sumUpTo folds everything handed out so far into the CRC.
func (r *reader) sumUpTo() uint64 {
	r.crc = crcUpdate(r.crc, r.buf[r.crcFrom:r.pos])
	r.crcFrom = r.pos
	return r.crc
}

// fill makes at least need (<= bufSize) unread bytes available.
func (r *reader) fill(need int) error {
	if r.end-r.pos >= need {
		return nil
	}
	r.sumUpTo()
	n := copy(r.buf, r.buf[r.pos:r.end])
	r.base += int64(r.pos)
	r.pos, r.crcFrom, r.end = 0, 0, n
	for r.end < need {
		if r.srcErr != nil {
			if r.srcErr == io.EOF {
				r.pos = r.end // report the offset where the data stops
				return r.fail("file ends early (truncated)")
			}
			return r.srcErr
		}
		m, err := r.src.Read(r.buf[r.end:])
		r.end += m
		if err != nil {
			r.srcErr = err
		}
	}
	return nil
}

// next returns the next n (<= bufSize) bytes; valid until the next call.
func (r *reader) next(n int) ([]byte, error) {
	if err := r.fill(n); err != nil {
		return nil, err
	}
	p := r.buf[r.pos : r.pos+n]
	r.pos += n
	return p, nil
}

func (r *reader) byte() (byte, error) {
	if r.pos < r.end {
		b := r.buf[r.pos]
		r.pos++
		return b, nil
	}
	if err := r.fill(1); err != nil {
		return 0, err
	}
	b := r.buf[r.pos]
	r.pos++
	return b, nil
}

// skip passes over n bytes (checksummed, not kept).
func (r *reader) skip(n uint64) error {
	for {
		avail := uint64(r.end - r.pos)
		if n <= avail {
			r.pos += int(n)
			return nil
		}
		n -= avail
		r.pos = r.end
		if err := r.fill(1); err != nil {
			return err
		}
	}
}

// rest drains the stream after the RDB's end and returns how many bytes it
// held (Redis ignores bytes after the checksum; they are reported).
func (r *reader) rest() (int64, error) {
	n := int64(r.end - r.pos)
	r.pos = r.end
	if r.srcErr != nil {
		if r.srcErr == io.EOF {
			return n, nil
		}
		return n, r.srcErr
	}
	for {
		m, err := r.src.Read(r.buf)
		n += int64(m)
		if err == io.EOF {
			return n, nil
		}
		if err != nil {
			return n, err
		}
	}
}

// bytes is a source of the bytes of one string value: plain from the file,
// or decompressed from LZF.
type bytesSource interface {
	next(n int) ([]byte, error) // n <= 64
	skip(n uint64) error
}

// plain is a string stored as is: left bytes still to come from r.
type plain struct {
	r    *reader
	left uint64
}

func (p *plain) next(n int) ([]byte, error) {
	if uint64(n) > p.left {
		return nil, errShort
	}
	p.left -= uint64(n)
	return p.r.next(n)
}

func (p *plain) skip(n uint64) error {
	if n > p.left {
		return errShort
	}
	p.left -= n
	return p.r.skip(n)
}

var errShort = errors.New("value ends before its content does")

// LZF (liblzf, as Redis uses it): a control byte below 32 starts a literal run
// of ctrl+1 bytes; otherwise a back reference of (ctrl>>5)+2 bytes (a length
// byte follows when that field is 7) at distance ((ctrl&31)<<8 | next byte)+1.
const (
	lzfMaxDist = 8192
	lzfMaxOp   = 7 + 255 + 2 // longest output of one instruction
	lzfWin     = 32 << 10
)

// lzf decompresses one LZF string as a stream, keeping only the window that
// back references may reach: memory is bounded whatever the declared length.
type lzf struct {
	r        *reader
	in       uint64 // compressed bytes not yet read
	out      uint64 // bytes still to be produced
	produced uint64
	win      [lzfWin]byte
	rd, wr   int // unread output is win[rd:wr]
}

func (z *lzf) reset(r *reader, clen, ulen uint64) {
	z.r, z.in, z.out, z.produced, z.rd, z.wr = r, clen, ulen, 0, 0, 0
}

// shift drops the window's bytes that are neither unread nor reachable by
// a back reference, making room for more output.
func (z *lzf) shift() {
	from := min(z.rd, z.wr-lzfMaxDist)
	if from <= 0 {
		return
	}
	n := copy(z.win[:], z.win[from:z.wr])
	z.rd -= from
	z.wr = n
}

// produce decodes instructions until need unread bytes are in the window,
// the window is full, or the output is complete.
func (z *lzf) produce(need int) error {
	if z.wr+lzfMaxOp > len(z.win) {
		z.shift()
	}
	r := z.r
	for z.out > 0 && z.wr-z.rd < need && z.wr+lzfMaxOp <= len(z.win) {
		if z.in == 0 {
			return r.fail("LZF data ends %d bytes before its declared length", z.out)
		}
		want := 34 // the longest instruction: a control byte and 32 literals, or 3 bytes
		if z.in < uint64(want) {
			want = int(z.in)
		}
		if r.end-r.pos < want {
			if err := r.fill(want); err != nil {
				return err
			}
		}
		b := r.buf[r.pos : r.pos+want]
		ctrl := b[0]
		if ctrl < 32 { // literal run
			n := int(ctrl) + 1
			if uint64(n)+1 > z.in {
				return r.fail("LZF literal runs past the compressed data")
			}
			if uint64(n) > z.out {
				return r.fail("LZF data decompresses to more than its declared length")
			}
			copy(z.win[z.wr:], b[1:1+n])
			r.pos += 1 + n
			z.in -= uint64(1 + n)
			z.wr += n
			z.out -= uint64(n)
			z.produced += uint64(n)
			continue
		}
		n, i := int(ctrl>>5), 1 // back reference
		if n == 7 {
			if z.in < 3 {
				return r.fail("LZF back reference cut short")
			}
			n += int(b[1])
			i = 2
		}
		if z.in < uint64(i)+1 {
			return r.fail("LZF back reference cut short")
		}
		dist := (int(ctrl&31)<<8 | int(b[i])) + 1
		i++
		n += 2
		if uint64(n) > z.out {
			return r.fail("LZF data decompresses to more than its declared length")
		}
		if uint64(dist) > z.produced {
			return r.fail("LZF back reference before the start of the data")
		}
		r.pos += i
		z.in -= uint64(i)
		src := z.wr - dist
		if dist >= n {
			copy(z.win[z.wr:z.wr+n], z.win[src:src+n])
		} else { // overlapping: a run, byte by byte
			for k := 0; k < n; k++ {
				z.win[z.wr+k] = z.win[src+k]
			}
		}
		z.wr += n
		z.out -= uint64(n)
		z.produced += uint64(n)
	}
	return nil
}

func (z *lzf) next(n int) ([]byte, error) {
	for z.wr-z.rd < n {
		if z.out == 0 {
			return nil, errShort
		}
		if err := z.produce(n); err != nil {
			return nil, err
		}
	}
	p := z.win[z.rd : z.rd+n]
	z.rd += n
	return p, nil
}

func (z *lzf) skip(n uint64) error {
	for {
		avail := uint64(z.wr - z.rd)
		if n <= avail {
			z.rd += int(n)
			return nil
		}
		n -= avail
		z.rd = z.wr
		if z.out == 0 {
			return errShort
		}
		if err := z.produce(lzfWin); err != nil {
			return err
		}
	}
}

// finish checks the whole compressed input was used and produced exactly
// the declared length (as lzf_decompress(...) == len in Redis).
func (z *lzf) finish() error {
	for z.out > 0 {
		z.rd = z.wr
		if err := z.produce(lzfWin); err != nil {
			return err
		}
	}
	if z.in != 0 {
		return z.r.fail("LZF data decompresses to more than its declared length")
	}
	return nil
}

// le reads little-endian unsigned integers of 1 to 8 bytes.
func le(p []byte) uint64 {
	switch len(p) {
	case 2:
		return uint64(binary.LittleEndian.Uint16(p))
	case 4:
		return uint64(binary.LittleEndian.Uint32(p))
	case 8:
		return binary.LittleEndian.Uint64(p)
	}
	var v uint64
	for i := len(p) - 1; i >= 0; i-- {
		v = v<<8 | uint64(p[i])
	}
	return v
}
