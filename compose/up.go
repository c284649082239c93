package compose

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/compose-spec/compose-go/v2/types"
	"github.com/moby/moby/client"

	"github.com/difyctl/difyctl/internal/engine"
)

// UpOptions for Up.
type UpOptions struct {
	Project     *types.Project
	ConfigFiles []string
	Services    []string      // only these and their dependencies; empty: all
	WaitTimeout time.Duration // bound on the whole wait; 0: none
	// ProbeInterval: how often difyctl runs a starting service's
	// healthcheck itself (health.WaitWith); 0: the default (1 s),
	// health.ProbesOff: never (the engine's status only, as compose).
	ProbeInterval time.Duration
	Recreate      RecreatePolicy
	Pull          PullPolicy // "" : each service's pull_policy (missing by default)
	RemoveOrphans bool
	DryRun        bool
	// NoStart: make the networks, volumes and bind directories and create
	// the containers of the services that have none, start nothing (docker
	// compose create); a container a service already has is left as it is.
	NoStart bool
	// NoDeps: converge only Services; the dependencies they declare are
	// taken as they run now, their conditions waited on (docker compose up
	// --no-deps, which does not wait on them); one that does not run fails
	// the plan.
	NoDeps  bool
	Version string // difyctl's version, for the version label
	Release string // the catalogue release deployed, for LabelDifyRelease ("" : none)
	Report  Reporter
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
	x := &executor{cli: cli, plan: plan, report: o.Report, probes: o.Report != nil, ctx: ctx, waitCtx: ctx,
		probeInterval: o.ProbeInterval, cpus: engineCPUs(ctx, cli), createOnly: o.NoStart}
	if o.WaitTimeout > 0 {
		var cancel context.CancelFunc
		x.waitCtx, cancel = context.WithTimeout(ctx, o.WaitTimeout)
		defer cancel()
	}
	ids := map[string]*created{}
	if err := x.createAll(ids); err != nil {
		return res, err
	}
	if o.NoStart {
		return res, nil
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
	if o.NoDeps && len(o.Services) > 0 {
		selected = o.Services // the dependencies taken as they run need no image
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
		RemoveOrphans: o.RemoveOrphans, NoDeps: o.NoDeps, Labels: func(s types.ServiceConfig, hash string) map[string]string {
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
	var netErr error
	done := make(chan struct{})
	go func() {
		defer close(done)
		netErr = ensureNetworks(ctx, cli, p, plan, o.Version)
	}()
	volErr := ensureVolumes(ctx, cli, p, plan, o.Version)
	<-done
	if err := errors.Join(netErr, volErr); err != nil {
		return err
	}
	return ensureBindDirs(p, plan)
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
