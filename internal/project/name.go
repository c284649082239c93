// Package project resolves which compose project a command acts on: its
// directory and its name.
package project

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/difyctl/difyctl/envgen"
)

// DefaultName is the project name when nothing else sets one.
const DefaultName = "dify"

// EnvFile is the name of the project's environment file.
const EnvFile = ".env"

var validName = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]*$`)

// ValidateName checks a project name against docker compose's rule:
// lowercase letters, digits, dashes and underscores, starting with a letter or
// digit.
func ValidateName(name string) error {
	if !validName.MatchString(name) {
		return fmt.Errorf("project name %q is invalid: use lowercase letters, digits, '-' and '_', starting with a letter or digit", name)
	}
	return nil
}

// ResolveName picks the project name: the -p flag, else COMPOSE_PROJECT_NAME
// in the environment, else COMPOSE_PROJECT_NAME in <dir>/.env, else "dify".
// source says which.
func ResolveName(dir, flag string, getenv func(string) string) (name, source string, err error) {
	return ResolveNameWith(dir, flag, getenv, envgen.ReadFile)
}

// ResolveNameWith is ResolveName reading .env with read (the caller's one
// reading of it, kept for what else needs it).
func ResolveNameWith(dir, flag string, getenv func(string) string, read func(path string) (*envgen.Doc, error)) (name, source string, err error) {
	switch {
	case flag != "":
		name, source = flag, "--project-name"
	case getenv("COMPOSE_PROJECT_NAME") != "":
		name, source = getenv("COMPOSE_PROJECT_NAME"), "environment COMPOSE_PROJECT_NAME"
	default:
		path := filepath.Join(dir, EnvFile)
		// The one .env reader, with docker compose's rules.
		d, rerr := read(path)
		v := ""
		if rerr == nil {
			v, _ = d.Get("COMPOSE_PROJECT_NAME")
		}
		switch {
		case rerr == nil && strings.TrimSpace(v) != "":
			name, source = strings.TrimSpace(v), path
		case rerr != nil && !errors.Is(rerr, fs.ErrNotExist):
			return "", "", fmt.Errorf("%w (read for COMPOSE_PROJECT_NAME)", rerr)
		default:
			name, source = DefaultName, "default"
		}
	}
	if err := ValidateName(name); err != nil {
		return "", "", fmt.Errorf("%w (from %s)", err, source)
	}
	return name, source, nil
}

// ResolveDir makes the project directory absolute; empty means the current
// directory. The directory must exist.
func ResolveDir(dir string) (string, error) {
	if dir == "" {
		dir = "."
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", fmt.Errorf("project directory %q: %w", dir, err)
	}
	st, err := os.Stat(abs)
	if err != nil {
		return "", fmt.Errorf("project directory %s: %w; create it or pass --project-dir", abs, err)
	}
	if !st.IsDir() {
		return "", fmt.Errorf("project directory %s is not a directory", abs)
	}
	return abs, nil
}
