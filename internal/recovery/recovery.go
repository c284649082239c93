// Package recovery is the one call a command that changes or starts a
// project makes after taking the project lock: it settles the journal a
// killed operation left (internal/journal), with the settlers of every
// package that writes journals, imported here for their registration.
package recovery

import (
	"context"
	"encoding/json"
	"fmt"
	"io"

	"github.com/difyctl/difyctl/internal/cmdutil"
	"github.com/difyctl/difyctl/internal/engine"
	"github.com/difyctl/difyctl/internal/journal"
	"github.com/difyctl/difyctl/internal/project"

	_ "github.com/difyctl/difyctl/backup"                // restore-redis
	_ "github.com/difyctl/difyctl/backup/bundle"         // restore-all
	_ "github.com/difyctl/difyctl/internal/safetybundle" // upgrade, rollback (with the bundle safety net)
)

// Options say where the settlers report and what they read of the
// environment: the factory's (the only door to the process's).
type Options struct {
	Out  io.Writer // stderr: what was found and done
	JSON bool      // report on Out as JSON lines
	// The factory's environment: Getenv says where the lock directory is
	// (Begin); the settlers load the project and find registry credentials
	// with Environ.
	cmdutil.ProcEnv
}

// Settle settles the project's pending journal, if any, reporting on o.Out.
// No journal: (nil, nil).
func Settle(ctx context.Context, eng engine.Engine, o Options, projectDir, project string) (*journal.Outcome, error) {
	env := journal.Env{Engine: eng, Out: o.Out, JSON: o.JSON, Environ: o.Environ}
	if !o.JSON && o.Out != nil {
		out := o.Out
		env.Progress = func(format string, a ...any) { _, _ = io.WriteString(out, fmt.Sprintf(format, a...)+"\n") }
	}
	return journal.Settle(ctx, env, projectDir, project)
}

// Begin is how a command that changes the project starts: it takes the
// project's lock (internal/project, a second command exits 4 naming the
// holder), then settles what a killed operation left (projectDir "": no
// journal is looked for). The caller defers the unlock it returns.
func Begin(ctx context.Context, eng engine.Engine, o Options, projectDir, name string) (unlock func(), err error) {
	unlock, err = project.Lock(cmdutil.EnvOrNone(o.Getenv), name)
	if err != nil {
		return nil, err
	}
	if projectDir == "" {
		return unlock, nil
	}
	if _, err := Settle(ctx, eng, o, projectDir, name); err != nil {
		unlock()
		return nil, err
	}
	return unlock, nil
}

// Report says on errOut, changing nothing, that the project has a journal
// not yet settled (ps, status): one warning line, or with jsonOut one JSON
// object {"journal":"pending","message":...}.
func Report(errOut io.Writer, jsonOut bool, projectDir, project string) {
	line, err := journal.Pending(projectDir, project)
	if err != nil {
		line = err.Error()
	}
	if line == "" {
		return
	}
	if jsonOut {
		b, _ := json.Marshal(struct {
			Event   string `json:"journal"`
			Message string `json:"message"`
		}{"pending", line})
		fmt.Fprintln(errOut, string(b))
		return
	}
	fmt.Fprintln(errOut, "WARNING: "+line)
}

// Hook is Settle as a use-case takes it (deploy.UpOptions.Settle).
func Hook(o Options) func(ctx context.Context, eng engine.Engine, dir, project string) error {
	return func(ctx context.Context, eng engine.Engine, dir, project string) error {
		_, err := Settle(ctx, eng, o, dir, project)
		return err
	}
}
