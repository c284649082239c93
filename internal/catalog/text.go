package catalog

import (
	"fmt"
	"io"
	"strings"
)

// WriteText prints what changes between two releases, one section per
// kind (`difyctl releases` and upgrade's plan).
func WriteText(w io.Writer, c *Changes) {
	fmt.Fprintf(w, "%s -> %s:\n", c.From, c.To)
	if c.Empty() {
		fmt.Fprintln(w, "  nothing changes")
		return
	}
	for _, i := range c.Images {
		fmt.Fprintf(w, "  image     %-15s %s -> %s%s\n", i.Service, i.From, i.To, profileNote(i.Profiles))
	}
	for _, s := range c.ServicesAdded {
		fmt.Fprintf(w, "  + service %-15s %s%s\n", s.Name, s.Image, profileNote(s.Profiles))
	}
	for _, s := range c.ServicesRemoved {
		fmt.Fprintf(w, "  - service %-15s %s%s\n", s.Name, s.Image, profileNote(s.Profiles))
	}
	list := func(label string, names []string) {
		if len(names) > 0 {
			fmt.Fprintf(w, "  %s (%d): %s\n", label, len(names), strings.Join(names, ", "))
		}
	}
	list("+ variables", c.VarsAdded)
	var ren []string
	for _, r := range c.VarsRenamed {
		ren = append(ren, r.From+" -> "+r.To)
	}
	list("~ variables renamed", ren)
	list("- variables", c.VarsRemoved)
	var defs []string
	for _, d := range c.DefaultsChanged {
		defs = append(defs, fmt.Sprintf("%s %q -> %q", d.Name, d.From, d.To))
	}
	list("~ defaults", defs)
	list("+ support files", c.FilesAdded)
	list("~ support files", c.FilesChanged)
	list("- support files", c.FilesRemoved)
}

func profileNote(p []string) string {
	if len(p) == 0 {
		return ""
	}
	return " (profile " + strings.Join(p, ",") + ")"
}
