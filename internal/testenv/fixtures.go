// Package testenv is what the end-to-end tests share: a reachable engine (or a
// clear failure in CI), the fixture images built locally without any registry,
// the difyctl binary, and cleanup of every object a test creates.
package testenv

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/moby/moby/api/types/build"
	"github.com/moby/moby/client"
)

// Fixture image references. Every image a test runs is one of these.
const (
	ImageRedis   = "difyctl-test/redis:latest"
	ImageTestsvc = "difyctl-test/testsvc:latest"
	ImageBusybox = "difyctl-test/busybox:latest"
	// ImagePostgres stands in for Dify's postgres:15-alpine (see dbfixtures.go).
	ImagePostgres = "difyctl-test/postgres:latest"
	// ImageMariaDB stands in for Dify's mysql:8.0 (see dbfixtures.go).
	ImageMariaDB = "difyctl-test/mariadb:latest"
)

// inputsLabel records the hash of everything an image was built from, so an
// image is rebuilt only when its inputs change.
const inputsLabel = "org.difyctl.test.inputs"

// InputsLabel is inputsLabel for programs that look for fixture images.
const InputsLabel = inputsLabel

// FixturePrefix starts the name of every fixture image: no test image ever
// carries a real image's name.
const FixturePrefix = "difyctl-test/"

// entry is one file, directory or symlink of an image's root filesystem.
type entry struct {
	name   string // path inside the image, without leading slash
	mode   int64
	dir    bool
	link   string // symlink target
	source string // host file whose content this is
	data   []byte // literal content
}

// fixture describes one image: its root filesystem and the Dockerfile lines
// after `FROM scratch` / `COPY . /`.
type fixture struct {
	ref     string
	entries func(ctx context.Context) ([]entry, error)
	config  string
}

const rootPath = "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n"

func fixtures() []fixture {
	return []fixture{
		{
			ref:     ImageBusybox,
			entries: func(context.Context) ([]entry, error) { return busyboxEntries() },
			config:  rootPath + "CMD [\"sh\"]\n",
		},
		{
			ref:     ImageRedis,
			entries: func(context.Context) ([]entry, error) { return redisEntries() },
			// As the official redis image: data in /data, port 6379.
			config: rootPath + "WORKDIR /data\nVOLUME /data\nEXPOSE 6379\nCMD [\"redis-server\"]\n",
		},
		{
			ref:     ImageTestsvc,
			entries: testsvcEntries,
			config:  "ENTRYPOINT [\"/testsvc\"]\n",
		},
		{
			ref:     ImagePostgres,
			entries: postgresEntries,
			config:  postgresConfig(),
		},
		{
			ref:     ImageMariaDB,
			entries: mariadbEntries,
			config:  mariadbConfig,
		},
	}
}

// EnsureFixtures builds every fixture image whose inputs changed since it was
// last built, printing one line per image to log. Concurrent callers (test
// packages run in parallel) are serialised by a lock file.
func EnsureFixtures(ctx context.Context, cli *client.Client, log io.Writer) error {
	unlock, err := lockFile(filepath.Join(os.TempDir(), "difyctl-test-fixtures.lock"))
	if err != nil {
		return err
	}
	defer unlock()
	for _, fx := range fixtures() {
		if err := fx.ensure(ctx, cli, log); err != nil {
			return fmt.Errorf("fixture image %s: %w", fx.ref, err)
		}
	}
	if err := removeLegacyAliases(ctx, cli, log); err != nil {
		return err
	}
	return releaseStaleStandins(ctx, cli, log)
}

// legacyAliases are real image names that earlier versions of the suite
// tagged fixtures with. A fixture never carries a real image's name now; a
// leftover tag from those versions is removed (only when the image it names
// is one of ours, recognised by the inputs label), so a host that ran an old
// suite gets its names back.
var legacyAliases = []string{"redis:6-alpine"}

func removeLegacyAliases(ctx context.Context, cli *client.Client, log io.Writer) error {
	for _, alias := range legacyAliases {
		if standinHeld(alias) {
			continue // given to a stand-in by a running test (standins.go)
		}
		cur, err := cli.ImageInspect(ctx, alias)
		if err != nil {
			if isNotFound(err) {
				continue
			}
			return err
		}
		if cur.Config == nil || cur.Config.Labels[inputsLabel] == "" {
			continue // a real image: never touched
		}
		if _, err := cli.ImageRemove(ctx, alias, client.ImageRemoveOptions{}); err != nil && !isNotFound(err) {
			return fmt.Errorf("removing the leftover fixture tag %s: %w", alias, err)
		}
		fmt.Fprintf(log, "fixture: removed the leftover tag %s (a test image under a real name)\n", alias)
	}
	return nil
}

func (fx fixture) ensure(ctx context.Context, cli *client.Client, log io.Writer) error {
	entries, err := fx.entries(ctx)
	if err != nil {
		return err
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].name < entries[j].name })
	dockerfile := "FROM scratch\nCOPY . /\n" + fx.config
	var ctxTar bytes.Buffer
	hash, err := writeContext(&ctxTar, dockerfile, entries)
	if err != nil {
		return err
	}
	oldID := ""
	if img, err := cli.ImageInspect(ctx, fx.ref); err == nil && img.Config != nil {
		if img.Config.Labels[inputsLabel] == hash {
			fmt.Fprintf(log, "fixture %s: up to date (%s)\n", fx.ref, hash[:12])
			return nil
		}
		oldID = img.ID
	}
	fmt.Fprintf(log, "fixture %s: building (%d files, %d KiB context)\n", fx.ref, len(entries), ctxTar.Len()>>10)
	start := time.Now()
	if err := buildImage(ctx, cli, &ctxTar, fx.ref, map[string]string{inputsLabel: hash}); err != nil {
		return err
	}
	fmt.Fprintf(log, "fixture %s: built in %s\n", fx.ref, time.Since(start).Round(100*time.Millisecond))
	// The image the new build replaced is left without a name: remove it
	// unless a container still uses it (then the engine refuses, harmlessly).
	if oldID != "" {
		if img, err := cli.ImageInspect(ctx, fx.ref); err == nil && img.ID != oldID {
			cli.ImageRemove(ctx, oldID, client.ImageRemoveOptions{PruneChildren: true})
		}
	}
	return nil
}

// BuildImage builds ref from a Dockerfile and the files beside it (name ->
// content), through the engine's classic builder.
func BuildImage(ctx context.Context, cli *client.Client, ref, dockerfile string, files map[string][]byte) error {
	var entries []entry
	for name, data := range files {
		entries = append(entries, entry{name: name, mode: 0o644, data: data})
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].name < entries[j].name })
	var ctxTar bytes.Buffer
	if _, err := writeContext(&ctxTar, dockerfile, entries); err != nil {
		return err
	}
	return buildImage(ctx, cli, &ctxTar, ref, nil)
}

func buildImage(ctx context.Context, cli *client.Client, buildContext io.Reader, ref string, labels map[string]string) error {
	res, err := cli.ImageBuild(ctx, buildContext, client.ImageBuildOptions{
		Tags:        []string{ref},
		Labels:      labels,
		Remove:      true,
		ForceRemove: true,
		Version:     build.BuilderV1, // the classic builder needs no BuildKit session
	})
	if err != nil {
		return err
	}
	defer res.Body.Close()
	dec := json.NewDecoder(res.Body)
	var tail []string
	for {
		var msg struct {
			Stream      string `json:"stream"`
			Error       string `json:"error"`
			ErrorDetail struct {
				Message string `json:"message"`
			} `json:"errorDetail"`
		}
		if err := dec.Decode(&msg); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return fmt.Errorf("reading build output: %w", err)
		}
		if msg.Error != "" {
			return fmt.Errorf("building %s failed: %s (last output: %s)", ref, msg.Error, strings.Join(tail, " | "))
		}
		if s := strings.TrimSpace(msg.Stream); s != "" {
			tail = append(tail, s)
			if len(tail) > 5 {
				tail = tail[1:]
			}
		}
	}
	return nil
}

// writeContext writes the build context tar and returns the hash of all
// inputs: the Dockerfile, every entry's name, mode, link target and content.
func writeContext(w io.Writer, dockerfile string, entries []entry) (string, error) {
	h := sha256.New()
	tw := tar.NewWriter(w)
	add := func(hdr *tar.Header, body []byte) error {
		fmt.Fprintf(h, "%s\x00%o\x00%s\x00%d\x00", hdr.Name, hdr.Mode, hdr.Linkname, len(body))
		h.Write(body)
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		_, err := tw.Write(body)
		return err
	}
	if err := add(&tar.Header{Name: "Dockerfile", Mode: 0o644, Size: int64(len(dockerfile)), Typeflag: tar.TypeReg}, []byte(dockerfile)); err != nil {
		return "", err
	}
	for _, e := range entries {
		hdr := &tar.Header{Name: e.name, Mode: e.mode}
		var body []byte
		switch {
		case e.dir:
			hdr.Typeflag, hdr.Name = tar.TypeDir, e.name+"/"
		case e.link != "":
			hdr.Typeflag, hdr.Linkname = tar.TypeSymlink, e.link
		default:
			body = e.data
			if e.source != "" {
				b, err := os.ReadFile(e.source)
				if err != nil {
					return "", err
				}
				body = b
			}
			hdr.Typeflag, hdr.Size = tar.TypeReg, int64(len(body))
		}
		if err := add(hdr, body); err != nil {
			return "", err
		}
	}
	if err := tw.Close(); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

func baseEntries() []entry {
	return []entry{
		{name: "tmp", dir: true, mode: 0o1777},
		{name: "etc", dir: true, mode: 0o755},
		{name: "etc/passwd", mode: 0o644, data: []byte("root:x:0:0:root:/root:/bin/sh\nredis:x:999:999:redis:/data:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n")},
		{name: "etc/group", mode: 0o644, data: []byte("root:x:0:\nredis:x:999:\nnogroup:x:65534:\n")},
	}
}

// busyboxEntries: the static busybox from Debian's busybox-static, with a
// symlink in /bin for each applet, so CMD-SHELL healthchecks have /bin/sh.
func busyboxEntries() ([]entry, error) {
	const bb = "/bin/busybox"
	if err := requireStatic(bb, "busybox-static"); err != nil {
		return nil, err
	}
	out, err := exec.Command(bb, "--list").Output()
	if err != nil {
		return nil, fmt.Errorf("%s --list: %w", bb, err)
	}
	entries := append(baseEntries(),
		entry{name: "bin", dir: true, mode: 0o755},
		entry{name: "bin/busybox", mode: 0o755, source: bb},
	)
	for _, applet := range strings.Fields(string(out)) {
		if applet != "busybox" && !strings.Contains(applet, "/") {
			entries = append(entries, entry{name: "bin/" + applet, link: "busybox"})
		}
	}
	return entries, nil
}

func requireStatic(path, pkg string) error {
	if _, err := os.Stat(path); err != nil {
		return fmt.Errorf("%s missing: install Debian's %s (make test does)", path, pkg)
	}
	out, _ := exec.Command("ldd", path).CombinedOutput()
	if !strings.Contains(string(out), "not a dynamic executable") && !strings.Contains(string(out), "statically linked") {
		return fmt.Errorf("%s is dynamically linked: install Debian's %s", path, pkg)
	}
	return nil
}

var lddPath = regexp.MustCompile(`(?:=>\s*)?(/[^\s]+)\s+\(0x`)

// redisEntries: Debian's redis-server and redis-cli in /usr/local/bin (where
// the official image has them), the shared libraries ldd names, and busybox.
func redisEntries() ([]entry, error) {
	entries, err := busyboxEntries()
	if err != nil {
		return nil, err
	}
	entries = append(entries,
		entry{name: "data", dir: true, mode: 0o777},
		entry{name: "usr", dir: true, mode: 0o755},
		entry{name: "usr/local", dir: true, mode: 0o755},
		entry{name: "usr/local/bin", dir: true, mode: 0o755},
	)
	libs := map[string]bool{}
	for _, bin := range []struct{ name, pkg string }{{"redis-server", "redis-server"}, {"redis-cli", "redis-tools"}} {
		path, err := exec.LookPath(bin.name)
		if err != nil {
			return nil, fmt.Errorf("%s not found: install Debian's %s (make test does)", bin.name, bin.pkg)
		}
		real, err := filepath.EvalSymlinks(path)
		if err != nil {
			return nil, err
		}
		entries = append(entries, entry{name: "usr/local/bin/" + bin.name, mode: 0o755, source: real})
		out, err := exec.Command("ldd", real).Output()
		if err != nil {
			return nil, fmt.Errorf("ldd %s: %w", real, err)
		}
		sc := bufio.NewScanner(bytes.NewReader(out))
		for sc.Scan() {
			if m := lddPath.FindStringSubmatch(sc.Text()); m != nil {
				libs[m[1]] = true
			}
		}
	}
	// redis-check-rdb and redis-check-aof are the server binary under other names;
	// docker-entrypoint.sh stands in for the official image's (which drops to the
	// redis user; here everything runs as root).
	entries = append(entries,
		entry{name: "usr/local/bin/docker-entrypoint.sh", mode: 0o755, data: []byte("#!/bin/sh\nexec \"$@\"\n")},
		entry{name: "usr/local/bin/redis-check-rdb", link: "redis-server"},
		entry{name: "usr/local/bin/redis-check-aof", link: "redis-server"},
	)
	dirs := map[string]bool{"usr": true, "usr/local": true, "usr/local/bin": true, "bin": true, "etc": true, "tmp": true, "data": true}
	for lib := range libs {
		real, err := filepath.EvalSymlinks(lib)
		if err != nil {
			return nil, err
		}
		name := strings.TrimPrefix(lib, "/")
		for d := filepath.Dir(name); d != "." && !dirs[d]; d = filepath.Dir(d) {
			dirs[d] = true
			entries = append(entries, entry{name: d, dir: true, mode: 0o755})
		}
		entries = append(entries, entry{name: name, mode: 0o755, source: real})
	}
	return entries, nil
}

// testsvcEntries builds the project's test service as a static binary.
func testsvcEntries(ctx context.Context) ([]entry, error) {
	data, err := staticGoBinary(ctx, "./internal/testsvc")
	if err != nil {
		return nil, err
	}
	return append(baseEntries(), entry{name: "testsvc", mode: 0o755, data: data}), nil
}

// staticGoBinary builds a package of this module static and reproducibly
// (so the image hash changes only when its source does) and returns it.
func staticGoBinary(ctx context.Context, pkg string) ([]byte, error) {
	root, err := RepoRoot()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "difyctl-fixture-bin-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	bin := filepath.Join(dir, filepath.Base(pkg))
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-ldflags=-s -w -buildid=", "-o", bin, pkg)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("building %s: %w\n%s", pkg, err, out)
	}
	return os.ReadFile(bin)
}

// RepoRoot finds the module root from the working directory.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if b, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil && bytes.Contains(b, []byte("module github.com/difyctl/difyctl\n")) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("not inside the difyctl module")
		}
		dir = parent
	}
}

func lockFile(path string) (func(), error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("locking %s: %w", path, err)
	}
	return func() { syscall.Flock(int(f.Fd()), syscall.LOCK_UN); f.Close() }, nil
}
