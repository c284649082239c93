package testenv

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/moby/moby/client"
)

// The stand-in images let the real embedded Dify template run end to end on
// a host without a registry: internal/standin (one static binary playing
// every server and every probe command the template's healthchecks call)
// on scratch with busybox and bash, one image per role
// (difyctl-test/standin:<role>), each set up as the real image it stands in
// for (entrypoint, command, stop signal). Redis is the real Redis fixture.
//
// A test (WithStandins) or a benchmark (AcquireStandins) gives them Dify's
// real image names for its duration only: a name is tagged only when it is
// absent (a real image under it is never replaced: the test fails and says
// so), and untagged when the last user on this host is done, also when a
// test fails. Users are counted across processes in a state file under a
// lock; users that died (an interrupted run) are found by their PID, and
// their names are untagged by the next user or by the next fixture build.

// StandinBase is the image every role image is built on.
const StandinBase = "difyctl-test/standin:base"

// standinRole is one role image: how the real image it stands in for is set up.
type standinRole struct {
	role   string // STANDIN_ROLE, "" for busybox
	config string // Dockerfile lines after FROM
}

// standinAPIReleases are the releases whose api has an image of its own
// (difyctl-test/standin:dify-api-<release>, STANDIN_RELEASE set): the api
// stand-in migrates a real database to its release's head revision when
// asked to (internal/standin/migrate.go, STANDIN_MIGRATE=1), so the 1.16.0
// api's schema differs from the 1.15.0 one's as the real images' do.
var standinAPIReleases = []string{"1.15.0", "1.16.0"}

// standinImages are the role images to build, by name.
func standinImages() map[string]standinRole {
	m := map[string]standinRole{}
	for _, r := range standinRoles {
		m[StandinImage(r.role)] = r
	}
	for _, rel := range standinAPIReleases {
		m[StandinImage("dify-api-"+rel)] = standinRole{"dify-api", "ENV STANDIN_RELEASE=" + rel + "\n" + serveEntry}
	}
	return m
}

const serveEntry = "ENTRYPOINT [\"/usr/local/bin/standin\", \"serve\"]\nCMD []\n"

var standinRoles = []standinRole{
	{"busybox", "ENTRYPOINT []\nCMD [\"sh\"]\n"},
	{"dify-api", serveEntry},
	{"dify-web", serveEntry},
	{"sandbox", serveEntry},
	{"local-sandbox", serveEntry},
	{"plugin-daemon", serveEntry},
	{"agent-backend", serveEntry},
	{"weaviate", serveEntry},
	{"postgres", "ENV PGDATA=/var/lib/postgresql/data\nVOLUME /var/lib/postgresql/data\nENTRYPOINT [\"docker-entrypoint.sh\"]\nCMD [\"postgres\"]\nSTOPSIGNAL SIGINT\nEXPOSE 5432\n"},
	{"redis", "WORKDIR /data\nVOLUME /data\nENTRYPOINT [\"docker-entrypoint.sh\"]\nCMD [\"redis-server\"]\nEXPOSE 6379\n"},
	{"nginx", "ENTRYPOINT [\"docker-entrypoint.sh\"]\nCMD [\"nginx\", \"-g\", \"daemon off;\"]\nSTOPSIGNAL SIGQUIT\nEXPOSE 80\n"},
	{"squid", "ENTRYPOINT [\"docker-entrypoint.sh\"]\nCMD [\"squid\", \"-f\", \"/etc/squid/squid.conf\", \"-NYC\"]\nEXPOSE 3128\n"},
}

// StandinImage is the stand-in image of a role.
func StandinImage(role string) string { return "difyctl-test/standin:" + role }

// standinRepos maps the repository of each real image the stand-ins play
// (any tag) to its role.
var standinRepos = map[string]string{
	"busybox":                             "busybox",
	"langgenius/dify-api":                 "dify-api",
	"langgenius/dify-web":                 "dify-web",
	"langgenius/dify-sandbox":             "sandbox",
	"langgenius/dify-agent-local-sandbox": "local-sandbox",
	"langgenius/dify-plugin-daemon":       "plugin-daemon",
	"langgenius/dify-agent-backend":       "agent-backend",
	"semitechnologies/weaviate":           "weaviate",
	"postgres":                            "postgres",
	"redis":                               "redis",
	"nginx":                               "nginx",
	"ubuntu/squid":                        "squid",
}

// StandinReleaseImages are the images of a Dify release's default
// deployment (postgresql + weaviate, and the collaboration extra): every
// image the stand-ins must play to bring it up. A unit test compares the
// 1.16.0 list with the embedded template and both with upstream's files.
func StandinReleaseImages(release string) ([]string, error) {
	common := []string{
		"busybox:latest", "redis:6-alpine", "langgenius/dify-sandbox:0.2.15",
		"langgenius/dify-plugin-daemon:0.6.3-local", "ubuntu/squid:latest", "nginx:latest",
		"postgres:15-alpine", "semitechnologies/weaviate:1.27.0",
	}
	switch release {
	case "1.15.0":
		return append(common, "langgenius/dify-api:1.15.0", "langgenius/dify-web:1.15.0"), nil
	case "1.16.0":
		return append(common, "langgenius/dify-api:1.16.0", "langgenius/dify-web:1.16.0",
			"langgenius/dify-agent-backend:1.16.0", "langgenius/dify-agent-local-sandbox:1.16.0"), nil
	}
	return nil, fmt.Errorf("no stand-in image list for Dify %s (known: 1.15.0, 1.16.0)", release)
}

// StandinOptions choose what plays Redis and PostgreSQL.
type StandinOptions struct {
	// StandinRedis plays redis:* with the stand-in (answers PING) instead of
	// the real Redis fixture (the default: backups need a real server).
	StandinRedis bool
	// RealPostgres plays postgres:* with the real PostgreSQL fixture instead
	// of the stand-in (the default: ready after STANDIN_READY_AFTER).
	RealPostgres bool
}

// standinFor is the local image that plays the real image ref.
func standinFor(ref string, opts StandinOptions) (string, error) {
	repo, tag := ref, ""
	if i := strings.LastIndex(ref, ":"); i > strings.LastIndex(ref, "/") {
		repo, tag = ref[:i], ref[i+1:]
	}
	repo = strings.TrimPrefix(strings.TrimPrefix(repo, "docker.io/"), "library/")
	role, ok := standinRepos[repo]
	if !ok {
		return "", fmt.Errorf("no stand-in plays %s", ref)
	}
	switch {
	case role == "redis" && !opts.StandinRedis:
		return ImageRedis, nil
	case role == "postgres" && opts.RealPostgres:
		return ImagePostgres, nil
	case role == "dify-api" && slices.Contains(standinAPIReleases, tag):
		return StandinImage("dify-api-" + tag), nil
	}
	return StandinImage(role), nil
}

// standinBaseEntries: busybox (sh and the applets the entrypoint scripts
// use), Debian's bash with its libraries (ssrf_proxy's entrypoint is a bash
// script), the stand-in binary and a link to it for every program it plays.
func standinBaseEntries(ctx context.Context) ([]entry, error) {
	bb, err := busyboxEntries()
	if err != nil {
		return nil, err
	}
	r := newRootfs(bb)
	if err := r.elf("bash", "/bin/bash"); err != nil {
		return nil, err
	}
	bin, err := staticGoBinary(ctx, "./internal/standin")
	if err != nil {
		return nil, err
	}
	r.add(entry{name: "usr/local/bin/standin", mode: 0o755, data: bin})
	for _, p := range []string{"curl", "pg_isready", "redis-cli", "redis-server", "mysqladmin", "celery", "envsubst", "postgres", "nginx", "docker-entrypoint.sh"} {
		r.add(entry{name: "usr/local/bin/" + p, link: "standin"})
	}
	r.add(entry{name: "usr/sbin/squid", link: "../local/bin/standin"})
	for _, d := range []string{"etc/nginx/conf.d", "etc/squid", "var/log/squid", "var/lib/postgresql/data", "data", "app/api/storage", "var/lib/weaviate"} {
		r.dir(d, 0o755)
	}
	return r.finish(), nil
}

// EnsureStandins builds the stand-in images whose inputs changed (the base,
// then one image per role on it), as EnsureFixtures builds the fixtures.
func EnsureStandins(ctx context.Context, cli *client.Client, log io.Writer) error {
	unlock, err := lockFile(filepath.Join(os.TempDir(), "difyctl-test-fixtures.lock"))
	if err != nil {
		return err
	}
	defer unlock()
	base := fixture{ref: StandinBase, entries: standinBaseEntries, config: rootPath}
	if err := base.ensure(ctx, cli, log); err != nil {
		return fmt.Errorf("stand-in image %s: %w", StandinBase, err)
	}
	img, err := cli.ImageInspect(ctx, StandinBase)
	if err != nil {
		return err
	}
	baseHash := img.Config.Labels[inputsLabel]
	imgs := standinImages()
	refs := make([]string, 0, len(imgs))
	for ref := range imgs {
		refs = append(refs, ref)
	}
	sort.Strings(refs)
	for _, ref := range refs {
		if err := ensureRoleImage(ctx, cli, log, baseHash, ref, imgs[ref]); err != nil {
			return fmt.Errorf("stand-in image %s: %w", ref, err)
		}
	}
	return nil
}

func ensureRoleImage(ctx context.Context, cli *client.Client, log io.Writer, baseHash, ref string, r standinRole) error {
	dockerfile := "FROM " + StandinBase + "\n"
	if r.role != "busybox" {
		dockerfile += "ENV STANDIN_ROLE=" + r.role + "\n"
	}
	dockerfile += r.config
	sum := sha256.Sum256([]byte(baseHash + "\x00" + dockerfile))
	hash := hex.EncodeToString(sum[:])
	oldID := ""
	if img, err := cli.ImageInspect(ctx, ref); err == nil && img.Config != nil {
		if img.Config.Labels[inputsLabel] == hash {
			return nil
		}
		oldID = img.ID
	}
	var ctxTar bytes.Buffer
	if _, err := writeContext(&ctxTar, dockerfile, nil); err != nil {
		return err
	}
	start := time.Now()
	if err := buildImage(ctx, cli, &ctxTar, ref, map[string]string{inputsLabel: hash}); err != nil {
		return err
	}
	fmt.Fprintf(log, "fixture %s: built in %s\n", ref, time.Since(start).Round(100*time.Millisecond))
	if oldID != "" {
		cli.ImageRemove(ctx, oldID, client.ImageRemoveOptions{})
	}
	return nil
}

// standinState is who uses the real names on this host, and which names
// the stand-ins were given.
type standinState struct {
	Holders []standinHolder `json:"holders"`
	Names   []string        `json:"names"`
}

type standinHolder struct {
	Token string `json:"token"`
	PID   int    `json:"pid"`
}

// standinDir holds the state file and its lock ("" = os.TempDir(); tests
// of this file use their own).
var standinDir = ""

func standinPaths() (state, lock string) {
	dir := standinDir
	if dir == "" {
		dir = os.TempDir()
	}
	return filepath.Join(dir, "difyctl-test-standins.json"), filepath.Join(dir, "difyctl-test-standins.lock")
}

func loadStandinState() (*standinState, error) {
	path, _ := standinPaths()
	st := &standinState{}
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return st, nil
	}
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(b, st); err != nil {
		return nil, fmt.Errorf("%s: %w (delete it when no test runs)", path, err)
	}
	return st, nil
}

func (st *standinState) save() error {
	path, _ := standinPaths()
	b, err := json.Marshal(st)
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

func processAlive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

// live drops the holders whose process is gone.
func (st *standinState) live() {
	var keep []standinHolder
	for _, h := range st.Holders {
		if processAlive(h.PID) {
			keep = append(keep, h)
		}
	}
	st.Holders = keep
}

func isTestImage(img client.ImageInspectResult) bool {
	return img.Config != nil && img.Config.Labels[inputsLabel] != ""
}

// untagAll removes every recorded real name that still names a test image.
func (st *standinState) untagAll(ctx context.Context, cli *client.Client) error {
	var errs []error
	var left []string
	for _, name := range st.Names {
		img, err := cli.ImageInspect(ctx, name)
		if err != nil {
			if !isNotFound(err) {
				errs = append(errs, fmt.Errorf("inspecting %s: %w", name, err))
				left = append(left, name)
			}
			continue
		}
		if !isTestImage(img) {
			continue // someone pulled the real image meanwhile: never touched
		}
		if _, err := cli.ImageRemove(ctx, name, client.ImageRemoveOptions{}); err != nil && !isNotFound(err) {
			errs = append(errs, fmt.Errorf("untagging %s: %w", name, err))
			left = append(left, name)
		}
	}
	st.Names = left
	return errors.Join(errs...)
}

// imageEnv is an image's configured environment, sorted.
func imageEnv(img client.ImageInspectResult) []string {
	if img.Config == nil {
		return nil
	}
	env := slices.Clone(img.Config.Env)
	slices.Sort(env)
	return env
}

func withStandinLock(fn func(st *standinState) error) error {
	_, lock := standinPaths()
	unlock, err := lockFile(lock)
	if err != nil {
		return err
	}
	defer unlock()
	st, err := loadStandinState()
	if err != nil {
		return err
	}
	st.live()
	ferr := fn(st)
	if err := st.save(); err != nil {
		return errors.Join(ferr, err)
	}
	return ferr
}

// standinHeld reports whether a real name is given to a stand-in by a live
// user right now (the fixture build then leaves it alone).
func standinHeld(name string) bool {
	held := false
	withStandinLock(func(st *standinState) error {
		if len(st.Holders) > 0 {
			for _, n := range st.Names {
				held = held || n == name
			}
		}
		return nil
	})
	return held
}

// releaseStaleStandins untags the names of users that died without
// releasing them (an interrupted test run), when no user is left.
func releaseStaleStandins(ctx context.Context, cli *client.Client, log io.Writer) error {
	return withStandinLock(func(st *standinState) error {
		if len(st.Holders) > 0 || len(st.Names) == 0 {
			return nil
		}
		fmt.Fprintf(log, "stand-ins: untagging %s, left by an interrupted run\n", strings.Join(st.Names, ", "))
		return st.untagAll(ctx, cli)
	})
}

// AcquireStandins builds the stand-in images and gives them the real names
// refs (StandinReleaseImages) for as long as the returned release function
// has not been called. A name that already names a real image is an error:
// it is never replaced. Programs call release on every exit path (defer, and
// on SIGINT/SIGTERM); tests use WithStandins.
func AcquireStandins(ctx context.Context, cli *client.Client, log io.Writer, refs []string, opts StandinOptions) (release func() error, err error) {
	if err := EnsureFixtures(ctx, cli, log); err != nil {
		return nil, err
	}
	if err := EnsureStandins(ctx, cli, log); err != nil {
		return nil, err
	}
	return acquireStandins(ctx, cli, refs, opts)
}

// AcquireStandinsBuilt is AcquireStandins when the images were built
// already in this process (a benchmark taking the names once per run).
func AcquireStandinsBuilt(ctx context.Context, cli *client.Client, refs []string, opts StandinOptions) (release func() error, err error) {
	return acquireStandins(ctx, cli, refs, opts)
}

func acquireStandins(ctx context.Context, cli *client.Client, refs []string, opts StandinOptions) (release func() error, err error) {
	targets := map[string]string{}
	for _, ref := range refs {
		if targets[ref], err = standinFor(ref, opts); err != nil {
			return nil, err
		}
	}
	b := make([]byte, 8)
	rand.Read(b)
	me := standinHolder{Token: hex.EncodeToString(b), PID: os.Getpid()}
	release = func() error {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		return withStandinLock(func(st *standinState) error {
			var keep []standinHolder
			for _, h := range st.Holders {
				if h.Token != me.Token {
					keep = append(keep, h)
				}
			}
			st.Holders = keep
			if len(keep) > 0 {
				return nil
			}
			return st.untagAll(ctx, cli)
		})
	}
	names := make([]string, 0, len(targets))
	for n := range targets {
		names = append(names, n)
	}
	sort.Strings(names)
	err = withStandinLock(func(st *standinState) error {
		if len(st.Holders) == 0 && len(st.Names) > 0 {
			if err := st.untagAll(ctx, cli); err != nil {
				return err
			}
		}
		st.Holders = append(st.Holders, me)
		for _, name := range names {
			recorded := false
			for _, n := range st.Names {
				recorded = recorded || n == name
			}
			img, err := cli.ImageInspect(ctx, name)
			switch {
			case err == nil && !isTestImage(img):
				return fmt.Errorf("image %s exists on this host and is not a test image: the stand-ins never replace a real image; run this on a host without it (or remove it: docker rmi %s)", name, name)
			case err == nil && recorded:
				// Given to a stand-in by another user: shared, when it is
				// set up as ours is (another build of the same role is fine;
				// another role or release, or the stand-in where we want the
				// real fixture, is not).
				want, werr := cli.ImageInspect(ctx, targets[name])
				if werr != nil {
					return fmt.Errorf("inspecting %s: %w", targets[name], werr)
				}
				if img.ID != want.ID && !slices.Equal(imageEnv(img), imageEnv(want)) {
					return fmt.Errorf("image %s is given to another test image (environment %v, not %v of %s) by another run on this host, built from other sources or with other options: wait until it ends, then run this again", name, imageEnv(img), imageEnv(want), targets[name])
				}
				continue
			case err == nil && !recorded:
				// A test image under the real name that no one recorded: an
				// older suite's leftover; taken over and untagged at the end.
			case !isNotFound(err):
				return fmt.Errorf("inspecting %s: %w", name, err)
			}
			if _, err := cli.ImageTag(ctx, client.ImageTagOptions{Source: targets[name], Target: name}); err != nil {
				return fmt.Errorf("tagging %s as %s: %w", targets[name], name, err)
			}
			if !recorded {
				st.Names = append(st.Names, name)
			}
		}
		return nil
	})
	if err != nil {
		if rerr := release(); rerr != nil {
			err = errors.Join(err, rerr)
		}
		return nil, err
	}
	return release, nil
}

var (
	standinsOnce sync.Once
	standinsErr  error
)

// WithStandins gives the stand-in images the real names of a Dify
// release's default deployment until the test ends (StandinReleaseImages),
// and builds them first when their inputs changed. The names are untagged
// when the last test using them on this host ends, passed or failed.
func WithStandins(t testing.TB, release string, opts StandinOptions) {
	t.Helper()
	cli := Fixtures(t)
	refs, err := StandinReleaseImages(release)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	standinsOnce.Do(func() { standinsErr = EnsureStandins(ctx, cli, testLog{t}) })
	if standinsErr != nil {
		t.Fatalf("stand-in images: %v", standinsErr)
	}
	rel, err := acquireStandins(ctx, cli, refs, opts)
	if err != nil {
		t.Fatalf("stand-in images: %v", err)
	}
	t.Cleanup(func() {
		if err := rel(); err != nil {
			t.Errorf("untagging the stand-in images: %v", err)
		}
	})
}
