package atomicfile

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

// maxLinks bounds how many symlinks Resolve follows, as the kernel does.
const maxLinks = 40

// Resolve follows path through every symlink to the file it names, which
// need not exist yet (a dangling link names the file to create). A path that
// is not a link is returned as it is.
func Resolve(path string) (string, error) {
	p := path
	for i := 0; i < maxLinks; i++ {
		st, err := os.Lstat(p)
		if errors.Is(err, fs.ErrNotExist) {
			return p, nil
		}
		if err != nil {
			return "", err
		}
		if st.Mode()&fs.ModeSymlink == 0 {
			return p, nil
		}
		target, err := os.Readlink(p)
		if err != nil {
			return "", err
		}
		if !filepath.IsAbs(target) {
			target = filepath.Join(filepath.Dir(p), target)
		}
		p = target
	}
	return "", fmt.Errorf("%s: too many levels of symbolic links", path)
}

// ReplaceFile writes data to an operator's file, keeping what was there:
// when path is a symlink the file it points to is replaced (atomically, by a
// temporary file in that file's directory) and the link stays a link; an
// existing file keeps its mode and owner; a new file gets mode.
func ReplaceFile(path string, data []byte, mode os.FileMode) error {
	return Replace(path, mode, func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	})
}

// Replace is ReplaceFile with the content written by fill.
func Replace(path string, mode os.FileMode, fill func(io.Writer) error) error {
	target, err := Resolve(path)
	if err != nil {
		return err
	}
	uid, gid := -1, -1
	if st, err := os.Stat(target); err == nil {
		if !st.Mode().IsRegular() {
			return fmt.Errorf("%s is not a regular file", target)
		}
		mode = st.Mode().Perm()
		if sys, ok := st.Sys().(*syscall.Stat_t); ok {
			uid, gid = int(sys.Uid), int(sys.Gid)
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return write(target, mode, uid, gid, fill)
}

// Backup copies the file at path (through symlinks) to a new file named
// path+suffix beside path, or path+suffix+"_2", "_3", ... when that name is
// taken: an earlier copy is never overwritten. The copy is complete or
// absent (written to a temporary file, fsynced, then hard-linked to a free
// name) and gets mode. It returns the copy's name.
func Backup(path, suffix string, mode os.FileMode) (string, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".bak-tmp-*")
	if err != nil {
		return "", fmt.Errorf("creating a copy of %s: %w", path, err)
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	if err := f.Chmod(mode); err != nil {
		f.Close()
		return "", err
	}
	if _, err := f.Write(src); err != nil {
		f.Close()
		return "", fmt.Errorf("writing a copy of %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return "", fmt.Errorf("syncing a copy of %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return "", err
	}
	base := path + suffix
	for n := 1; n < 10000; n++ {
		name := base
		if n > 1 {
			name = fmt.Sprintf("%s_%d", base, n)
		}
		err := os.Link(tmp, name)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		if err != nil {
			return "", fmt.Errorf("keeping a copy of %s as %s: %w", path, name, err)
		}
		return name, SyncDir(dir)
	}
	return "", fmt.Errorf("keeping a copy of %s: every name %s_N is taken", path, base)
}
