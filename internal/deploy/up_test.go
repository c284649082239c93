package deploy

import (
	"strings"
	"testing"

	"github.com/difyctl/difyctl/compose"
)

// After a failure, the message says what changed and what was left.
func TestChangesNamesWhatChangedAndWhatNot(t *testing.T) {
	res := &compose.UpResult{Plan: []compose.PlanItem{
		{Service: "db", Outcome: compose.OutcomeRolledBack},
		{Service: "api", Outcome: compose.OutcomeNotReplaced},
		{Service: "cache", Outcome: compose.OutcomeReplaced},
		{Service: "web", Outcome: compose.OutcomeKept},
	}}
	got := changes(res)
	for _, want := range []string{"changed: cache replaced", "db not replaced: the replacement failed to start, the old container runs again", "api not replaced: the old container is left as it was", "every other container is left as it was"} {
		if !strings.Contains(got, want) {
			t.Fatalf("%q lacks %q", got, want)
		}
	}
	if changes(&compose.UpResult{}) != "nothing else was changed" {
		t.Fatal(changes(&compose.UpResult{}))
	}
}
