package project

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/difyctl/difyctl/internal/lockfile"
)

// LockDir is where project locks live: $DIFYCTL_LOCK_DIR, /run/difyctl for
// root (production hosts), else $XDG_RUNTIME_DIR/difyctl, else a per-user
// directory under the temporary directory.
func LockDir(getenv func(string) string) string {
	if d := getenv("DIFYCTL_LOCK_DIR"); d != "" {
		return d
	}
	if os.Geteuid() == 0 {
		return "/run/difyctl"
	}
	if d := getenv("XDG_RUNTIME_DIR"); d != "" {
		return filepath.Join(d, "difyctl")
	}
	return filepath.Join(os.TempDir(), fmt.Sprintf("difyctl-%d", os.Geteuid()))
}

// Lock makes the commands that change a project's containers (up, down,
// stop, start, restart, restore) take turns on this host: a second one is
// refused at once with a *lockfile.HeldError naming the first one's PID,
// instead of racing it (two recreations of one container, a down under an
// up). Reading commands (ps, logs, config) and backups do not take it.
func Lock(getenv func(string) string, name string) (unlock func(), err error) {
	return lockfile.Acquire(filepath.Join(LockDir(getenv), name+".lock"), fmt.Sprintf("another difyctl command on project %s", name))
}
