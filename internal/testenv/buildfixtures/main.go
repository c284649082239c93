// Command buildfixtures builds the fixture images the end-to-end tests run
// (difyctl-test/*), locally and without a registry; `make test` runs it. An
// image whose inputs did not change is left alone.
package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/difyctl/difyctl/internal/dockerclient"
	"github.com/difyctl/difyctl/internal/testenv"
)

func main() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cli, ep, err := dockerclient.New(os.Getenv)
	if err == nil {
		_, err = dockerclient.Probe(ctx, cli, ep, 10*time.Second)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "buildfixtures: %v; %s\n", err, dockerclient.UnreachableHint)
		os.Exit(1)
	}
	start := time.Now()
	err = testenv.EnsureFixtures(ctx, cli, os.Stderr)
	if err == nil {
		err = testenv.EnsureStandins(ctx, cli, os.Stderr)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "buildfixtures: %v\n", err)
		os.Exit(1)
	}
	fmt.Fprintf(os.Stderr, "buildfixtures: done in %s\n", time.Since(start).Round(time.Millisecond))
}
