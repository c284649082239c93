package backupcmd

import (
	"context"

	"github.com/moby/moby/client"

	"github.com/difyctl/difyctl/internal/cmdutil"
)

// Engine is a connected engine client.
type Engine struct{ *client.Client }

// NewEngine connects to the engine and checks it answers.
func NewEngine(f *cmdutil.Factory) (*Engine, error) {
	cli, err := f.Engine(context.Background())
	if err != nil {
		return nil, err
	}
	return &Engine{cli}, nil
}
