// Package upgrade moves a running Dify deployment from one release of the
// catalogue to another, with a way back: plan (what changes and what it
// costs), preflight (every target image pulled before anything stops, disk
// space, downgrades refused), safety (a verified full bundle), apply (.env
// upgraded to the target's schema keeping every value, support files
// updated without losing an operator's edit, only the changed services
// recreated, dependency order, health-gated), done (release recorded). Every
// step is journaled (internal/journal, op "upgrade"); a failure in apply, a
// SIGKILL, or `difyctl rollback` after a completed upgrade puts back the
// previous .env, support files, containers and, once migrations may have
// run, the database from the bundle.
package upgrade

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/compose-spec/compose-go/v2/types"
	"github.com/moby/moby/api/types/container"

	"github.com/difyctl/difyctl/compose"
	"github.com/difyctl/difyctl/envgen"
	"github.com/difyctl/difyctl/internal/catalog"
	"github.com/difyctl/difyctl/internal/engine"
	"github.com/difyctl/difyctl/internal/release"
	"github.com/difyctl/difyctl/templates"
)

// Target names the deployment and where it goes.
type Target struct {
	Dir     string
	Project string
	To      string   // "" : the catalogue's newest
	Environ []string // the process environment (overrides .env, as for up)
}

// File is one support file and what the upgrade does with it.
type File struct {
	Path   string `json:"path"`   // relative to the project directory
	Action string `json:"action"` // FileWrite, FileReplace, FileBeside
	Beside string `json:"beside,omitempty"`
}

// What happens to a support file.
const (
	FileWrite   = "write"   // missing: written
	FileReplace = "replace" // as the previous release shipped it: replaced
	FileBeside  = "beside"  // edited by the operator: kept, the new one written beside it
)

// Plan is what an upgrade will do, computed before anything changes.
type Plan struct {
	Project     string             `json:"project"`
	Dir         string             `json:"dir"`
	From        string             `json:"from"`
	FromSource  string             `json:"fromSource"` // "recorded" or "detected from the running images"
	To          string             `json:"to"`
	Downgrade   bool               `json:"downgrade"`
	Changes     *catalog.Changes   `json:"changes"`
	Pull        []string           `json:"pull"`     // target images not on the host yet
	Recreate    []string           `json:"recreate"` // services whose containers are created, recreated or removed
	EnvAdded    []string           `json:"envAdded"`
	EnvRenamed  []string           `json:"envRenamed"`
	Files       []File             `json:"files"`
	Running     []string           `json:"running"` // services running now
	ComposePlan []compose.PlanItem `json:"composePlan,omitempty"`

	env  *envgen.Doc // the upgraded .env, not yet written
	from *templates.Release
	to   *templates.Release
}

// Current says which release a project deploys: the recorded one, else the
// one its running containers' images name (an `env import`-ed or older
// deployment), else an error saying how to tell.
func Current(ctx context.Context, eng engine.Engine, dir, project string) (rel *templates.Release, source string, err error) {
	rec, err := release.Read(dir)
	if err != nil {
		return nil, "", err
	}
	if rec != nil {
		r, err := templates.Lookup(rec.Release)
		return r, "recorded", err
	}
	cs, err := compose.List(ctx, eng, project, false)
	if err != nil {
		return nil, "", err
	}
	running := map[string]string{}
	for _, c := range cs {
		if !c.Oneoff {
			running[c.Service] = c.Image
		}
	}
	if v := catalog.Detect(running); v != "" {
		r, err := templates.Lookup(v)
		return r, "detected from the running images", err
	}
	return nil, "", fmt.Errorf("cannot tell which Dify release project %s runs: %s records none and the running containers' images match no release of the catalogue (%v); start it with `difyctl up`, or record it: echo '{\"release\":\"X.Y.Z\",\"source\":\"operator\"}' > %s",
		project, release.Path(dir), templates.Versions(), release.Path(dir))
}

// MakePlan computes the plan; it changes nothing (dry runs stop here).
func MakePlan(ctx context.Context, eng engine.Engine, t Target) (*Plan, error) {
	from, source, err := Current(ctx, eng, t.Dir, t.Project)
	if err != nil {
		return nil, err
	}
	to := templates.Latest()
	if t.To != "" {
		if to, err = templates.Lookup(t.To); err != nil {
			return nil, err
		}
	}
	p := &Plan{Project: t.Project, Dir: t.Dir, From: from.Version, FromSource: source, To: to.Version,
		Downgrade: templates.CompareVersions(to.Version, from.Version) < 0, from: from, to: to}
	if p.Changes, err = catalog.Diff(from, to); err != nil {
		return nil, err
	}
	envPath := filepath.Join(t.Dir, ".env")
	d, err := envgen.ReadFile(envPath)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w (run `difyctl init --release %s` first)", envPath, err, from.Version)
	}
	rep, err := envgen.Upgrade(d, envgen.SchemaFor(to), rand.Reader, time.Now())
	if err != nil {
		return nil, fmt.Errorf("upgrading %s to release %s's variables: %w", envPath, to.Version, err)
	}
	p.env, p.EnvAdded, p.EnvRenamed = d, rep.Added, rep.Renamed
	if p.Files, err = planFiles(t.Dir, from, to); err != nil {
		return nil, err
	}
	cs, err := compose.List(ctx, eng, t.Project, false)
	if err != nil {
		return nil, err
	}
	for _, c := range cs {
		if !c.Oneoff && c.State == "running" {
			p.Running = append(p.Running, c.Service)
		}
	}
	sort.Strings(p.Running)
	proj, err := p.loadTarget(ctx, t)
	if err != nil {
		return nil, err
	}
	for _, s := range proj.Services {
		if _, err := eng.ImageInspect(ctx, s.Image); err != nil && !contains(p.Pull, s.Image) {
			p.Pull = append(p.Pull, s.Image)
		}
	}
	sort.Strings(p.Pull)
	res, err := compose.Up(ctx, eng, compose.UpOptions{Project: proj, DryRun: true, RemoveOrphans: true, Release: to.Version})
	if err != nil {
		return nil, fmt.Errorf("planning the containers of release %s: %w", to.Version, err)
	}
	p.ComposePlan = res.Plan
	for _, it := range append(append([]compose.PlanItem(nil), res.Plan...), res.Orphans...) {
		if it.Action != compose.ActionKeep && it.Action != compose.ActionDone && it.Action != compose.ActionUnpause {
			p.Recreate = append(p.Recreate, it.Service)
		}
	}
	sort.Strings(p.Recreate)
	return p, nil
}

// loadTarget loads the target release's project with the upgraded .env
// (passed as the environment, so nothing is written to plan).
func (p *Plan) loadTarget(ctx context.Context, t Target) (*types.Project, error) {
	environ := append([]string(nil), t.Environ...)
	for k, v := range p.env.Map() {
		if !inEnviron(t.Environ, k) {
			environ = append(environ, k+"="+v)
		}
	}
	proj, err := compose.Load(ctx, compose.LoadOptions{ProjectDir: t.Dir, ProjectName: t.Project, Release: p.To, Environ: environ})
	if err != nil {
		return nil, fmt.Errorf("loading release %s's compose file with the upgraded .env: %w", p.To, err)
	}
	return proj, nil
}

func inEnviron(environ []string, k string) bool {
	for _, kv := range environ {
		if len(kv) > len(k) && kv[:len(k)] == k && kv[len(k)] == '=' {
			return true
		}
	}
	return false
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

// planFiles decides, for every support file of the target release, what
// happens to the operator's copy: written when missing, replaced when it is
// byte for byte what the previous release shipped, kept and the new one
// written beside it (<file>.dify-<to>) when the operator edited it.
func planFiles(dir string, from, to *templates.Release) ([]File, error) {
	var out []File
	err := fs.WalkDir(to.SupportFiles(), ".", func(pth string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		want, err := fs.ReadFile(to.SupportFiles(), pth)
		if err != nil {
			return err
		}
		have, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(pth)))
		switch {
		case errors.Is(err, fs.ErrNotExist):
			out = append(out, File{Path: pth, Action: FileWrite})
			return nil
		case err != nil:
			return fmt.Errorf("reading the support file %s: %w", pth, err)
		case bytes.Equal(have, want):
			return nil
		}
		shipped, err := fs.ReadFile(from.SupportFiles(), pth)
		if err == nil && bytes.Equal(have, shipped) {
			out = append(out, File{Path: pth, Action: FileReplace})
		} else {
			out = append(out, File{Path: pth, Action: FileBeside, Beside: pth + ".dify-" + to.Version})
		}
		return nil
	})
	return out, err
}

// earlyServices are the services the upgrade adds (no container yet) that
// can start before anything is stopped, so their start is not downtime:
// each dependency they declare is one of them, or has a container that
// runs now (or, a one-shot job, completed) and serves its condition until
// its replacement, if any, takes over, as it serves every other dependent
// meanwhile. Not when the service declares restart: true on a dependency
// the upgrade replaces: it asks to start after that replacement. They are
// started with no-deps (apply): the dependencies are waited on as they
// run, never replaced ahead of the rest.
func (p *Plan) earlyServices(proj *types.Project) []string {
	items := map[string]compose.PlanItem{}
	for _, it := range p.ComposePlan {
		items[it.Service] = it
	}
	memo := map[string]bool{}
	var early func(svc string, seen map[string]bool) bool
	early = func(svc string, seen map[string]bool) bool {
		if v, ok := memo[svc]; ok {
			return v
		}
		if seen[svc] {
			return false
		}
		seen[svc] = true
		it, ok := items[svc]
		s, active := proj.Services[svc]
		if !ok || !active || it.Action != compose.ActionCreate {
			return false
		}
		for dep, d := range s.DependsOn {
			if _, active := proj.Services[dep]; !active {
				continue // an inactive optional dependency
			}
			di, ok := items[dep]
			switch {
			case !ok:
				return false
			case di.Action == compose.ActionCreate:
				if !early(dep, seen) {
					return false
				}
			case di.Action == compose.ActionDone:
			case di.State != string(container.StateRunning):
				return false
			case d.Restart && di.Action == compose.ActionRecreate:
				return false
			}
		}
		memo[svc] = true
		return true
	}
	var out []string
	for _, it := range p.ComposePlan {
		if early(it.Service, map[string]bool{}) {
			out = append(out, it.Service)
		}
	}
	sort.Strings(out)
	return out
}
