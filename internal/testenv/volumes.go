package testenv

import (
	"context"
	"errors"
	"fmt"
	"io"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/client"

	"github.com/difyctl/difyctl/compose"
)

// AnonymousLabel is the label engines from 23.0 put on the anonymous
// volumes they make; older engines (Debian's 20.10 here) label them not at
// all.
const AnonymousLabel = "com.docker.volume.anonymous"

var anonymousName = regexp.MustCompile(`^[0-9a-f]{64}$`)

// AnonymousVolume reports whether a volume is one the engine made for a
// container (an image's VOLUME, or a volume mount without a source): 64
// hex digits for a name, and no label but AnonymousLabel. Nothing else
// names such a volume once its container is gone: a removal without
// RemoveVolumes (docker rm without -v) leaves it behind for good.
func AnonymousVolume(name string, labels map[string]string) bool {
	if !anonymousName.MatchString(name) {
		return false
	}
	for k := range labels {
		if k != AnonymousLabel {
			return false
		}
	}
	return true
}

// VolumeTracker follows, from the moment a test project is named, which
// volumes the engine mounts into the project's containers, so that the
// project's cleanup also removes the anonymous ones no container holds any
// more. RemoveProject removes the containers it finds with their anonymous
// volumes; the ones it cannot find are those the test removed itself:
// "difyctl down" and "docker compose down" without -v keep a service's
// anonymous volumes (as compose does), and the fixture images declare
// VOLUME, so every down of a test project would leave one per service.
//
// The project's containers are those labelled with it
// (com.docker.compose.project) or named "<project>-...". The engine's
// event stream says which containers were created (and inspecting them
// which volumes they got) and which volume each start mounted.
type VolumeTracker struct {
	cli     *client.Client
	project string
	since   time.Time
	filters client.Filters
	cancel  context.CancelFunc
	done    chan struct{}

	mu         sync.Mutex
	containers map[string]bool // IDs of the project's containers
	volumes    map[string]bool // names of the volumes mounted in them
	streamErr  error
}

// TrackVolumes starts following the project's volumes; call Remove when
// the project's containers are gone.
func TrackVolumes(cli *client.Client, project string) *VolumeTracker {
	// A second of slack: the engine replays what it buffered since then,
	// so nothing between this call and the stream's start is missed.
	tr := &VolumeTracker{cli: cli, project: project, since: time.Now().Add(-time.Second),
		filters:    make(client.Filters).Add("type", "container", "volume").Add("event", "create", "mount"),
		containers: map[string]bool{}, volumes: map[string]bool{}, done: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	tr.cancel = cancel
	res := cli.Events(ctx, client.EventsListOptions{Since: timestamp(tr.since), Filters: tr.filters})
	go func() {
		defer close(tr.done)
		if err := tr.follow(ctx, res); err != nil && ctx.Err() == nil {
			tr.mu.Lock()
			tr.streamErr = err
			tr.mu.Unlock()
		}
	}()
	return tr
}

func timestamp(t time.Time) string {
	return strconv.FormatInt(t.Unix(), 10) + "." + fmt.Sprintf("%09d", t.Nanosecond())
}

// follow notes each event until the stream ends.
func (tr *VolumeTracker) follow(ctx context.Context, res client.EventsResult) error {
	for {
		select {
		case m := <-res.Messages:
			tr.note(ctx, m)
		case err := <-res.Err:
			return err
		}
	}
}

// note records a container of the project (and the volumes it was created
// with: one removed before it ever started mounts nothing), or a volume
// mounted in one.
func (tr *VolumeTracker) note(ctx context.Context, m events.Message) {
	switch {
	case m.Type == events.ContainerEventType && m.Action == events.ActionCreate:
		a := m.Actor.Attributes
		if a[compose.LabelProject] != tr.project && !strings.HasPrefix(a["name"], tr.project+"-") {
			return
		}
		tr.mu.Lock()
		tr.containers[m.Actor.ID] = true
		tr.mu.Unlock()
		ictx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		ins, err := tr.cli.ContainerInspect(ictx, m.Actor.ID, client.ContainerInspectOptions{})
		if err != nil {
			return // gone already: its start (if any) said what it mounted
		}
		tr.mu.Lock()
		for _, mp := range ins.Container.Mounts {
			if mp.Type == mount.TypeVolume && mp.Name != "" {
				tr.volumes[mp.Name] = true
			}
		}
		tr.mu.Unlock()
	case m.Type == events.VolumeEventType && m.Action == events.ActionMount:
		tr.mu.Lock()
		if tr.containers[m.Actor.Attributes["container"]] {
			tr.volumes[m.Actor.ID] = true
		}
		tr.mu.Unlock()
	}
}

// Remove stops following and removes the anonymous volumes the project's
// containers had that no container holds any more. One a container still
// holds is an error (that container outlived the test).
func (tr *VolumeTracker) Remove(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	// What the engine still buffers of the test's time, in case the stream
	// is behind: replayed up to now, then the answer ends.
	replay := tr.cli.Events(ctx, client.EventsListOptions{Since: timestamp(tr.since), Until: timestamp(time.Now()), Filters: tr.filters})
	var errs []error
	if err := tr.follow(ctx, replay); err != nil && !errors.Is(err, io.EOF) {
		errs = append(errs, fmt.Errorf("replaying the engine's events for project %s: %w", tr.project, err))
	}
	tr.cancel()
	<-tr.done
	tr.mu.Lock()
	names := make([]string, 0, len(tr.volumes))
	for n := range tr.volumes {
		names = append(names, n)
	}
	if tr.streamErr != nil {
		errs = append(errs, fmt.Errorf("following the engine's events for project %s: %w (an anonymous volume of it may be left: make test's hostcheck reports it)", tr.project, tr.streamErr))
	}
	tr.mu.Unlock()
	sort.Strings(names)
	for _, n := range names {
		ins, err := tr.cli.VolumeInspect(ctx, n, client.VolumeInspectOptions{})
		if cerrdefs.IsNotFound(err) {
			continue
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if !AnonymousVolume(ins.Volume.Name, ins.Volume.Labels) {
			continue // a named volume: the project's are removed by label, others are the test's own
		}
		if _, err := tr.cli.VolumeRemove(ctx, n, client.VolumeRemoveOptions{}); err != nil && !cerrdefs.IsNotFound(err) {
			if cerrdefs.IsConflict(err) {
				err = fmt.Errorf("anonymous volume %s of project %s is still in use: a container outlived the test (%w)", n, tr.project, err)
			}
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
