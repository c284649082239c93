package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"

	"github.com/moby/moby/client"
)

// Bench is what the programs under bench/ share: an engine connection, a
// work directory, a difyctl binary, and the projects to remove at the end.
type Bench struct {
	Cli      *client.Client
	Dir      string
	Bin      string
	projects []string
}

// NewBench connects to the engine, makes a work directory and builds difyctl
// into it unless bin names one. Close undoes it all.
func NewBench(ctx context.Context, bin string) (*Bench, error) {
	cli, err := Connect(ctx)
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "difyctl-bench-")
	if err != nil {
		cli.Close()
		return nil, err
	}
	if bin == "" {
		if bin, err = BuildDifyctl(dir); err != nil {
			os.RemoveAll(dir)
			cli.Close()
			return nil, err
		}
	}
	return &Bench{Cli: cli, Dir: dir, Bin: bin}, nil
}

// Project returns a fresh project name, removed by Close.
func (b *Bench) Project() string {
	r := make([]byte, 4)
	rand.Read(r)
	p := "difyctl-bench-" + hex.EncodeToString(r)
	b.projects = append(b.projects, p)
	return p
}

// Close removes the projects and the work directory.
func (b *Bench) Close() {
	for _, p := range b.projects {
		RemoveProject(context.Background(), b.Cli, p)
	}
	os.RemoveAll(b.Dir)
	b.Cli.Close()
}
