package dockerclient

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestEngineSecurityRules(t *testing.T) {
	home := t.TempDir() // no ~/.docker/ca.pem
	certs := t.TempDir()
	for _, tc := range []struct {
		name    string
		env     map[string]string
		wantErr string // "" = accepted
		warn    bool
	}{
		{"unix socket", map[string]string{"DOCKER_HOST": "unix:///run/x.sock"}, "", false},
		{"plain tcp refused", map[string]string{"DOCKER_HOST": "tcp://127.0.0.1:2375"}, "plain HTTP without TLS", false},
		{"plain tcp allowed with the insecure switch", map[string]string{"DOCKER_HOST": "tcp://127.0.0.1:2375", InsecureEnv: "1"}, "", true},
		{"verify without ca.pem (CLI default ~/.docker)", map[string]string{"DOCKER_HOST": "tcp://127.0.0.1:2376", "DOCKER_TLS_VERIFY": "1"}, filepath.Join(home, ".docker", "ca.pem"), false},
		{"cert path without verify is not verified", map[string]string{"DOCKER_HOST": "tcp://127.0.0.1:2376", "DOCKER_CERT_PATH": certs}, "plain HTTP", false},
		{"DOCKER_TLS without verify", map[string]string{"DOCKER_HOST": "tcp://127.0.0.1:2376", "DOCKER_TLS": "1", "DOCKER_CERT_PATH": certs}, "does not verify", false},
		{"unknown scheme", map[string]string{"DOCKER_HOST": "foo://bar"}, `unsupported scheme "foo"`, false},
		{"http scheme", map[string]string{"DOCKER_HOST": "http://127.0.0.1:80"}, `unsupported scheme "http"`, false},
		{"no scheme", map[string]string{"DOCKER_HOST": "127.0.0.1:2375"}, "has no scheme", false},
		{"ssh with a password", map[string]string{"DOCKER_HOST": "ssh://u:pw@host"}, "password in the ssh URL", false},
		{"ssh with a path", map[string]string{"DOCKER_HOST": "ssh://u@host/var/run"}, "without a path", false},
		{"ssh", map[string]string{"DOCKER_HOST": "ssh://nobody@127.0.0.1:2222"}, "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.env["HOME"] = home
			cli, ep, err := New(envOf(tc.env))
			if tc.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				cli.Close()
				if (ep.Warning != "") != tc.warn {
					t.Fatalf("warning %q", ep.Warning)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("want an error with %q, got %v", tc.wantErr, err)
			}
		})
	}
}

func TestSSHArgs(t *testing.T) {
	h, err := newSSHHelper("ssh://nobody@127.0.0.1:2222")
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(h.args, " "); got != "-o ConnectTimeout=30 -T -l nobody -p 2222 -- 127.0.0.1 docker system dial-stdio" {
		t.Fatal(got)
	}
}

func TestContextTLS(t *testing.T) {
	cfg := t.TempDir()
	writeContext(t, cfg, "remote", "tcp://127.0.0.1:2376")
	env := envOf(map[string]string{"DOCKER_CONFIG": cfg, "DOCKER_CONTEXT": "remote"})
	if _, _, err := New(env); err == nil || !strings.Contains(err.Error(), `docker context "remote"`) {
		t.Fatalf("a tcp context without TLS: %v", err)
	}
	// TLS material in the context's store turns TLS on (system roots without ca.pem).
	sum := sha256.Sum256([]byte("remote"))
	dir := filepath.Join(cfg, "contexts", "tls", hex.EncodeToString(sum[:]), "docker")
	os.MkdirAll(dir, 0o700)
	os.WriteFile(filepath.Join(dir, "ca.pem"), []byte("junk"), 0o600)
	ep, err := ResolveEndpoint(env)
	if err != nil || !ep.TLS.Enabled() || ep.TLS.SkipVerify {
		t.Fatalf("%+v %v", ep.TLS, err)
	}
	if _, _, err := New(env); err == nil || !strings.Contains(err.Error(), "no PEM certificate") {
		t.Fatalf("a bad ca.pem: %v", err)
	}
}
