package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"strings"
	"testing"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/client"

	"github.com/difyctl/difyctl/compose"
)

func TestAnonymousVolume(t *testing.T) {
	id := strings.Repeat("0123456789abcdef", 4)
	for _, c := range []struct {
		name   string
		labels map[string]string
		want   bool
	}{
		{id, nil, true},
		{id, map[string]string{AnonymousLabel: ""}, true},
		{id, map[string]string{compose.LabelProject: "p"}, false}, // a labelled volume is named by its labels
		{id[:63], nil, false},
		{strings.ToUpper(id), nil, false},
		{"p_redisdata", nil, false},
	} {
		if got := AnonymousVolume(c.name, c.labels); got != c.want {
			t.Errorf("AnonymousVolume(%q, %v) = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
}

// A test project's containers removed without their volumes (as "down"
// without -v removes them, like compose's) leave anonymous volumes; the
// project's cleanup removes them: one a started container mounted, and one
// a container got at create and never started. A named volume the test
// made itself is not touched.
func TestProjectCleanupRemovesAnonymousVolumes(t *testing.T) {
	cli := Fixtures(t)
	ctx := context.Background()
	var anon []string
	b := make([]byte, 4)
	rand.Read(b)
	named := "difyctl-e2e-named-" + hex.EncodeToString(b)
	if _, err := cli.VolumeCreate(ctx, client.VolumeCreateOptions{Name: named}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// Whatever the test's outcome, nothing it made stays.
		for _, n := range append(anon, named) {
			cli.VolumeRemove(ctx, n, client.VolumeRemoveOptions{Force: true})
		}
	})
	t.Run("project", func(t *testing.T) {
		project := ProjectName(t, cli)
		for i, start := range []bool{true, false} {
			cfg := &container.Config{Image: ImageRedis, Labels: map[string]string{compose.LabelProject: project, compose.LabelService: "redis"}}
			host := &container.HostConfig{}
			if i == 0 { // the named volume elsewhere: the image's /data stays anonymous
				host.Mounts = []mount.Mount{{Type: mount.TypeVolume, Source: named, Target: "/named"}}
			}
			res, err := cli.ContainerCreate(ctx, client.ContainerCreateOptions{Config: cfg, HostConfig: host})
			if err != nil {
				t.Fatal(err)
			}
			ins, err := cli.ContainerInspect(ctx, res.ID, client.ContainerInspectOptions{})
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range ins.Container.Mounts {
				if m.Type == mount.TypeVolume && m.Destination == "/data" {
					anon = append(anon, m.Name)
				}
			}
			if start {
				if _, err := cli.ContainerStart(ctx, res.ID, client.ContainerStartOptions{}); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := cli.ContainerRemove(ctx, res.ID, client.ContainerRemoveOptions{Force: true}); err != nil {
				t.Fatal(err)
			}
		}
		if len(anon) != 2 {
			t.Fatalf("the fixture image %s should give each container an anonymous volume at /data: %v", ImageRedis, anon)
		}
		for _, n := range anon {
			if _, err := cli.VolumeInspect(ctx, n, client.VolumeInspectOptions{}); err != nil {
				t.Fatalf("the removal without volumes should have kept %s: %v", n, err)
			}
		}
	})
	for _, n := range anon {
		if _, err := cli.VolumeInspect(ctx, n, client.VolumeInspectOptions{}); !isNotFound(err) {
			t.Errorf("anonymous volume %s outlived its project's cleanup (%v)", n, err)
		}
	}
	if _, err := cli.VolumeInspect(ctx, named, client.VolumeInspectOptions{}); err != nil {
		t.Errorf("the cleanup removed a named volume the project's container mounted: %v", err)
	}
}

// RemoveProject removes the anonymous volume a replacement took over (it
// mounts it by name, so the engine keeps it on a removal with volumes).
func TestRemoveProjectRemovesTakenOverAnonymousVolume(t *testing.T) {
	cli := Fixtures(t)
	ctx := context.Background()
	b := make([]byte, 4)
	rand.Read(b)
	project := "difyctl-e2e-" + hex.EncodeToString(b)
	var vol string
	t.Cleanup(func() {
		RemoveProject(ctx, cli, project)
		if vol != "" {
			cli.VolumeRemove(ctx, vol, client.VolumeRemoveOptions{Force: true})
		}
	})
	labels := map[string]string{compose.LabelProject: project, compose.LabelService: "redis"}
	old, err := cli.ContainerCreate(ctx, client.ContainerCreateOptions{Config: &container.Config{Image: ImageRedis, Labels: labels}, HostConfig: &container.HostConfig{}})
	if err != nil {
		t.Fatal(err)
	}
	ins, err := cli.ContainerInspect(ctx, old.ID, client.ContainerInspectOptions{})
	if err != nil || len(ins.Container.Mounts) != 1 {
		t.Fatalf("%v %+v", err, ins.Container.Mounts)
	}
	vol = ins.Container.Mounts[0].Name
	if _, err := cli.ContainerCreate(ctx, client.ContainerCreateOptions{Config: &container.Config{Image: ImageRedis, Labels: labels},
		HostConfig: &container.HostConfig{Mounts: []mount.Mount{{Type: mount.TypeVolume, Source: vol, Target: "/data"}}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := cli.ContainerRemove(ctx, old.ID, client.ContainerRemoveOptions{Force: true}); err != nil {
		t.Fatal(err)
	}
	if err := RemoveProject(ctx, cli, project); err != nil {
		t.Fatal(err)
	}
	if _, err := cli.VolumeInspect(ctx, vol, client.VolumeInspectOptions{}); !isNotFound(err) {
		t.Fatalf("the anonymous volume %s the replacement mounted outlived RemoveProject (%v)", vol, err)
	}
}
