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
	"os"

	"github.com/difyctl/difyctl/internal/engine"
	"github.com/difyctl/difyctl/internal/journal"

	_ "github.com/difyctl/difyctl/backup"                // restore-redis
	_ "github.com/difyctl/difyctl/backup/bundle"         // restore-all
	_ "github.com/difyctl/difyctl/internal/safetybundle" // upgrade, rollback (with the bundle safety net)
)

// Settle settles the project's pending journal, if any, reporting on errOut
// (JSON lines with jsonOut). No journal: (nil, nil).
func Settle(ctx context.Context, eng engine.Engine, errOut io.Writer, jsonOut bool, projectDir, project string) (*journal.Outcome, error) {
	env := journal.Env{Engine: eng, Out: errOut, JSON: jsonOut, Getenv: os.Getenv}
	if !jsonOut && errOut != nil {
		env.Progress = func(format string, a ...any) { _, _ = io.WriteString(errOut, fmt.Sprintf(format, a...)+"\n") }
	}
	return journal.Settle(ctx, env, projectDir, project)
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

// Hook is Settle as a use-case takes it (deploy.UpOptions.Settle), for a
// command reporting on errOut.
func Hook(errOut io.Writer, jsonOut bool) func(ctx context.Context, eng engine.Engine, dir, project string) error {
	return func(ctx context.Context, eng engine.Engine, dir, project string) error {
		_, err := Settle(ctx, eng, errOut, jsonOut, dir, project)
		return err
	}
}
