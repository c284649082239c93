// Package cmdutil holds what every command shares: exit codes, the global
// options, output-format handling.
package cmdutil

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/difyctl/difyctl/internal/cmdutil/inputfile"
	"github.com/difyctl/difyctl/internal/dockerclient"
	"github.com/difyctl/difyctl/internal/lockfile"
)

// Exit codes. They are part of difyctl's interface: ExitCodes below is the
// one table of them, and README.md's "Exit codes" table is checked against it
// by a test.
const (
	ExitOK          = 0
	ExitFailure     = 1
	ExitUsage       = 2
	ExitEngine      = 3
	ExitLocked      = 4
	ExitInterrupted = 128 + 2  // SIGINT
	ExitTerminated  = 128 + 15 // SIGTERM
)

// ExitCodeInfo documents one exit code.
type ExitCodeInfo struct {
	Code    int
	Meaning string
}

// ExitCodes is the single source of truth for what each exit code means.
var ExitCodes = []ExitCodeInfo{
	{ExitOK, "success"},
	{ExitFailure, "the command ran and failed: a check failed, validation findings, a service failed"},
	{ExitUsage, "usage: bad flags or arguments; an input file that is missing, unreadable, a directory or cannot be parsed (`.env`, `-f` files, a backup to restore or verify); no terminal for an interactive command"},
	{ExitEngine, "the Docker engine is unreachable or the client cannot be configured (every command that needs the engine; `version` still prints the client's version)"},
	{ExitLocked, "another difyctl holds the lock: a backup or restore, or a command changing the same project"},
	{ExitInterrupted, "interrupted by SIGINT (Ctrl-C)"},
	{ExitTerminated, "terminated by SIGTERM"},
}

// ExitError carries an exit code with the error that caused it.
type ExitError struct {
	Code int
	Err  error
	// Reported: the failure was already reported in machine-readable form
	// (the last event of --progress json); nothing more is printed, not even
	// "interrupted".
	Reported bool
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

// IsSilent reports whether err only carries an exit code.
// ReportedError makes the process exit with code after the failure was
// reported as the last event of a JSON progress stream.
func ReportedError(code int) error { return &ExitError{Code: code, Reported: true} }

// IsReported reports whether err is a ReportedError.
func IsReported(err error) bool {
	var ee *ExitError
	return errors.As(err, &ee) && ee.Err == nil && ee.Reported
}

func IsSilent(err error) bool {
	var ee *ExitError
	return errors.As(err, &ee) && ee.Err == nil
}

// ExitCode maps an error to the process exit code: an explicit code first,
// then the kind of error (lock held, engine unreachable, unusable input
// file), else 1. It is the one mapping: commands return the error as it came.
func ExitCode(err error) int {
	if err == nil {
		return ExitOK
	}
	var ee *ExitError
	if errors.As(err, &ee) {
		// A kind of error inside a generic failure still maps by its kind.
		if ee.Code == ExitFailure && ee.Err != nil {
			if k := kind(ee.Err); k != ExitFailure {
				return k
			}
		}
		return ee.Code
	}
	return kind(err)
}

// kind maps an error by what it is: lock held (4), engine unreachable (3),
// unusable input file (2), else 1.
func kind(err error) int {
	var he *lockfile.HeldError
	switch {
	case errors.As(err, &he):
		return ExitLocked
	case errors.Is(err, dockerclient.ErrUnreachable):
		return ExitEngine
	case inputfile.Is(err):
		return ExitUsage
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

// ExitCodesMarkdown renders ExitCodes as the README's table.
func ExitCodesMarkdown() string {
	s := "| code | meaning |\n| --- | --- |\n"
	for _, c := range ExitCodes {
		s += fmt.Sprintf("| %d | %s |\n", c.Code, c.Meaning)
	}
	return s
}
