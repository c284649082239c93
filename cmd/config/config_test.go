package config

import (
	"context"
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/compose-spec/compose-go/v2/loader"
	"github.com/compose-spec/compose-go/v2/types"

	"github.com/difyctl/difyctl/cmd/initcmd"
	"github.com/difyctl/difyctl/compose"
	"github.com/difyctl/difyctl/envgen"
	"github.com/difyctl/difyctl/internal/cmdutil"
	"github.com/difyctl/difyctl/internal/iostreams"
)

// The rendered project loads again on its own (as `docker compose -f -
// config` loads it), with secrets masked or shown.
func TestOutputReloads(t *testing.T) {
	dir := t.TempDir()
	if _, err := initcmd.Write(dir, []string{"mysql", "milvus"}, false, time.Now()); err != nil {
		t.Fatal(err)
	}
	d, _ := envgen.ReadFile(dir + "/.env")
	redisPW, _ := d.Get("REDIS_PASSWORD")
	for _, show := range []bool{false, true} {
		io, _, out, _ := iostreams.Test()
		err := Run(context.Background(), &Options{IO: io, ShowSecrets: show,
			Load: compose.LoadOptions{ProjectDir: dir, ProjectName: "dify", Environ: os.Environ()}})
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(out.String(), redisPW) != show {
			t.Fatalf("show-secrets=%v: password present=%v", show, !show)
		}
		p, err := loader.LoadWithContext(context.Background(), types.ConfigDetails{WorkingDir: dir,
			ConfigFiles: []types.ConfigFile{{Filename: "-", Content: out.Bytes()}}, Environment: map[string]string{}},
			func(o *loader.Options) { o.SetProjectName("dify", true); o.Profiles = []string{"*"} })
		if err != nil {
			t.Fatalf("show-secrets=%v: output does not load: %v", show, err)
		}
		if _, ok := p.Services["milvus-standalone"]; !ok || len(p.Services) < 15 {
			t.Fatalf("reloaded project has %d services", len(p.Services))
		}
		if got := strings.Join(p.Services["redis"].Command, " "); !strings.Contains(got, "$REDISCLI_AUTH") {
			t.Fatalf("redis command after reload: %s", got)
		}
	}
}

// Masking by structure: a secret holding '$' is masked, and a short secret
// that is also a common word does not change any other text.
func TestMaskingByStructure(t *testing.T) {
	dir := t.TempDir()
	if _, err := initcmd.Write(dir, nil, false, time.Now()); err != nil {
		t.Fatal(err)
	}
	path := dir + "/.env"
	d, _ := envgen.ReadFile(path)
	const dollar = "pa$$word-with-$dollar-0123456789"
	envgen.SetLinked(d, "REDIS_PASSWORD", dollar)
	envgen.SetLinked(d, "DB_PASSWORD", "dify")
	if err := envgen.WriteFile(path, d); err != nil {
		t.Fatal(err)
	}
	for _, jsonOut := range []bool{false, true} {
		io, _, out, _ := iostreams.Test()
		err := Run(context.Background(), &Options{IO: io, JSON: jsonOut,
			Load: compose.LoadOptions{ProjectDir: dir, ProjectName: "dify", Environ: os.Environ()}})
		if err != nil {
			t.Fatal(err)
		}
		s := out.String()
		for _, leak := range []string{"pa$$word", "pa$$$$word", "with-$dollar", "with-$$dollar"} {
			if strings.Contains(s, leak) {
				t.Fatalf("json=%v: the secret holding $ is printed", jsonOut)
			}
		}
		if !strings.Contains(s, "langgenius/dify-api") || strings.Contains(s, "MASKED-api") {
			t.Fatalf("json=%v: masking a short secret changed other text", jsonOut)
		}
		if !strings.Contains(s, compose.MaskToken) {
			t.Fatalf("json=%v: nothing masked", jsonOut)
		}
	}
}

// config -o json is compose's JSON form.
func TestJSONForm(t *testing.T) {
	dir := t.TempDir()
	if _, err := initcmd.Write(dir, nil, false, time.Now()); err != nil {
		t.Fatal(err)
	}
	io, _, out, _ := iostreams.Test()
	if err := Run(context.Background(), &Options{IO: io, JSON: true,
		Load: compose.LoadOptions{ProjectDir: dir, ProjectName: "dify", Environ: os.Environ()}}); err != nil {
		t.Fatal(err)
	}
	var p struct {
		Name     string         `json:"name"`
		Services map[string]any `json:"services"`
	}
	if err := json.Unmarshal(out.Bytes(), &p); err != nil || p.Name != "dify" || p.Services["api"] == nil {
		t.Fatalf("not compose's JSON form: %v\n%.300s", err, out)
	}
}

// Input files that cannot be used exit 2, naming the file and line, never
// the text.
func TestCheckInputs(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(dir+"/.env", []byte("A=1\nSECRET_KEY=\"s3cret-unclosed\n"), 0o600)
	err := CheckInputs(compose.LoadOptions{ProjectDir: dir})
	if cmdutil.ExitCode(err) != cmdutil.ExitUsage || !strings.Contains(err.Error(), "line 2") || strings.Contains(err.Error(), "s3cret") {
		t.Fatalf("bad line: %v", err)
	}
	err = CheckInputs(compose.LoadOptions{ProjectDir: t.TempDir(), Files: []string{dir + "/missing.yaml"}})
	if cmdutil.ExitCode(err) != cmdutil.ExitUsage || !strings.Contains(err.Error(), "missing.yaml") {
		t.Fatalf("missing -f: %v", err)
	}
}
