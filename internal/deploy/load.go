package deploy

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/difyctl/difyctl/compose"
	"github.com/difyctl/difyctl/envgen"
	"github.com/difyctl/difyctl/internal/cmdutil"
	"github.com/difyctl/difyctl/internal/cmdutil/inputfile"
	"github.com/difyctl/difyctl/internal/project"
	"github.com/difyctl/difyctl/profiles"
)

// LoadOptions builds the loader's options from the global flags and
// --profile. With the embedded templates, --profile names are checked
// against the catalogue. The input files are checked first, so that a
// missing or unreadable -f file or .env, or a .env line that cannot be read,
// exits 2 and names the file (and the line and variable, never its text).
// The .env is the factory's one reading of it: the options carry its
// variables (DotEnv), so loading does not read the file again.
func LoadOptions(f *cmdutil.Factory, names []string) (compose.LoadOptions, error) {
	dir, name, err := f.Project()
	if err != nil {
		return compose.LoadOptions{}, err
	}
	lo := compose.LoadOptions{ProjectDir: dir, ProjectName: name, Files: f.Files, Environ: f.Environment()}
	if err := CheckFiles(lo.Files); err != nil {
		return lo, err
	}
	if lo.DotEnv, err = f.EnvMap(); err != nil {
		return lo, err
	}
	if len(names) > 0 {
		if len(f.Files) == 0 {
			sel, err := profiles.Select(names, false)
			if err != nil {
				return lo, cmdutil.WithExitCode(cmdutil.ExitUsage, err)
			}
			lo.Profiles = sel.Names()
		} else {
			lo.Profiles = names
		}
	}
	return lo, nil
}

// CheckInputs checks the files a load reads: each -f file is a readable
// regular file, and the project's .env (when present) reads with docker
// compose's rules. Its errors are input-file errors (exit 2).
func CheckInputs(lo compose.LoadOptions) error {
	if err := CheckFiles(lo.Files); err != nil {
		return err
	}
	path := filepath.Join(lo.ProjectDir, project.EnvFile)
	if _, err := os.Lstat(path); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	_, err := envgen.ReadFileWithLookup(path, cmdutil.LookupIn(lo.Environ))
	return err
}

// CheckFiles checks that each -f file is a readable regular file.
func CheckFiles(files []string) error {
	for _, f := range files {
		st, err := os.Stat(f)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			return inputfile.Wrap(f, errors.New("compose file does not exist"))
		case err != nil:
			return inputfile.Mark(fmt.Errorf("compose file: %w", err))
		case st.IsDir():
			return inputfile.Wrap(f, errors.New("is a directory, not a compose file"))
		}
		r, err := os.Open(f)
		if err != nil {
			return inputfile.Mark(fmt.Errorf("compose file: %w", err))
		}
		r.Close()
	}
	return nil
}
