// Command difyctl installs and operates a self-hosted Dify on Docker.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/difyctl/difyctl/cmd/root"
	"github.com/difyctl/difyctl/internal/cmdutil"
	"github.com/difyctl/difyctl/internal/termsafe"
)

func main() {
	os.Exit(run(os.Args[1:]))
}

// signalError is the cause of the context's cancellation on a signal.
type signalError struct{ sig os.Signal }

func (e signalError) Error() string { return e.sig.String() + " received" }

// exitCode is the code for a run ended by the signal: 128 + its number.
func (e signalError) exitCode() int {
	if e.sig == syscall.SIGTERM {
		return cmdutil.ExitTerminated
	}
	return cmdutil.ExitInterrupted
}

func run(args []string) int {
	ctx, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go func() {
		s := <-sigs
		cancel(signalError{s})
		// A second signal ends the process at once: the command did not
		// stop on the first.
		s = <-sigs
		fmt.Fprintln(os.Stderr, "difyctl: second signal; stopping now")
		os.Exit(signalError{s}.exitCode())
	}()

	f := cmdutil.NewFactory()
	cmd := root.New(f)
	cmd.SetArgs(args)
	err := cmd.ExecuteContext(ctx)
	var se signalError
	if errors.As(context.Cause(ctx), &se) && err == nil {
		// A run a signal ended (a daemon's, a follow) exits 128+n all the
		// same, as a shell reports it.
		err = cmdutil.SilentError(se.exitCode())
	}
	if err == nil {
		return cmdutil.ExitOK
	}
	jsonOut := f.JSON() || wantsJSON(args)
	code := cmdutil.ExitCode(err)
	msg := err.Error()
	if errors.As(context.Cause(ctx), &se) {
		code = se.exitCode()
		if cmdutil.IsSilent(err) {
			msg = "interrupted"
		} else {
			msg = "interrupted: " + msg
		}
	} else if strings.HasPrefix(msg, "unknown command ") {
		code = cmdutil.ExitUsage // cobra's own usage error
	}
	report(f.IOStreams.ErrOut, jsonOut, msg, code, cmdutil.IsSilent(err) && (se.sig == nil || cmdutil.IsReported(err)))
	return code
}

// report prints the final error: one line, or with --output json one JSON
// object {"error": ..., "exitCode": ...}. A silent error (the command already
// said what went wrong) prints nothing in text mode.
func report(w io.Writer, jsonOut bool, msg string, code int, silent bool) {
	if jsonOut {
		b, _ := json.Marshal(struct {
			Error    string `json:"error"`
			ExitCode int    `json:"exitCode"`
		}{msg, code})
		fmt.Fprintf(w, "%s\n", b)
		return
	}
	if !silent && msg != "" {
		fmt.Fprintf(w, "difyctl: %s\n", termsafe.Text(msg)) // errors quote the engine, containers, Redis
	}
}

// wantsJSON finds --output json among args when flag parsing failed before
// the factory was filled.
func wantsJSON(args []string) bool {
	for i, a := range args {
		switch {
		case a == "--":
			return false
		case a == "-o" || a == "--output":
			if i+1 < len(args) && args[i+1] == cmdutil.OutputJSON {
				return true
			}
		case a == "-ojson" || a == "-o=json" || a == "--output=json":
			return true
		}
	}
	return false
}
