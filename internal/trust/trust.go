// Package trust decides whether difyctl may act on a project directory
// and the files in it, as sshd's StrictModes decides for ~/.ssh.
//
// Whoever can write the project directory, its .env, its compose override
// file or its backups/ controls what root runs (an override file adds a
// privileged container with / mounted; a planted backup is restored; a
// symlink redirects a write). So, when difyctl runs as root:
//   - a path that is group- or other-writable is refused, naming the path
//     and the fix (chmod go-w);
//   - a path owned by another user (a checkout cloned as ubuntu, run with
//     sudo) is allowed with a one-line warning, since that user can then run
//     anything as root; doctor reports it too.
//
// Symbolic links are followed (a .env kept in a secrets directory is
// common) and both the link and its target are judged.
package trust

import (
	"fmt"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"

	"github.com/difyctl/difyctl/templates"
)

// Level of a finding.
type Level int

const (
	Warn   Level = iota // allowed, said once
	Refuse              // difyctl stops
)

// Finding is one problem with one path.
type Finding struct {
	Level   Level
	Path    string
	Problem string
	Fix     string
}

func (f Finding) String() string { return fmt.Sprintf("%s %s; %s", f.Path, f.Problem, f.Fix) }

// RefusedError: running as root on a path others can write.
type RefusedError struct{ Findings []Finding }

func (e *RefusedError) Error() string {
	f := e.Findings[0]
	msg := fmt.Sprintf("refusing to run as root: %s", f)
	if n := len(e.Findings) - 1; n > 0 {
		msg += fmt.Sprintf(" (and %d more path(s): %s", n, e.Findings[1].Path)
		if n > 1 {
			msg += ", ..."
		}
		msg += ")"
	}
	return msg
}

// ProjectPaths are the paths of a project whose writers control what
// difyctl runs: the directory, .env, the override file, backups/, and any
// -f compose files.
func ProjectPaths(dir string, files []string) []string {
	ps := []string{dir, filepath.Join(dir, ".env"), filepath.Join(dir, templates.OverrideFileName), filepath.Join(dir, "backups")}
	for _, f := range files {
		if !filepath.IsAbs(f) {
			f = filepath.Join(dir, f)
		}
		ps = append(ps, f)
	}
	return ps
}

// Check judges paths for a process with effective uid euid; missing paths
// are skipped. Group/other-writable paths are Refuse findings only for root
// (for others, Warn: they only endanger themselves); another owner is a Warn
// finding for root.
func Check(paths []string, euid int) []Finding {
	var out []Finding
	for _, p := range paths {
		out = append(out, checkPath(p, euid)...)
	}
	return out
}

func checkPath(p string, euid int) []Finding {
	lst, err := os.Lstat(p)
	if err != nil {
		return nil
	}
	var out []Finding
	if lst.Mode()&fs.ModeSymlink != 0 {
		if uid := owner(lst); uid != uint32(euid) && uid != 0 {
			out = append(out, Finding{Level: Warn, Path: p, Problem: fmt.Sprintf("is a symbolic link owned by %s", who(uid)),
				Fix: fmt.Sprintf("that user can point it anywhere; replace it with a link owned by %s", who(uint32(euid)))})
		}
		st, err := os.Stat(p)
		if err != nil {
			return out
		}
		target, _ := filepath.EvalSymlinks(p)
		out = append(out, judge(p+" (-> "+target+")", target, st, euid)...)
		return out
	}
	return append(out, judge(p, p, lst, euid)...)
}

func judge(label, path string, st fs.FileInfo, euid int) []Finding {
	var out []Finding
	if st.Mode().Perm()&0o022 != 0 {
		lvl := Warn
		if euid == 0 {
			lvl = Refuse
		}
		what := "group and others"
		switch st.Mode().Perm() & 0o022 {
		case 0o020:
			what = "its group"
		case 0o002:
			what = "every user"
		}
		out = append(out, Finding{Level: lvl, Path: label,
			Problem: fmt.Sprintf("is writable by %s (mode %04o), who could then choose what difyctl runs as root", what, st.Mode().Perm()),
			Fix:     "fix: chmod go-w " + path})
	}
	if uid := owner(st); euid == 0 && uid != 0 {
		out = append(out, Finding{Level: Warn, Path: label,
			Problem: fmt.Sprintf("is owned by %s, who can run anything as root through difyctl (e.g. a compose override file)", who(uid)),
			Fix:     "fix: chown -R root: " + path + " if that user should not, or run difyctl as that user"})
	}
	return out
}

func owner(st fs.FileInfo) uint32 {
	if s, ok := st.Sys().(*syscall.Stat_t); ok {
		return s.Uid
	}
	return 0
}

func who(uid uint32) string {
	if u, err := user.LookupId(strconv.Itoa(int(uid))); err == nil {
		return fmt.Sprintf("user %s (uid %d)", u.Username, uid)
	}
	return fmt.Sprintf("uid %d", uid)
}

// Split returns the warnings and the refusals as an error (nil when none).
func Split(fs []Finding) ([]Finding, error) {
	var ref, warn []Finding
	for _, f := range fs {
		if f.Level == Refuse {
			ref = append(ref, f)
		} else {
			warn = append(warn, f)
		}
	}
	if len(ref) > 0 {
		return warn, &RefusedError{Findings: ref}
	}
	return warn, nil
}
