// Command hostcheck fails when the test suite left something on this host:
// a fixture image under a name outside difyctl-test/ (a test image must
// never pass for a real one), or a container, network or volume of a test
// project (difyctl-e2e-*), or a cron entry of one. make test runs it after
// the tests; run it alone when no other test run is in progress.
package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/moby/moby/client"

	"github.com/difyctl/difyctl/compose"
	"github.com/difyctl/difyctl/internal/testenv"
)

// testProjectPrefix is the prefix of every test project name (testenv.ProjectName).
const testProjectPrefix = "difyctl-e2e-"

func main() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cli, err := testenv.Connect(ctx)
	if err != nil {
		fmt.Fprintf(os.Stderr, "hostcheck: engine: %v\n", err)
		os.Exit(3)
	}
	defer cli.Close()
	problems, err := check(ctx, cli)
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
	fmt.Println("hostcheck: the tests left no image under a real name, no test container, network, volume or cron entry")
}

func check(ctx context.Context, cli *client.Client) ([]string, error) {
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
	cron, _ := filepath.Glob("/etc/cron.d/difyctl-" + testProjectPrefix + "*")
	for _, f := range cron {
		problems = append(problems, "cron entry "+f)
	}
	return problems, nil
}
