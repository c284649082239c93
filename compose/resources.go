package compose

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/compose-spec/compose-go/v2/types"
	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/go-units"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/client"

	"github.com/difyctl/difyctl/internal/engine"
)

// observe reads the project's containers as they are now: state, image,
// networks with aliases, mounts.
func observe(ctx context.Context, cli engine.Engine, project string) ([]Observed, error) {
	cs, err := List(ctx, cli, project, true)
	if err != nil {
		return nil, err
	}
	out := make([]Observed, len(cs))
	var errs errList
	var wg sync.WaitGroup
	for i, c := range cs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out[i].ProjectContainer = c
			ins, err := cli.ContainerInspect(ctx, c.ID, client.ContainerInspectOptions{})
			if cerrdefs.IsNotFound(err) {
				return // removed meanwhile: seen as stopped, without details
			} else if err != nil {
				errs.add(fmt.Errorf("inspecting container %s: %w", c.Name, err))
				return
			}
			r := ins.Container
			out[i].ImageID, out[i].Mounts = r.Image, r.Mounts
			if r.State != nil {
				out[i].ExitCode = r.State.ExitCode
			}
			out[i].Networks = map[string][]string{}
			if r.NetworkSettings != nil {
				for n, ep := range r.NetworkSettings.Networks {
					if ep != nil {
						out[i].Networks[n] = ep.Aliases
					} else {
						out[i].Networks[n] = nil
					}
				}
			}
		}()
	}
	wg.Wait()
	return out, errs.join()
}

// pullPolicy is the policy for a service: --pull when given, else its
// pull_policy.
func pullPolicy(flag PullPolicy, s types.ServiceConfig) (PullPolicy, error) {
	if flag != "" {
		return flag, nil
	}
	p, err := ParsePullPolicy(s.PullPolicy)
	if err != nil {
		return "", fmt.Errorf("service %s: %w", s.Name, err)
	}
	return p, nil
}

// ImageRequest is an image to pull and the services that use it.
type ImageRequest struct {
	Image    string
	Services []string
}

// imagesToPull decides, by policy, which images to pull; an image a policy
// of never forbids pulling and that is absent is an error naming it.
func imagesToPull(ctx context.Context, cli engine.Engine, p *types.Project, names []string, flag PullPolicy) ([]ImageRequest, error) {
	byImage := map[string][]string{}
	policy := map[string]PullPolicy{}
	for _, n := range names {
		s := p.Services[n]
		pol, err := pullPolicy(flag, s)
		if err != nil {
			return nil, err
		}
		byImage[s.Image] = append(byImage[s.Image], n)
		if policy[s.Image] != PullAlways {
			policy[s.Image] = pol
		}
	}
	var out []ImageRequest
	for img, svcs := range byImage {
		sort.Strings(svcs)
		pol := policy[img]
		if pol != PullAlways {
			if _, err := cli.ImageInspect(ctx, img); err == nil {
				continue
			} else if !cerrdefs.IsNotFound(err) {
				return nil, fmt.Errorf("image %s: %w", img, err)
			}
			if pol == PullNever {
				return nil, fmt.Errorf("image %s (%s) is not present and the pull policy is never; pull it (difyctl pull) or use --pull missing", img, who(svcs))
			}
		}
		out = append(out, ImageRequest{Image: img, Services: svcs})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Image < out[j].Image })
	return out, nil
}

func who(services []string) string {
	if len(services) == 1 {
		return "service " + services[0]
	}
	return "services " + strings.Join(services, ", ")
}

// PullImages pulls the images all at once (the engine bounds concurrent
// layer downloads itself), with auth's credentials, and reports each
// failure with the image and the services that use it.
func PullImages(ctx context.Context, cli engine.Engine, reqs []ImageRequest, auth func(context.Context, string) (string, error), report Reporter) error {
	var (
		errs errList
		wg   sync.WaitGroup
	)
	for _, r := range reqs {
		wg.Add(1)
		go func(r ImageRequest) {
			defer wg.Done()
			var registryAuth string
			if auth != nil {
				a, err := auth(ctx, r.Image)
				if err != nil {
					errs.add(fmt.Errorf("image %s: finding registry credentials: %w", r.Image, err))
					return
				}
				registryAuth = a
			}
			if err := pullImage(ctx, cli, r.Image, registryAuth, func(detail string) {
				for _, s := range r.Services {
					report.emit(s, StatePulling, detail)
				}
			}); err != nil {
				errs.add(fmt.Errorf("image %s (%s) is not present and could not be pulled: %v", r.Image, who(r.Services), err))
			}
		}(r)
	}
	wg.Wait()
	return errs.join()
}

// pullImage pulls img, reporting the sum of its layers' progress at most
// twice a second.
func pullImage(ctx context.Context, cli engine.Engine, img, registryAuth string, progress func(detail string)) error {
	progress(img)
	resp, err := cli.ImagePull(ctx, img, client.ImagePullOptions{RegistryAuth: registryAuth})
	if err != nil {
		return err
	}
	defer resp.Close()
	layers := map[string][2]int64{}
	last := time.Time{}
	for msg, err := range resp.JSONMessages(ctx) {
		if err != nil {
			return err
		}
		if msg.Error != nil {
			return errors.New(msg.Error.Message)
		}
		if msg.Progress != nil && msg.ID != "" && msg.Progress.Total > 0 {
			layers[msg.ID] = [2]int64{msg.Progress.Current, msg.Progress.Total}
		}
		if time.Since(last) > 500*time.Millisecond && len(layers) > 0 {
			var cur, total int64
			for _, l := range layers {
				cur, total = cur+l[0], total+l[1]
			}
			progress(fmt.Sprintf("%s %s/%s (%d layers)", img, units.BytesSize(float64(cur)), units.BytesSize(float64(total)), len(layers)))
			last = time.Now()
		}
	}
	// The engine ends a pull it could not finish with an error message;
	// make sure the image is really there.
	if _, err := cli.ImageInspect(ctx, img); err != nil {
		return fmt.Errorf("pull ended but the image is not present: %w", err)
	}
	return nil
}

// imageIDs resolves each service's image reference to the ID it names now
// ("" when absent).
func imageIDs(ctx context.Context, cli engine.Engine, p *types.Project, names []string) (map[string]string, error) {
	out := map[string]string{}
	for _, n := range names {
		img := p.Services[n].Image
		if _, done := out[img]; done {
			continue
		}
		res, err := cli.ImageInspect(ctx, img)
		if err != nil && !cerrdefs.IsNotFound(err) {
			return nil, fmt.Errorf("image %s: %w", img, err)
		}
		out[img] = res.ID
	}
	return out, nil
}

// ensureNetworks creates the networks the plan's services use, at once.
func ensureNetworks(ctx context.Context, cli engine.Engine, p *types.Project, plan *Plan, version string) error {
	used := map[string]bool{}
	for _, it := range plan.Items {
		for key := range it.spec.Service.Networks {
			used[key] = true
		}
	}
	return parallel(used, func(key string) error {
		n := p.Networks[key]
		name := NetworkName(p, key)
		if _, err := cli.NetworkInspect(ctx, name, client.NetworkInspectOptions{}); err == nil {
			return nil
		} else if !cerrdefs.IsNotFound(err) {
			return fmt.Errorf("network %s: %w", name, err)
		}
		if bool(n.External) {
			return fmt.Errorf("external network %s does not exist; create it (docker network create %s)", name, name)
		}
		labels := map[string]string{LabelProject: p.Name, LabelNetwork: key, LabelVersion: version}
		for k, v := range n.Labels {
			labels[k] = v
		}
		driver := n.Driver
		if driver == "" {
			driver = "bridge"
		}
		if _, err := cli.NetworkCreate(ctx, name, client.NetworkCreateOptions{Driver: driver, Internal: n.Internal, Options: n.DriverOpts, Labels: labels, Attachable: n.Attachable}); err != nil && !cerrdefs.IsConflict(err) {
			return fmt.Errorf("creating network %s: %w", name, err)
		}
		return nil
	})
}

// ensureVolumes creates the named volumes the plan's services use, at once.
func ensureVolumes(ctx context.Context, cli engine.Engine, p *types.Project, plan *Plan, version string) error {
	used := map[string]bool{}
	for _, it := range plan.Items {
		for _, v := range it.spec.Service.Volumes {
			if v.Type == types.VolumeTypeVolume && v.Source != "" {
				used[v.Source] = true
			}
		}
	}
	return parallel(used, func(key string) error {
		v := p.Volumes[key]
		name := VolumeName(p, key)
		if _, err := cli.VolumeInspect(ctx, name, client.VolumeInspectOptions{}); err == nil {
			return nil
		} else if !cerrdefs.IsNotFound(err) {
			return fmt.Errorf("volume %s: %w", name, err)
		}
		if bool(v.External) {
			return fmt.Errorf("external volume %s does not exist; create it (docker volume create %s)", name, name)
		}
		labels := map[string]string{LabelProject: p.Name, LabelVolume: key, LabelVersion: version}
		for k, val := range v.Labels {
			labels[k] = val
		}
		if _, err := cli.VolumeCreate(ctx, client.VolumeCreateOptions{Name: name, Driver: v.Driver, DriverOpts: v.DriverOpts, Labels: labels}); err != nil {
			return fmt.Errorf("creating volume %s: %w", name, err)
		}
		return nil
	})
}

// DataDir is the project's top data directory: created 0700, so the live
// data below it is not readable by every local user; each data directory
// inside keeps the mode its image gives it.
const DataDir = "volumes"

// ensureBindDirs creates missing bind-mount sources as directories, as
// docker compose does; the project's data directory first, 0700.
func ensureBindDirs(p *types.Project, plan *Plan) error {
	top := filepath.Join(p.WorkingDir, DataDir)
	for _, it := range plan.Items {
		for _, m := range it.spec.Host.Mounts {
			if m.Type != mount.TypeBind {
				continue
			}
			if _, err := os.Stat(m.Source); !os.IsNotExist(err) {
				continue
			}
			if strings.HasPrefix(m.Source, top+string(filepath.Separator)) {
				if err := os.Mkdir(top, 0o700); err != nil && !os.IsExist(err) {
					return fmt.Errorf("service %s: creating the data directory %s: %w", it.Service, top, err)
				}
			}
			if err := os.MkdirAll(m.Source, 0o755); err != nil {
				return fmt.Errorf("service %s: creating bind-mount directory %s: %w", it.Service, m.Source, err)
			}
		}
	}
	return nil
}

// removeOrphans removes the orphans the plan says to remove; their data
// (bind directories, volumes) stays.
func removeOrphans(ctx context.Context, cli engine.Engine, plan *Plan, report Reporter) error {
	var errs errList
	for i := range plan.Orphans {
		it := &plan.Orphans[i]
		if it.Action != ActionRemove {
			continue
		}
		report.emit(it.Service, StateStopping, it.Container+" (orphan: "+it.Reason+")")
		if _, err := cli.ContainerStop(ctx, it.existing.ID, client.ContainerStopOptions{}); err != nil && !cerrdefs.IsNotFound(err) {
			errs.add(fmt.Errorf("stopping orphan %s: %w", it.Container, err))
			continue
		}
		if _, err := cli.ContainerRemove(ctx, it.existing.ID, client.ContainerRemoveOptions{Force: true}); err != nil && !cerrdefs.IsNotFound(err) {
			errs.add(fmt.Errorf("removing orphan %s: %w", it.Container, err))
			continue
		}
		it.Outcome = OutcomeRemoved
		report.emit(it.Service, StateRemoved, it.Container)
	}
	return errs.join()
}

// holder names a running container: name, and its project and service
// when it has them.
func holder(c container.Summary) string {
	name := strings.TrimPrefix(firstOr(c.Names, c.ID[:12]), "/")
	if p := c.Labels[LabelProject]; p != "" {
		return fmt.Sprintf("container %s (project %s, service %s)", name, p, c.Labels[LabelService])
	}
	return "container " + name
}

func firstOr(ss []string, def string) string {
	if len(ss) > 0 {
		return ss[0]
	}
	return def
}

// preflight checks, before anything changes, that the ports the plan's
// services publish are free and that no other project runs on their
// bind-mounted data directories; each error names the container holding
// what is needed.
func preflight(ctx context.Context, cli engine.Engine, p *types.Project, plan *Plan) error {
	res, err := cli.ContainerList(ctx, client.ContainerListOptions{})
	if err != nil {
		return fmt.Errorf("listing running containers: %w", err)
	}
	mine := map[string]bool{} // containers the plan keeps or replaces
	for _, it := range plan.Items {
		if it.existing != nil {
			mine[it.existing.ID] = true
		}
	}
	var errs []error
	for _, it := range plan.Items {
		if it.Action == ActionKeep || it.Action == ActionDone || it.Action == ActionUnpause {
			continue // its ports are bound already
		}
		for _, c := range res.Items {
			if mine[c.ID] && (it.existing == nil || c.ID == it.existing.ID) {
				continue
			}
			if port := clash(it.spec, c); port != "" {
				hint := ""
				if c.Labels[LabelProject] == p.Name {
					hint = "; it is an orphan of this project: run \"difyctl up --remove-orphans\""
				}
				errs = append(errs, fmt.Errorf("service %s publishes port %s, which %s holds%s", it.Service, port, holder(c), hint))
			}
		}
	}
	errs = append(errs, sharedData(p, plan, res.Items)...)
	return errors.Join(errs...)
}

// clash is the host port spec publishes that c holds ("" none).
func clash(spec *Spec, c container.Summary) string {
	for _, bs := range spec.Host.PortBindings {
		for _, b := range bs {
			for _, cp := range c.Ports {
				if cp.PublicPort == 0 || fmt.Sprint(cp.PublicPort) != b.HostPort {
					continue
				}
				if !b.HostIP.IsValid() || b.HostIP.IsUnspecified() || !cp.IP.IsValid() || cp.IP.IsUnspecified() || cp.IP == b.HostIP {
					return b.HostPort
				}
			}
		}
	}
	return ""
}

// sharedData refuses data directories (writable bind-mounted directories)
// that a running container of another project uses.
func sharedData(p *types.Project, plan *Plan, running []container.Summary) []error {
	var errs []error
	seen := map[string]bool{}
	for _, it := range plan.Items {
		for _, m := range it.spec.Host.Mounts {
			if m.Type != mount.TypeBind || m.ReadOnly || seen[m.Source] {
				continue
			}
			if fi, err := os.Stat(m.Source); err != nil || !fi.IsDir() {
				continue
			}
			seen[m.Source] = true
			for _, c := range running {
				if c.Labels[LabelProject] == p.Name {
					continue
				}
				for _, cm := range c.Mounts {
					if cm.Type == mount.TypeBind && cm.RW && within(cm.Source, m.Source) {
						errs = append(errs, fmt.Errorf("data directory %s (service %s) is in use by %s: two projects must not run on the same data; stop the other one (docker compose -p %s down) or give this one its name (COMPOSE_PROJECT_NAME=%s in .env)",
							m.Source, it.Service, holder(c), orDash(c.Labels[LabelProject]), orDash(c.Labels[LabelProject])))
						break
					}
				}
			}
		}
	}
	return errs
}

// within: a and b are the same directory, or one holds the other.
func within(a, b string) bool {
	a, b = filepath.Clean(a), filepath.Clean(b)
	return a == b || strings.HasPrefix(a, b+string(filepath.Separator)) || strings.HasPrefix(b, a+string(filepath.Separator))
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// PullOptions for Pull.
type PullOptions struct {
	Project      *types.Project
	Services     []string // only these; empty: all
	RegistryAuth func(ctx context.Context, image string) (string, error)
	Report       Reporter
}

// Pull pulls the images of the services (all of them: a tag may name a
// newer image now), in parallel, and returns what each reference names
// afterwards.
func Pull(ctx context.Context, cli engine.Engine, o PullOptions) ([]PulledImage, error) {
	names := o.Services
	if len(names) == 0 {
		for n := range o.Project.Services {
			names = append(names, n)
		}
	}
	for _, n := range names {
		if _, ok := o.Project.Services[n]; !ok {
			return nil, fmt.Errorf("no service %q in the project (its profile may be inactive)", n)
		}
	}
	before, err := imageIDs(ctx, cli, o.Project, names)
	if err != nil {
		return nil, err
	}
	reqs, err := imagesToPull(ctx, cli, o.Project, names, PullAlways)
	if err != nil {
		return nil, err
	}
	if err := PullImages(ctx, cli, reqs, o.RegistryAuth, o.Report); err != nil {
		return nil, err
	}
	after, err := imageIDs(ctx, cli, o.Project, names)
	if err != nil {
		return nil, err
	}
	out := make([]PulledImage, 0, len(reqs))
	for _, r := range reqs {
		pi := PulledImage{Image: r.Image, Services: r.Services, ID: after[r.Image], Updated: before[r.Image] != after[r.Image]}
		for _, s := range r.Services {
			detail := r.Image + " is up to date"
			if pi.Updated {
				detail = r.Image + " updated to " + shortID(pi.ID) + "; \"difyctl up\" recreates on it"
			}
			o.Report.emit(s, StatePulled, detail)
		}
		out = append(out, pi)
	}
	return out, nil
}

// PulledImage is one image Pull pulled.
type PulledImage struct {
	Image    string   `json:"image"`
	ID       string   `json:"id"`
	Services []string `json:"services"`
	Updated  bool     `json:"updated"` // the reference names another image than before
}
