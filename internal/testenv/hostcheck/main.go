// Command hostcheck fails when the test suite left something on this host:
// a fixture image under a name outside difyctl-test/ (a test image must
// never pass for a real one), or a container, network or volume of a test
// project (difyctl-e2e-*), or a cron entry of one, or an anonymous volume
// no container uses that was not there before the tests.
//
// An anonymous volume (an image's VOLUME, made for a container) carries
// no name of its project: once its container is removed without its
// volumes it cannot be told from any other. So make test runs
// "hostcheck -record FILE" before the tests, which writes the anonymous
// volumes present then, and "hostcheck -baseline FILE" after them, which
// reports every unused anonymous volume FILE does not list. Without
// -baseline that check is skipped (and said so). Run it when no other test
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

	"github.com/moby/moby/api/types/volume"
	"github.com/moby/moby/client"

	"github.com/difyctl/difyctl/compose"
	"github.com/difyctl/difyctl/internal/testenv"
)

// testProjectPrefix is the prefix of every test project name (testenv.ProjectName).
const testProjectPrefix = "difyctl-e2e-"

func main() {
	record := flag.String("record", "", "write the anonymous volumes present now to `FILE` (before the tests) and exit")
	baselineFile := flag.String("baseline", "", "`FILE` written by -record: report the unused anonymous volumes it does not list")
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
		if err := recordVolumes(ctx, cli, *record); err != nil {
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
		fmt.Println("hostcheck: anonymous volumes not checked (no -baseline: make test records one before the tests)")
	}
	fmt.Println("hostcheck: the tests left no image under a real name, no test container, network, volume or cron entry")
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

// recordVolumes writes the names of the anonymous volumes present now, one
// a line.
func recordVolumes(ctx context.Context, cli *client.Client, path string) error {
	vs, err := anonymousVolumes(ctx, cli, false)
	if err != nil {
		return err
	}
	var b strings.Builder
	for _, v := range vs {
		b.WriteString(v.Name + "\n")
	}
	return os.WriteFile(path, []byte(b.String()), 0o600)
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
		if p := c.Labels[compose.LabelProject]; strings.HasPrefix(p, testProjectPrefix) {
			problems = append(problems, fmt.Sprintf("container %s of test project %s", strings.Join(c.Names, ","), p))
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
	}
	cron, _ := filepath.Glob("/etc/cron.d/difyctl-" + testProjectPrefix + "*")
	for _, f := range cron {
		problems = append(problems, "cron entry "+f)
	}
	return problems, nil
}
