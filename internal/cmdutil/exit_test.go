package cmdutil

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/difyctl/difyctl/internal/cmdutil/inputfile"
	"github.com/difyctl/difyctl/internal/dockerclient"
	"github.com/difyctl/difyctl/internal/lockfile"
)

// TestREADMEExitCodes: the README's table is the one the code uses.
func TestREADMEExitCodes(t *testing.T) {
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, sec, ok := strings.Cut(string(b), "\n## Exit codes\n")
	if !ok {
		t.Fatal("README.md has no \"## Exit codes\" section")
	}
	if i := strings.Index(sec, "\n## "); i >= 0 {
		sec = sec[:i]
	}
	var table []string
	for _, l := range strings.Split(sec, "\n") {
		if strings.HasPrefix(l, "|") {
			table = append(table, l)
		}
	}
	got := strings.Join(table, "\n") + "\n"
	if want := ExitCodesMarkdown(); got != want {
		t.Fatalf("README.md's exit code table differs from cmdutil.ExitCodes; replace it with:\n%s\nREADME has:\n%s", want, got)
	}
}

func TestExitCodesDistinct(t *testing.T) {
	seen := map[int]bool{}
	for _, c := range ExitCodes {
		if seen[c.Code] {
			t.Fatalf("code %d twice", c.Code)
		}
		seen[c.Code] = true
	}
	for _, c := range []int{ExitOK, ExitFailure, ExitUsage, ExitEngine, ExitLocked, ExitInterrupted, ExitTerminated} {
		if !seen[c] {
			t.Fatalf("code %d is not documented in ExitCodes", c)
		}
	}
}

func TestExitCodeMapping(t *testing.T) {
	in := inputfile.Wrap("/x/.env", os.ErrNotExist)
	for _, c := range []struct {
		err  error
		want int
	}{
		{nil, ExitOK},
		{errors.New("x"), ExitFailure},
		{in, ExitUsage},
		{fmt.Errorf("loading: %w", in), ExitUsage},
		{WithExitCode(ExitFailure, in), ExitUsage},
		{WithExitCode(ExitEngine, in), ExitEngine},
		{&lockfile.HeldError{}, ExitLocked},
		{fmt.Errorf("backup: %w", &lockfile.HeldError{}), ExitLocked},
		{WithExitCode(ExitFailure, &lockfile.HeldError{}), ExitLocked},
		{fmt.Errorf("finding redis: %w", dockerclient.ErrUnreachable), ExitEngine},
		{WithExitCode(ExitFailure, dockerclient.ErrUnreachable), ExitEngine},
		{WithExitCode(ExitUsage, dockerclient.ErrUnreachable), ExitUsage},
		{SilentError(ExitInterrupted), ExitInterrupted},
	} {
		if got := ExitCode(c.err); got != c.want {
			t.Errorf("%v: exit %d, want %d", c.err, got, c.want)
		}
	}
}
