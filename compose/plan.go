package compose

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/compose-spec/compose-go/v2/types"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"

	"github.com/difyctl/difyctl/health"
)

// Action is what up does with one container.
type Action string

// The actions of a plan.
const (
	ActionCreate   Action = "create"    // no container yet
	ActionRecreate Action = "recreate"  // replaced: created first, the old one removed once the new one started
	ActionStart    Action = "start"     // stopped, configuration current: started again
	ActionKeep     Action = "unchanged" // running with this configuration
	ActionUnpause  Action = "unpause"   // paused (a backup killed during its paused copy), configuration current: unpaused
	ActionDone     Action = "done"      // a one-shot job that completed earlier: not run again
	ActionRemove   Action = "remove"    // an orphan, with --remove-orphans
	ActionOrphan   Action = "orphan"    // an orphan left running (a warning names it)
)

// RecreatePolicy says when a container whose configuration diverged is
// replaced.
type RecreatePolicy string

// The recreate policies (--force-recreate, --no-recreate, neither).
const (
	RecreateDiverged RecreatePolicy = "diverged"
	RecreateNever    RecreatePolicy = "never"
	RecreateForce    RecreatePolicy = "force"
)

// PullPolicy says when up pulls a service's image.
type PullPolicy string

// The pull policies (up --pull, a service's pull_policy).
const (
	PullMissing PullPolicy = "missing"
	PullAlways  PullPolicy = "always"
	PullNever   PullPolicy = "never"
)

// ParsePullPolicy reads --pull or a service's pull_policy ("" is missing).
func ParsePullPolicy(s string) (PullPolicy, error) {
	switch s {
	case "", "missing", "if_not_present", "build":
		return PullMissing, nil
	case "always":
		return PullAlways, nil
	case "never":
		return PullNever, nil
	}
	return "", fmt.Errorf("pull policy %q: use always, missing or never", s)
}

// Observed is a container of the project as it is now.
type Observed struct {
	ProjectContainer
	ImageID  string                 // the image the container runs
	ExitCode int                    // of its last run
	Networks map[string][]string    // engine network name -> aliases
	Mounts   []container.MountPoint // what is mounted, anonymous volumes included
}

// PlanItem is what up does, or would do, with one container.
type PlanItem struct {
	Service   string `json:"service"`
	Container string `json:"container,omitempty"`
	Action    Action `json:"action"`
	Reason    string `json:"reason,omitempty"`
	Level     int    `json:"level"` // dependency depth: 0 starts first
	// State is the state of the service's container when the plan was made
	// (running, exited, paused, ...); "" when it had none.
	State string `json:"state,omitempty"`
	// Outcome is what happened to it, once up ran (see the Outcome* constants).
	Outcome string `json:"outcome,omitempty"`

	spec     *Spec
	existing *Observed
	oneShot  bool // a dependency of another service with service_completed_successfully
	noRetry  bool // restart "no" (or none): exiting 0 counts as ready
	needs    map[health.Condition]bool
}

// Plan is every decision of an up, made before anything changes.
type Plan struct {
	Project  string     `json:"project"`
	Items    []PlanItem `json:"services"` // in start order: level, then name
	Orphans  []PlanItem `json:"orphans,omitempty"`
	Notes    []string   `json:"notes,omitempty"`
	Warnings []string   `json:"warnings,omitempty"`
}

// String renders the plan as up --dry-run prints it, one line a container.
func (p *Plan) String() string {
	var b strings.Builder
	for _, it := range p.Items {
		line := fmt.Sprintf("level %d  %-22s %s", it.Level, it.Service, it.Action)
		if it.Reason != "" {
			line += " (" + it.Reason + ")"
		}
		b.WriteString(line + "\n")
	}
	for _, it := range p.Orphans {
		fmt.Fprintf(&b, "orphan   %-22s %s (%s)\n", it.Service, it.Action, it.Reason)
	}
	return b.String()
}

// item returns the plan item of a service (nil when not selected).
func (p *Plan) item(svc string) *PlanItem {
	for i := range p.Items {
		if p.Items[i].Service == svc {
			return &p.Items[i]
		}
	}
	return nil
}

// PlanInput is everything the planner decides from; it reads nothing else.
type PlanInput struct {
	Project       *types.Project
	Services      []string                                            // requested; empty: all
	Existing      []Observed                                          // the project's containers
	ImageIDs      map[string]string                                   // image reference -> the ID it resolves to now ("" unknown)
	Recreate      RecreatePolicy                                      //
	RemoveOrphans bool                                                //
	Labels        func(types.ServiceConfig, string) map[string]string // labels for a service given its config hash
	// NoDeps: only the requested services are converged; each dependency
	// they declare that is not requested is taken as it runs now (kept,
	// its conditions waited on, never created, started or replaced), and
	// one without a running container fails the plan.
	NoDeps bool
}

// MakePlan decides, for each selected service, what to do with its
// container, and finds the orphans. It calls nothing outside: the same
// input gives the same plan.
func MakePlan(in PlanInput) (*Plan, error) {
	p := in.Project
	var asIs map[string]string // dependency -> a service that named it
	var selected, notes []string
	var levels map[string]int
	var err error
	if in.NoDeps && len(in.Services) > 0 {
		selected, levels, asIs, err = selectNoDeps(p, in.Services)
	} else {
		selected, levels, notes, err = selectServices(p, in.Services)
	}
	if err != nil {
		return nil, err
	}
	plan := &Plan{Project: p.Name, Notes: notes}
	byService := canonicalContainers(p, in.Existing)
	oneShots := completionDependencies(p)
	for _, name := range selected {
		s := p.Services[name]
		hash, err := ServiceHash(s)
		if err != nil {
			return nil, fmt.Errorf("service %s: %w", name, err)
		}
		spec, err := Convert(p, s, in.Labels(s, hash))
		if err != nil {
			return nil, err
		}
		spec.ConfigHash = hash
		it := PlanItem{Service: name, Container: spec.Name, Level: levels[name], spec: spec, oneShot: oneShots[name],
			noRetry: s.Restart == "" || s.Restart == "no", needs: map[health.Condition]bool{}}
		it.existing = byService[name]
		if it.existing != nil {
			it.State = it.existing.State
		}
		if by, ok := asIs[name]; ok {
			if it.Action, it.Reason, err = asItRuns(it.existing, it.oneShot, name, by); err != nil {
				return nil, err
			}
		} else {
			it.Action, it.Reason = decide(it.existing, spec, in.ImageIDs[s.Image], it.oneShot, in.Recreate)
		}
		plan.Items = append(plan.Items, it)
	}
	for _, name := range selected {
		for dep, d := range p.Services[name].DependsOn {
			if it := plan.item(dep); it != nil {
				it.needs[health.Condition(d.Condition)] = true
			}
		}
	}
	plan.Orphans, plan.Warnings = orphans(p, in.Existing, in.RemoveOrphans)
	for _, o := range in.Existing {
		if c := byService[o.Service]; c != nil && c.ID != o.ID && !o.Oneoff && plan.item(o.Service) != nil {
			plan.Warnings = append(plan.Warnings, fmt.Sprintf("container %s is a second container of service %s (left by an interrupted replacement?); up leaves it alone: remove it with \"docker rm -f %s\" once you have kept what you need from it", o.Name, o.Service, o.Name))
		}
	}
	return plan, nil
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
	sortByLevel(out, levels)
	// One note per inactive dependency, naming who would have used it.
	for dep, by := range skipped {
		sort.Strings(by)
		notes = append(notes, fmt.Sprintf("optional dependency %s is not active (its profile is off), skipped for %s", dep, strings.Join(by, ", ")))
	}
	sort.Strings(notes)
	return out, levels, notes, nil
}

// selectNoDeps: with no-deps, the services to converge are the requested
// ones, and the dependencies they declare (active, not requested) are
// taken as they run (asIs: dependency -> the first requested service that
// named it); a dependency's own dependencies are not looked at: it runs.
// In start order, as selectServices.
func selectNoDeps(p *types.Project, requested []string) (names []string, levels map[string]int, asIs map[string]string, err error) {
	want := map[string]bool{}
	for _, r := range requested {
		if _, ok := p.Services[r]; !ok {
			return nil, nil, nil, fmt.Errorf("no service %q in the project (its profile may be inactive)", r)
		}
		want[r] = true
	}
	asIs = map[string]string{}
	for _, r := range sorted(append([]string(nil), requested...)) {
		for dep := range p.Services[r].DependsOn {
			if _, active := p.Services[dep]; active && !want[dep] && asIs[dep] == "" {
				asIs[dep] = r
			}
		}
	}
	for n := range want {
		names = append(names, n)
	}
	for n := range asIs {
		names = append(names, n)
	}
	levels = dependencyLevels(p, names)
	sortByLevel(names, levels)
	return names, levels, asIs, nil
}

// asItRuns is the action for a dependency --no-deps takes as it runs: kept
// when it runs (or, a one-shot job, exited 0 earlier); an error naming
// what to do when it does not.
func asItRuns(c *Observed, oneShot bool, dep, by string) (Action, string, error) {
	switch {
	case c != nil && c.State == string(container.StateRunning):
		return ActionKeep, "a dependency of " + by + ", taken as it runs: no-deps", nil
	case c != nil && oneShot && c.State == string(container.StateExited) && c.ExitCode == 0:
		return ActionDone, "completed earlier; no-deps", nil
	case c == nil:
		return "", "", fmt.Errorf("service %s depends on %s, which has no container, and its dependencies are not to be started (no-deps): bring %s up first, or converge without no-deps", by, dep, dep)
	}
	return "", "", fmt.Errorf("service %s depends on %s, which is %s, and its dependencies are not to be started (no-deps): start %s first, or converge without no-deps", by, dep, c.State, dep)
}

// sortByLevel puts names in start order: level, then name.
func sortByLevel(names []string, levels map[string]int) {
	sort.Slice(names, func(i, j int) bool {
		if levels[names[i]] != levels[names[j]] {
			return levels[names[i]] < levels[names[j]]
		}
		return names[i] < names[j]
	})
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
	l := map[string]string{
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
	if o.Release != "" {
		l[LabelDifyRelease] = o.Release
	}
	return l
}

// canonicalContainers maps each service to its container: the one with the
// name compose gives it, else the first found.
func canonicalContainers(p *types.Project, existing []Observed) map[string]*Observed {
	out := map[string]*Observed{}
	for i := range existing {
		o := &existing[i]
		if o.Oneoff {
			continue
		}
		cur, ok := out[o.Service]
		s, inProject := p.Services[o.Service]
		if !ok || inProject && o.Name == ContainerName(p.Name, s) && cur.Name != o.Name {
			out[o.Service] = o
		}
	}
	return out
}

// completionDependencies are the services some other service waits on to
// complete successfully: one-shot jobs by their role.
func completionDependencies(p *types.Project) map[string]bool {
	out := map[string]bool{}
	for _, s := range p.Services {
		for dep, d := range s.DependsOn {
			if health.Condition(d.Condition) == health.CompletedSuccessfully {
				out[dep] = true
			}
		}
	}
	return out
}

// decide what to do with a service given its container as it is now: the
// configuration hash, the image its tag resolves to now, its networks and
// aliases, and whether it runs.
func decide(c *Observed, spec *Spec, imageID string, oneShot bool, policy RecreatePolicy) (Action, string) {
	if c == nil {
		return ActionCreate, ""
	}
	if policy == RecreateForce {
		return ActionRecreate, "--force-recreate"
	}
	if policy != RecreateNever {
		if why := diverged(c, spec, imageID); why != "" {
			return ActionRecreate, why
		}
	}
	switch {
	case c.State == string(container.StateRunning):
		return ActionKeep, ""
	case c.State == string(container.StatePaused):
		return ActionUnpause, "paused"
	case oneShot && c.State == string(container.StateExited) && c.ExitCode == 0:
		return ActionDone, "completed earlier"
	}
	return ActionStart, "stopped"
}

// diverged says why a container no longer matches its service ("" when it
// does).
func diverged(c *Observed, spec *Spec, imageID string) string {
	var why []string
	if c.ConfigHash != spec.ConfigHash {
		why = append(why, "configuration changed")
	}
	if imageID != "" && c.ImageID != "" && imageID != c.ImageID {
		why = append(why, fmt.Sprintf("image %s now is %s, the container runs %s", spec.Config.Image, shortID(imageID), shortID(c.ImageID)))
	}
	for _, n := range spec.Networks {
		aliases, ok := c.Networks[n]
		if !ok {
			why = append(why, "not connected to network "+n)
			continue
		}
		if c.State != string(container.StateRunning) {
			continue // a stopped container's aliases are not reported reliably
		}
		for _, a := range spec.Aliases[n] {
			if !slices.Contains(aliases, a) {
				why = append(why, fmt.Sprintf("alias %s missing on network %s", a, n))
			}
		}
	}
	return strings.Join(why, "; ")
}

func shortID(id string) string {
	id = strings.TrimPrefix(id, "sha256:")
	if len(id) > 12 {
		id = id[:12]
	}
	return id
}

// orphans are the project's containers of services not in its files, and
// the running ones of services whose profile is not active.
func orphans(p *types.Project, existing []Observed, remove bool) ([]PlanItem, []string) {
	var items []PlanItem
	var gone, inactive []string
	for _, o := range existing {
		if _, ok := p.Services[o.Service]; ok || o.Oneoff {
			continue
		}
		reason := "not in the project's files"
		if _, ok := p.DisabledServices[o.Service]; ok {
			if o.State != string(container.StateRunning) {
				continue
			}
			reason = "its profile is not active"
			inactive = append(inactive, o.Service)
		} else {
			gone = append(gone, o.Service)
		}
		it := PlanItem{Service: o.Service, Container: o.Name, Action: ActionOrphan, Reason: reason, Level: -1, existing: &o}
		if remove {
			it.Action = ActionRemove
		}
		items = append(items, it)
	}
	sort.Slice(items, func(i, j int) bool { return items[i].Container < items[j].Container })
	var warnings []string
	if !remove {
		if len(gone) > 0 {
			warnings = append(warnings, fmt.Sprintf("found containers of services not in the project's files (%s); they keep running: remove them with \"difyctl up --remove-orphans\"", strings.Join(dedupe(sorted(gone)), ", ")))
		}
		if len(inactive) > 0 {
			warnings = append(warnings, fmt.Sprintf("running services whose profile is not active (%s) keep running; remove them with \"difyctl up --remove-orphans\" (their data directories stay)", strings.Join(dedupe(sorted(inactive)), ", ")))
		}
	}
	return items, warnings
}

func sorted(ss []string) []string {
	sort.Strings(ss)
	return ss
}

// inheritVolumes gives a replacement the old container's anonymous
// volumes, as compose does: a volume mount without a source in the new
// spec, or a VOLUME of the image not mounted otherwise, gets the old
// container's anonymous volume at the same path, so its data stays.
func inheritVolumes(spec *Spec, old []container.MountPoint) {
	mounted := map[string]int{}
	for i, m := range spec.Host.Mounts {
		mounted[m.Target] = i
	}
	for _, m := range old {
		if m.Type != mount.TypeVolume || !isAnonymous(m.Name) {
			continue
		}
		if i, ok := mounted[m.Destination]; ok {
			if nm := &spec.Host.Mounts[i]; nm.Type == mount.TypeVolume && nm.Source == "" {
				nm.Source = m.Name
			}
			continue
		}
		spec.Host.Mounts = append(spec.Host.Mounts, mount.Mount{Type: mount.TypeVolume, Source: m.Name, Target: m.Destination})
	}
}

// isAnonymous: the engine names anonymous volumes with 64 hex digits.
func isAnonymous(name string) bool {
	if len(name) != 64 {
		return false
	}
	for _, r := range name {
		if !('0' <= r && r <= '9' || 'a' <= r && r <= 'f') {
			return false
		}
	}
	return true
}

// envFileLabel is the project's .env when it has one (compose's
// environment_file label).
func envFileLabel(dir string) string {
	path := filepath.Join(dir, ".env")
	if _, err := os.Stat(path); err == nil {
		return path
	}
	return ""
}
