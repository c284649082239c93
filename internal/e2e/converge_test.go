package e2e

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/client"

	"github.com/difyctl/difyctl/compose"
	"github.com/difyctl/difyctl/internal/testenv"
)

// These tests run each case of "up converges" once with difyctl and, when
// the docker compose v2 reference is here (DIFYCTL_COMPOSE_BIN, docker
// compose), once with compose on the same files, and check difyctl's
// outcome, and that it is at least as good as compose's. Both outcomes are
// logged ("case N: ...") for the record.

// convImage builds a busybox-based image under a tag of the test's own:
// a long-running shell that exits 0 on SIGTERM, declaring VOLUME /vdata,
// with stamp in /stamp. It is removed when the test ends.
func convImage(t *testing.T, cli *client.Client, tag, stamp string) string {
	t.Helper()
	ref := "difyctl-e2e/converge-" + tag
	// The label makes the image this test's own: two parallel tests
	// building the same stamp would otherwise get one image ID from the
	// build cache, and the first to end would remove the other's image
	// (its cleanup removes by ID, forced).
	df := "FROM " + testenv.ImageBusybox + "\nLABEL org.difyctl.e2e.image=" + ref + "\nCOPY stamp /stamp\nVOLUME /vdata\n" +
		`CMD ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1; done"]` + "\n"
	if err := testenv.BuildImage(context.Background(), cli, ref, df, map[string][]byte{"stamp": []byte(stamp)}); err != nil {
		t.Fatal(err)
	}
	ins, err := cli.ImageInspect(context.Background(), ref)
	if err != nil {
		t.Fatal(err)
	}
	id := ins.ID
	t.Cleanup(func() {
		// A project still running the image (its cleanup comes later when
		// it was registered first) goes before it: a forced removal of an
		// image a container uses only takes its tag, the image stays.
		ctx := context.Background()
		cs, _ := cli.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: make(client.Filters).Add("ancestor", id)})
		for _, c := range cs.Items {
			if p := c.Labels[compose.LabelProject]; p != "" {
				if err := testenv.RemoveProject(ctx, cli, p); err != nil {
					t.Errorf("removing project %s, which runs image %s: %v", p, ref, err)
				}
			}
		}
		cli.ImageRemove(ctx, ref, client.ImageRemoveOptions{Force: true, PruneChildren: true})
		cli.ImageRemove(ctx, id, client.ImageRemoveOptions{Force: true, PruneChildren: true})
	})
	return ref
}

// convProject is a project name of the test's own, removed when the test
// ends, and once more a few seconds later: docker compose, failing, can
// return before the engine has finished a create it asked for (case 2 left
// a "<id>_<project>-b-1" container behind).
func convProject(t *testing.T, cli *client.Client) string {
	var name string
	t.Cleanup(func() {
		time.Sleep(3 * time.Second)
		if err := testenv.RemoveProject(context.Background(), cli, name); err != nil {
			t.Errorf("second cleanup of project %s: %v", name, err)
		}
	})
	name = testenv.ProjectName(t, cli)
	return name
}

func uniqueTag() string {
	b := make([]byte, 4)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// tool is difyctl or docker compose, run the same way on a project.
type tool struct {
	name string
	up   func(t *testing.T, dir, project string, args ...string) result
}

func difyctlTool() tool {
	return tool{name: "difyctl", up: func(t *testing.T, dir, project string, args ...string) result {
		return run(t, nil, append([]string{"--project-dir", dir, "-p", project, "up", "-f", filepath.Join(dir, "compose.yaml"), "--progress", "plain"}, args...)...)
	}}
}

func composeTool(bin []string) tool {
	return tool{name: "compose", up: func(t *testing.T, dir, project string, args ...string) result {
		var profiles []string
		var rest []string
		for i := 0; i < len(args); i++ {
			if args[i] == "--profile" {
				profiles = append(profiles, "--profile", args[i+1])
				i++
				continue
			}
			rest = append(rest, args[i])
		}
		full := append(append(append(append([]string{}, bin[1:]...), "-p", project, "-f", "compose.yaml"), profiles...), append([]string{"up", "-d", "--wait"}, rest...)...)
		cmd := exec.Command(bin[0], full...)
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		r := result{stderr: string(out)}
		if ee, ok := err.(*exec.ExitError); ok {
			r.code = ee.ExitCode()
		} else if err != nil {
			t.Fatalf("compose: %v", err)
		}
		return r
	}}
}

// tools is difyctl, and compose when it is here (the compose half is
// skipped, not the test, when it is not).
func tools(t *testing.T) []tool {
	ts := []tool{difyctlTool()}
	if b := os.Getenv("DIFYCTL_COMPOSE_BIN"); b != "" {
		return append(ts, composeTool([]string{b}))
	}
	if exec.Command("docker", "compose", "version").Run() == nil {
		return append(ts, composeTool([]string{"docker", "compose"}))
	}
	t.Log("no docker compose v2 here: difyctl's side only (../shared/tools/build-docker-compose builds the reference)")
	return ts
}

func docker(t *testing.T, args ...string) (string, error) {
	t.Helper()
	out, err := exec.Command("docker", args...).CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

func inspectC(t *testing.T, cli *client.Client, name string) (id, state, image string, nets []string) {
	t.Helper()
	ins, err := cli.ContainerInspect(context.Background(), name, client.ContainerInspectOptions{})
	if err != nil {
		return "", "", "", nil
	}
	for n := range ins.Container.NetworkSettings.Networks {
		nets = append(nets, n)
	}
	return ins.Container.ID, string(ins.Container.State.Status), ins.Container.Image, nets
}

func writeFile(t *testing.T, dir, content string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, "compose.yaml"), []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// outcome is one tool's result on a case, and whether it was good.
type outcome struct {
	tool, what string
	good       bool
}

func record(t *testing.T, n int, outs []outcome) {
	t.Helper()
	var parts []string
	for _, o := range outs {
		mark := "bad"
		if o.good {
			mark = "good"
		}
		parts = append(parts, fmt.Sprintf("%s: %s (%s)", o.tool, o.what, mark))
	}
	t.Logf("case %d: %s", n, strings.Join(parts, "; "))
	if !outs[0].good {
		t.Errorf("case %d: difyctl's outcome is not good: %s", n, outs[0].what)
	}
	for _, o := range outs[1:] {
		if o.good && !outs[0].good {
			t.Errorf("case %d: compose does better than difyctl", n)
		}
	}
}

// Case 1: recreating a container keeps the data of its anonymous volumes.
func TestConvergeKeepsAnonymousVolumes(t *testing.T) {
	t.Parallel() // each has its own projects and image tags; the suite stays within its time
	cli := testenv.Fixtures(t)
	img := convImage(t, cli, uniqueTag(), "one")
	file := "services:\n  cache:\n    image: " + img + "\n    environment: {A: \"%s\"}\n"
	var outs []outcome
	for _, tl := range tools(t) {
		project := convProject(t, cli)
		dir := t.TempDir()
		writeFile(t, dir, fmt.Sprintf(file, "1"))
		if r := tl.up(t, dir, project); r.code != 0 {
			t.Fatalf("%s up: %s", tl.name, r.stderr)
		}
		name := project + "-cache-1"
		if out, err := docker(t, "exec", name, "sh", "-c", "echo kept > /vdata/f"); err != nil {
			t.Fatalf("exec: %v %s", err, out)
		}
		oldID, _, _, _ := inspectC(t, cli, name)
		writeFile(t, dir, fmt.Sprintf(file, "2"))
		r := tl.up(t, dir, project)
		newID, state, _, _ := inspectC(t, cli, name)
		got, _ := docker(t, "exec", name, "cat", "/vdata/f")
		outs = append(outs, outcome{tl.name, fmt.Sprintf("exit %d, recreated %v, %s, file %q", r.code, newID != oldID, state, got), r.code == 0 && newID != oldID && state == "running" && got == "kept"})
		removeAnonymousVolumes(t, cli, name)
	}
	record(t, 1, outs)
}

// removeAnonymousVolumes removes, when the test ends, the anonymous
// volumes the container has now (the project cleanup removes them with the
// container; this catches one left behind by a replacement).
func removeAnonymousVolumes(t *testing.T, cli *client.Client, name string) {
	ins, err := cli.ContainerInspect(context.Background(), name, client.ContainerInspectOptions{})
	if err != nil {
		return
	}
	for _, m := range ins.Container.Mounts {
		if m.Type == "volume" && len(m.Name) == 64 {
			v := m.Name
			t.Cleanup(func() { cli.VolumeRemove(context.Background(), v, client.VolumeRemoveOptions{Force: true}) })
		}
	}
}

// Case 2: a change whose new container cannot be created takes nothing
// down: every old container keeps running.
func TestConvergeCreateFailureKeepsOldContainers(t *testing.T) {
	t.Parallel() // each has its own projects and image tags; the suite stays within its time
	cli := testenv.Fixtures(t)
	img := convImage(t, cli, uniqueTag(), "one")
	before := "services:\n  a:\n    image: " + img + "\n    environment: {S: \"1\"}\n  b:\n    image: " + img + "\n    environment: {S: \"1\"}\n"
	after := "services:\n  a:\n    image: " + img + "\n    cpus: 999\n    environment: {S: \"2\"}\n  b:\n    image: " + img + "\n    environment: {S: \"2\"}\n"
	var outs []outcome
	for _, tl := range tools(t) {
		project := convProject(t, cli)
		dir := t.TempDir()
		writeFile(t, dir, before)
		if r := tl.up(t, dir, project); r.code != 0 {
			t.Fatalf("%s up: %s", tl.name, r.stderr)
		}
		aID, _, _, _ := inspectC(t, cli, project+"-a-1")
		bID, _, _, _ := inspectC(t, cli, project+"-b-1")
		writeFile(t, dir, after)
		r := tl.up(t, dir, project)
		a2, aState, _, _ := inspectC(t, cli, project+"-a-1")
		b2, bState, _, _ := inspectC(t, cli, project+"-b-1")
		good := r.code != 0 && a2 == aID && aState == "running" && b2 == bID && bState == "running"
		if tl.name == "difyctl" && !strings.Contains(r.stderr, "nothing was changed") {
			good = false
		}
		outs = append(outs, outcome{tl.name, fmt.Sprintf("exit %d; a %s (same container %v); b %s (same container %v)", r.code, orNone(aState), a2 == aID, orNone(bState), b2 == bID), good})
	}
	record(t, 2, outs)
}

func orNone(s string) string {
	if s == "" {
		return "gone"
	}
	return s
}

// Case 3: a container disconnected from its network is recreated.
func TestConvergeRepairsNetwork(t *testing.T) {
	t.Parallel() // each has its own projects and image tags; the suite stays within its time
	cli := testenv.Fixtures(t)
	img := convImage(t, cli, uniqueTag(), "one")
	var outs []outcome
	for _, tl := range tools(t) {
		project := convProject(t, cli)
		dir := t.TempDir()
		writeFile(t, dir, "services:\n  app:\n    image: "+img+"\n")
		if r := tl.up(t, dir, project); r.code != 0 {
			t.Fatalf("%s up: %s", tl.name, r.stderr)
		}
		name := project + "-app-1"
		if out, err := docker(t, "network", "disconnect", project+"_default", name); err != nil {
			t.Fatalf("disconnect: %v %s", err, out)
		}
		r := tl.up(t, dir, project)
		_, state, _, nets := inspectC(t, cli, name)
		connected := strings.Contains(strings.Join(nets, ","), project+"_default")
		outs = append(outs, outcome{tl.name, fmt.Sprintf("exit %d, %s, connected %v", r.code, orNone(state), connected), r.code == 0 && state == "running" && connected})
	}
	record(t, 3, outs)
}

// Case 4: a service without restart: stopped by hand is started again (it
// is no one-shot job: nothing waits for it to complete).
func TestConvergeStartsStoppedService(t *testing.T) {
	t.Parallel() // each has its own projects and image tags; the suite stays within its time
	cli := testenv.Fixtures(t)
	img := convImage(t, cli, uniqueTag(), "one")
	var outs []outcome
	for _, tl := range tools(t) {
		project := convProject(t, cli)
		dir := t.TempDir()
		writeFile(t, dir, "services:\n  app:\n    image: "+img+"\n")
		if r := tl.up(t, dir, project); r.code != 0 {
			t.Fatalf("%s up: %s", tl.name, r.stderr)
		}
		if out, err := docker(t, "stop", project+"-app-1"); err != nil {
			t.Fatalf("stop: %v %s", err, out)
		}
		r := tl.up(t, dir, project)
		_, state, _, _ := inspectC(t, cli, project+"-app-1")
		outs = append(outs, outcome{tl.name, fmt.Sprintf("exit %d, %s", r.code, orNone(state)), r.code == 0 && state == "running"})
	}
	record(t, 4, outs)
}

// Case 5: an image rebuilt under the same tag is picked up.
func TestConvergeImageUpdatedUnderSameTag(t *testing.T) {
	t.Parallel() // each has its own projects and image tags; the suite stays within its time
	cli := testenv.Fixtures(t)
	tag := uniqueTag()
	var outs []outcome
	for _, tl := range tools(t) {
		img := convImage(t, cli, tag, "one")
		project := convProject(t, cli)
		dir := t.TempDir()
		writeFile(t, dir, "services:\n  app:\n    image: "+img+"\n")
		if r := tl.up(t, dir, project); r.code != 0 {
			t.Fatalf("%s up: %s", tl.name, r.stderr)
		}
		convImage(t, cli, tag, "two-"+tl.name) // the same tag now names another image
		want, _ := cli.ImageInspect(context.Background(), img)
		r := tl.up(t, dir, project)
		_, state, runs, _ := inspectC(t, cli, project+"-app-1")
		stamp, _ := docker(t, "exec", project+"-app-1", "cat", "/stamp")
		outs = append(outs, outcome{tl.name, fmt.Sprintf("exit %d, %s, runs the new image %v (stamp %q)", r.code, orNone(state), runs == want.ID, stamp), r.code == 0 && runs == want.ID && state == "running"})
	}
	record(t, 5, outs)
}

// Case 6: a service renamed keeps its old container as an orphan: up says
// who holds the port and how to remove it; --remove-orphans does.
func TestConvergeOrphans(t *testing.T) {
	t.Parallel() // each has its own projects and image tags; the suite stays within its time
	cli := testenv.Fixtures(t)
	img := convImage(t, cli, uniqueTag(), "one")
	var outs []outcome
	for _, tl := range tools(t) {
		port := freePort(t)
		project := convProject(t, cli)
		dir := t.TempDir()
		svc := func(name string) string {
			return fmt.Sprintf("services:\n  %s:\n    image: %s\n    ports: [\"127.0.0.1:%d:8080\"]\n", name, img, port)
		}
		writeFile(t, dir, svc("app"))
		if r := tl.up(t, dir, project); r.code != 0 {
			t.Fatalf("%s up: %s", tl.name, r.stderr)
		}
		writeFile(t, dir, svc("app2"))
		r := tl.up(t, dir, project)
		named := strings.Contains(r.stderr, project+"-app-1") && strings.Contains(r.stderr, "--remove-orphans")
		r2 := tl.up(t, dir, project, "--remove-orphans")
		_, oldState, _, _ := inspectC(t, cli, project+"-app-1")
		_, newState, _, _ := inspectC(t, cli, project+"-app2-1")
		outs = append(outs, outcome{tl.name, fmt.Sprintf("renamed: exit %d, names the orphan and the fix %v; --remove-orphans: exit %d, app %s, app2 %s", r.code, named, r2.code, orNone(oldState), orNone(newState)),
			named && r2.code == 0 && oldState == "" && newState == "running"})
	}
	record(t, 6, outs)
}

// Case 7: a second project on the same bind-mounted data is refused,
// naming the project that runs on it.
func TestConvergeRefusesSecondProjectOnSameData(t *testing.T) {
	t.Parallel() // each has its own projects and image tags; the suite stays within its time
	cli := testenv.Fixtures(t)
	img := convImage(t, cli, uniqueTag(), "one")
	var outs []outcome
	for _, tl := range tools(t) {
		first, second := convProject(t, cli), convProject(t, cli)
		dir := t.TempDir()
		writeFile(t, dir, "services:\n  db:\n    image: "+img+"\n    volumes: [\"./data:/data\"]\n")
		if r := difyctlTool().up(t, dir, first); r.code != 0 {
			t.Fatalf("first up: %s", r.stderr)
		}
		r := tl.up(t, dir, second)
		_, state, _, _ := inspectC(t, cli, second+"-db-1")
		named := strings.Contains(r.stderr, "in use by container "+first+"-db-1 (project "+first)
		outs = append(outs, outcome{tl.name, fmt.Sprintf("exit %d, second project's db %s, names the first project %v", r.code, orNone(state), named),
			r.code != 0 && state != "running" && (named || tl.name != "difyctl")})
	}
	record(t, 7, outs)
}

// Case 8: after a profile switch, the service of the profile turned off is
// named with how to remove it; --remove-orphans removes it (its data stays).
func TestConvergeProfileSwitch(t *testing.T) {
	t.Parallel() // each has its own projects and image tags; the suite stays within its time
	cli := testenv.Fixtures(t)
	img := convImage(t, cli, uniqueTag(), "one")
	var outs []outcome
	for _, tl := range tools(t) {
		project := convProject(t, cli)
		dir := t.TempDir()
		writeFile(t, dir, "services:\n  app:\n    image: "+img+"\n  weaviate:\n    image: "+img+"\n    profiles: [weaviate]\n    volumes: [\"./volumes/weaviate:/data\"]\n")
		if r := tl.up(t, dir, project, "--profile", "weaviate"); r.code != 0 {
			t.Fatalf("%s up: %s", tl.name, r.stderr)
		}
		os.WriteFile(filepath.Join(dir, "volumes", "weaviate", "keep"), []byte("x"), 0o600)
		r := tl.up(t, dir, project)
		warned := strings.Contains(r.stderr, "weaviate") && strings.Contains(r.stderr, "--remove-orphans")
		r2 := tl.up(t, dir, project, "--remove-orphans")
		_, state, _, _ := inspectC(t, cli, project+"-weaviate-1")
		_, kept := os.Stat(filepath.Join(dir, "volumes", "weaviate", "keep"))
		outs = append(outs, outcome{tl.name, fmt.Sprintf("switch: exit %d, warned %v; --remove-orphans: exit %d, weaviate %s, data kept %v", r.code, warned, r2.code, orNone(state), kept == nil),
			r.code == 0 && warned && r2.code == 0 && state == "" && kept == nil})
	}
	record(t, 8, outs)
}

// pushImage builds ref from the busybox fixture with stamp and pushes it to
// the test registry, then removes it locally (so a pull has work to do).
func pushImage(t *testing.T, cli *client.Client, ref, stamp string) {
	t.Helper()
	ctx := context.Background()
	df := "FROM " + testenv.ImageBusybox + "\nCOPY stamp /stamp\n" + `CMD ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1; done"]` + "\n"
	if err := testenv.BuildImage(ctx, cli, ref, df, map[string][]byte{"stamp": []byte(stamp)}); err != nil {
		t.Fatal(err)
	}
	push, err := cli.ImagePush(ctx, ref, client.ImagePushOptions{RegistryAuth: "e30="}) // {}: anonymous
	if err != nil {
		t.Fatal(err)
	}
	for msg, err := range push.JSONMessages(ctx) {
		if err == nil && msg.Error != nil {
			t.Fatalf("push: %s", msg.Error.Message)
		}
		if err != nil {
			t.Fatalf("push: %v", err)
		}
	}
	push.Close()
}

// difyctl pull (and up --pull always) pick up an image pushed again under
// the same tag; up then recreates on it.
func TestPullPicksUpImageUpdatedUnderSameTag(t *testing.T) {
	t.Parallel()
	cli := testenv.Fixtures(t)
	reg := testenv.StartRegistry(t)
	ref := reg.Host + "/difyctl-e2e/pulled-" + uniqueTag() + ":latest"
	t.Cleanup(func() {
		cli.ImageRemove(context.Background(), ref, client.ImageRemoveOptions{Force: true, PruneChildren: true})
	})
	pushImage(t, cli, ref, "one")
	project := convProject(t, cli)
	dir := t.TempDir()
	writeFile(t, dir, "services:\n  app:\n    image: "+ref+"\n")
	if r := difyctlTool().up(t, dir, project); r.code != 0 {
		t.Fatalf("up: %s", r.stderr)
	}
	first, _ := cli.ImageInspect(context.Background(), ref)
	// PruneChildren: the build step images under it go too (else its COPY
	// step is left as an untagged image).
	t.Cleanup(func() {
		cli.ImageRemove(context.Background(), first.ID, client.ImageRemoveOptions{Force: true, PruneChildren: true})
	})
	pushImage(t, cli, ref, "two")
	// The push left the new image tagged locally: give the tag back to the
	// old one, so only a pull can bring the new one.
	if _, err := cli.ImageTag(context.Background(), client.ImageTagOptions{Source: first.ID, Target: ref}); err != nil {
		t.Fatal(err)
	}
	r := run(t, nil, "--project-dir", dir, "-p", project, "pull", "-f", filepath.Join(dir, "compose.yaml"), "--progress", "plain")
	if r.code != 0 || !strings.Contains(r.stdout, ref+": updated") {
		t.Fatalf("pull: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	dry := run(t, nil, "--project-dir", dir, "-p", project, "up", "-f", filepath.Join(dir, "compose.yaml"), "--dry-run")
	if !strings.Contains(dry.stdout, "app                    recreate (image "+ref+" now is") {
		t.Fatalf("dry run after pull:\n%s%s", dry.stdout, dry.stderr)
	}
	if r := difyctlTool().up(t, dir, project); r.code != 0 {
		t.Fatalf("up: %s", r.stderr)
	}
	if stamp, _ := docker(t, "exec", project+"-app-1", "cat", "/stamp"); stamp != "two" {
		t.Fatalf("after pull and up the container runs stamp %q", stamp)
	}
}
