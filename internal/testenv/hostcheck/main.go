// Command hostcheck fails when the test suite left something on this host:
// a fixture image under a name outside difyctl-test/ (a test image must
// never pass for a real one), or a container, network or volume of a test
// project (difyctl-e2e-*), a container named after one or a restore's
// helper container, or a cron entry of one, or an anonymous volume no
// container uses that was not there before the tests, or an untagged test
// image (one built FROM a fixture) that was not there before them: a tag
// removed while a container still used the image leaves the image behind.
//
// An anonymous volume (an image's VOLUME, made for a container) carries
// no name of its project: once its container is removed without its
// volumes it cannot be told from any other; an untagged image names no
// test either. So make test runs "hostcheck -record FILE" before the
// tests, which writes the anonymous volumes and untagged test images
// present then, and "hostcheck -baseline FILE" after them, which reports
// every unused anonymous volume and untagged test image FILE does not
// list. Without -baseline those checks are skipped (and said so). Run it when no other test
// run is in progress on the engine: another run's volumes would count.
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/moby/moby/api/types/image"
	"github.com/moby/moby/api/types/volume"
	"github.com/moby/moby/client"

	"github.com/difyctl/difyctl/compose"
	"github.com/difyctl/difyctl/internal/testenv"
)

// testProjectPrefix is the prefix of every test project name (testenv.ProjectName).
const testProjectPrefix = "difyctl-e2e-"

func main() {
	record := flag.String("record", "", "write the anonymous volumes and untagged test images present now to `FILE` (before the tests) and exit")
	baselineFile := flag.String("baseline", "", "`FILE` written by -record: report the unused anonymous volumes and untagged test images it does not list")
	flag.Parse()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cli, err := testenv.Connect(ctx)
	if err != nil {
		fmt.Fprintf(os.Stderr, "hostcheck: engine: %v\n", err)
		os.Exit(3)
	}
	defer cli.Close()
	if *record != "" {
		if err := recordBaseline(ctx, cli, *record); err != nil {
			fmt.Fprintf(os.Stderr, "hostcheck: %v\n", err)
			os.Exit(1)
		}
		return
	}
	var baseline map[string]bool
	if *baselineFile != "" {
		if baseline, err = readBaseline(*baselineFile); err != nil {
			fmt.Fprintf(os.Stderr, "hostcheck: %v\n", err)
			os.Exit(1)
		}
	}
	problems, err := check(ctx, cli, baseline)
	if err != nil {
		fmt.Fprintf(os.Stderr, "hostcheck: %v\n", err)
		os.Exit(1)
	}
	for _, p := range problems {
		fmt.Fprintf(os.Stderr, "hostcheck: left behind: %s\n", p)
	}
	if len(problems) > 0 {
		os.Exit(1)
	}
	if baseline == nil {
		fmt.Println("hostcheck: anonymous volumes and untagged test images not checked (no -baseline: make test records one before the tests)")
	}
	fmt.Println("hostcheck: the tests left no image under a real name, no untagged test image, no test container, network, volume or cron entry")
}

// anonymousVolumes lists the engine's anonymous volumes; with unused, only
// those no container (running or not) uses.
func anonymousVolumes(ctx context.Context, cli *client.Client, unused bool) ([]volume.Volume, error) {
	var o client.VolumeListOptions
	if unused {
		o.Filters = make(client.Filters).Add("dangling", "true")
	}
	vs, err := cli.VolumeList(ctx, o)
	if err != nil {
		return nil, err
	}
	var out []volume.Volume
	for _, v := range vs.Items {
		if testenv.AnonymousVolume(v.Name, v.Labels) {
			out = append(out, v)
		}
	}
	return out, nil
}

// recordBaseline writes the names of the anonymous volumes present now and
// the IDs of the untagged test images (imageKey), one a line.
func recordBaseline(ctx context.Context, cli *client.Client, path string) error {
	vs, err := anonymousVolumes(ctx, cli, false)
	if err != nil {
		return err
	}
	var b strings.Builder
	for _, v := range vs {
		b.WriteString(v.Name + "\n")
	}
	imgs, err := untaggedTestImages(ctx, cli)
	if err != nil {
		return err
	}
	for _, im := range imgs {
		b.WriteString(imageKey(im.ID) + "\n")
	}
	return os.WriteFile(path, []byte(b.String()), 0o600)
}

// imageKey is an image's line in the baseline, apart from volume names.
func imageKey(id string) string { return "image " + id }

// untaggedTestImages are the top-level images built FROM a fixture (they
// inherit its testenv.InputsLabel) that no tag names any more.
func untaggedTestImages(ctx context.Context, cli *client.Client) ([]image.Summary, error) {
	imgs, err := cli.ImageList(ctx, client.ImageListOptions{Filters: make(client.Filters).Add("label", testenv.InputsLabel)})
	if err != nil {
		return nil, err
	}
	var out []image.Summary
	for _, im := range imgs.Items {
		if untagged(im.RepoTags) {
			out = append(out, im)
		}
	}
	return out, nil
}

func untagged(tags []string) bool {
	for _, t := range tags {
		if t != "<none>:<none>" {
			return false
		}
	}
	return true
}

// newUntagged names the untagged test images the baseline does not list.
func newUntagged(imgs []image.Summary, baseline map[string]bool) []string {
	var out []string
	for _, im := range imgs {
		if !baseline[imageKey(im.ID)] {
			out = append(out, fmt.Sprintf("untagged test image %s (created %s, labels %v): its tag was removed while a container still used it; remove the containers first, then the image", im.ID, time.Unix(im.Created, 0).UTC().Format(time.RFC3339), im.Labels))
		}
	}
	return out
}

func readBaseline(path string) (map[string]bool, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("the baseline of anonymous volumes: %w", err)
	}
	defer f.Close()
	names := map[string]bool{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if n := strings.TrimSpace(sc.Text()); n != "" {
			names[n] = true
		}
	}
	return names, sc.Err()
}

// newAnonymous names the unused anonymous volumes the baseline does not
// list: each was made for a container that was removed without its
// volumes since the baseline was recorded.
func newAnonymous(unused []volume.Volume, baseline map[string]bool) []string {
	var out []string
	for _, v := range unused {
		if !baseline[v.Name] {
			out = append(out, fmt.Sprintf("anonymous volume %s (created %s), used by no container: a container was removed without its anonymous volumes (RemoveVolumes, docker rm -v)", v.Name, v.CreatedAt))
		}
	}
	sort.Strings(out)
	return out
}

// check lists what the tests left; baseline nil: anonymous volumes are
// not checked.
func check(ctx context.Context, cli *client.Client, baseline map[string]bool) ([]string, error) {
	var problems []string
	imgs, err := cli.ImageList(ctx, client.ImageListOptions{All: true, Filters: make(client.Filters).Add("label", testenv.InputsLabel)})
	if err != nil {
		return nil, err
	}
	for _, im := range imgs.Items {
		for _, tag := range im.RepoTags {
			if !strings.HasPrefix(tag, testenv.FixturePrefix) && tag != "<none>:<none>" {
				problems = append(problems, fmt.Sprintf("image %s is a test fixture under a real image name", tag))
			}
		}
	}
	cs, err := cli.ContainerList(ctx, client.ContainerListOptions{All: true})
	if err != nil {
		return nil, err
	}
	for _, c := range cs.Items {
		name := strings.Join(c.Names, ",")
		switch {
		case strings.HasPrefix(c.Labels[compose.LabelProject], testProjectPrefix):
			problems = append(problems, fmt.Sprintf("container %s of test project %s", name, c.Labels[compose.LabelProject]))
		case strings.HasPrefix(strings.TrimPrefix(name, "/"), testProjectPrefix):
			problems = append(problems, fmt.Sprintf("container %s named after a test project (a restore's helper?)", name))
		case c.Labels["org.difyctl.helper"] != "":
			problems = append(problems, fmt.Sprintf("helper container %s of a Redis restore (org.difyctl.helper)", name))
		}
	}
	ns, err := cli.NetworkList(ctx, client.NetworkListOptions{})
	if err != nil {
		return nil, err
	}
	for _, n := range ns.Items {
		if p := n.Labels[compose.LabelProject]; strings.HasPrefix(p, testProjectPrefix) || strings.HasPrefix(n.Name, testProjectPrefix) {
			problems = append(problems, fmt.Sprintf("network %s", n.Name))
		}
	}
	vs, err := cli.VolumeList(ctx, client.VolumeListOptions{})
	if err != nil {
		return nil, err
	}
	for _, v := range vs.Items {
		if p := v.Labels[compose.LabelProject]; strings.HasPrefix(p, testProjectPrefix) || strings.HasPrefix(v.Name, testProjectPrefix) {
			problems = append(problems, fmt.Sprintf("volume %s", v.Name))
		}
	}
	if baseline != nil {
		unused, err := anonymousVolumes(ctx, cli, true)
		if err != nil {
			return nil, err
		}
		problems = append(problems, newAnonymous(unused, baseline)...)
		imgs, err := untaggedTestImages(ctx, cli)
		if err != nil {
			return nil, err
		}
		problems = append(problems, newUntagged(imgs, baseline)...)
	}
	cron, _ := filepath.Glob("/etc/cron.d/difyctl-" + testProjectPrefix + "*")
	for _, f := range cron {
		problems = append(problems, "cron entry "+f)
	}
	return problems, nil
}
