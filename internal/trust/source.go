package trust

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// SourceError: a file or folder to import belongs to another user.
type SourceError struct {
	Path    string
	Problem string
	Fix     string
}

func (e *SourceError) Error() string {
	return fmt.Sprintf("refusing to import %s: %s; %s", e.Path, e.Problem, e.Fix)
}

const allowFix = "check it, then pass --allow-other-owner to import it anyway"

// CheckSource judges the files and folders `env import` reads or links
// (paths that do not exist are skipped) for a process with effective uid
// euid: each must belong to euid or root, so that another user cannot make
// difyctl read a file they could not (a symlink to a root-only file) or
// choose where data lives. With allowOther, files of another user are
// accepted, but a symlink still may not lead to a file of someone else
// than the link's owner (the rule of fs.protected_symlinks).
func CheckSource(paths []string, euid int, allowOther bool) error {
	for _, p := range paths {
		lst, err := os.Lstat(p)
		if err != nil {
			continue
		}
		mine := func(uid uint32) bool { return uid == uint32(euid) || uid == 0 }
		if lst.Mode()&fs.ModeSymlink != 0 {
			st, err := os.Stat(p)
			if err != nil {
				continue
			}
			target, _ := filepath.EvalSymlinks(p)
			lo, to := owner(lst), owner(st)
			if !mine(lo) && (!allowOther || to != lo) {
				fix := allowFix
				if allowOther {
					fix = "replace the link with the file itself"
				}
				return &SourceError{Path: p, Problem: fmt.Sprintf("it is a symbolic link owned by %s to %s, owned by %s", who(lo), target, who(to)), Fix: fix}
			}
			if !mine(to) && !allowOther {
				return &SourceError{Path: p, Problem: fmt.Sprintf("it leads to %s, owned by %s", target, who(to)), Fix: allowFix}
			}
			continue
		}
		if uid := owner(lst); !mine(uid) && !allowOther {
			return &SourceError{Path: p, Problem: fmt.Sprintf("it is owned by %s", who(uid)), Fix: allowFix}
		}
	}
	return nil
}
