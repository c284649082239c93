package project

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/difyctl/difyctl/internal/lockfile"
)

// LockDir is where project locks live: $DIFYCTL_LOCK_DIR, /run/difyctl for
// root (production hosts), else $XDG_RUNTIME_DIR/difyctl, else
// difyctl/locks under the user's cache directory ($XDG_CACHE_HOME or
// ~/.cache). Never a fixed name under /tmp, which another user could create
// first. lockfile checks the directory (owner, mode) before use.
func LockDir(getenv func(string) string) (string, error) {
	if d := getenv("DIFYCTL_LOCK_DIR"); d != "" {
		return d, nil
	}
	if os.Geteuid() == 0 {
		return "/run/difyctl", nil
	}
	if d := getenv("XDG_RUNTIME_DIR"); d != "" {
		return filepath.Join(d, "difyctl"), nil
	}
	cache := getenv("XDG_CACHE_HOME")
	if cache == "" {
		home := getenv("HOME")
		if home == "" {
			return "", fmt.Errorf("no directory for the project lock: set XDG_RUNTIME_DIR, HOME or DIFYCTL_LOCK_DIR")
		}
		cache = filepath.Join(home, ".cache")
	}
	return filepath.Join(cache, "difyctl", "locks"), nil
}

// Lock makes the commands that change a project's containers (up, down,
// stop, start, restart, restore) take turns on this host: a second one is
// refused at once with a *lockfile.HeldError naming the first one's PID,
// instead of racing it (two recreations of one container, a down under an
// up). Reading commands (ps, logs, config) and backups do not take it.
func Lock(getenv func(string) string, name string) (unlock func(), err error) {
	dir, err := LockDir(getenv)
	if err != nil {
		return nil, err
	}
	return lockfile.Acquire(filepath.Join(dir, name+".lock"), fmt.Sprintf("another difyctl command on project %s", name))
}
