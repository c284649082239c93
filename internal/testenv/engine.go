package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/client"

	"github.com/difyctl/difyctl/compose"
	"github.com/difyctl/difyctl/internal/dockerclient"
)

// InCI reports whether the tests run in CI, where a missing engine is a
// failure rather than a reason to skip.
func InCI() bool { return os.Getenv("CI") == "true" }

// Connect returns a client for the test engine after checking it answers
// (for programs such as the benchmarks; tests use Engine).
func Connect(ctx context.Context) (*client.Client, error) {
	cli, ep, err := dockerclient.New(os.Getenv)
	if err != nil {
		return nil, err
	}
	if _, err := dockerclient.Probe(ctx, cli, ep, 10*time.Second); err != nil {
		cli.Close()
		return nil, err
	}
	return cli, nil
}

var (
	engineOnce sync.Once
	engineCli  *client.Client
	engineErr  error
)

// Engine returns a client for the test engine. When the engine is unreachable
// the test fails under CI=true and is skipped otherwise, saying why either way.
//
// With -short (make unit) every test that needs the engine is skipped: unit
// tests alone, whatever the host has running.
func Engine(t testing.TB) *client.Client {
	t.Helper()
	if testing.Short() {
		t.Skip("needs the Docker engine; skipped with -short (make unit); make e2e or make test runs it")
	}
	engineOnce.Do(func() { engineCli, engineErr = Connect(context.Background()) })
	if engineErr != nil {
		msg := fmt.Sprintf("Docker engine unreachable: %v; `make test` installs and starts one", engineErr)
		if InCI() {
			t.Fatalf("CI=true: %s", msg)
		}
		t.Skip(msg)
	}
	return engineCli
}

var (
	fixturesOnce sync.Once
	fixturesErr  error
)

// Fixtures makes sure the fixture images exist and are current (make test has
// normally built them already, so this only checks) and returns the engine.
func Fixtures(t testing.TB) *client.Client {
	t.Helper()
	cli := Engine(t)
	fixturesOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		defer cancel()
		fixturesErr = EnsureFixtures(ctx, cli, testLog{t})
	})
	if fixturesErr != nil {
		t.Fatalf("fixture images: %v", fixturesErr)
	}
	return cli
}

type testLog struct{ t testing.TB }

func (l testLog) Write(p []byte) (int, error) { l.t.Log(string(p)); return len(p), nil }

// ProjectName returns a project name no other test uses, and registers the
// removal of every container, network and volume labelled with it when the
// test ends, passed or failed, and of the anonymous volumes its containers
// had (VolumeTracker: a down without -v keeps them, as compose's does).
func ProjectName(t testing.TB, cli *client.Client) string {
	t.Helper()
	b := make([]byte, 4)
	rand.Read(b)
	name := "difyctl-e2e-" + hex.EncodeToString(b)
	tr := TrackVolumes(cli, name)
	t.Cleanup(func() {
		if err := RemoveProject(context.Background(), cli, name); err != nil {
			t.Errorf("cleanup of project %s: %v", name, err)
		}
		if err := tr.Remove(context.Background()); err != nil {
			t.Errorf("cleanup of project %s: %v", name, err)
		}
	})
	return name
}

// RemoveProject force-removes every object labelled with the project, the
// containers with their anonymous volumes (those a replacement took over
// too).
func RemoveProject(ctx context.Context, cli *client.Client, project string) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	f := make(client.Filters).Add("label", compose.ProjectFilter(project))
	cs, err := cli.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: f})
	if err != nil {
		return err
	}
	var anon []string
	for _, c := range cs.Items {
		if _, err := cli.ContainerRemove(ctx, c.ID, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true}); err != nil && !isNotFound(err) {
			return err
		}
		for _, m := range c.Mounts {
			if m.Type == mount.TypeVolume && AnonymousVolume(m.Name, nil) {
				anon = append(anon, m.Name)
			}
		}
	}
	// The engine keeps a volume a container mounts by name, even with
	// RemoveVolumes: a replacement's, taken over from the old container.
	for _, v := range anon {
		if _, err := cli.VolumeRemove(ctx, v, client.VolumeRemoveOptions{}); err != nil && !isNotFound(err) {
			return fmt.Errorf("anonymous volume %s of project %s: %w", v, project, err)
		}
	}
	ns, err := cli.NetworkList(ctx, client.NetworkListOptions{Filters: f})
	if err != nil {
		return err
	}
	for _, n := range ns.Items {
		if _, err := cli.NetworkRemove(ctx, n.ID, client.NetworkRemoveOptions{}); err != nil && !isNotFound(err) {
			return err
		}
	}
	vs, err := cli.VolumeList(ctx, client.VolumeListOptions{Filters: f})
	if err != nil {
		return err
	}
	for _, v := range vs.Items {
		if _, err := cli.VolumeRemove(ctx, v.Name, client.VolumeRemoveOptions{Force: true}); err != nil && !isNotFound(err) {
			return err
		}
	}
	return nil
}

var (
	binOnce sync.Once
	binPath string
	binErr  error
)

// Difyctl builds the difyctl binary once per test process and returns its
// path. The binary lives in a temporary directory removed by RemoveBinary
// (call it from TestMain).
func Difyctl(t testing.TB) string {
	t.Helper()
	binOnce.Do(func() {
		dir, err := os.MkdirTemp("", "difyctl-bin-")
		if err != nil {
			binErr = err
			return
		}
		binPath, binErr = BuildDifyctl(dir)
	})
	if binErr != nil {
		t.Fatalf("building difyctl: %v", binErr)
	}
	return binPath
}

// BuildDifyctl builds the difyctl binary into dir and returns its path.
func BuildDifyctl(dir string) (string, error) {
	root, err := RepoRoot()
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "difyctl")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/difyctl")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build: %w\n%s", err, out)
	}
	return bin, nil
}

// RemoveBinary deletes the binary Difyctl built, if any.
func RemoveBinary() {
	if binPath != "" {
		os.RemoveAll(filepath.Dir(binPath))
	}
}
