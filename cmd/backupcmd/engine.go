package backupcmd

import (
	"context"
	"time"

	"github.com/moby/moby/client"

	"github.com/difyctl/difyctl/internal/cmdutil"
	"github.com/difyctl/difyctl/internal/dockerclient"
)

// Engine is a connected engine client.
type Engine struct{ *client.Client }

// NewEngine connects to the engine and checks it answers.
func NewEngine(f *cmdutil.Factory) (*Engine, error) {
	cli, ep, err := f.Docker()
	if err != nil {
		return nil, err
	}
	if _, err := dockerclient.Probe(context.Background(), cli, ep, 10*time.Second); err != nil {
		cli.Close()
		return nil, cmdutil.WithExitCode(cmdutil.ExitEngine, err)
	}
	return &Engine{cli}, nil
}
