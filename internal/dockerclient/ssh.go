package dockerclient

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/url"
	"os/exec"
	"strings"
	"sync"
	"time"

	"github.com/difyctl/difyctl/internal/termsafe"
)

// sshHelper connects to an ssh:// engine as the docker CLI's connection
// helper does: each connection is `ssh [-l user] [-p port] -- host docker
// system dial-stdio`, whose stdin and stdout carry the engine API. ssh
// authenticates and encrypts; its own configuration (keys, known_hosts)
// applies.
type sshHelper struct{ args []string }

func newSSHHelper(host string) (*sshHelper, error) {
	u, err := url.Parse(host)
	if err != nil {
		return nil, fmt.Errorf("not an ssh URL: %v", err)
	}
	if u.Hostname() == "" {
		return nil, fmt.Errorf("no host in the ssh URL")
	}
	if _, set := u.User.Password(); set {
		return nil, fmt.Errorf("a password in the ssh URL is not supported (use an ssh key or agent)")
	}
	if u.Path != "" && u.Path != "/" || u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("an ssh engine URL is ssh://[user@]host[:port] without a path")
	}
	if strings.HasPrefix(u.Hostname(), "-") || strings.HasPrefix(u.User.Username(), "-") {
		return nil, fmt.Errorf("invalid ssh host or user")
	}
	args := []string{"-o", "ConnectTimeout=30", "-T"}
	if user := u.User.Username(); user != "" {
		args = append(args, "-l", user)
	}
	if p := u.Port(); p != "" {
		args = append(args, "-p", p)
	}
	args = append(args, "--", u.Hostname(), "docker", "system", "dial-stdio")
	return &sshHelper{args: args}, nil
}

func (h *sshHelper) dial(ctx context.Context, _, _ string) (net.Conn, error) {
	cmd := exec.Command("ssh", h.args...)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	c := &cmdConn{cmd: cmd, stdin: stdin, stdout: stdout}
	cmd.Stderr = &c.stderr
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("ssh for the engine: %w (is an ssh client installed?)", err)
	}
	return c, nil
}

// cmdConn is a net.Conn over a command's stdin and stdout.
type cmdConn struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	stdout io.ReadCloser
	stderr tailBuffer
	once   sync.Once
}

func (c *cmdConn) Read(p []byte) (int, error) {
	n, err := c.stdout.Read(p)
	if err == io.EOF && n == 0 {
		// ssh closed its stdout: its stderr is complete only once the
		// process is reaped (exec copies it in a goroutine that Wait joins).
		done := make(chan struct{})
		go func() { c.finish(); close(done) }()
		select {
		case <-done:
		case <-time.After(2 * time.Second):
		}
		if msg := c.stderr.String(); msg != "" {
			return 0, fmt.Errorf("ssh to the engine: %s", termsafe.String(strings.TrimSpace(msg)))
		}
	}
	return n, err
}

func (c *cmdConn) Write(p []byte) (int, error) { return c.stdin.Write(p) }

// CloseWrite half-closes, as the engine's hijacked streams expect.
func (c *cmdConn) CloseWrite() error { return c.stdin.Close() }

func (c *cmdConn) Close() error {
	if c.cmd.Process != nil {
		c.cmd.Process.Kill() // harmless when it has exited
	}
	c.finish()
	return nil
}

// finish closes ssh's stdin and reaps it, once.
func (c *cmdConn) finish() {
	c.once.Do(func() {
		c.stdin.Close()
		c.cmd.Wait()
	})
}

type dummyAddr struct{}

func (dummyAddr) Network() string { return "ssh" }
func (dummyAddr) String() string  { return "ssh" }

func (c *cmdConn) LocalAddr() net.Addr              { return dummyAddr{} }
func (c *cmdConn) RemoteAddr() net.Addr             { return dummyAddr{} }
func (c *cmdConn) SetDeadline(time.Time) error      { return nil }
func (c *cmdConn) SetReadDeadline(time.Time) error  { return nil }
func (c *cmdConn) SetWriteDeadline(time.Time) error { return nil }

// tailBuffer keeps the last 4 KiB written to it (ssh's stderr).
type tailBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b.Write(p)
	if t.b.Len() > 4096 {
		keep := append([]byte(nil), t.b.Bytes()[t.b.Len()-4096:]...)
		t.b.Reset()
		t.b.Write(keep)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.b.String()
}
