// Package benchkit is what the benchmark programs under bench/ share:
// Dify's realistic ready delays for the stand-ins, docker compose's
// discovery, copying an upstream-shaped project, and the way figures are
// printed.
package benchkit

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/difyctl/difyctl/internal/testenv"
)

// ReadyAfter is each Dify service's ready delay: how long after its start
// the stand-in begins to listen and pass its healthcheck. Figures of the
// order the real services take on a small host once their images are
// present. Redis is the real Redis fixture (ready in well under a second,
// counted as 0.5 s); init_permissions is a one-shot job.
var ReadyAfter = map[string]time.Duration{
	"db_postgres":   3 * time.Second,
	"redis":         500 * time.Millisecond,
	"weaviate":      2 * time.Second,
	"sandbox":       1 * time.Second,
	"local_sandbox": 1 * time.Second,
	"plugin_daemon": 3 * time.Second,
	"agent_backend": 2 * time.Second,
	"api":           6 * time.Second,
	"worker":        5 * time.Second,
	"worker_beat":   2 * time.Second,
	"api_websocket": 4 * time.Second,
	"web":           3 * time.Second,
	"ssrf_proxy":    1 * time.Second,
	"nginx":         500 * time.Millisecond,
}

// Delays lists the delays of the named services (every one when none is
// named), sorted, for the figures' header.
func Delays(services ...string) string {
	var parts []string
	for n, d := range ReadyAfter {
		if len(services) == 0 || contains(services, n) {
			parts = append(parts, fmt.Sprintf("%s %s", n, d))
		}
	}
	sort.Strings(parts)
	return strings.Join(parts, ", ")
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

// FindCompose is the docker compose v2 command line to compare with: the
// flagged binary, the one the test command caches, or `docker compose`;
// nil when none answers `version`.
func FindCompose(flagged string) []string {
	var cands [][]string
	if flagged != "" {
		cands = append(cands, []string{flagged})
	}
	if home, err := os.UserHomeDir(); err == nil {
		cands = append(cands, []string{filepath.Join(home, ".cache", "difyctl-tools", "docker-compose")})
	}
	cands = append(cands, []string{"docker", "compose"})
	for _, c := range cands {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		err := exec.CommandContext(ctx, c[0], append(c[1:], "version")...).Run()
		cancel()
		if err == nil {
			return c
		}
	}
	return nil
}

// RepoRoot is the repository's top directory ("." when not found).
func RepoRoot() string {
	root, err := testenv.RepoRoot()
	if err != nil {
		return "."
	}
	return root
}

// CopyTree copies the files under src to dst, keeping their modes.
func CopyTree(src, dst string) error {
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		target := filepath.Join(dst, rel)
		info, err := d.Info()
		if err != nil {
			return err
		}
		if d.IsDir() {
			return os.MkdirAll(target, info.Mode().Perm()|0o700)
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(target, data, info.Mode().Perm())
	})
}

// FreePort is a TCP port free on this host now.
func FreePort() (string, error) {
	ln, err := net.Listen("tcp", ":0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return fmt.Sprint(ln.Addr().(*net.TCPAddr).Port), nil
}

// Tail is the last n lines of s.
func Tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// OneLine is the line of a tool's output that says what went wrong: the
// first naming a healthcheck or an error, else the first.
func OneLine(s string) string {
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, "healthcheck") || strings.Contains(l, "rror") {
			return strings.TrimSpace(l)
		}
	}
	l, _, _ := strings.Cut(s, "\n")
	return l
}

// R rounds a duration for printing.
func R(d time.Duration) string { return d.Round(10 * time.Millisecond).String() }

// Seen prints a moment that may never have come (0).
func Seen(d time.Duration) string {
	if d == 0 {
		return "never"
	}
	return R(d)
}

// Ratio is a / b.
func Ratio(a, b time.Duration) float64 { return float64(a) / float64(b) }

// StampWriter writes each line it is given to w, prefixed with the time
// since start: where a tool's time goes, line by line.
type StampWriter struct {
	w     io.Writer
	start time.Time
	mu    sync.Mutex
	part  []byte
}

// NewStampWriter stamps lines with the time since start.
func NewStampWriter(w io.Writer, start time.Time) *StampWriter {
	return &StampWriter{w: w, start: start}
}

func (s *StampWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.part = append(s.part, p...)
	for {
		i := bytes.IndexByte(s.part, '\n')
		if i < 0 {
			return len(p), nil
		}
		fmt.Fprintf(s.w, "%7.2fs %s\n", time.Since(s.start).Seconds(), s.part[:i])
		s.part = s.part[i+1:]
	}
}

// OpenTrace creates the -trace file at path ("": no trace, a nil writer)
// and returns it with its close.
func OpenTrace(path string) (io.Writer, func(), error) {
	if path == "" {
		return nil, func() {}, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, nil, err
	}
	return f, func() { f.Close() }, nil
}
