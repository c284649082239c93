package compose

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/compose-spec/compose-go/v2/loader"
	"github.com/compose-spec/compose-go/v2/types"

	"github.com/difyctl/difyctl/envgen"
	"github.com/difyctl/difyctl/internal/release"
	"github.com/difyctl/difyctl/templates"
)

// LoadOptions says which project to load.
type LoadOptions struct {
	ProjectDir  string
	ProjectName string
	// Files are the -f files; empty means the embedded templates plus
	// docker-compose.override.yaml from the project directory when present.
	Files []string
	// Profiles to activate; empty means COMPOSE_PROFILES from the
	// environment or .env, as docker compose does.
	Profiles []string
	// Environ is the process environment (os.Environ()); it overrides .env.
	Environ []string
	// DotEnv is the project's .env as the caller already read it (the
	// factory's one reading, with envgen and ${VAR} resolved against
	// Environ; empty when the project has none): Load then does not open
	// the file again. nil: Load reads ProjectDir/.env itself, for a caller
	// without a factory (a journal's settler) or one that has just
	// written the file.
	DotEnv map[string]string
	// Release is the catalogue release whose compose file is loaded when
	// Files is empty; "": the one the project directory records (the
	// newest when it records none).
	Release string
}

// Template returns the catalogue release Load uses for o.
func (o LoadOptions) Template() (*templates.Release, error) {
	if o.Release != "" {
		return templates.Lookup(o.Release)
	}
	return release.Of(o.ProjectDir)
}

// EmbeddedFile is the path the embedded template is loaded under.
func EmbeddedFile(projectDir string) string {
	return filepath.Join(projectDir, templates.ComposeFileName)
}

// Environment returns the interpolation environment: the project's .env
// (read by envgen, the one .env reader, with compose's dotenv rules; ${VAR}
// and bare KEY lines resolved against environ first, as docker compose
// does) overridden by the process environment. A line that cannot be read
// is an input-file error naming the file, the line and the variable, never
// its text.
func Environment(projectDir string, environ []string) (map[string]string, error) {
	osEnv := environMap(environ)
	dotEnv := map[string]string{}
	path := filepath.Join(projectDir, ".env")
	d, err := envgen.ReadFileWithLookup(path, func(k string) (string, bool) { v, ok := osEnv[k]; return v, ok })
	switch {
	case err == nil:
		dotEnv = d.Map()
	case !errors.Is(err, fs.ErrNotExist):
		return nil, err
	}
	return overlay(dotEnv, osEnv), nil
}

// Environment is the interpolation environment Load uses for o: DotEnv
// (the .env as read already) or, when nil, the project's .env read now,
// overridden by Environ.
func (o LoadOptions) Environment() (map[string]string, error) {
	if o.DotEnv == nil {
		return Environment(o.ProjectDir, o.Environ)
	}
	return overlay(o.DotEnv, environMap(o.Environ)), nil
}

// environMap is an environ list as a map (later entries win).
func environMap(environ []string) map[string]string {
	m := make(map[string]string, len(environ))
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok {
			m[k] = v
		}
	}
	return m
}

// overlay is a copy of dotEnv with osEnv's values over it.
func overlay(dotEnv, osEnv map[string]string) map[string]string {
	env := make(map[string]string, len(dotEnv)+len(osEnv))
	for k, v := range dotEnv {
		env[k] = v
	}
	for k, v := range osEnv {
		env[k] = v
	}
	return env
}

// Load loads the project with compose-go exactly as docker compose would,
// from the embedded templates or the -f files.
func Load(ctx context.Context, o LoadOptions) (*types.Project, error) {
	env, err := o.Environment()
	if err != nil {
		return nil, err
	}
	var files []types.ConfigFile
	if len(o.Files) == 0 {
		rel, err := o.Template()
		if err != nil {
			return nil, err
		}
		files = append(files, types.ConfigFile{Filename: EmbeddedFile(o.ProjectDir), Content: rel.Compose()})
		override := filepath.Join(o.ProjectDir, templates.OverrideFileName)
		if b, err := os.ReadFile(override); err == nil {
			files = append(files, types.ConfigFile{Filename: override, Content: b})
		} else if !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("reading %s: %w", override, err)
		}
	} else {
		for _, f := range o.Files {
			if !filepath.IsAbs(f) {
				f = filepath.Join(o.ProjectDir, f)
			}
			b, err := os.ReadFile(f)
			if err != nil {
				return nil, fmt.Errorf("compose file: %w", err)
			}
			files = append(files, types.ConfigFile{Filename: f, Content: b})
		}
	}
	profiles := o.Profiles
	if len(profiles) == 0 {
		for _, p := range strings.Split(env["COMPOSE_PROFILES"], ",") {
			if p = strings.TrimSpace(p); p != "" {
				profiles = append(profiles, p)
			}
		}
	}
	details := types.ConfigDetails{WorkingDir: o.ProjectDir, ConfigFiles: files, Environment: env}
	p, err := loader.LoadWithContext(ctx, details, func(lo *loader.Options) {
		lo.SetProjectName(o.ProjectName, true)
		lo.Profiles = profiles
		lo.ResolvePaths = true
	})
	if err != nil {
		return nil, fmt.Errorf("loading the compose project: %w", err)
	}
	// As docker compose: networks and volumes no active service uses are not part of the project.
	return p.WithoutUnnecessaryResources(), nil
}

// ConfigFileNames lists the files a project was loaded from, as compose
// records them in the config_files label.
func ConfigFileNames(o LoadOptions) []string {
	if len(o.Files) > 0 {
		return o.Files
	}
	names := []string{EmbeddedFile(o.ProjectDir)}
	if _, err := os.Stat(filepath.Join(o.ProjectDir, templates.OverrideFileName)); err == nil {
		names = append(names, filepath.Join(o.ProjectDir, templates.OverrideFileName))
	}
	return names
}

// MaskToken stands for a secret in rendered output (config): plain
// letters, so the YAML around it stays valid.
const MaskToken = "MASKED"

// DeployedRelease is the catalogue release o deploys: "" when -f files
// replace the embedded templates (difyctl then does not know it).
func DeployedRelease(o LoadOptions) string {
	if len(o.Files) > 0 {
		return ""
	}
	rel, err := o.Template()
	if err != nil {
		return ""
	}
	return rel.Version
}
