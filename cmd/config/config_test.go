package config

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/compose-spec/compose-go/v2/loader"
	"github.com/compose-spec/compose-go/v2/types"

	"github.com/difyctl/difyctl/cmd/initcmd"
	"github.com/difyctl/difyctl/compose"
	"github.com/difyctl/difyctl/envgen"
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
