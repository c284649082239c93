package e2e

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/moby/moby/client"

	"github.com/difyctl/difyctl/internal/testenv"
)

// difyctl down keeps a service's anonymous volumes (the image's VOLUME),
// as docker compose down does; down --volumes removes them, the one a
// replacement took over from the old container included (the engine keeps
// a volume mounted by name when a container is removed with its volumes).
func TestDownAnonymousVolumes(t *testing.T) {
	cli := testenv.Fixtures(t)
	project := testenv.ProjectName(t, cli) // its cleanup removes what this test keeps
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "compose.yaml"), []byte("services:\n  cache:\n    image: "+testenv.ImageRedis+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	base := []string{"--project-dir", dir, "-p", project}
	up := func(extra ...string) string {
		t.Helper()
		r := runWithin(t, 3*time.Minute, append(append(base, "up", "-f", filepath.Join(dir, "compose.yaml"), "--progress", "plain"), extra...)...)
		if r.code != 0 {
			t.Fatalf("up %v: exit %d\n%s", extra, r.code, r.stderr)
		}
		ins, err := cli.ContainerInspect(context.Background(), project+"-cache-1", client.ContainerInspectOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range ins.Container.Mounts {
			if m.Destination == "/data" && testenv.AnonymousVolume(m.Name, nil) {
				return m.Name
			}
		}
		t.Fatalf("no anonymous volume at /data: %+v", ins.Container.Mounts)
		return ""
	}
	exists := func(v string) bool {
		_, err := cli.VolumeInspect(context.Background(), v, client.VolumeInspectOptions{})
		return err == nil
	}
	kept := up()
	if again := up("--force-recreate"); again != kept {
		t.Fatalf("the replacement mounts %s, not the old container's anonymous volume %s", again, kept)
	}
	if r := runWithin(t, 2*time.Minute, append(base, "down", "--progress", "plain")...); r.code != 0 {
		t.Fatalf("down: exit %d\n%s", r.code, r.stderr)
	}
	if !exists(kept) {
		t.Fatalf("down without --volumes removed the anonymous volume %s (docker compose keeps it)", kept)
	}
	gone := up()
	up("--force-recreate")
	if r := runWithin(t, 2*time.Minute, append(base, "down", "--volumes", "--yes", "--progress", "plain")...); r.code != 0 {
		t.Fatalf("down --volumes: exit %d\n%s", r.code, r.stderr)
	}
	if exists(gone) {
		t.Fatalf("down --volumes kept the anonymous volume %s the replacement took over", gone)
	}
}
