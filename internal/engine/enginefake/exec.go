package enginefake

import (
	"archive/tar"
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"path"
	"sort"
	"strings"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
)

// ExecReply is what an exec prints and exits with.
type ExecReply struct {
	Stdout, Stderr string
	ExitCode       int
}

// ExecFunc answers an exec in container c (a copy) with cmd and env.
type ExecFunc func(c *Container, cmd, env []string) ExecReply

// StartFunc runs when a container starts, after its Behaviour applied:
// a test makes a helper container's work happen here (files moved).
type StartFunc func(c *Container)

type execRun struct {
	container string
	cmd, env  []string
	res       *ExecReply
}

// HandleExec makes execs answered by f (without it, exec fails).
func (e *Engine) HandleExec(f ExecFunc) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.execFn = f
}

// OnStart makes f run on every container start.
func (e *Engine) OnStart(f StartFunc) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.startFn = f
}

// File is the content of a file in the container's filesystem (shared with
// the containers that mount its volumes with VolumesFrom), and whether it
// exists.
func (e *Engine) File(ref, p string) ([]byte, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	fs, err := e.filesOf(ref)
	if err != nil {
		return nil, false
	}
	b, ok := fs[path.Clean(p)]
	return b, ok
}

// Files lists the paths under dir in the container's filesystem, sorted.
func (e *Engine) Files(ref, dir string) []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	fs, err := e.filesOf(ref)
	if err != nil {
		return nil
	}
	var out []string
	for p := range fs {
		if strings.HasPrefix(p, path.Clean(dir)+"/") {
			out = append(out, p)
		}
	}
	sort.Strings(out)
	return out
}

// PutFile sets a file in the container's filesystem (nil data removes it).
func (e *Engine) PutFile(ref, p string, data []byte) {
	e.mu.Lock()
	defer e.mu.Unlock()
	fs, err := e.filesOf(ref)
	if err != nil {
		panic(err)
	}
	if data == nil {
		delete(fs, path.Clean(p))
		return
	}
	fs[path.Clean(p)] = data
}

// Rename moves a file, or every file under a directory, in the container's
// filesystem (what a helper container's mv does); a missing source is no error.
func (e *Engine) Rename(ref, from, to string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	fs, err := e.filesOf(ref)
	if err != nil {
		panic(err)
	}
	from, to = path.Clean(from), path.Clean(to)
	for p, b := range fs {
		if p == from || strings.HasPrefix(p, from+"/") {
			delete(fs, p)
			fs[to+strings.TrimPrefix(p, from)] = b
		}
	}
}

// filesOf is the filesystem c sees: that of the first container it takes
// volumes from, else its own; e.mu is held.
func (e *Engine) filesOf(ref string) (map[string][]byte, error) {
	c, err := e.find(ref)
	if err != nil {
		return nil, err
	}
	if c.Host != nil && len(c.Host.VolumesFrom) > 0 {
		if src, err := e.find(c.Host.VolumesFrom[0]); err == nil {
			c = src
		}
	}
	if e.files == nil {
		e.files = map[string]map[string][]byte{}
	}
	fs := e.files[c.ID]
	if fs == nil {
		fs = map[string][]byte{}
		e.files[c.ID] = fs
	}
	return fs, nil
}

func (e *Engine) handlerExecCreate(ref string, o client.ExecCreateOptions) (client.ExecCreateResult, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.execFn == nil {
		return client.ExecCreateResult{}, errExec
	}
	c, err := e.find(ref)
	if err != nil {
		return client.ExecCreateResult{}, err
	}
	if c.Status != container.StateRunning {
		return client.ExecCreateResult{}, fmt.Errorf("container %s is not running", c.ID)
	}
	id := e.id("exec")
	if e.runs == nil {
		e.runs = map[string]*execRun{}
	}
	e.runs[id] = &execRun{container: c.ID, cmd: o.Cmd, env: o.Env}
	return client.ExecCreateResult{ID: id}, nil
}

func (e *Engine) handlerExecAttach(id string) (client.ExecAttachResult, error) {
	e.mu.Lock()
	x, ok := e.runs[id]
	if !ok {
		e.mu.Unlock()
		return client.ExecAttachResult{}, notFound("No such exec instance: " + id)
	}
	c, err := e.find(x.container)
	if err != nil {
		e.mu.Unlock()
		return client.ExecAttachResult{}, err
	}
	cp, fn := *c, e.execFn
	e.mu.Unlock()
	res := fn(&cp, x.cmd, x.env)
	e.mu.Lock()
	x.res = &res
	e.mu.Unlock()
	var buf bytes.Buffer
	frame(&buf, 1, res.Stdout)
	frame(&buf, 2, res.Stderr)
	conn, other := net.Pipe()
	other.Close()
	h := client.NewHijackedResponse(conn, "")
	h.Reader = bufio.NewReader(&buf)
	return client.ExecAttachResult{HijackedResponse: h}, nil
}

func (e *Engine) handlerExecInspect(id string) (client.ExecInspectResult, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	x, ok := e.runs[id]
	if !ok {
		return client.ExecInspectResult{}, notFound("No such exec instance: " + id)
	}
	if x.res == nil {
		return client.ExecInspectResult{ID: id, ContainerID: x.container, Running: true}, nil
	}
	return client.ExecInspectResult{ID: id, ContainerID: x.container, ExitCode: x.res.ExitCode}, nil
}

func (e *Engine) copyTo(ref string, o client.CopyToContainerOptions) error {
	if o.Content == nil {
		return fmt.Errorf("enginefake: CopyToContainer without content")
	}
	tr := tar.NewReader(o.Content)
	got := map[string][]byte{}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		if h.Typeflag == tar.TypeDir {
			continue
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			return err
		}
		got[path.Join(o.DestinationPath, h.Name)] = b
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	fs, err := e.filesOf(ref)
	if err != nil {
		return err
	}
	e.record("copy-to %s", ref)
	for p, b := range got {
		fs[p] = b
	}
	return nil
}

func (e *Engine) copyFrom(ref string, o client.CopyFromContainerOptions) (client.CopyFromContainerResult, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	fs, err := e.filesOf(ref)
	if err != nil {
		return client.CopyFromContainerResult{}, err
	}
	b, ok := fs[path.Clean(o.SourcePath)]
	if !ok {
		return client.CopyFromContainerResult{}, notFound("Could not find the file " + o.SourcePath + " in container " + ref)
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	_ = tw.WriteHeader(&tar.Header{Name: path.Base(o.SourcePath), Mode: 0o644, Size: int64(len(b)), Typeflag: tar.TypeReg, Uid: 999, Gid: 999})
	_, _ = tw.Write(b)
	_ = tw.Close()
	return client.CopyFromContainerResult{Content: io.NopCloser(&buf), Stat: container.PathStat{Name: path.Base(o.SourcePath), Size: int64(len(b)), Mode: 0o644}}, nil
}

// frame writes s as one frame of the engine's multiplexed stream (as
// stdcopy.StdCopy reads it): stream 1 stdout, 2 stderr.
func frame(w *bytes.Buffer, stream byte, s string) {
	if s == "" {
		return
	}
	hdr := [8]byte{stream}
	binary.BigEndian.PutUint32(hdr[4:], uint32(len(s)))
	w.Write(hdr[:])
	w.WriteString(s)
}
