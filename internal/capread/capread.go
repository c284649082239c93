// Package capread reads small files whose size difyctl does not control
// (manifests, metadata) with a cap, so that a huge or endless file (a FIFO,
// /dev/zero behind a symlink) cannot exhaust memory.
package capread

import (
	"fmt"
	"io"
	"os"
)

// File reads path, refusing one larger than max bytes.
func File(path string, max int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > max {
		return nil, fmt.Errorf("%s is larger than %d bytes; not a file difyctl wrote", path, max)
	}
	return b, nil
}
