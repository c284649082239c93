package backup

import (
	"github.com/difyctl/difyctl/internal/cmdutil/inputfile"

	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/difyctl/difyctl/backup/rdb"
)

// Verified is a backup file opened and verified in one read: the RDB walk
// and CRC-64, the size and SHA-256 against its manifest when it has one. A
// restore uploads from this same descriptor, so Redis gets the bytes that
// were checked and the file is not read and hashed a second time to check it.
type Verified struct {
	Path     string
	Info     rdb.Info
	Manifest *Manifest // nil: no manifest beside the file
	file     *os.File
	size     int64 // bytes verified
}

// OpenVerified opens p and verifies it; the caller closes the result.
func OpenVerified(p string) (*Verified, error) {
	// A missing, unreadable or non-regular file is an input-file error (exit 2).
	f, err := os.Open(p)
	if err != nil {
		return nil, inputfile.Mark(err)
	}
	if st, err := f.Stat(); err != nil || !st.Mode().IsRegular() {
		f.Close()
		return nil, inputfile.Wrap(p, errors.New("is not a regular file (a directory?), not a backup"))
	}
	v := &Verified{Path: p, file: f}
	h := sha256.New()
	n := &countingWriter{}
	v.Info, err = rdb.Verify(io.TeeReader(f, io.MultiWriter(h, n)))
	v.size = n.n
	if err != nil {
		f.Close()
		return v, err
	}
	m, err := ReadManifest(p)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return v, nil
	case err != nil:
		f.Close()
		return v, err
	}
	v.Manifest = m
	if got := hex.EncodeToString(h.Sum(nil)); got != m.SHA256 || v.size != m.Size {
		f.Close()
		return v, fmt.Errorf("%s does not match its manifest (sha256 %s, size %d; manifest says %s, %d)", p, got[:12], v.size, short(m.SHA256), m.Size)
	}
	return v, nil
}

// Close closes the file.
func (v *Verified) Close() error { return v.file.Close() }

// Reader returns the verified bytes from the start, from the descriptor
// opened for the verification; each call starts a new reader.
func (v *Verified) Reader() io.Reader { return io.NewSectionReader(v.file, 0, v.size) }

// Size is the number of bytes verified.
func (v *Verified) Size() int64 { return v.size }

// Checked says in words what verification checked: the CRC-64, or that the
// file carries none and was only walked, and what stood in for it (the
// manifest's SHA-256 where there is one).
func Checked(info rdb.Info, m *Manifest) string {
	s := info.Integrity()
	switch {
	case m != nil:
		s += ", SHA-256 matches the manifest"
	case !info.Checksummed():
		s += "; no manifest, so nothing else checked its bytes"
	}
	return s
}

type countingWriter struct{ n int64 }

func (c *countingWriter) Write(p []byte) (int, error) { c.n += int64(len(p)); return len(p), nil }
