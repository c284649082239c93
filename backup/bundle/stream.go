package bundle

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"syscall"

	"filippo.io/age"
	"github.com/klauspost/compress/zstd"

	"github.com/difyctl/difyctl/backup"
	"github.com/difyctl/difyctl/backup/rdb"
)

// counter counts bytes written through it.
type counter struct{ n int64 }

func (c *counter) Write(p []byte) (int, error) { c.n += int64(len(p)); return len(p), nil }

// partWriter is one part being written: what is written to it (the raw
// stream) is hashed and counted, compressed with zstd, encrypted with age
// when recipients are given, and the stored bytes hashed, counted and
// written to the file. Nothing is held in memory beyond the coders' windows.
type partWriter struct {
	f         *os.File
	path      string
	rawHash   hash.Hash
	raw       counter
	storedH   hash.Hash
	stored    counter
	zw        *zstd.Encoder
	aw        io.WriteCloser
	encrypted bool
	w         io.Writer
}

// zstd settings: fastest level (the parts are mostly already-compact dumps
// and files; throughput matters more than the last percent), one goroutine
// per encoder (parts run in parallel) and a 4 MiB window, so memory stays
// bounded whatever the data size.
func newEncoder(w io.Writer) (*zstd.Encoder, error) {
	return zstd.NewWriter(w, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderConcurrency(1),
		zstd.WithWindowSize(4<<20), zstd.WithEncoderCRC(true))
}

func newDecoder(r io.Reader) (*zstd.Decoder, error) {
	return zstd.NewReader(r, zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(true), zstd.WithDecoderMaxWindow(64<<20))
}

func createPart(dir, file string, recipients []age.Recipient) (*partWriter, error) {
	p := filepath.Join(dir, file)
	f, err := os.OpenFile(p, os.O_CREATE|os.O_EXCL|os.O_WRONLY, backup.FileMode)
	if err != nil {
		return nil, fmt.Errorf("creating %s: %w", p, err)
	}
	w := &partWriter{f: f, path: p, rawHash: sha256.New(), storedH: sha256.New()}
	var dst io.Writer = io.MultiWriter(f, w.storedH, &w.stored)
	if len(recipients) > 0 {
		aw, err := age.Encrypt(dst, recipients...)
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("encrypting %s: %w", file, err)
		}
		w.aw, w.encrypted, dst = aw, true, aw
	}
	if w.zw, err = newEncoder(dst); err != nil {
		f.Close()
		return nil, err
	}
	w.w = io.MultiWriter(w.zw, w.rawHash, &w.raw)
	return w, nil
}

func (w *partWriter) Write(p []byte) (int, error) { return w.w.Write(p) }

// finish flushes every layer, syncs and closes the file, and fills the
// part's sizes and hashes.
func (w *partWriter) finish(p *Part) error {
	err := w.zw.Close()
	if err == nil && w.aw != nil {
		err = w.aw.Close()
	}
	if err == nil {
		err = w.f.Sync()
	}
	if cerr := w.f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("writing %s: %w", w.path, diskErr(err))
	}
	p.Size, p.SHA256 = w.stored.n, hex.EncodeToString(w.storedH.Sum(nil))
	p.RawSize, p.RawSHA256 = w.raw.n, hex.EncodeToString(w.rawHash.Sum(nil))
	p.Compression = "zstd"
	if w.encrypted {
		p.Encryption = "age"
	}
	return nil
}

// abort closes the file (the caller removes the directory).
func (w *partWriter) abort() {
	w.zw.Close()
	w.f.Close()
}

// ErrDiskFull is the cause when the backup directory ran out of space.
var ErrDiskFull = errors.New("no space left on the device of the backup directory")

func diskErr(err error) error {
	if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) {
		return fmt.Errorf("%w (%v)", ErrDiskFull, err)
	}
	return err
}

// partReader reads a stored part back: the stored bytes hashed and counted,
// decrypted when the part is encrypted, decompressed, and the raw stream
// hashed and counted. check compares both with the manifest once the
// stream was read to its end.
type partReader struct {
	f       *os.File
	zr      *zstd.Decoder
	storedH hash.Hash
	stored  counter
	rawH    hash.Hash
	raw     counter
	r       io.Reader
	part    Part
	name    string
}

// ErrNoIdentity: an encrypted part and no identity to decrypt it.
var ErrNoIdentity = errors.New("the bundle is encrypted; pass --identity FILE (an age identity of one of its recipients)")

func openPart(dir string, p Part, ids []age.Identity) (*partReader, error) {
	path := filepath.Join(dir, p.File)
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("part %s: %w", p.Name, err)
	}
	r := &partReader{f: f, storedH: sha256.New(), rawH: sha256.New(), part: p, name: path}
	var src io.Reader = io.TeeReader(f, io.MultiWriter(r.storedH, &r.stored))
	if p.Encryption == "age" {
		if len(ids) == 0 {
			f.Close()
			return nil, fmt.Errorf("part %s: %w", p.Name, ErrNoIdentity)
		}
		dr, err := age.Decrypt(src, ids...)
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("part %s: decrypting: %w", p.Name, err)
		}
		src = dr
	} else if p.Encryption != "" {
		f.Close()
		return nil, fmt.Errorf("part %s: encryption %q is not one this difyctl reads", p.Name, p.Encryption)
	}
	if r.zr, err = newDecoder(src); err != nil {
		f.Close()
		return nil, err
	}
	r.r = io.TeeReader(r.zr, io.MultiWriter(r.rawH, &r.raw))
	return r, nil
}

func (r *partReader) Read(b []byte) (int, error) { return r.r.Read(b) }

// check drains what is left, then compares sizes and hashes with the
// manifest.
func (r *partReader) check() error {
	if _, err := io.Copy(io.Discard, r.r); err != nil {
		return fmt.Errorf("part %s: %w", r.part.Name, err)
	}
	// The stored file may not be read to its end by the decoder: read the rest.
	if _, err := io.Copy(io.MultiWriter(r.storedH, &r.stored), r.f); err != nil {
		return fmt.Errorf("part %s: %w", r.part.Name, err)
	}
	p := r.part
	switch {
	case r.stored.n != p.Size:
		return fmt.Errorf("part %s: %d bytes stored, the manifest says %d (truncated or replaced)", p.Name, r.stored.n, p.Size)
	case hex.EncodeToString(r.storedH.Sum(nil)) != p.SHA256:
		return fmt.Errorf("part %s: SHA-256 of %s does not match the manifest (corrupted)", p.Name, r.name)
	case r.raw.n != p.RawSize:
		return fmt.Errorf("part %s: %d bytes after decompression, the manifest says %d", p.Name, r.raw.n, p.RawSize)
	case hex.EncodeToString(r.rawH.Sum(nil)) != p.RawSHA256:
		return fmt.Errorf("part %s: SHA-256 after decompression does not match the manifest", p.Name)
	}
	return nil
}

func (r *partReader) Close() error {
	r.zr.Close()
	return r.f.Close()
}

// checker reads a part's raw stream to its end and checks its structure,
// returning what it counted.
type checker func(io.Reader) (map[string]int64, error)

// checkerFor is the structural check of a part's raw stream.
func checkerFor(p Part, dbType string) checker {
	switch p.Kind {
	case KindDatabase, KindVector:
		if dbType == "mysql" && p.Kind == KindDatabase {
			return checkMysqlDump
		}
		return checkPgDump
	case KindRedis:
		return checkRDB
	default:
		return checkTar
	}
}

// checkPgDump checks the custom-format header (magic, archive version,
// format) and reads to the end; the table of contents is read back by
// pg_restore --list when the dump is taken.
func checkPgDump(r io.Reader) (map[string]int64, error) {
	head := make([]byte, 11)
	if _, err := io.ReadFull(r, head); err != nil {
		return nil, fmt.Errorf("the dump is shorter than its header: %w", err)
	}
	if string(head[:5]) != "PGDMP" {
		return nil, fmt.Errorf("not a pg_dump custom-format archive (no PGDMP magic)")
	}
	vmaj, vmin := head[5], head[6]
	// vmaj.vmin.vrev, int size, offset size, format (1 = custom).
	if vmaj != 1 || vmin < 12 {
		return nil, fmt.Errorf("pg_dump archive version %d.%d: not one this difyctl checks (1.12 or newer)", vmaj, vmin)
	}
	if head[8] < 4 || head[8] > 8 || head[9] < 4 || head[9] > 8 {
		return nil, fmt.Errorf("pg_dump archive header: int size %d, offset size %d: corrupted", head[8], head[9])
	}
	if head[10] != 1 {
		return nil, fmt.Errorf("pg_dump archive format %d, not custom (1)", head[10])
	}
	n, err := io.Copy(io.Discard, r)
	if err != nil {
		return nil, err
	}
	return map[string]int64{"bytes": n + int64(len(head))}, nil
}

// mysqlDone is the line mysqldump ends a complete dump with.
var mysqlDone = []byte("-- Dump completed")

// checkMysqlDump checks the dump ends with mysqldump's completion line.
func checkMysqlDump(r io.Reader) (map[string]int64, error) {
	var tail []byte
	buf := make([]byte, 64<<10)
	var total int64
	for {
		n, err := r.Read(buf)
		if n > 0 {
			total += int64(n)
			tail = append(tail, buf[:n]...)
			if len(tail) > 4096 {
				tail = tail[len(tail)-4096:]
			}
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
	}
	if !bytes.Contains(tail, mysqlDone) {
		return nil, fmt.Errorf("the dump does not end with mysqldump's %q line: incomplete", mysqlDone)
	}
	return map[string]int64{"bytes": total}, nil
}

// checkRDB walks the RDB (package rdb: opcodes, lengths, CRC-64).
func checkRDB(r io.Reader) (map[string]int64, error) {
	info, err := rdb.Verify(r)
	if err != nil {
		return nil, err
	}
	if _, err := io.Copy(io.Discard, r); err != nil {
		return nil, err
	}
	return map[string]int64{"keys": info.Keys, "rdbVersion": int64(info.Version)}, nil
}

// checkTar reads a tar stream to its end (every header and every byte).
func checkTar(r io.Reader) (map[string]int64, error) {
	tr := tar.NewReader(r)
	c := map[string]int64{"files": 0, "dirs": 0, "bytes": 0}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("tar stream: %w", err)
		}
		switch h.Typeflag {
		case tar.TypeDir:
			c["dirs"]++
		case tar.TypeReg:
			c["files"]++
		}
		n, err := io.Copy(io.Discard, tr)
		if err != nil {
			return nil, fmt.Errorf("tar stream, %s: %w", h.Name, err)
		}
		c["bytes"] += n
	}
	// What follows the end-of-archive blocks (padding) is read too.
	if _, err := io.Copy(io.Discard, r); err != nil {
		return nil, err
	}
	return c, nil
}

// checkedCopy copies src to dst while check reads the same bytes in
// another goroutine; the copy's error wins over a check stopped by it.
func checkedCopy(dst io.Writer, src io.Reader, check checker) (map[string]int64, error) {
	pr, pw := io.Pipe()
	type verdict struct {
		counts map[string]int64
		err    error
	}
	done := make(chan verdict, 1)
	go func() {
		c, err := check(pr)
		if err != nil {
			pr.CloseWithError(err)
		} else {
			_, err = io.Copy(io.Discard, pr)
		}
		done <- verdict{c, err}
	}()
	_, copyErr := io.Copy(io.MultiWriter(dst, pw), src)
	pw.CloseWithError(copyErr)
	v := <-done
	switch {
	case copyErr != nil && !errors.Is(copyErr, v.err):
		return nil, diskErr(copyErr)
	case v.err != nil:
		return nil, fmt.Errorf("failed verification: %w", v.err)
	}
	return v.counts, nil
}
