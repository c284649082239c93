// Package prompt is difyctl's one y/N question: asked on stderr, answered on
// stdin, only on a terminal.
package prompt

import (
	"bufio"
	"fmt"
	"strings"

	"github.com/difyctl/difyctl/internal/cmdutil"
	"github.com/difyctl/difyctl/internal/iostreams"
)

// Confirm asks question (a "[y/N] " is appended) and reports whether the
// answer was y or yes (any case); anything else, or no answer, is no.
// Without a terminal on stdin it does not ask: it returns a usage error
// (exit 2) built from unattended, which says which flag confirms instead.
func Confirm(ios *iostreams.IOStreams, question, unattended string) (bool, error) {
	if !ios.IsStdinTTY() {
		return false, cmdutil.UsageError("%s", unattended)
	}
	fmt.Fprintf(ios.ErrOut, "%s [y/N] ", question)
	line, _ := bufio.NewReader(ios.In).ReadString('\n')
	a := strings.ToLower(strings.TrimSpace(line))
	return a == "y" || a == "yes", nil
}

// Declined is the error of a command the operator did not confirm (exit 1):
// what says what was left, e.g. "nothing removed".
func Declined(what string) error {
	return cmdutil.WithExitCode(cmdutil.ExitFailure, fmt.Errorf("not confirmed; %s", what))
}
