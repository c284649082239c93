package backupcmd

import (
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/difyctl/difyctl/backup"
	"github.com/difyctl/difyctl/backup/bundle"
	"github.com/difyctl/difyctl/internal/cmdutil"
)

// verifyBundle is `backup verify` of a bundle directory: every part read
// back (without --identity an encrypted part's stored bytes only).
func verifyBundle(opts *VerifyOptions, path string) error {
	v, err := bundle.Verify(path, nil)
	if v == nil {
		return cmdutil.WithExitCode(cmdutil.ExitFailure, err)
	}
	if opts.JSON {
		if werr := cmdutil.WriteJSON(opts.IO.Out, v); werr != nil {
			return werr
		}
	} else {
		state := "ok"
		if !v.OK {
			state = "FAILED"
		}
		fmt.Fprintf(opts.IO.Out, "%-7s %s (bundle of %s, %d parts, taken %s)\n", state, path, v.Manifest.Project, len(v.Manifest.Parts), v.Manifest.CreatedAt.Format(time.RFC3339))
		for _, c := range v.Parts {
			if c.OK {
				fmt.Fprintf(opts.IO.Out, "  ok      %-40s %s\n", c.Part, c.Checked)
			} else {
				fmt.Fprintf(opts.IO.Out, "  FAILED  %-40s %s\n", c.Part, c.Error)
			}
		}
	}
	if err != nil {
		return cmdutil.WithExitCode(cmdutil.ExitFailure, err)
	}
	return nil
}

// bundleListing is `backup list` of a directory of bundles.
type bundleListing struct {
	Dir     string         `json:"dir"`
	Project string         `json:"project"`
	Bundles []listedBundle `json:"bundles"`
	Foreign []bundle.Entry `json:"foreign"`
	Status  *backup.Status `json:"status,omitempty"`
}

type listedBundle struct {
	bundle.Entry
	Age        string `json:"age"`
	SafetyCopy bool   `json:"safetyCopy"`
	Verified   *bool  `json:"verified,omitempty"`
	Error      string `json:"error,omitempty"`
}

// listBundles lists the project's bundles when opts.Dir holds bundles;
// handled is false when it holds none (a directory of Redis backups).
func listBundles(opts *ListOptions) (handled bool, err error) {
	all, err := bundle.List(opts.Dir)
	if err != nil || len(all) == 0 {
		return false, nil
	}
	own, foreign, _ := bundle.Own(opts.Dir, opts.Project)
	out := bundleListing{Dir: opts.Dir, Project: opts.Project, Bundles: []listedBundle{}, Foreign: foreign}
	if out.Foreign == nil {
		out.Foreign = []bundle.Entry{}
	}
	for _, e := range own {
		li := listedBundle{Entry: e, Age: opts.Now.Sub(e.Time).Round(time.Minute).String(), SafetyCopy: e.IsSafetyCopy()}
		if opts.Verify {
			_, verr := bundle.Verify(e.Path, nil)
			ok := verr == nil
			li.Verified = &ok
			if verr != nil {
				li.Error = verr.Error()
			}
		}
		out.Bundles = append(out.Bundles, li)
	}
	out.Status, _ = backup.ReadStatus(backup.StatusPath(opts.Dir, opts.Project))
	if opts.JSON {
		return true, cmdutil.WriteJSON(opts.IO.Out, out)
	}
	if len(out.Bundles) == 0 {
		fmt.Fprintf(opts.IO.ErrOut, "no bundles of project %s in %s\n", opts.Project, opts.Dir)
	} else {
		w := tabwriter.NewWriter(opts.IO.Out, 0, 0, 2, ' ', 0)
		fmt.Fprintln(w, "TIME (UTC)\tSIZE\tAGE\tPARTS\tDIFY\tKIND\tVERIFIED\tBUNDLE")
		for _, li := range out.Bundles {
			kind, verified := "bundle", "at backup"
			if li.Manifest.Encrypted {
				kind += " (encrypted)"
			}
			if li.SafetyCopy {
				kind = "safety bundle (before restoring " + li.Manifest.SafetyCopyOf + ")"
			}
			if li.Verified != nil {
				verified = map[bool]string{true: "ok", false: "FAILED: " + li.Error}[*li.Verified]
			}
			fmt.Fprintf(w, "%s\t%s\t%s\t%d\t%s\t%s\t%s\t%s\n", li.Time.Format("2006-01-02 15:04:05"), humanSize(li.Size), li.Age, len(li.Manifest.Parts), li.Manifest.DifyVersion, kind, verified, li.Name)
		}
		if err := w.Flush(); err != nil {
			return true, err
		}
	}
	if n := len(out.Foreign); n > 0 {
		fmt.Fprintf(opts.IO.ErrOut, "%d bundle(s) of other projects or without a readable manifest not shown (never rotated by this project)\n", n)
	}
	printStatus(opts.IO.ErrOut, out.Status, out.Status.Warning(opts.Now))
	return true, nil
}
