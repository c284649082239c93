package bundle

import (
	"context"
	"slices"
	"testing"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/client"

	"github.com/difyctl/difyctl/compose"
	"github.com/difyctl/difyctl/internal/engine/enginefake"
)

// The helper container that restores the files is removed with its
// anonymous volumes (its image's VOLUMEs no target covers: the data
// service's image declares one), and the named volume it mounts stays.
func TestRestoreHelperLeavesNoAnonymousVolume(t *testing.T) {
	e := enginefake.New()
	e.AddImage("pg:1", enginefake.Image{ID: "sha256:pg", Volumes: []string{"/var/lib/postgresql/data"}})
	if _, err := e.VolumeCreate(context.Background(), client.VolumeCreateOptions{Name: "p_app_storage"}); err != nil {
		t.Fatal(err)
	}
	o := &RestoreOptions{Project: "p"}
	id, remove, err := o.startHelper(context.Background(), e, "pg:1", []target{{vol: "p_app_storage", mount: "/t/0"}})
	if err != nil {
		t.Fatal(err)
	}
	c := e.Container(id)
	if c == nil || len(c.Mounts) != 2 {
		t.Fatalf("the helper should mount the target and get an anonymous volume: %+v", c)
	}
	var anon string
	for _, m := range c.Mounts {
		if m.Destination == "/var/lib/postgresql/data" {
			anon = m.Name
		}
	}
	if anon == "" || !e.Volume(anon) {
		t.Fatalf("no anonymous volume: %+v", c.Mounts)
	}
	remove()
	if e.Container(id) != nil {
		t.Fatal("the helper is still there")
	}
	if e.Volume(anon) {
		t.Fatal("the helper's anonymous volume outlived it")
	}
	if !e.Volume("p_app_storage") {
		t.Fatal("the named volume the helper mounted was removed")
	}
}

// A new project's Redis takes its dump from its data directory on its
// first start only when it was never started, mounts /data, and its
// command sets none of dir, dbfilename or the AOF: otherwise the part is
// restored into the running Redis.
func TestRedisPlaceable(t *testing.T) {
	for _, c := range []struct {
		name  string
		cmd   []string
		data  bool // mounts a directory at /data
		start bool
		want  bool
	}{
		{"Dify's redis, created", []string{"sh", "-c", `exec docker-entrypoint.sh redis-server --requirepass "$REDISCLI_AUTH"`}, true, false, true},
		{"already started", []string{"redis-server"}, true, true, false},
		{"AOF on", []string{"redis-server", "--appendonly", "yes"}, true, false, false},
		{"another dir", []string{"redis-server", "--dir", "/var/redis"}, true, false, false},
		{"no data mount", []string{"redis-server"}, false, false, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			ctx := context.Background()
			e := enginefake.New()
			e.AddImage("redis:1", enginefake.Image{ID: "sha256:redis"})
			var mounts []mount.Mount
			if c.data {
				mounts = []mount.Mount{{Type: mount.TypeBind, Source: "/p/volumes/redis/data", Target: "/data"}}
			}
			cr, err := e.ContainerCreate(ctx, client.ContainerCreateOptions{Name: "p-redis-1",
				Config: &container.Config{Image: "redis:1", Cmd: c.cmd,
					Labels: map[string]string{compose.LabelProject: "p", compose.LabelService: ServiceRedis, compose.LabelNumber: "1", compose.LabelOneoff: "False"}},
				HostConfig: &container.HostConfig{Mounts: mounts}})
			if err != nil {
				t.Fatal(err)
			}
			if c.start {
				if _, err := e.ContainerStart(ctx, cr.ID, client.ContainerStartOptions{}); err != nil {
					t.Fatal(err)
				}
			}
			o := &RestoreOptions{Project: "p"}
			if got := o.redisDumpTarget(ctx, e, Part{Name: "redis"}) != nil; got != c.want {
				t.Fatalf("redisDumpTarget placeable = %v, want %v", got, c.want)
			}
		})
	}
}

// A restore into a new project starts first only the services a part is
// loaded through (the database, pgvector through pg_dump): not Redis,
// whose dump is placed before its first start, nor a vector store whose
// data is a files part (weaviate), which must first start on the restored
// files rather than have them swapped under it.
func TestLoadedThroughStartsNoFileBasedStore(t *testing.T) {
	m := &Manifest{Parts: []Part{
		{Name: "database", Kind: KindDatabase, Service: ServicePostgres},
		{Name: "vector", Kind: KindVector, Service: ServicePgvector},
		{Name: "redis", Kind: KindRedis, Service: ServiceRedis},
		{Name: "files/weaviate/var/lib/weaviate", Kind: KindFiles, Service: "weaviate", Path: "/var/lib/weaviate"},
		{Name: "files/api/app/api/storage", Kind: KindFiles, Service: "api", Path: "/app/api/storage"},
	}}
	got := loadedThrough(m)
	if want := []string{ServicePostgres, ServicePgvector}; !slices.Equal(got, want) {
		t.Fatalf("loadedThrough = %v, want %v", got, want)
	}
	for _, svc := range got {
		if svc == "weaviate" || svc == ServiceRedis {
			t.Fatalf("%s started before its data is in place", svc)
		}
	}
}
