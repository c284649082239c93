package env

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"github.com/difyctl/difyctl/cmd/initcmd"
	"github.com/difyctl/difyctl/envgen"
	"github.com/difyctl/difyctl/internal/cmdutil"
	"github.com/difyctl/difyctl/internal/iostreams"
)

func initProject(t *testing.T, profiles ...string) string {
	t.Helper()
	dir := t.TempDir()
	if _, err := initcmd.Write(dir, profiles, false, time.Now()); err != nil {
		t.Fatal(err)
	}
	st, _ := os.Stat(filepath.Join(dir, ".env"))
	if st.Mode().Perm() != 0o600 {
		t.Fatalf(".env mode %v", st.Mode())
	}
	return dir
}

func TestInitRefusesToOverwrite(t *testing.T) {
	dir := initProject(t)
	before, _ := os.ReadFile(filepath.Join(dir, ".env"))
	if _, err := initcmd.Write(dir, nil, false, time.Now()); cmdutil.ExitCode(err) != cmdutil.ExitUsage || !strings.Contains(err.Error(), "--force") {
		t.Fatalf("overwrite without --force: %v", err)
	}
	res, err := initcmd.Write(dir, []string{"mysql"}, true, time.Now())
	if err != nil || res.Backup == "" {
		t.Fatalf("--force: %+v %v", res, err)
	}
	kept, _ := os.ReadFile(res.Backup)
	if string(kept) != string(before) {
		t.Fatal("the copy is not the previous file")
	}
}

func TestValidateExitCodes(t *testing.T) {
	dir := initProject(t, "qdrant")
	io, _, out, _ := iostreams.Test()
	path := filepath.Join(dir, ".env")
	if err := Validate(&ValidateOptions{IO: io, Path: path, Strict: true}); err != nil {
		t.Fatalf("fresh init: %v\n%s", err, out)
	}
	d, _ := envgen.ReadFile(path)
	d.Set("CODE_EXECUTION_API_KEY", "something-else-entirely-000")
	envgen.WriteFile(path, d)
	err := Validate(&ValidateOptions{IO: io, Path: path})
	if cmdutil.ExitCode(err) != 1 || !strings.Contains(out.String(), "SANDBOX_API_KEY") {
		t.Fatalf("tampered: %v\n%s", err, out)
	}
	if err := Validate(&ValidateOptions{IO: io, Path: filepath.Join(dir, "missing")}); cmdutil.ExitCode(err) != 2 {
		t.Fatalf("missing file: %v", err)
	}
	os.WriteFile(path, []byte("A=\"unterminated\n"), 0o600)
	if err := Validate(&ValidateOptions{IO: io, Path: path}); cmdutil.ExitCode(err) != 2 {
		t.Fatalf("unparsable file: %v", err)
	}
}

func TestSetKeepsPairsTied(t *testing.T) {
	dir := initProject(t)
	path := filepath.Join(dir, ".env")
	io, in, _, _ := iostreams.Test()
	in.WriteString("new-sandbox-key-0123456789abcdef\n")
	if err := Set(&SetOptions{IO: io, Path: path, Key: "SANDBOX_API_KEY", Stdin: true}); err != nil {
		t.Fatal(err)
	}
	d, _ := envgen.ReadFile(path)
	if v, _ := d.Get("CODE_EXECUTION_API_KEY"); v != "new-sandbox-key-0123456789abcdef" {
		t.Fatalf("CODE_EXECUTION_API_KEY = %q", v)
	}
	if err := Set(&SetOptions{IO: io, Path: path, Key: "REDIS_PASSWORD", Value: "another-redis-password-1234"}); err != nil {
		t.Fatal(err)
	}
	d, _ = envgen.ReadFile(path)
	if v, _ := d.Get("CELERY_BROKER_URL"); !strings.Contains(v, ":another-redis-password-1234@") {
		t.Fatalf("broker URL not rebuilt: %q", v)
	}
	before, _ := os.ReadFile(path)
	if err := Set(&SetOptions{IO: io, Path: path, Key: "DB_PORT", Value: "not-a-port"}); cmdutil.ExitCode(err) != 1 {
		t.Fatalf("invalid value written: %v", err)
	}
	after, _ := os.ReadFile(path)
	if string(before) != string(after) {
		t.Fatal("a refused set changed the file")
	}
}

// Switching the database or the vector store moves what follows from it, in
// either order, and the result validates (it used to be refused both ways).
func TestSetSwitchesProfiles(t *testing.T) {
	dir := initProject(t)
	path := filepath.Join(dir, ".env")
	io, _, _, _ := iostreams.Test()
	before, _ := envgen.ReadFile(path)
	secret, _ := before.Get("SECRET_KEY")
	for _, kv := range [][2]string{{"VECTOR_STORE", "qdrant"}, {"DB_TYPE", "mysql"}} {
		if err := Set(&SetOptions{IO: io, Path: path, Key: kv[0], Value: kv[1]}); err != nil {
			t.Fatalf("%s=%s: %v", kv[0], kv[1], err)
		}
	}
	d, err := envgen.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]string{"COMPOSE_PROFILES": "qdrant,mysql,collaboration", "DB_HOST": "db_mysql", "DB_PORT": "3306", "SECRET_KEY": secret} {
		if got, _ := d.Get(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	if v, _ := d.Get("QDRANT_API_KEY"); len(v) < 16 {
		t.Errorf("QDRANT_API_KEY not generated: %q", v)
	}
	for _, f := range envgen.Validate(d, envgen.DefaultSchema()) {
		if f.Severity == envgen.Error {
			t.Errorf("after the switch: %s", f)
		}
	}
}

func TestUpgradeDryRunChangesNothing(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, ".env")
	os.WriteFile(path, []byte("# mine\nREDIS_PASSWORD=mine-mine-mine-mine-mine\n"), 0o600)
	io, _, out, _ := iostreams.Test()
	if err := Upgrade(&UpgradeOptions{IO: io, Path: path, DryRun: true, Now: time.Now}); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(path); string(b) != "# mine\nREDIS_PASSWORD=mine-mine-mine-mine-mine\n" {
		t.Fatal("dry run wrote")
	}
	if !strings.Contains(out.String(), "+DB_PASSWORD=********") || !strings.Contains(out.String(), "+DB_TYPE=postgresql") {
		t.Fatalf("diff does not show added lines with secrets masked:\n%.400s", out)
	}
	if err := Upgrade(&UpgradeOptions{IO: io, Path: path, Now: time.Now}); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	if !strings.HasPrefix(string(b), "# mine\nREDIS_PASSWORD=mine-mine-mine-mine-mine\n") {
		t.Fatal("upgrade changed the user's lines")
	}
	matches, _ := filepath.Glob(path + ".bak-*")
	if len(matches) != 1 {
		t.Fatalf("no copy of the old file: %v", matches)
	}
}

func TestImportUpstreamFolder(t *testing.T) {
	up := filepath.Join(t.TempDir(), "docker")
	os.MkdirAll(filepath.Join(up, "envs", "vectorstores"), 0o755)
	os.MkdirAll(filepath.Join(up, "volumes", "redis", "data"), 0o755)
	os.MkdirAll(filepath.Join(up, "nginx"), 0o755)
	os.WriteFile(filepath.Join(up, ".env"), []byte("DB_TYPE=mysql\nDB_HOST=db_mysql\nDB_PORT=3306\nVECTOR_STORE=qdrant\nCOMPOSE_PROFILES=${VECTOR_STORE:-weaviate},${DB_TYPE:-postgresql}\nREDIS_PASSWORD=operator-chosen-pw\nMY_OWN_FLAG=1\n"), 0o644)
	os.WriteFile(filepath.Join(up, "envs", "vectorstores", "qdrant.env"), []byte("QDRANT_API_KEY=operator-qdrant-key\n"), 0o644)
	before, _ := os.ReadFile(filepath.Join(up, ".env"))

	dir := t.TempDir()
	io, _, out, _ := iostreams.Test()
	if err := Import(&ImportOptions{IO: io, ProjectDir: dir, Source: up, Now: time.Now}); err != nil {
		t.Fatal(err)
	}
	d, err := envgen.ReadFile(filepath.Join(dir, ".env"))
	if err != nil {
		t.Fatal(err)
	}
	env := d.Map()
	for k, want := range map[string]string{"REDIS_PASSWORD": "operator-chosen-pw", "QDRANT_API_KEY": "operator-qdrant-key", "DB_TYPE": "mysql", "MY_OWN_FLAG": "1", "COMPOSE_PROJECT_NAME": "docker", "COMPOSE_PROFILES": "qdrant,mysql"} {
		if env[k] != want {
			t.Errorf("%s = %q, want %q", k, env[k], want)
		}
	}
	if target, err := os.Readlink(filepath.Join(dir, "volumes")); err != nil || target != filepath.Join(up, "volumes") {
		t.Errorf("volumes not linked: %q %v", target, err)
	}
	if after, _ := os.ReadFile(filepath.Join(up, ".env")); string(after) != string(before) {
		t.Error("import changed the source")
	}
	if !strings.Contains(out.String(), "MY_OWN_FLAG") {
		t.Errorf("unplaced variable not reported:\n%s", out)
	}
}

// env set KEY --generate fills an empty required secret (the fix validation
// names) with the variable's own generator, moves what is tied to it, and
// prints no value.
func TestSetGenerate(t *testing.T) {
	dir := initProject(t)
	path := filepath.Join(dir, ".env")
	d, _ := envgen.ReadFile(path)
	d.Set("REDIS_PASSWORD", "")
	envgen.WriteFile(path, d)
	if fs := envgen.Validate(d, envgen.DefaultSchema()); !strings.Contains(fmt.Sprint(fs), "env set REDIS_PASSWORD --generate") {
		t.Fatalf("validation does not name the fix: %v", fs)
	}
	io, _, out, errOut := iostreams.Test()
	if err := Set(&SetOptions{IO: io, Path: path, Key: "REDIS_PASSWORD", Generate: true}); err != nil {
		t.Fatal(err)
	}
	d, _ = envgen.ReadFile(path)
	pw, _ := d.Get("REDIS_PASSWORD")
	if len(pw) != 32 {
		t.Fatalf("REDIS_PASSWORD = %d characters", len(pw))
	}
	if url, _ := d.Get("CELERY_BROKER_URL"); !strings.Contains(url, ":"+pw+"@") {
		t.Error("CELERY_BROKER_URL not rebuilt")
	}
	if strings.Contains(out.String()+errOut.String(), pw) || !strings.Contains(errOut.String(), "CELERY_BROKER_URL") {
		t.Errorf("output: %q %q", out, errOut)
	}
	for _, f := range envgen.Validate(d, envgen.DefaultSchema()) {
		if f.Severity == envgen.Error {
			t.Errorf("after --generate: %s", f)
		}
	}
	// SECRET_KEY: says what replacing Dify's own key means.
	io, _, _, errOut = iostreams.Test()
	if err := Set(&SetOptions{IO: io, Path: path, Key: "SECRET_KEY", Generate: true}); err != nil || !strings.Contains(errOut.String(), "signs in again") {
		t.Fatalf("SECRET_KEY --generate: %v %q", err, errOut)
	}
	// Not a generated secret: refused, file unchanged.
	before, _ := os.ReadFile(path)
	for _, k := range []string{"DB_HOST", "NOT_A_VARIABLE", "MATRIXONE_PASSWORD"} {
		if err := Set(&SetOptions{IO: io, Path: path, Key: k, Generate: true}); cmdutil.ExitCode(err) != cmdutil.ExitUsage {
			t.Errorf("%s --generate: %v", k, err)
		}
	}
	if after, _ := os.ReadFile(path); string(after) != string(before) {
		t.Error("a refused --generate changed the file")
	}
}

// The commands map their flags onto their options (runF stands in for the
// use-case).
func TestFlagMapping(t *testing.T) {
	dir := initProject(t)
	f := &cmdutil.Factory{Getenv: func(string) string { return "" }, ProjectDir: dir, Output: cmdutil.OutputText}
	f.IOStreams, _, _, _ = iostreams.Test()
	run := func(cmd *cobra.Command, args ...string) error {
		cmd.SetArgs(args)
		cmd.SetOut(new(strings.Builder))
		cmd.SetErr(new(strings.Builder))
		return cmd.Execute()
	}
	var set *SetOptions
	cmdSet := NewCmdSet(f, func(_ context.Context, o *SetOptions) error { set = o; return nil })
	if err := run(cmdSet, "SECRET_KEY", "--generate", "--force"); err != nil || set.Key != "SECRET_KEY" || !set.Generate || !set.Force || set.Path != filepath.Join(dir, ".env") {
		t.Fatalf("set: %v %+v", err, set)
	}
	for _, args := range [][]string{{"A=1", "--stdin"}, {"A", "--stdin", "--generate"}, {"A"}, {"A=1", "--generate"}} {
		if err := run(NewCmdSet(f, func(context.Context, *SetOptions) error { return nil }), args...); cmdutil.ExitCode(err) != cmdutil.ExitUsage {
			t.Errorf("set %v: %v", args, err)
		}
	}
	if err := run(NewCmdSet(f, nil), "BAD-NAME=1"); cmdutil.ExitCode(err) != cmdutil.ExitUsage {
		t.Errorf("set BAD-NAME: %v", err)
	}
	var val *ValidateOptions
	if err := run(NewCmdValidate(f, func(_ context.Context, o *ValidateOptions) error { val = o; return nil }), "--strict"); err != nil || !val.Strict {
		t.Fatalf("validate: %v %+v", err, val)
	}
	var up *UpgradeOptions
	if err := run(NewCmdUpgrade(f, func(_ context.Context, o *UpgradeOptions) error { up = o; return nil }), "--dry-run"); err != nil || !up.DryRun {
		t.Fatalf("upgrade: %v %+v", err, up)
	}
	var get *GetOptions
	if err := run(NewCmdGet(f, func(_ context.Context, o *GetOptions) error { get = o; return nil }), "DB_TYPE"); err != nil || get.Key != "DB_TYPE" {
		t.Fatalf("get: %v %+v", err, get)
	}
	var imp *ImportOptions
	if err := run(NewCmdImport(f, func(_ context.Context, o *ImportOptions) error { imp = o; return nil }), "/src", "--force", "--allow-other-owner"); err != nil ||
		imp.Source != "/src" || !imp.Force || !imp.AllowOtherOwner || imp.ProjectDir != dir {
		t.Fatalf("import: %v %+v", err, imp)
	}
}

// Import of an older release's folder: its nginx is not linked, the
// embedded one is written and the operator's kept as .orig; the tied values
// follow the imported side; comments survive.
func TestImportOlderReleaseFolder(t *testing.T) {
	up := filepath.Join(t.TempDir(), "_Docker")
	os.MkdirAll(filepath.Join(up, "nginx"), 0o755)
	os.MkdirAll(filepath.Join(up, "volumes", "app", "storage"), 0o755)
	os.WriteFile(filepath.Join(up, "nginx", "nginx.conf.template"), []byte("# 1.1.3\n"), 0o644)
	os.WriteFile(filepath.Join(up, ".env"), []byte("# operator's note\nDB_HOST=db\nREDIS_PASSWORD=operator-redis-pw-01234\n"), 0o644)
	dir := t.TempDir()
	io, _, out, _ := iostreams.Test()
	if err := Import(&ImportOptions{IO: io, ProjectDir: dir, Source: up, Now: time.Now}); err != nil {
		t.Fatal(err)
	}
	if st, err := os.Lstat(filepath.Join(dir, "nginx")); err != nil || st.Mode()&os.ModeSymlink != 0 {
		t.Fatalf("nginx linked or missing: %v %v", st, err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "nginx", "nginx.conf.template.orig")); string(b) != "# 1.1.3\n" {
		t.Errorf(".orig: %q", b)
	}
	b, _ := os.ReadFile(filepath.Join(dir, ".env"))
	d, _ := envgen.Parse(b)
	if url, _ := d.Get("CELERY_BROKER_URL"); !strings.HasPrefix(string(b), "# operator's note\n") || !strings.Contains(url, ":operator-redis-pw-01234@") {
		t.Errorf("comments or tied value lost:\n%s", b)
	}
	if p, _ := d.Get("COMPOSE_PROJECT_NAME"); p != "docker" {
		t.Errorf("project %q", p)
	}
	if !strings.Contains(out.String(), ".orig") || !strings.Contains(out.String(), "DB_HOST") {
		t.Errorf("output does not say what happened:\n%s", out)
	}
}
