package prompt

import (
	"strings"
	"testing"

	"github.com/difyctl/difyctl/internal/cmdutil"
	"github.com/difyctl/difyctl/internal/iostreams"
)

func TestConfirm(t *testing.T) {
	for _, c := range []struct {
		answer string
		want   bool
	}{{"y\n", true}, {"YES\n", true}, {" yes \n", true}, {"n\n", false}, {"\n", false}, {"", false}, {"yep\n", false}} {
		ios, in, _, errOut := iostreams.Test()
		ios.SetTTY(true, false, false)
		in.WriteString(c.answer)
		got, err := Confirm(ios, "Remove it?", "pass --yes")
		if err != nil || got != c.want {
			t.Errorf("%q: %v %v", c.answer, got, err)
		}
		if errOut.String() != "Remove it? [y/N] " {
			t.Errorf("asked %q", errOut.String())
		}
	}
}

func TestConfirmWithoutTerminalDoesNotAsk(t *testing.T) {
	ios, in, _, errOut := iostreams.Test()
	in.WriteString("y\n")
	ok, err := Confirm(ios, "Remove it?", "--volumes deletes data; pass --yes")
	if ok || cmdutil.ExitCode(err) != cmdutil.ExitUsage || !strings.Contains(err.Error(), "pass --yes") || errOut.Len() != 0 {
		t.Fatalf("%v %v %q", ok, err, errOut.String())
	}
	if err := Declined("nothing removed"); cmdutil.ExitCode(err) != cmdutil.ExitFailure || err.Error() != "not confirmed; nothing removed" {
		t.Fatal(err)
	}
}
