package envgen

import (
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// One .env reader: outside envgen no code of the module parses a .env
// itself (compose-go's dotenv, joho/godotenv). Two parsers read one fact
// two ways: a line one accepts and the other refuses made every command
// exit and print the file.
func TestOneEnvReader(t *testing.T) {
	banned := []string{"github.com/compose-spec/compose-go/v2/dotenv", "github.com/joho/godotenv"}
	root := ".."
	checked := 0
	err := filepath.WalkDir(root, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if e.IsDir() {
			switch e.Name() {
			case "envgen", "third_party", "testdata", ".git":
				if p != root {
					return filepath.SkipDir
				}
			}
			return nil
		}
		if !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(token.NewFileSet(), p, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		checked++
		for _, imp := range f.Imports {
			path, _ := strconv.Unquote(imp.Path.Value)
			for _, b := range banned {
				if path == b {
					t.Errorf("%s imports %s: read .env through envgen (ReadFile, ReadFileWithLookup, Parse)", p, b)
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if checked < 50 {
		t.Fatalf("only %d files checked", checked)
	}
}
