package compose

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/compose-spec/compose-go/v2/types"
	"github.com/moby/moby/client"

	"github.com/difyctl/difyctl/internal/engine"
)

// UpOptions for Up.
type UpOptions struct {
	Project       *types.Project
	ConfigFiles   []string
	Services      []string      // only these and their dependencies; empty: all
	WaitTimeout   time.Duration // bound on the whole wait; 0: none
	Recreate      RecreatePolicy
	Pull          PullPolicy // "" : each service's pull_policy (missing by default)
	RemoveOrphans bool
	DryRun        bool
	Version       string // difyctl's version, for the version label
	Report        Reporter
	// RegistryAuth gives the engine's X-Registry-Auth value for pulling an
	// image ("" for an anonymous pull); nil: always anonymous.
	RegistryAuth func(ctx context.Context, image string) (string, error)
}

// UpResult is what Up did (or, dry, would do).
type UpResult struct {
	Plan     []PlanItem `json:"plan"`
	Orphans  []PlanItem `json:"orphans,omitempty"`
	Failures []Failure  `json:"failures,omitempty"`
	Notes    []string   `json:"notes,omitempty"`
	Warnings []string   `json:"warnings,omitempty"`
}

// PlanText renders the result's plan as Plan.String does.
func (r *UpResult) PlanText() string {
	return (&Plan{Items: r.Plan, Orphans: r.Orphans}).String()
}

func resultOf(p *Plan) *UpResult {
	return &UpResult{Plan: p.Items, Orphans: p.Orphans, Notes: p.Notes, Warnings: p.Warnings}
}

// Up converges the project on its files: plan (what to do with each
// container, decided before anything changes), resources (images, networks,
// volumes, bind directories, checks of ports and data directories), then
// execute: every new container and replacement created up front, each
// service started or replaced once its depends_on conditions hold, driven by
// engine events.
func Up(ctx context.Context, cli engine.Engine, o UpOptions) (*UpResult, error) {
	plan, err := planUp(ctx, cli, o)
	if err != nil {
		return nil, err
	}
	res := resultOf(plan)
	if o.DryRun {
		return res, nil
	}
	if err := prepareResources(ctx, cli, o, plan); err != nil {
		return res, err
	}
	x := &executor{cli: cli, plan: plan, report: o.Report, probes: o.Report != nil, ctx: ctx, waitCtx: ctx}
	if o.WaitTimeout > 0 {
		var cancel context.CancelFunc
		x.waitCtx, cancel = context.WithTimeout(ctx, o.WaitTimeout)
		defer cancel()
	}
	ids := map[string]*created{}
	if err := x.createAll(ids); err != nil {
		return res, err
	}
	x.run(ids)
	res.Notes = append(res.Notes, x.notes...)
	if fe := x.fails.report(ctx, cli, nil); fe != nil {
		res.Failures = fe.Failures
		return res, fe
	}
	return res, ctx.Err()
}

// planUp observes the project (pulling images first, as the policy says,
// so the plan compares with what the tags name now) and plans.
func planUp(ctx context.Context, cli engine.Engine, o UpOptions) (*Plan, error) {
	p := o.Project
	selected, _, _, err := selectServices(p, o.Services)
	if err != nil {
		return nil, err
	}
	if !o.DryRun {
		// Images first: a missing image stops up before anything changes.
		reqs, err := imagesToPull(ctx, cli, p, selected, o.Pull)
		if err != nil {
			return nil, err
		}
		if err := PullImages(ctx, cli, reqs, o.RegistryAuth, o.Report); err != nil {
			return nil, err
		}
	}
	existing, err := observe(ctx, cli, p.Name)
	if err != nil {
		return nil, err
	}
	ids, err := imageIDs(ctx, cli, p, selected)
	if err != nil {
		return nil, err
	}
	envFile := envFileLabel(p.WorkingDir)
	return MakePlan(PlanInput{Project: p, Services: o.Services, Existing: existing, ImageIDs: ids, Recreate: o.Recreate,
		RemoveOrphans: o.RemoveOrphans, Labels: func(s types.ServiceConfig, hash string) map[string]string {
			return serviceLabels(p, s, hash, envFile, o)
		}})
}

// prepareResources makes what the containers need and checks what they
// would clash with, before any container changes.
func prepareResources(ctx context.Context, cli engine.Engine, o UpOptions, plan *Plan) error {
	p := o.Project
	if err := removeOrphans(ctx, cli, plan, o.Report); err != nil {
		return err
	}
	if err := preflight(ctx, cli, p, plan); err != nil {
		return fmt.Errorf("nothing was changed:\n%w", err)
	}
	if err := ensureNetworks(ctx, cli, p, plan, o.Version); err != nil {
		return err
	}
	if err := ensureVolumes(ctx, cli, p, plan, o.Version); err != nil {
		return err
	}
	return ensureBindDirs(p, plan)
}

// selectServices returns the services to run in dependency order: the
// requested ones (all when none) and what they depend on. A dependency on a
// service that is not in the project (its profile is inactive) is skipped
// with a note when it is required: false, and is an error otherwise.
func selectServices(p *types.Project, requested []string) (names []string, levels map[string]int, notes []string, err error) {
	skipped := map[string][]string{} // inactive optional dependency -> who named it
	want := map[string]bool{}
	var visit func(name string, from string) error
	visit = func(name, from string) error {
		s, ok := p.Services[name]
		if !ok {
			if from == "" {
				return fmt.Errorf("no service %q in the project (its profile may be inactive)", name)
			}
			return fmt.Errorf("service %s depends on %s, which is not active; enable its profile or mark the dependency required: false", from, name)
		}
		if want[name] {
			return nil
		}
		want[name] = true
		for dep, d := range s.DependsOn {
			if _, ok := p.Services[dep]; !ok && !d.Required {
				skipped[dep] = append(skipped[dep], name)
				continue
			}
			if err := visit(dep, name); err != nil {
				return err
			}
		}
		return nil
	}
	if len(requested) == 0 {
		for name := range p.Services {
			requested = append(requested, name)
		}
	}
	for _, n := range requested {
		if err := visit(n, ""); err != nil {
			return nil, nil, nil, err
		}
	}
	// Disabled services compose-go kept aside also count as inactive.
	out := make([]string, 0, len(want))
	for n := range want {
		out = append(out, n)
	}
	levels = dependencyLevels(p, out)
	sort.Slice(out, func(i, j int) bool {
		if levels[out[i]] != levels[out[j]] {
			return levels[out[i]] < levels[out[j]]
		}
		return out[i] < out[j]
	})
	// One note per inactive dependency, naming who would have used it.
	for dep, by := range skipped {
		sort.Strings(by)
		notes = append(notes, fmt.Sprintf("optional dependency %s is not active (its profile is off), skipped for %s", dep, strings.Join(by, ", ")))
	}
	sort.Strings(notes)
	return out, levels, notes, nil
}

// dependencyLevels gives each service its depth in the dependency graph.
func dependencyLevels(p *types.Project, names []string) map[string]int {
	levels := map[string]int{}
	var depth func(string, int) int
	depth = func(n string, guard int) int {
		if l, ok := levels[n]; ok {
			return l
		}
		if guard > len(p.Services) {
			return 0 // a cycle; compose-go rejects those at load
		}
		l := 0
		for dep := range p.Services[n].DependsOn {
			if _, ok := p.Services[dep]; ok {
				l = max(l, depth(dep, guard+1)+1)
			}
		}
		levels[n] = l
		return l
	}
	for _, n := range names {
		depth(n, 0)
	}
	return levels
}

func serviceLabels(p *types.Project, s types.ServiceConfig, hash, envFile string, o UpOptions) map[string]string {
	return map[string]string{
		LabelProject:         p.Name,
		LabelService:         s.Name,
		LabelNumber:          "1",
		LabelOneoff:          "False",
		LabelConfigHash:      hash,
		LabelWorkingDir:      p.WorkingDir,
		LabelConfigFiles:     strings.Join(o.ConfigFiles, ","),
		LabelEnvironmentFile: envFile,
		LabelDependencies:    dependsOnLabel(s),
		LabelImage:           s.Image,
		LabelVersion:         o.Version,
	}
}

// lastLogs returns the last n log lines of a container.
func lastLogs(ctx context.Context, cli engine.Engine, id string, n int) []string {
	rc, err := cli.ContainerLogs(ctx, id, client.ContainerLogsOptions{ShowStdout: true, ShowStderr: true, Tail: fmt.Sprint(n)})
	if err != nil {
		return []string{"(logs unavailable: " + err.Error() + ")"}
	}
	defer rc.Close()
	t := newTailLines(n) // lines capped, constant memory (logline.go)
	if _, err := stdcopyDemux(t, rc); err != nil {
		return []string{"(logs unreadable: " + err.Error() + ")"}
	}
	return t.Lines()
}
