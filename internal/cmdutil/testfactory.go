package cmdutil

import (
	"bytes"

	"github.com/difyctl/difyctl/internal/iostreams"
)

// NewTestFactory returns a factory for tests of the flag mapping: buffers
// for streams (returned: stdout, stderr), the environment env (nil: empty)
// and the project directory dir.
func NewTestFactory(dir string, env map[string]string) (*Factory, *bytes.Buffer, *bytes.Buffer) {
	io, _, out, errOut := iostreams.Test()
	var environ []string
	for k, v := range env {
		environ = append(environ, k+"="+v)
	}
	f := &Factory{IOStreams: io, Output: OutputText, ProjectDir: dir,
		Getenv:  func(k string) string { return env[k] },
		Environ: func() []string { return environ }}
	return f, out, errOut
}
