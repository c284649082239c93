package bundle

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/client"

	"github.com/difyctl/difyctl/internal/engine"
)

// capBuffer keeps the first max bytes written to it (a command's stderr).
type capBuffer struct {
	b   []byte
	max int
}

func (c *capBuffer) Write(p []byte) (int, error) {
	if room := c.max - len(c.b); room > 0 {
		c.b = append(c.b, p[:min(room, len(p))]...)
	}
	return len(p), nil
}

func (c *capBuffer) String() string { return strings.TrimSpace(string(c.b)) }

// execResult is how a command in a container ended.
type execResult struct {
	Code   int
	Stderr string
}

// execStream runs cmd in the container with env (secrets travel here,
// never in cmd), stdin streamed from in (nil: none) and stdout streamed to
// out: nothing is held in memory or written to the container's disk.
func execStream(ctx context.Context, e engine.Engine, id string, env, cmd []string, in io.Reader, out io.Writer) (execResult, error) {
	ex, err := e.ExecCreate(ctx, id, client.ExecCreateOptions{Cmd: cmd, Env: env, AttachStdin: in != nil, AttachStdout: true, AttachStderr: true})
	if err != nil {
		return execResult{}, fmt.Errorf("exec %s: %w", cmd[0], err)
	}
	att, err := e.ExecAttach(ctx, ex.ID, client.ExecAttachOptions{})
	if err != nil {
		return execResult{}, fmt.Errorf("exec %s: %w", cmd[0], err)
	}
	defer att.Close()
	stop := context.AfterFunc(ctx, func() { att.Close() })
	defer stop()
	inErr := make(chan error, 1)
	if in != nil {
		go func() {
			_, err := io.Copy(att.Conn, in)
			if err != nil {
				// The command stopped reading (it exited): take the rest so the
				// writer on the other side is never blocked.
				io.Copy(io.Discard, in)
			}
			if cw, ok := att.Conn.(interface{ CloseWrite() error }); ok {
				cw.CloseWrite()
			}
			inErr <- err
		}()
	} else {
		inErr <- nil
	}
	if out == nil {
		out = io.Discard
	}
	stderr := &capBuffer{max: 16 << 10}
	_, copyErr := stdcopy.StdCopy(out, stderr, att.Reader)
	// The output ended: the command exited (or the copy failed). Closing the
	// connection ends a stdin copy the command no longer reads.
	att.Close()
	<-inErr
	if copyErr != nil {
		if ctx.Err() != nil {
			return execResult{}, ctx.Err()
		}
		return execResult{Stderr: stderr.String()}, fmt.Errorf("exec %s: %w", cmd[0], diskErr(copyErr))
	}
	ins, err := e.ExecInspect(ctx, ex.ID, client.ExecInspectOptions{})
	if err != nil {
		return execResult{}, fmt.Errorf("exec %s: %w", cmd[0], err)
	}
	return execResult{Code: ins.ExitCode, Stderr: stderr.String()}, nil
}

// execOutput runs a short command and returns its stdout.
func execOutput(ctx context.Context, e engine.Engine, id string, env, cmd []string) (string, error) {
	var out capBuffer
	out.max = 1 << 20
	res, err := execStream(ctx, e, id, env, cmd, nil, &out)
	if err != nil {
		return "", err
	}
	if res.Code != 0 {
		return out.String(), fmt.Errorf("%s exited %d: %s", cmd[0], res.Code, firstLines(res.Stderr, 5))
	}
	return out.String(), nil
}

func firstLines(s string, n int) string {
	ls := strings.SplitN(s, "\n", n+1)
	if len(ls) > n {
		ls = ls[:n]
	}
	return strings.Join(ls, " / ")
}
