package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/image"
	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/api/types/volume"
	"github.com/moby/moby/client"

	"github.com/difyctl/difyctl/internal/testenv"
)

func TestNewAnonymousAgainstBaseline(t *testing.T) {
	a, b := strings.Repeat("a", 64), strings.Repeat("b", 64)
	got := newAnonymous([]volume.Volume{{Name: b, CreatedAt: "then"}, {Name: a}}, map[string]bool{a: true})
	if len(got) != 1 || !strings.Contains(got[0], b) || !strings.Contains(got[0], "RemoveVolumes") {
		t.Fatalf("%q", got)
	}
	if got := newAnonymous([]volume.Volume{{Name: a}}, map[string]bool{a: true}); len(got) != 0 {
		t.Fatalf("a volume of the baseline was reported: %q", got)
	}
}

func TestNewUntaggedAgainstBaseline(t *testing.T) {
	imgs := []image.Summary{{ID: "sha256:aa", RepoTags: []string{"<none>:<none>"}}, {ID: "sha256:bb"}}
	got := newUntagged(imgs, map[string]bool{imageKey("sha256:aa"): true, "sha256:bb": true})
	if len(got) != 1 || !strings.Contains(got[0], "sha256:bb") {
		t.Fatalf("a volume's line counted for an image, or a listed image was reported: %q", got)
	}
	if !untagged(nil) || !untagged([]string{"<none>:<none>"}) || untagged([]string{"difyctl-test/busybox:latest"}) {
		t.Fatal("untagged")
	}
}

func TestReadBaseline(t *testing.T) {
	p := filepath.Join(t.TempDir(), "base")
	os.WriteFile(p, []byte("x\n\n y \n"), 0o600)
	m, err := readBaseline(p)
	if err != nil || len(m) != 2 || !m["x"] || !m["y"] {
		t.Fatalf("%v %v", m, err)
	}
	if _, err := readBaseline(filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Fatal("a missing baseline read as empty: every anonymous volume would count")
	}
}

// A container removed without its anonymous volume (docker rm without -v)
// after the baseline was recorded is reported; one the baseline lists, or
// one a container still uses, is not.
func TestCheckReportsAnonymousVolumeLeftBehind(t *testing.T) {
	cli := testenv.Fixtures(t)
	ctx := context.Background()
	base := filepath.Join(t.TempDir(), "base")
	if err := recordBaseline(ctx, cli, base); err != nil {
		t.Fatal(err)
	}
	baseline, err := readBaseline(base)
	if err != nil {
		t.Fatal(err)
	}
	var made []string
	t.Cleanup(func() {
		for _, n := range made {
			cli.VolumeRemove(ctx, n, client.VolumeRemoveOptions{Force: true})
		}
	})
	newContainer := func() (id, vol string) {
		t.Helper()
		res, err := cli.ContainerCreate(ctx, client.ContainerCreateOptions{Config: &container.Config{Image: testenv.ImageRedis}, HostConfig: &container.HostConfig{}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			cli.ContainerRemove(ctx, res.ID, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true})
		})
		ins, err := cli.ContainerInspect(ctx, res.ID, client.ContainerInspectOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range ins.Container.Mounts {
			if m.Type == mount.TypeVolume && m.Destination == "/data" {
				made = append(made, m.Name)
				return res.ID, m.Name
			}
		}
		t.Fatalf("the fixture image %s declares no VOLUME /data", testenv.ImageRedis)
		return "", ""
	}
	leftID, left := newContainer()
	_, inUse := newContainer()
	if _, err := cli.ContainerRemove(ctx, leftID, client.ContainerRemoveOptions{Force: true}); err != nil {
		t.Fatal(err)
	}
	problems, err := check(ctx, cli, baseline)
	if err != nil {
		t.Fatal(err)
	}
	all := strings.Join(problems, "\n")
	if !strings.Contains(all, left) {
		t.Fatalf("the volume a removal without -v left is not reported:\n%s", all)
	}
	if strings.Contains(all, inUse) {
		t.Fatalf("a volume a container still uses is reported:\n%s", all)
	}
	baseline[left] = true
	if problems, err = check(ctx, cli, baseline); err != nil || strings.Contains(strings.Join(problems, "\n"), left) {
		t.Fatalf("a volume the baseline lists is reported: %v %q", err, problems)
	}
	if problems, err = check(ctx, cli, nil); err != nil || strings.Contains(strings.Join(problems, "\n"), left) {
		t.Fatalf("without a baseline anonymous volumes are not checked: %v %q", err, problems)
	}
}
