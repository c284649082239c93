package up

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/difyctl/difyctl/compose"
	"github.com/difyctl/difyctl/envgen"
	"github.com/difyctl/difyctl/internal/cmdutil"
	"github.com/difyctl/difyctl/internal/iostreams"
)

func opts(t *testing.T, dir string, profiles ...string) (*Options, *iostreams.IOStreams) {
	io, _, _, _ := iostreams.Test()
	return &Options{IO: io, Embedded: true, Profiles: profiles, Now: time.Now,
		Load: compose.LoadOptions{ProjectDir: dir, ProjectName: "dify"}}, io
}

func TestPrepareWritesEnvAndSupportFiles(t *testing.T) {
	dir := t.TempDir()
	o, io := opts(t, dir, "mysql", "qdrant")
	if err := Prepare(o); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(io.ErrOut.(interface{ String() string }).String(), "wrote "+filepath.Join(dir, ".env")) {
		t.Fatal("did not say where it wrote .env")
	}
	d, err := envgen.ReadFile(filepath.Join(dir, ".env"))
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := d.Get("DB_TYPE"); v != "mysql" {
		t.Fatalf("DB_TYPE %q", v)
	}
	if _, err := os.Stat(filepath.Join(dir, "nginx", "docker-entrypoint.sh")); err != nil {
		t.Fatalf("support files not written: %v", err)
	}
}

func TestPrepareRefusesContradictionAndErrors(t *testing.T) {
	dir := t.TempDir()
	o, _ := opts(t, dir)
	if err := Prepare(o); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(filepath.Join(dir, ".env"))
	o, _ = opts(t, dir, "mysql")
	err := Prepare(o)
	if cmdutil.ExitCode(err) != cmdutil.ExitUsage || !strings.Contains(err.Error(), "DB_TYPE=postgresql") {
		t.Fatalf("contradicting --profile: %v", err)
	}
	if after, _ := os.ReadFile(filepath.Join(dir, ".env")); string(after) != string(before) {
		t.Fatal("a refused up changed .env")
	}
	d, _ := envgen.ReadFile(filepath.Join(dir, ".env"))
	d.Set("REDIS_PASSWORD", "")
	envgen.WriteFile(filepath.Join(dir, ".env"), d)
	o, _ = opts(t, dir)
	if err := Prepare(o); cmdutil.ExitCode(err) != cmdutil.ExitFailure || !strings.Contains(err.Error(), "REDIS_PASSWORD is empty") {
		t.Fatalf("invalid .env: %v", err)
	}
	// An extra profile on the command line is added to what .env enables.
	d.Set("REDIS_PASSWORD", "a-long-enough-redis-password-123")
	d.Set("CELERY_BROKER_URL", "redis://:a-long-enough-redis-password-123@redis:6379/1")
	envgen.WriteFile(filepath.Join(dir, ".env"), d)
	o, _ = opts(t, dir, "certbot")
	if err := Prepare(o); err != nil {
		t.Fatal(err)
	}
	if strings.Join(o.Load.Profiles, ",") != "weaviate,postgresql,collaboration,certbot" {
		t.Fatalf("profiles %v", o.Load.Profiles)
	}
}

func TestSetPolicies(t *testing.T) {
	o := &Options{}
	if err := o.setPolicies(true, true, ""); cmdutil.ExitCode(err) != cmdutil.ExitUsage {
		t.Fatalf("both recreate flags: %v", err)
	}
	for _, c := range []struct {
		no, force bool
		pull      string
		recreate  compose.RecreatePolicy
		want      compose.PullPolicy
	}{
		{false, false, "", compose.RecreateDiverged, ""},
		{true, false, "never", compose.RecreateNever, compose.PullNever},
		{false, true, "always", compose.RecreateForce, compose.PullAlways},
		{false, false, "missing", compose.RecreateDiverged, compose.PullMissing},
	} {
		if err := o.setPolicies(c.no, c.force, c.pull); err != nil || o.Recreate != c.recreate || o.Pull != c.want {
			t.Fatalf("%+v: %v %s %s", c, err, o.Recreate, o.Pull)
		}
	}
	if err := o.setPolicies(false, false, "sometimes"); cmdutil.ExitCode(err) != cmdutil.ExitUsage {
		t.Fatalf("--pull sometimes: %v", err)
	}
}

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
