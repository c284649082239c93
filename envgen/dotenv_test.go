package envgen

import (
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/dotenv"
)

func TestParseKeepsEverything(t *testing.T) {
	src := "# header\n\nexport A=1\nB='single $A'\nC=\"double\\nline\"\nD=bare # inline comment\nE=${A}-x\nF=\"multi\nline\"\nA=2\n"
	d, err := Parse([]byte(src))
	if err != nil {
		t.Fatal(err)
	}
	if got := string(d.Bytes()); got != src {
		t.Fatalf("round trip changed the file:\n%q\n%q", src, got)
	}
	want := map[string]string{"A": "2", "B": "single $A", "C": "double\nline", "D": "bare", "E": "1-x", "F": "multi\nline"}
	for k, v := range want {
		if got, _ := d.Get(k); got != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
	if d.Line("A") != 10 || d.Line("F") != 8 || d.Line("B") != 4 {
		t.Errorf("line numbers: A=%d F=%d B=%d", d.Line("A"), d.Line("F"), d.Line("B"))
	}
	if strings.Join(d.Keys(), ",") != "A,B,C,D,E,F" {
		t.Errorf("keys: %v", d.Keys())
	}
}

func TestSetInPlaceAndAppend(t *testing.T) {
	d, _ := Parse([]byte("# c\nexport A=1\nB=2\n"))
	d.Set("A", "it's $x")
	d.Set("Z", "new")
	want := "# c\nexport A=\"it's \\$x\"\nB=2\nZ=new\n"
	if got := string(d.Bytes()); got != want {
		t.Fatalf("got %q want %q", got, want)
	}
	d2, err := Parse(d.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := d2.Get("A"); v != "it's $x" {
		t.Fatalf("A read back as %q", v)
	}
}

func TestParseErrors(t *testing.T) {
	for _, src := range []string{"A=1\njunk line\n", "A=\"unterminated\n"} {
		_, err := Parse([]byte(src))
		pe, ok := err.(*ParseError)
		if !ok || pe.Line == 0 {
			t.Errorf("%q: want a ParseError with a line, got %v", src, err)
		}
	}
}

func TestQuoteRoundTrip(t *testing.T) {
	for _, v := range []string{"", "plain", "with space", "a'b", "a\"b", "$HOME", "line\nbreak", `back\slash`, "#hash", "tab\tx", "x=y", " lead", "trail "} {
		d, err := Parse([]byte("K=" + Quote(v) + "\n"))
		if err != nil {
			t.Errorf("%q: %v", v, err)
			continue
		}
		if got, _ := d.Get("K"); got != v {
			t.Errorf("Quote(%q) = %s read back as %q", v, Quote(v), got)
		}
	}
}

// FuzzRoundTrip: whatever value Set writes, Parse reads back unchanged, and a
// parsed file renders to the same bytes.
func FuzzRoundTrip(f *testing.F) {
	for _, s := range []string{"plain", "a'b\"c", "$X ${Y}", "line\nbreak", `\n`, "#", " x ", `trailing\`, `\`, `a\'b`, "\uFEFFbom", "x\ty", "${A:-d}"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		if CheckValue(v) != nil { // env set refuses what CheckValue refuses
			t.Skip()
		}
		d, _ := Parse([]byte("# c\nA=1\n"))
		d.Set("K", v)
		out := d.Bytes()
		d2, err := Parse(out)
		if err != nil {
			t.Fatalf("value %q written as %q does not parse: %v", v, out, err)
		}
		if got, _ := d2.Get("K"); got != v {
			t.Fatalf("value %q written as %q read back as %q", v, out, got)
		}
		// docker compose reads what difyctl writes identically.
		m, err := dotenv.ParseWithLookup(strings.NewReader(string(out)), nil)
		if err != nil || m["K"] != v || m["A"] != "1" {
			t.Fatalf("value %q written as %q: compose reads %q (%v)", v, out, m["K"], err)
		}
		if string(d2.Bytes()) != string(out) {
			t.Fatalf("render not stable")
		}
	})
}
