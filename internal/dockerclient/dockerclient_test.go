package dockerclient

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func envOf(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestResolveEndpointDockerHostWins(t *testing.T) {
	ep, err := ResolveEndpoint(envOf(map[string]string{"DOCKER_HOST": "tcp://127.0.0.1:2375", "DOCKER_CONTEXT": "other"}))
	if err != nil {
		t.Fatal(err)
	}
	if ep.Host != "tcp://127.0.0.1:2375" || ep.Source != "DOCKER_HOST" {
		t.Fatalf("got %+v", ep)
	}
}

func writeContext(t *testing.T, cfgDir, name, host string) {
	t.Helper()
	sum := sha256.Sum256([]byte(name))
	dir := filepath.Join(cfgDir, "contexts", "meta", hex.EncodeToString(sum[:]))
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	meta := `{"Name":"` + name + `","Metadata":{},"Endpoints":{"docker":{"Host":"` + host + `","SkipTLSVerify":false}}}`
	if err := os.WriteFile(filepath.Join(dir, "meta.json"), []byte(meta), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestResolveEndpointContext(t *testing.T) {
	cfg := t.TempDir()
	writeContext(t, cfg, "remote", "unix:///run/other.sock")
	ep, err := ResolveEndpoint(envOf(map[string]string{"DOCKER_CONFIG": cfg, "DOCKER_CONTEXT": "remote"}))
	if err != nil {
		t.Fatal(err)
	}
	if ep.Host != "unix:///run/other.sock" || ep.Context != "remote" || ep.Source != "DOCKER_CONTEXT" {
		t.Fatalf("got %+v", ep)
	}

	// The CLI's current context is used when DOCKER_CONTEXT is unset.
	if err := os.WriteFile(filepath.Join(cfg, "config.json"), []byte(`{"currentContext":"remote"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	ep, err = ResolveEndpoint(envOf(map[string]string{"DOCKER_CONFIG": cfg}))
	if err != nil || ep.Host != "unix:///run/other.sock" || ep.Source != "config.json" {
		t.Fatalf("got %+v, %v", ep, err)
	}
}

func TestResolveEndpointDefaultAndMissing(t *testing.T) {
	cfg := t.TempDir()
	ep, err := ResolveEndpoint(envOf(map[string]string{"DOCKER_CONFIG": cfg}))
	if err != nil || ep.Host != "" || ep.Source != "default" {
		t.Fatalf("got %+v, %v", ep, err)
	}
	ep, err = ResolveEndpoint(envOf(map[string]string{"DOCKER_CONFIG": cfg, "DOCKER_CONTEXT": "default"}))
	if err != nil || ep.Source != "default" {
		t.Fatalf("got %+v, %v", ep, err)
	}
	_, err = ResolveEndpoint(envOf(map[string]string{"DOCKER_CONFIG": cfg, "DOCKER_CONTEXT": "nope"}))
	if err == nil || !strings.Contains(err.Error(), `"nope"`) || !strings.Contains(err.Error(), "docker context ls") {
		t.Fatalf("want an error naming the context and a hint, got %v", err)
	}
}
