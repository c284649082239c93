package root

import (
	"context"
	"strings"
	"testing"

	"github.com/difyctl/difyctl/internal/cmdutil"
	"github.com/difyctl/difyctl/internal/iostreams"
)

func execute(args ...string) (string, error) {
	io, _, out, _ := iostreams.Test()
	f := &cmdutil.Factory{IOStreams: io, Getenv: func(string) string { return "" }}
	cmd := New(f)
	cmd.SetArgs(args)
	err := cmd.ExecuteContext(context.Background())
	return out.String(), err
}

func TestCompletionScripts(t *testing.T) {
	for shell, marker := range map[string]string{"bash": "__difyctl_", "zsh": "#compdef difyctl", "fish": "complete -c difyctl"} {
		out, err := execute("completion", shell)
		if err != nil || !strings.Contains(out, marker) {
			t.Errorf("%s: err=%v, no %q in output", shell, err, marker)
		}
	}
	if _, err := execute("completion", "tcsh"); cmdutil.ExitCode(err) != cmdutil.ExitUsage {
		t.Errorf("unknown shell: want exit 2, got %v", err)
	}
}

func TestUsageErrorsExit2(t *testing.T) {
	for _, args := range [][]string{
		{"--output", "yaml", "version"},
		{"version", "--no-such-flag"},
		{"version", "extra"},
	} {
		if _, err := execute(args...); cmdutil.ExitCode(err) != cmdutil.ExitUsage {
			t.Errorf("%v: want exit 2, got %v", args, err)
		}
	}
}
