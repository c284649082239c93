package bundle

import (
	"archive/tar"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/difyctl/difyctl/backup"
	"github.com/difyctl/difyctl/internal/atomicfile"
)

// WriteStream writes the bundle in dir as one tar stream: manifest.json
// first, then every part in the manifest's order (for piping to another
// host or to object storage; ReadStream takes it back).
func WriteStream(w io.Writer, dir string) error {
	m, err := ReadManifest(dir)
	if err != nil {
		return err
	}
	tw := tar.NewWriter(w)
	add := func(name string) error {
		f, err := os.Open(filepath.Join(dir, name))
		if err != nil {
			return err
		}
		defer f.Close()
		st, err := f.Stat()
		if err != nil {
			return err
		}
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o600, Size: st.Size(), ModTime: st.ModTime(), Typeflag: tar.TypeReg}); err != nil {
			return err
		}
		n, err := io.Copy(tw, f)
		if err == nil && n != st.Size() {
			err = fmt.Errorf("%s changed while it was written", name)
		}
		return err
	}
	if err := add(ManifestName); err != nil {
		return err
	}
	for _, p := range m.Parts {
		if err := add(p.File); err != nil {
			return fmt.Errorf("writing part %s to the stream: %w", p.Name, err)
		}
	}
	return tw.Close()
}

// ReadStream reads a bundle written by WriteStream into a new directory
// under parent (0700, files 0600), checking each part's size and SHA-256
// against the manifest as it arrives; it returns the directory. On error
// the directory is removed.
func ReadStream(r io.Reader, parent string) (string, error) {
	if err := os.MkdirAll(parent, backup.DirMode); err != nil {
		return "", err
	}
	dir, err := os.MkdirTemp(parent, ".bundle-stream-")
	if err != nil {
		return "", diskErr(err)
	}
	ok := false
	defer func() {
		if !ok {
			os.RemoveAll(dir)
		}
	}()
	if err := os.Chmod(dir, backup.DirMode); err != nil {
		return "", err
	}
	tr := tar.NewReader(r)
	h, err := tr.Next()
	if err != nil {
		return "", fmt.Errorf("reading the bundle stream: %w", err)
	}
	if h.Name != ManifestName {
		return "", fmt.Errorf("the stream starts with %q, not %s: not a bundle written by difyctl backup all --output -", h.Name, ManifestName)
	}
	if h.Size > 4<<20 {
		return "", fmt.Errorf("the stream's manifest is %d bytes: not a bundle's", h.Size)
	}
	mb, err := io.ReadAll(tr)
	if err != nil {
		return "", fmt.Errorf("reading the bundle's manifest: %w", err)
	}
	m, err := parseManifest(mb, "the stream")
	if err != nil {
		return "", err
	}
	for _, p := range m.Parts {
		h, err := tr.Next()
		if err != nil {
			return "", fmt.Errorf("the stream ends before part %s: %w", p.Name, err)
		}
		if h.Name != p.File {
			return "", fmt.Errorf("the stream holds %q where the manifest puts part %s (%s)", h.Name, p.Name, p.File)
		}
		f, err := os.OpenFile(filepath.Join(dir, p.File), os.O_CREATE|os.O_EXCL|os.O_WRONLY, backup.FileMode)
		if err != nil {
			return "", err
		}
		sum := sha256.New()
		n, err := io.Copy(io.MultiWriter(f, sum), tr)
		if err == nil {
			err = f.Sync()
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return "", fmt.Errorf("part %s: %w", p.Name, diskErr(err))
		}
		if n != p.Size || hex.EncodeToString(sum.Sum(nil)) != p.SHA256 {
			return "", fmt.Errorf("part %s: %d bytes in the stream with another SHA-256 than the manifest's (%d bytes): corrupted in transit", p.Name, n, p.Size)
		}
	}
	if _, err := tr.Next(); err != io.EOF {
		return "", fmt.Errorf("the stream holds more than its manifest names")
	}
	if err := atomicfile.WriteFile(filepath.Join(dir, ManifestName), mb, backup.FileMode); err != nil {
		return "", err
	}
	ok = true
	return dir, nil
}
