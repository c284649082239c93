package termsafe

import (
	"testing"
)

func TestString(t *testing.T) {
	for in, want := range map[string]string{
		"plain name":                "plain name",
		"dify-api-1":                "dify-api-1",
		"\x1b]0;pwned\x07\x1b[1Aok": `\x1b]0;pwned\x07\x1b[1Aok`,
		"a\nb\tc\rd":                `a\nb\tc\rd`,
		"del\x7f":                   `del\x7f`,
		"c1\u009b31m":               `c1\u009b31m`,
		"bidi\u202eevil":            `bidi\u202eevil`,
		"bad\xffutf8":               `bad\xffutf8`,
		"héllo wörld ✓":             "héllo wörld ✓",
		"é\x1b":                     `é\x1b`,
		"é\t":                       `é\t`,
	} {
		if got := String(in); got != want {
			t.Errorf("String(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestLineKeepsTabs(t *testing.T) {
	if got := Line("a\tb\x1b[2Jé\t"); got != "a\tb\\x1b[2Jé\t" {
		t.Fatalf("%q", got)
	}
}

func TestText(t *testing.T) {
	if got := Text("a\x1b[2J\n\tb\rc\n"); got != "a\\x1b[2J\n\tb\\rc\n" {
		t.Fatalf("%q", got)
	}
}
