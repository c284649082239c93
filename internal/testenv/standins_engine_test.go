package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"io"
	"os/exec"
	"strings"
	"testing"

	"github.com/moby/moby/client"
)

// standinTestName gives a test its own "real" image name, played by the
// busybox stand-in, and its own state file, so it never meets another
// run's names or users.
func standinTestName(t *testing.T) (*client.Client, string) {
	t.Helper()
	cli := Engine(t)
	standinsOnce.Do(func() { standinsErr = EnsureStandins(context.Background(), cli, io.Discard) })
	if standinsErr != nil {
		t.Fatal(standinsErr)
	}
	standinDir = t.TempDir()
	standinRepos["difyctl-standin-test/fake"] = "busybox"
	t.Cleanup(func() { standinDir = ""; delete(standinRepos, "difyctl-standin-test/fake") })
	b := make([]byte, 4)
	rand.Read(b)
	name := "difyctl-standin-test/fake:" + hex.EncodeToString(b)
	t.Cleanup(func() { cli.ImageRemove(context.Background(), name, client.ImageRemoveOptions{}) })
	return cli, name
}

func exists(t *testing.T, cli *client.Client, name string) bool {
	t.Helper()
	_, err := cli.ImageInspect(context.Background(), name)
	if err != nil && !isNotFound(err) {
		t.Fatal(err)
	}
	return err == nil
}

func TestStandinNamesLastAsLongAsTheirLastUser(t *testing.T) {
	cli, name := standinTestName(t)
	ctx := context.Background()
	rel1, err := acquireStandins(ctx, cli, []string{name}, StandinOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !exists(t, cli, name) {
		t.Fatalf("%s not tagged", name)
	}
	rel2, err := acquireStandins(ctx, cli, []string{name}, StandinOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := rel1(); err != nil {
		t.Fatal(err)
	}
	if !exists(t, cli, name) {
		t.Fatalf("%s untagged while a second user holds it", name)
	}
	if err := rel2(); err != nil {
		t.Fatal(err)
	}
	if exists(t, cli, name) {
		t.Fatalf("%s left after its last user", name)
	}
	if !exists(t, cli, StandinImage("busybox")) {
		t.Fatal("untagging removed the stand-in image itself")
	}
}

func TestStandinNeverReplacesARealImage(t *testing.T) {
	cli, name := standinTestName(t)
	ctx := context.Background()
	// A "real" image: built without the fixtures' inputs label.
	if err := BuildImage(ctx, cli, name, "FROM scratch\nCOPY marker /marker\n", map[string][]byte{"marker": []byte("real\n")}); err != nil {
		t.Fatal(err)
	}
	before, err := cli.ImageInspect(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	_, err = acquireStandins(ctx, cli, []string{name}, StandinOptions{})
	if err == nil || !strings.Contains(err.Error(), "not a test image") {
		t.Fatalf("acquiring over a real image: %v", err)
	}
	after, err := cli.ImageInspect(ctx, name)
	if err != nil || after.ID != before.ID {
		t.Fatalf("the real image was touched: %v, %s -> %s", err, before.ID, after.ID)
	}
}

func TestStandinNamesOfADeadRunAreRemoved(t *testing.T) {
	cli, name := standinTestName(t)
	ctx := context.Background()
	// A user that died holding the name: a process that has exited.
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	if _, err := cli.ImageTag(ctx, client.ImageTagOptions{Source: StandinImage("busybox"), Target: name}); err != nil {
		t.Fatal(err)
	}
	st := &standinState{Holders: []standinHolder{{Token: "dead", PID: dead.Process.Pid}}, Names: []string{name}}
	if err := st.save(); err != nil {
		t.Fatal(err)
	}
	if standinHeld(name) {
		t.Fatalf("%s counted as held by a dead process", name)
	}
	if err := releaseStaleStandins(ctx, cli, io.Discard); err != nil {
		t.Fatal(err)
	}
	if exists(t, cli, name) {
		t.Fatalf("%s left by a dead run was not removed", name)
	}
}
