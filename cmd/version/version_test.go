package version

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/difyctl/difyctl/internal/buildinfo"
	"github.com/difyctl/difyctl/internal/cmdutil"
	"github.com/difyctl/difyctl/internal/dockerclient"
	"github.com/difyctl/difyctl/internal/iostreams"
	"github.com/difyctl/difyctl/internal/release"
)

func TestRunText(t *testing.T) {
	io, _, out, _ := iostreams.Test()
	err := Run(context.Background(), &Options{
		IO:    io,
		Build: buildinfo.Info{Version: "1.2.3", Commit: "abc", Date: "2026-01-01", GoVersion: "go1.26", Platform: "linux/amd64"},
		Engine: func(context.Context) (dockerclient.EngineInfo, error) {
			return dockerclient.EngineInfo{Version: "20.10.24", APIVersion: "1.41", MinAPIVersion: "1.12", ClientAPI: "1.41", OS: "linux", Arch: "amd64"}, nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"1.2.3", "abc", "20.10.24", "API version: 1.41"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

func TestRunJSONEngineDown(t *testing.T) {
	io, _, out, _ := iostreams.Test()
	err := Run(context.Background(), &Options{
		IO: io, JSON: true, Build: buildinfo.Get(),
		Engine: func(context.Context) (dockerclient.EngineInfo, error) {
			return dockerclient.EngineInfo{}, errors.New("docker engine unreachable at x")
		},
	})
	if cmdutil.ExitCode(err) != cmdutil.ExitEngine {
		t.Fatalf("engine down: want exit 3, got %v", err)
	}
	var rep Report
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, out)
	}
	if rep.Engine != nil || !strings.Contains(rep.EngineError, "unreachable") || rep.Client.GoVersion == "" {
		t.Fatalf("unexpected report %+v", rep)
	}
}

func TestFlagsToOptions(t *testing.T) {
	f, _, _ := cmdutil.NewTestFactory(t.TempDir(), nil)
	f.Output = cmdutil.OutputJSON
	var got *Options
	cmd := NewCmd(f, func(_ context.Context, o *Options) error { got = o; return nil })
	cmd.SetArgs(nil)
	if err := cmd.Execute(); err != nil || got == nil || !got.JSON || got.Engine == nil || got.Build.Version == "" {
		t.Fatalf("%v %+v", err, got)
	}
}

func TestDifyRelease(t *testing.T) {
	dir := t.TempDir()
	io, _, out, _ := iostreams.Test()
	if err := release.Write(dir, release.Record{Release: "1.15.0", Source: release.SourceInit}); err != nil {
		t.Fatal(err)
	}
	if err := Run(context.Background(), &Options{IO: io, Dify: func() *DifyInfo { return difyInfo(dir, "shop") }}); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Catalogue:   1.15.0, 1.16.0 (default 1.16.0)", "Project:     shop", "Release:     1.15.0"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}
