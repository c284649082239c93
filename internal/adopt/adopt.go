// Package adopt brings the support folders of an upstream Dify docker/
// folder (nginx/, ssrf_proxy/, ..., volumes/) into a difyctl project
// without running an older release's configuration silently: data is
// linked, configuration comes from the embedded release, and each file of
// the operator's that differs from it is kept beside it as <file>.orig.
package adopt

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"

	"github.com/difyctl/difyctl/internal/atomicfile"
	"github.com/difyctl/difyctl/templates"
)

// DataDirs hold the deployment's data (and certificates): the project links
// them, so that "up" adopts the running deployment instead of starting a
// second one.
var DataDirs = []string{"volumes", "certbot"}

// ConfigDirs hold configuration the compose file mounts: an older release's
// copy may lack what this release needs (1.1.3's nginx has no route for
// 1.16.0's new services; its squid config lacks the private-network deny
// rules), so it is never used as it is.
var ConfigDirs = []string{"nginx", "ssrf_proxy", "pgvector", "elasticsearch", "iris", "startupscripts"}

// OrigSuffix is the suffix of the operator's version of a file the embedded
// release replaces.
const OrigSuffix = ".orig"

// Report says what Folders did; paths are relative to the project.
type Report struct {
	Linked   []string `json:"linked"`   // data folders linked to the source's
	Replaced []string `json:"replaced"` // files written from the embedded release; the source's differing version is <file>.orig
	Kept     []string `json:"kept"`     // files the project already had, different from both: left as they are
	Copied   []string `json:"copied"`   // files the embedded release does not ship (certificates, extra scripts), copied as they were
	Skipped  []string `json:"skipped"`  // symlinks and special files in the source's folders, not copied
}

// Folders adopts src's support folders into projectDir (which may be src
// itself: then its differing files are moved aside to <file>.orig). src is
// otherwise only read.
func Folders(src, projectDir string) (Report, error) {
	var rep Report
	same := filepath.Clean(src) == filepath.Clean(projectDir)
	if !same {
		for _, name := range DataDirs {
			target, link := filepath.Join(src, name), filepath.Join(projectDir, name)
			if _, err := os.Stat(target); err != nil {
				continue
			}
			if _, err := os.Lstat(link); err == nil {
				continue // the project already has its own
			}
			if err := os.Symlink(target, link); err != nil {
				return rep, fmt.Errorf("linking %s to %s: %w", link, target, err)
			}
			rep.Linked = append(rep.Linked, name)
		}
	}
	shipped := templates.SupportFiles()
	for _, name := range ConfigDirs {
		root := filepath.Join(src, name)
		if st, err := os.Stat(root); err != nil || !st.IsDir() {
			continue
		}
		err := filepath.WalkDir(root, func(p string, e fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(src, p)
			if e.IsDir() {
				return os.MkdirAll(filepath.Join(projectDir, rel), 0o755)
			}
			if !e.Type().IsRegular() {
				rep.Skipped = append(rep.Skipped, rel)
				return nil
			}
			return adoptFile(shipped, src, projectDir, rel, same, &rep)
		})
		if err != nil {
			return rep, fmt.Errorf("adopting %s: %w", root, err)
		}
	}
	return rep, nil
}

func adoptFile(shipped fs.FS, src, projectDir, rel string, same bool, rep *Report) error {
	theirs, err := os.ReadFile(filepath.Join(src, rel))
	if err != nil {
		return err
	}
	st, err := os.Stat(filepath.Join(src, rel))
	if err != nil {
		return err
	}
	target := filepath.Join(projectDir, rel)
	ours, err := fs.ReadFile(shipped, filepath.ToSlash(rel))
	if errors.Is(err, fs.ErrNotExist) {
		if _, err := os.Lstat(target); err == nil {
			return nil // the project's own (or src itself)
		}
		if err := atomicfile.WriteFile(target, theirs, st.Mode().Perm()); err != nil {
			return err
		}
		rep.Copied = append(rep.Copied, rel)
		return nil
	}
	if err != nil {
		return err
	}
	mode := os.FileMode(0o644)
	if filepath.Ext(rel) == ".sh" {
		mode = 0o755
	}
	current, cerr := os.ReadFile(target)
	switch {
	case bytes.Equal(theirs, ours):
		if cerr != nil {
			return atomicfile.WriteFile(target, ours, mode)
		}
		return nil
	case cerr == nil && bytes.Equal(current, ours):
		// Adopted before: keep the operator's version once.
		if prev, err := os.ReadFile(target + OrigSuffix); err == nil && bytes.Equal(prev, theirs) {
			return nil
		}
	case cerr == nil && !bytes.Equal(current, theirs):
		rep.Kept = append(rep.Kept, rel) // the project's own edit
		return nil
	}
	orig, err := freeName(target + OrigSuffix)
	if err != nil {
		return err
	}
	if err := atomicfile.WriteFile(orig, theirs, st.Mode().Perm()); err != nil {
		return err
	}
	if !bytes.Equal(current, ours) {
		if err := atomicfile.WriteFile(target, ours, mode); err != nil {
			return err
		}
	}
	rep.Replaced = append(rep.Replaced, rel)
	return nil
}

// freeName is p, or p.1, p.2, ... when p exists.
func freeName(p string) (string, error) {
	for i := 0; i < 1000; i++ {
		name := p
		if i > 0 {
			name = p + "." + strconv.Itoa(i)
		}
		if _, err := os.Lstat(name); errors.Is(err, fs.ErrNotExist) {
			return name, nil
		}
	}
	return "", fmt.Errorf("%s: no free name for the operator's copy", p)
}
