// Command difyctl installs and operates a self-hosted Dify on Docker.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/difyctl/difyctl/cmd/root"
	"github.com/difyctl/difyctl/internal/cmdutil"
	"github.com/difyctl/difyctl/internal/termsafe"
)

func main() {
	os.Exit(run())
}

func run() int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	f := cmdutil.NewFactory()
	cmd := root.New(f)
	err := cmd.ExecuteContext(ctx)
	if err == nil {
		return cmdutil.ExitOK
	}
	if ctx.Err() != nil {
		if !isSilent(err) {
			fmt.Fprintln(f.IOStreams.ErrOut, "interrupted")
		}
		return cmdutil.ExitInterrupted
	}
	if msg := err.Error(); msg != "" && !isSilent(err) {
		fmt.Fprintf(f.IOStreams.ErrOut, "difyctl: %s\n", termsafe.Text(msg)) // errors quote the engine, containers, Redis
	}
	if strings.HasPrefix(err.Error(), "unknown command ") {
		return cmdutil.ExitUsage // cobra's own usage error
	}
	return cmdutil.ExitCode(err)
}

func isSilent(err error) bool {
	ee, ok := err.(*cmdutil.ExitError)
	return ok && ee.Err == nil
}
