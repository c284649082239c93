package config

import (
	"context"
	"encoding/json"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/compose-spec/compose-go/v2/loader"
	"github.com/compose-spec/compose-go/v2/types"
	"go.yaml.in/yaml/v4"

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

func runConfig(t *testing.T, dir string, jsonOut, show bool) []byte {
	t.Helper()
	io, _, out, _ := iostreams.Test()
	if err := Run(context.Background(), &Options{IO: io, JSON: jsonOut, ShowSecrets: show,
		Load: compose.LoadOptions{ProjectDir: dir, ProjectName: "dify", Environ: os.Environ()}}); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

// create_host_path: true survives in both forms (compose-go omits it as
// the default; docker compose config prints it), and nothing else changes.
func TestCreateHostPathSurvives(t *testing.T) {
	dir := t.TempDir()
	if _, err := initcmd.Write(dir, nil, false, time.Now()); err != nil {
		t.Fatal(err)
	}
	for _, jsonOut := range []bool{false, true} {
		out := runConfig(t, dir, jsonOut, false)
		var doc struct {
			Services map[string]struct {
				Volumes []struct {
					Type string         `json:"type" yaml:"type"`
					Bind map[string]any `json:"bind" yaml:"bind"`
				} `json:"volumes" yaml:"volumes"`
			} `json:"services" yaml:"services"`
		}
		var err error
		if jsonOut {
			err = json.Unmarshal(out, &doc)
		} else {
			err = yaml.Unmarshal(out, &doc)
		}
		if err != nil {
			t.Fatal(err)
		}
		binds := 0
		for name, s := range doc.Services {
			for _, v := range s.Volumes {
				if v.Type != "bind" {
					continue
				}
				binds++
				if v.Bind["create_host_path"] != true {
					t.Errorf("json=%v: %s: bind mount without create_host_path: true: %v", jsonOut, name, v.Bind)
				}
			}
		}
		if binds < 3 {
			t.Fatalf("json=%v: only %d bind mounts", jsonOut, binds)
		}
	}
}

// The structural edit changes nothing but the binds: the document reads
// the same apart from the added field, and JSON keeps its key order.
func TestWithCreateHostPathChangesOnlyBinds(t *testing.T) {
	src := []byte(`{
  "name": "x",
  "services": {
    "a": {
      "image": "i\u003cb\u003e\u0026 é",
      "mem_limit": 1073741824,
      "x": null,
      "ok": false,
      "volumes": [
        {
          "type": "bind",
          "source": "/s",
          "target": "/t",
          "bind": {}
        },
        {
          "type": "volume",
          "source": "v",
          "target": "/v"
        }
      ]
    }
  }
}`)
	out, err := withCreateHostPath(src, true)
	if err != nil {
		t.Fatal(err)
	}
	want := strings.Replace(string(src), `"bind": {}`, "\"bind\": {\n            \"create_host_path\": true\n          }", 1)
	if string(out) != want {
		t.Fatalf("got\n%s\nwant\n%s", out, want)
	}
	y := []byte("services:\n  a:\n    image: i\n    volumes:\n      - type: bind\n        source: /s\n        target: /t\n        bind: {}\n")
	out, err = withCreateHostPath(y, false)
	if err != nil {
		t.Fatal(err)
	}
	if want := strings.Replace(string(y), "bind: {}\n", "bind:\n          create_host_path: true\n", 1); string(out) != want {
		t.Fatalf("got\n%s\nwant\n%s", out, want)
	}
}

// env get and config resolve ${VAR} and bare KEY lines the same way: the
// process environment first, then the file, as docker compose does.
func TestEnvGetAndConfigAgree(t *testing.T) {
	dir := t.TempDir()
	if _, err := initcmd.Write(dir, nil, false, time.Now()); err != nil {
		t.Fatal(err)
	}
	t.Setenv("DIFYCTL_T_HOST", "from-process")
	f, _ := os.OpenFile(dir+"/.env", os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString("CONSOLE_API_URL=http://${DIFYCTL_T_HOST}:1\nDIFYCTL_T_HOST=from-file\n")
	f.Close()
	d, err := envgen.ReadFile(dir + "/.env")
	if err != nil {
		t.Fatal(err)
	}
	got, _ := d.Get("CONSOLE_API_URL")
	var p struct {
		Services map[string]struct {
			Environment map[string]*string `json:"environment"`
		} `json:"services"`
	}
	if err := json.Unmarshal(runConfig(t, dir, true, true), &p); err != nil {
		t.Fatal(err)
	}
	cfg := p.Services["api"].Environment["CONSOLE_API_URL"]
	if cfg == nil || *cfg != got || got != "http://from-process:1" {
		t.Fatalf("env get reads %q, config %v", got, cfg)
	}
}

// config maps its flags onto its options.
func TestFlagMapping(t *testing.T) {
	dir := t.TempDir()
	if _, err := initcmd.Write(dir, nil, false, time.Now()); err != nil {
		t.Fatal(err)
	}
	f := &cmdutil.Factory{Getenv: func(string) string { return "" }, ProjectDir: dir, Output: cmdutil.OutputJSON}
	f.IOStreams, _, _, _ = iostreams.Test()
	var got *Options
	cmd := NewCmd(f, func(_ context.Context, o *Options) error { got = o; return nil })
	cmd.SetArgs([]string{"--profile", "mysql", "--profile", "qdrant", "--show-secrets"})
	if err := cmd.Execute(); err != nil {
		t.Fatal(err)
	}
	if !got.ShowSecrets || !got.JSON || got.Load.ProjectDir != dir || !slices.Contains(got.Load.Profiles, "mysql") || !slices.Contains(got.Load.Profiles, "qdrant") {
		t.Fatalf("%+v", got)
	}
	cmd = NewCmd(f, func(context.Context, *Options) error { return nil })
	cmd.SetArgs([]string{"--profile", "no-such-profile"})
	cmd.SetErr(new(strings.Builder))
	cmd.SetOut(new(strings.Builder))
	if err := cmd.Execute(); cmdutil.ExitCode(err) != cmdutil.ExitUsage {
		t.Fatalf("unknown profile: %v", err)
	}
}
