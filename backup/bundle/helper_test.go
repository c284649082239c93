package bundle

import (
	"context"
	"testing"

	"github.com/moby/moby/client"

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
