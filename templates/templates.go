// Package templates embeds the Dify release difyctl deploys: its compose
// file (compose/dify.yaml) and its env template (env/dify.env.tmpl), from
// which the variable schema and generated .env files derive. VERSION pins the
// release in one place.
package templates

import (
	"embed"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/difyctl/difyctl/internal/atomicfile"
)

//go:embed VERSION
var version string

//go:embed 1.16.0/compose/dify.yaml
var composeFile []byte

//go:embed 1.16.0/env/dify.env.tmpl
var envTemplate []byte

// ComposeFileName is the name the embedded compose file is loaded under
// (relative to the project directory), as docker compose names its default.
const ComposeFileName = "docker-compose.yaml"

// OverrideFileName is the user's customisation file in the project directory,
// merged over the embedded templates as docker compose merges it.
const OverrideFileName = "docker-compose.override.yaml"

// DifyVersion is the Dify release the templates describe.
func DifyVersion() string { return strings.TrimSpace(version) }

// Compose returns the embedded compose file.
func Compose() []byte { return composeFile }

// EnvTemplate returns the embedded env template.
func EnvTemplate() []byte { return envTemplate }

//go:embed all:1.16.0/files
var supportFiles embed.FS

// SupportFiles are the configuration files the compose template mounts from
// the project directory (nginx and squid templates and entrypoints, the
// sandbox configuration, profile entrypoints), rooted at "files".
func SupportFiles() fs.FS {
	sub, err := fs.Sub(supportFiles, "1.16.0/files")
	if err != nil {
		panic(err)
	}
	return sub
}

// WriteSupportFiles puts every support file under dir where none exists yet;
// files the operator has (perhaps edited) are never overwritten. Scripts get
// mode 0755, the rest 0644. It returns the paths it wrote.
func WriteSupportFiles(dir string) ([]string, error) {
	var written []string
	err := fs.WalkDir(SupportFiles(), ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == "." {
			return err
		}
		target := filepath.Join(dir, filepath.FromSlash(p))
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		if _, err := os.Lstat(target); err == nil {
			return nil
		}
		b, err := fs.ReadFile(SupportFiles(), p)
		if err != nil {
			return err
		}
		mode := os.FileMode(0o644)
		if strings.HasSuffix(p, ".sh") {
			mode = 0o755
		}
		if err := atomicfile.WriteFile(target, b, mode); err != nil {
			return err
		}
		written = append(written, target)
		return nil
	})
	return written, err
}
