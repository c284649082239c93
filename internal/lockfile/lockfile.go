// Package lockfile takes exclusive, non-blocking locks on files (flock: the
// kernel drops them when the process dies, so a crash leaves no stale lock)
// and records the holder's PID in them, so that the one refused can say who
// holds it.
//
// difyctl runs as root from cron in directories other users may write, so a
// lock is taken without trusting the path: the directory is opened and
// checked (a directory owned by the caller or root, not writable by group or
// others unless sticky), the file is opened relative to it with O_NOFOLLOW|O_CLOEXEC and
// checked on the open descriptor (a regular file owned by the caller with one
// link) before anything is written to it. A planted symlink or hard link is
// refused, never truncated. The file is removed on release.
package lockfile

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// HeldError: another process holds the lock.
type HeldError struct {
	Path string
	PID  int    // 0 when unknown
	What string // what the lock guards, e.g. "a backup or restore"
}

func (e *HeldError) Error() string {
	who := "another process"
	if e.PID > 0 {
		who = fmt.Sprintf("process %d", e.PID)
	}
	return fmt.Sprintf("%s is already running (%s holds %s); wait for it to finish", e.What, who, e.Path)
}

// UnsafeError: the lock file or its directory is not one difyctl may write
// (a symlink, a hard link, another user's file, a directory others can
// write). Nothing was written.
type UnsafeError struct {
	Path   string
	Reason string
	Fix    string
}

func (e *UnsafeError) Error() string {
	return fmt.Sprintf("refusing lock %s: %s; %s", e.Path, e.Reason, e.Fix)
}

// Acquire locks path (creating it, mode 0600, and its missing directories,
// 0700) without waiting. what names the guarded work in the HeldError a
// second taker gets. unlock releases it and removes the file.
func Acquire(path, what string) (unlock func(), err error) {
	dir, base := filepath.Dir(path), filepath.Base(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("lock directory %s: %w", dir, err)
	}
	dfd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("lock directory %s: %w", dir, err)
	}
	defer unix.Close(dfd)
	if err := CheckDirFd(dfd, dir); err != nil {
		return nil, err
	}
	// The file may be removed by its holder between our open and our flock
	// (release unlinks it): then the lock we got is on a name nobody else
	// will find, so try again on the new file.
	for range 10 {
		fd, err := unix.Openat(dfd, base, unix.O_CREAT|unix.O_RDWR|unix.O_NOFOLLOW|unix.O_CLOEXEC|unix.O_NONBLOCK, 0o600)
		if err != nil {
			if errors.Is(err, unix.ELOOP) {
				return nil, &UnsafeError{Path: path, Reason: "it is a symbolic link", Fix: "remove it (a lock file is created by difyctl itself)"}
			}
			return nil, fmt.Errorf("lock file %s: %w", path, err)
		}
		var st unix.Stat_t
		if err := unix.Fstat(fd, &st); err != nil {
			unix.Close(fd)
			return nil, fmt.Errorf("lock file %s: %w", path, err)
		}
		if err := checkFile(&st, path); err != nil {
			unix.Close(fd)
			return nil, err
		}
		if err := unix.Flock(fd, unix.LOCK_EX|unix.LOCK_NB); err != nil {
			b := make([]byte, 32)
			n, _ := unix.Pread(fd, b, 0)
			unix.Close(fd)
			pid, _ := strconv.Atoi(strings.TrimSpace(string(b[:max(n, 0)])))
			if errors.Is(err, unix.EWOULDBLOCK) {
				return nil, &HeldError{Path: path, PID: pid, What: what}
			}
			return nil, fmt.Errorf("locking %s: %w", path, err)
		}
		var now unix.Stat_t
		if err := unix.Fstatat(dfd, base, &now, unix.AT_SYMLINK_NOFOLLOW); err != nil || now.Ino != st.Ino || now.Dev != st.Dev {
			unix.Close(fd) // released and removed under us: take the new one
			continue
		}
		_ = unix.Ftruncate(fd, 0)
		_, _ = unix.Pwrite(fd, []byte(strconv.Itoa(os.Getpid())+"\n"), 0)
		rdfd, err := unix.Dup(dfd)
		if err != nil {
			unix.Close(fd)
			return nil, fmt.Errorf("lock directory %s: %w", dir, err)
		}
		return func() {
			// Unlink while holding the lock: a waiter that opened the old
			// file sees the inode change and retries.
			var cur unix.Stat_t
			if unix.Fstatat(rdfd, base, &cur, unix.AT_SYMLINK_NOFOLLOW) == nil && cur.Ino == st.Ino && cur.Dev == st.Dev {
				_ = unix.Unlinkat(rdfd, base, 0)
			}
			unix.Close(rdfd)
			unix.Close(fd) // drops the flock
		}, nil
	}
	return nil, fmt.Errorf("lock file %s keeps being replaced; is another program removing it?", path)
}

// checkFile: a regular file owned by the effective user, with one link.
func checkFile(st *unix.Stat_t, path string) error {
	switch {
	case st.Mode&unix.S_IFMT != unix.S_IFREG:
		return &UnsafeError{Path: path, Reason: "it is not a regular file", Fix: "remove it (a lock file is created by difyctl itself)"}
	case int(st.Uid) != os.Geteuid():
		return &UnsafeError{Path: path, Reason: fmt.Sprintf("it is owned by uid %d, not by uid %d running difyctl", st.Uid, os.Geteuid()), Fix: "remove it (a lock file is created by difyctl itself)"}
	case st.Nlink != 1:
		return &UnsafeError{Path: path, Reason: fmt.Sprintf("it has %d hard links", st.Nlink), Fix: "remove it (a lock file is created by difyctl itself)"}
	}
	return nil
}

// CheckDirFd checks an open directory is one whose entries only the caller
// (or root) can change: owned by the effective user or root, not writable by
// group or others unless sticky.
func CheckDirFd(fd int, path string) error {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return fmt.Errorf("lock directory %s: %w", path, err)
	}
	if int(st.Uid) != os.Geteuid() && st.Uid != 0 {
		return &UnsafeError{Path: path, Reason: fmt.Sprintf("the directory is owned by uid %d, not by uid %d running difyctl or root", st.Uid, os.Geteuid()), Fix: "use a directory you own (chown it, or set DIFYCTL_LOCK_DIR)"}
	}
	// A sticky directory (/tmp, a tmpfs mount) is accepted: others may
	// create names in it but not remove or replace ours, and what they
	// plant is refused by the file checks (not ours, a link).
	if st.Mode&0o022 != 0 && st.Mode&unix.S_ISVTX == 0 {
		return &UnsafeError{Path: path, Reason: fmt.Sprintf("the directory is writable by group or others (mode %04o)", st.Mode&0o7777), Fix: "chmod go-w " + path}
	}
	return nil
}
