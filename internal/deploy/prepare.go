package deploy

import (
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"time"

	"github.com/difyctl/difyctl/envgen"
	"github.com/difyctl/difyctl/internal/cmdutil"
	"github.com/difyctl/difyctl/internal/project"
	"github.com/difyctl/difyctl/internal/release"
	"github.com/difyctl/difyctl/profiles"
)

// PrepareOptions is what up asks of the project directory.
type PrepareOptions struct {
	Dir, Project string
	// Embedded: the embedded templates (no -f); only then is .env written,
	// checked against --profile and validated.
	Embedded bool
	Profiles []string    // --profile as given
	DryRun   bool        // write nothing
	Env      *envgen.Doc // the project's .env as read; nil: it has none
	Now      time.Time
	Report   io.Writer // where Prepare says what it wrote
}

// Prepared is what up loads the project with.
type Prepared struct {
	// Profiles to activate; nil: COMPOSE_PROFILES from .env.
	Profiles []string
	// Env is the project's .env (written now when it had none).
	Env *envgen.Doc
	// Wrote is set when Prepare wrote the .env.
	Wrote *Result
}

// Prepare makes sure the project's .env exists, agrees with --profile and
// validates, and returns the profiles to load. With -f files it only passes
// --profile on.
func Prepare(o PrepareOptions) (Prepared, error) {
	if !o.Embedded {
		return Prepared{Profiles: o.Profiles, Env: o.Env}, nil
	}
	path := filepath.Join(o.Dir, project.EnvFile)
	p := Prepared{Env: o.Env}
	if p.Env == nil {
		if o.DryRun {
			return p, cmdutil.UsageError("%s does not exist; run \"difyctl init\" (or up without --dry-run, which writes it)", path)
		}
		res, err := WriteProject(o.Dir, o.Project, o.Profiles, false, o.Now)
		if err != nil {
			return p, err
		}
		fmt.Fprintf(o.Report, "wrote %s for %s + %s with fresh secrets (mode 0600)\n", res.Path, res.Profiles.Database, res.Profiles.Vector)
		p.Env, p.Wrote = res.Env, &res
	}
	rel, err := release.Of(o.Dir)
	if err != nil {
		return p, cmdutil.WithExitCode(cmdutil.ExitUsage, err)
	}
	if !o.DryRun && p.Wrote == nil { // WriteProject wrote them with the .env
		if _, err := rel.WriteSupportFiles(o.Dir); err != nil {
			return p, fmt.Errorf("writing the configuration files the services mount: %w", err)
		}
	}
	if p.Profiles, err = selectProfiles(path, p.Env.Map(), o.Profiles); err != nil {
		return p, err
	}
	var errs []string
	for _, fd := range envgen.Validate(p.Env, envgen.SchemaFor(rel)) {
		if fd.Severity == envgen.Error {
			errs = append(errs, "  "+fd.String())
		}
	}
	if len(errs) > 0 {
		return p, cmdutil.WithExitCode(cmdutil.ExitFailure, fmt.Errorf("%s has errors; nothing was started:\n%s", path, strings.Join(errs, "\n")))
	}
	return p, nil
}

// selectProfiles checks --profile against what .env says and returns the
// profiles to load: those .env enables plus the extras named; nil without
// --profile (the loader reads COMPOSE_PROFILES).
func selectProfiles(path string, env map[string]string, names []string) ([]string, error) {
	if len(names) == 0 {
		return nil, nil
	}
	sel, err := profiles.Select(names, true)
	if err != nil {
		return nil, cmdutil.WithExitCode(cmdutil.ExitUsage, err)
	}
	for _, c := range []struct{ v, want string }{{"DB_TYPE", sel.Database}, {"VECTOR_STORE", sel.Vector}} {
		if got := env[c.v]; got != "" && got != c.want {
			return nil, cmdutil.UsageError("%s says %s=%s but --profile asks for %s; change it with \"difyctl env set %s=%s\" (and migrate the data), or drop --profile", path, c.v, got, c.want, c.v, c.want)
		}
	}
	// Profiles named on the command line that .env does not enable yet.
	cur, _ := profiles.FromEnv(env)
	return append(cur.Names(), sel.Extras...), nil
}
