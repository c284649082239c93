// Package cmdutil holds what every command shares: exit codes, the global
// options, output-format handling.
package cmdutil

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/difyctl/difyctl/internal/lockfile"
)

// Exit codes. They are part of difyctl's interface and documented in README.md.
const (
	ExitOK          = 0   // success
	ExitFailure     = 1   // the command ran and failed (a check failed, findings, a service failed)
	ExitUsage       = 2   // bad flags or arguments, unreadable input file, no terminal for an interactive command
	ExitEngine      = 3   // the Docker engine is unreachable
	ExitLocked      = 4   // another difyctl holds the lock: a backup or restore, or a command changing the same project
	ExitInterrupted = 130 // interrupted (Ctrl-C)
)

// ExitError carries an exit code with the error that caused it.
type ExitError struct {
	Code int
	Err  error
}

func (e *ExitError) Error() string {
	if e.Err == nil {
		return fmt.Sprintf("exit status %d", e.Code)
	}
	return e.Err.Error()
}

func (e *ExitError) Unwrap() error { return e.Err }

// WithExitCode wraps err so that the process exits with code.
func WithExitCode(code int, err error) error {
	if err == nil {
		return nil
	}
	return &ExitError{Code: code, Err: err}
}

// SilentError makes the process exit with code without printing anything more:
// the command already reported what went wrong.
func SilentError(code int) error { return &ExitError{Code: code} }

// ExitCode maps an error to the process exit code.
func ExitCode(err error) int {
	if err == nil {
		return ExitOK
	}
	var ee *ExitError
	if errors.As(err, &ee) {
		return ee.Code
	}
	var he *lockfile.HeldError
	if errors.As(err, &he) {
		return ExitLocked
	}
	return ExitFailure
}

// UsageError marks err as a usage error (exit 2).
func UsageError(format string, a ...any) error {
	return WithExitCode(ExitUsage, fmt.Errorf(format, a...))
}

// Args wraps a cobra argument validator so that its failures exit with
// ExitUsage.
func Args(v func(cmd *cobra.Command, args []string) error) func(cmd *cobra.Command, args []string) error {
	return func(cmd *cobra.Command, args []string) error {
		if err := v(cmd, args); err != nil {
			return WithExitCode(ExitUsage, fmt.Errorf("%w; see \"%s --help\"", err, cmd.CommandPath()))
		}
		return nil
	}
}
