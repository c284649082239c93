package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
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
	trackers []*VolumeTracker
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

// Project returns a fresh project name, removed by Close with the
// anonymous volumes its containers had (a down without -v keeps them).
func (b *Bench) Project() string {
	r := make([]byte, 4)
	rand.Read(r)
	p := "difyctl-bench-" + hex.EncodeToString(r)
	b.projects = append(b.projects, p)
	b.trackers = append(b.trackers, TrackVolumes(b.Cli, p))
	return p
}

// Close removes the projects and the work directory.
func (b *Bench) Close() {
	for i, p := range b.projects {
		if err := RemoveProject(context.Background(), b.Cli, p); err != nil {
			fmt.Fprintf(os.Stderr, "bench: removing project %s: %v\n", p, err)
		}
		if err := b.trackers[i].Remove(context.Background()); err != nil {
			fmt.Fprintf(os.Stderr, "bench: removing project %s: %v\n", p, err)
		}
	}
	os.RemoveAll(b.Dir)
	b.Cli.Close()
}
