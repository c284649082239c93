package envgen

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/compose-spec/compose-go/v2/dotenv"

	"github.com/difyctl/difyctl/internal/cmdutil/inputfile"
)

// Files docker compose reads, difyctl reads, and editing one value keeps
// every other byte: CRLF endings, a BOM, spacing, export, comments.
func TestEditKeepsEveryOtherByte(t *testing.T) {
	src := "\uFEFF# header\r\nexport A = 1\r\nkey-with-dash=x\r\nB='two' # note\r\nC=plain # inline\r\nMULTI=\"l1\r\nl2\"\r\n\r\nD: yaml-style\r\n"
	d, err := Parse([]byte(src))
	if err != nil {
		t.Fatal(err)
	}
	if string(d.Bytes()) != src {
		t.Fatalf("round trip changed the file:\n%q\n%q", src, d.Bytes())
	}
	want, err := dotenv.ParseWithLookup(strings.NewReader(src), nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := d.Map(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("values differ from compose-go's:\n%v\n%v", got, want)
	}
	d.Set("A", "2")
	d.Set("C", "changed")
	d.Set("NEW", "v")
	wantOut := "\uFEFF# header\r\nexport A = 2\r\nkey-with-dash=x\r\nB='two' # note\r\nC=changed # inline\r\nMULTI=\"l1\r\nl2\"\r\n\r\nD: yaml-style\r\nNEW=v\r\n"
	if got := string(d.Bytes()); got != wantOut {
		t.Fatalf("edit touched other bytes:\n got %q\nwant %q", got, wantOut)
	}
	if d.Line("NEW") != 10 || d.Line("D") != 9 || d.Line("MULTI") != 6 {
		t.Fatalf("lines after edit: NEW=%d D=%d MULTI=%d", d.Line("NEW"), d.Line("D"), d.Line("MULTI"))
	}
}

func TestNoTrailingNewlineAppend(t *testing.T) {
	d, _ := Parse([]byte("A=1"))
	d.Set("B", "2")
	if got := string(d.Bytes()); got != "A=1\nB=2\n" {
		t.Fatalf("%q", got)
	}
}

// Errors name the line and the variable, never the text of the line.
func TestErrorsNeverHoldValues(t *testing.T) {
	const secret = "s3cr3t-VALUE-xyz"
	for _, c := range []struct {
		src  string
		line int
		key  string
	}{
		{"A=1\nSECRET_KEY=\"" + secret + "\n", 2, "SECRET_KEY"},
		{"A=1\n\n" + secret + " junk=1\n", 3, ""},
		{"A=1\nbad!" + secret + "=x\n", 2, ""},
		{"REDIS_PASSWORD=" + secret + "\x00tail\n", 1, "REDIS_PASSWORD"},
		{"A=1\nSECRET_KEY='" + secret + "\xff\xfe'\n", 2, "SECRET_KEY"},
		{"A=1\nB=${" + secret + "\n", 2, "B"},
	} {
		_, err := Parse([]byte(c.src))
		pe, ok := err.(*ParseError)
		if !ok {
			t.Errorf("%q: want a ParseError, got %v", c.src, err)
			continue
		}
		if pe.Line != c.line || pe.Key != c.key {
			t.Errorf("%q: line %d key %q, want %d %q", c.src, pe.Line, pe.Key, c.line, c.key)
		}
		if strings.Contains(err.Error(), secret) || strings.Contains(err.Error(), "s3cr3t") {
			t.Errorf("error holds the value: %v", err)
		}
	}
}

func TestReadFileErrorsAreInputErrors(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.env")
	os.WriteFile(bad, []byte("A=\"x\n"), 0o600)
	for _, p := range []string{filepath.Join(dir, "missing"), dir, bad} {
		_, err := ReadFile(p)
		if !inputfile.Is(err) || !strings.Contains(err.Error(), p) {
			t.Errorf("%s: %v is not an input-file error naming the file", p, err)
		}
	}
}

func TestCheckName(t *testing.T) {
	for k, ok := range map[string]bool{"A": true, "_X1": true, "SECRET_KEY": true, "1A": false, "A-B": false, "A B": false, "": false, "A=B": false} {
		if (CheckName(k) == nil) != ok {
			t.Errorf("CheckName(%q) ok=%v", k, !ok)
		}
	}
}

func TestFindingsCappedAndExcerpts(t *testing.T) {
	var b strings.Builder
	b.WriteString("EXPOSE_NGINX_PORT=" + strings.Repeat("9", 200) + "\n")
	for i := 0; i < 500; i++ {
		fmt.Fprintf(&b, "CUSTOM_%d=x\n", i)
	}
	d, err := Parse([]byte(b.String()))
	if err != nil {
		t.Fatal(err)
	}
	rep := ValidateReport(d, DefaultSchema(), MaxFindings)
	if len(rep.Findings) != MaxFindings || rep.Omitted != rep.Errors+rep.Warnings-MaxFindings || rep.Warnings < 500 {
		t.Fatalf("findings %d omitted %d errors %d warnings %d", len(rep.Findings), rep.Omitted, rep.Errors, rep.Warnings)
	}
	for _, f := range rep.Findings {
		if strings.Contains(f.Message, strings.Repeat("9", ExcerptLen+1)) {
			t.Fatalf("excerpt not cut: %s", f.Message)
		}
	}
}

// FuzzReaderMatchesCompose: on any input compose-go's parser reads, the
// reader gives the same variables, renders the same bytes, and an edit
// reads back as set while every other variable keeps its value.
func FuzzReaderMatchesCompose(f *testing.F) {
	for _, s := range []string{
		"A=1\n", "export A=1\r\nB='x' # c\r\n", "A=\"x\ny\"\nB=$A\n", "\uFEFFK: v\n", "A=\"x\" B=2\n",
		"A=1 #c\n#x\n\nB\n", "A=\r\nB= \r\n", "A=\r", "A= #c\r\n", "A-B.C[0]=v\n", "A='a\\'\nB=1\n", "A=\"\\$x\\n\"\n", "A=${B:-d}\n",
		// The nasty cases: BOM + CRLF, '-' in keys, a trailing backslash, '$', quotes.
		"\uFEFFA=1\r\nmy-key=2\r\n", "A=ends\\\nB=2\n", "A=\"q\\\\\"\nB='x'\n", "A='$B'\nB=\"$A\"\n", "A=\"it's\" # c\n",
	} {
		for _, v := range []string{"new\\value$x", `ends-with\`, `"quoted"`, "it's $HOME ${X}", "#not-a-comment", " spaced "} {
			f.Add(s, v)
		}
	}
	f.Fuzz(func(t *testing.T, src, v string) {
		done := make(chan struct{})
		defer close(done)
		go func() {
			select {
			case <-done:
			case <-time.After(3 * time.Second):
				panic(fmt.Sprintf("HANG on %q %q", src, v))
			}
		}()
		want, cerr := dotenv.ParseWithLookup(strings.NewReader(src), nil)
		d, err := Parse([]byte(src))
		if cerr != nil {
			return // compose refuses it: difyctl may too
		}
		if _, empty := want[""]; empty {
			return // compose reads a nameless assignment; difyctl refuses it
		}
		if err != nil {
			if pe, ok := err.(*ParseError); ok && (strings.Contains(pe.Msg, "NUL") || strings.Contains(pe.Msg, "UTF-8") || strings.Contains(pe.Msg, "no '='")) {
				return // refused on purpose
			}
			t.Fatalf("compose reads %q, difyctl does not: %v", src, err)
		}
		if fmt.Sprint(d.Map()) != fmt.Sprint(want) {
			t.Fatalf("%q:\ndifyctl %v\ncompose %v", src, d.Map(), want)
		}
		if string(d.Bytes()) != src {
			t.Fatalf("render changed %q to %q", src, d.Bytes())
		}
		if CheckValue(v) != nil {
			return
		}
		keys := d.Keys()
		key := "FUZZ_KEY"
		if len(keys) > 0 {
			key = keys[0]
		}
		d.Set(key, v)
		out := d.Bytes()
		got, err := dotenv.ParseWithLookup(strings.NewReader(string(out)), nil)
		if err != nil {
			t.Fatalf("after setting %s=%q compose cannot read %q: %v", key, v, out, err)
		}
		want[key] = v
		// Later values interpolating the edited one may change: compare only
		// values that do not reference others.
		for k, w := range want {
			if k != key && strings.Contains(src, "$") {
				continue
			}
			if got[k] != w {
				t.Fatalf("after setting %s=%q in %q: %s reads %q, want %q (file %q)", key, v, src, k, got[k], w, out)
			}
		}
		d2, err := Parse(out)
		if err != nil {
			t.Fatalf("difyctl cannot read its own edit %q: %v", out, err)
		}
		if g, _ := d2.Get(key); g != v {
			t.Fatalf("set %q read back as %q", v, g)
		}
	})
}

// ReadFile resolves ${VAR} and bare KEY lines against the process
// environment first, as docker compose does (env get and config agree).
func TestReadFileUsesProcessEnvironment(t *testing.T) {
	t.Setenv("I24_FROM_ENV", "from-env")
	p := filepath.Join(t.TempDir(), ".env")
	os.WriteFile(p, []byte("A=${I24_FROM_ENV}-y\nI24_FROM_ENV\n"), 0o600)
	d, err := ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := dotenv.GetEnvFromFile(map[string]string{"I24_FROM_ENV": "from-env"}, []string{p})
	for _, k := range []string{"A", "I24_FROM_ENV"} {
		if got, _ := d.Get(k); got != want[k] || got == "" {
			t.Errorf("%s = %q, compose reads %q", k, got, want[k])
		}
	}
}
