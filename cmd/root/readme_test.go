package root

import (
	"os"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/difyctl/difyctl/internal/cmdutil"
	"github.com/difyctl/difyctl/internal/iostreams"
)

// The README's command tables are the operator's reference: every row that
// documents a command must name only flags that command has, and every flag
// a command has must be named in a row documenting it.

var (
	codeSpan = regexp.MustCompile("`([^`]+)`")
	flagRef  = regexp.MustCompile(`(?:^|[\s\[(|/,])(--[a-z][a-z0-9-]*)`)
)

// readmeRow is one table row of the README that documents commands.
type readmeRow struct {
	line     int
	commands []string // full paths, "difyctl backup redis"
	synopsis string   // first cell
	text     string   // whole row
}

func readmeRows(t *testing.T) []readmeRow {
	t.Helper()
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	var rows []readmeRow
	for i, l := range strings.Split(string(b), "\n") {
		if !strings.HasPrefix(l, "| `difyctl ") {
			continue
		}
		cells := splitRow(l)
		if len(cells) < 2 {
			continue
		}
		r := readmeRow{line: i + 1, synopsis: cells[0], text: l}
		var parent []string
		for _, m := range codeSpan.FindAllStringSubmatch(cells[0], -1) {
			if w := strings.Fields(m[1]); len(w) >= 2 && w[0] == "difyctl" && w[len(w)-1] == "*" {
				// "`difyctl backup *`": flags shared by every command below.
				r.commands = append(r.commands, strings.Join(w, " "))
				continue
			}
			words := commandWords(m[1])
			if len(words) == 0 {
				continue
			}
			if words[0] == "difyctl" {
				parent = words[:len(words)-1]
			} else if parent == nil {
				continue
			} else if len(parent) >= 2 && words[0] == parent[1] {
				// "`difyctl env get KEY` / `env set ...`": a sibling named from the top.
				words = append([]string{"difyctl"}, words...)
			} else {
				words = append(append([]string{}, parent...), words...)
			}
			last := words[len(words)-1]
			for _, alt := range strings.Split(last, `\|`) {
				r.commands = append(r.commands, strings.Join(append(append([]string{}, words[:len(words)-1]...), alt), " "))
			}
		}
		rows = append(rows, r)
	}
	return rows
}

// splitRow splits a Markdown table row on unescaped pipes.
func splitRow(l string) []string {
	var cells []string
	var cur strings.Builder
	for i := 1; i < len(l); i++ {
		if l[i] == '|' && l[i-1] != '\\' {
			cells = append(cells, strings.TrimSpace(cur.String()))
			cur.Reset()
			continue
		}
		cur.WriteByte(l[i])
	}
	return cells
}

// commandWords returns the command words of a synopsis: up to the first
// argument, placeholder or flag.
func commandWords(span string) []string {
	var words []string
	for _, w := range strings.Fields(span) {
		if strings.HasPrefix(w, "[") || strings.HasPrefix(w, "-") || strings.ToUpper(w) == w || strings.Contains(w, "=") {
			break
		}
		words = append(words, w)
	}
	return words
}

func commandTree(t *testing.T) map[string]*cobra.Command {
	t.Helper()
	io, _, _, _ := iostreams.Test()
	root := New(&cmdutil.Factory{IOStreams: io, Getenv: func(string) string { return "" }})
	cmds := map[string]*cobra.Command{}
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		if !c.Hidden && c.Name() != "help" {
			cmds[c.CommandPath()] = c
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
	return cmds
}

func hasFlag(c *cobra.Command, name string) bool {
	return c.Flags().Lookup(name) != nil || c.InheritedFlags().Lookup(name) != nil
}

func TestReadmeFlagsExist(t *testing.T) {
	cmds := commandTree(t)
	for _, r := range readmeRows(t) {
		if len(r.commands) == 0 {
			t.Errorf("README line %d: a command row names no command", r.line)
			continue
		}
		for _, path := range r.commands {
			if group, ok := strings.CutSuffix(path, " *"); ok {
				for _, m := range flagRef.FindAllStringSubmatch(r.synopsis+" "+r.text, -1) {
					found := false
					for p, c := range cmds {
						if strings.HasPrefix(p, group+" ") && hasFlag(c, strings.TrimPrefix(m[1], "--")) {
							found = true
						}
					}
					if !found {
						t.Errorf("README line %d: no command under %q has the flag %s", r.line, group, m[1])
					}
				}
				continue
			}
			c, ok := cmds[path]
			if !ok {
				t.Errorf("README line %d documents %q, which is not a command", r.line, path)
				continue
			}
			for _, m := range flagRef.FindAllStringSubmatch(r.synopsis, -1) {
				if !hasFlag(c, strings.TrimPrefix(m[1], "--")) {
					t.Errorf("README line %d: %q has no flag %s", r.line, path, m[1])
				}
			}
		}
	}
}

func TestEveryFlagDocumented(t *testing.T) {
	documented := map[string]string{} // command path -> text of its rows
	for _, r := range readmeRows(t) {
		for _, c := range r.commands {
			documented[c] += r.text + "\n"
		}
	}
	cmds := commandTree(t)
	var paths []string
	for p := range cmds {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	for _, path := range paths {
		c := cmds[path]
		if path == "difyctl" || !c.Runnable() {
			continue
		}
		text, ok := documented[path]
		for p := path; strings.Contains(p, " "); {
			p = p[:strings.LastIndex(p, " ")]
			text += documented[p+" *"]
		}
		if !ok {
			if c.Parent() != nil && c.Parent().Name() == "difyctl" || strings.Count(path, " ") >= 1 {
				t.Errorf("%q has no row in the README's command tables", path)
			}
			continue
		}
		c.LocalNonPersistentFlags().VisitAll(func(f *pflag.Flag) {
			if f.Hidden || f.Name == "help" {
				return
			}
			if !strings.Contains(text, "--"+f.Name) {
				t.Errorf("%q: flag --%s is not in the README's row for it", path, f.Name)
			}
		})
	}
}
