package dockerconfig

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/moby/moby/api/types/registry"
)

func writeConfig(t *testing.T, body string) *File {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func decode(t *testing.T, v string) registry.AuthConfig {
	t.Helper()
	var ac registry.AuthConfig
	b, err := base64.URLEncoding.DecodeString(v)
	if err != nil || json.Unmarshal(b, &ac) != nil {
		t.Fatalf("not base64url JSON: %q (%v)", v, err)
	}
	return ac
}

func TestDir(t *testing.T) {
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	if d := Dir(env(map[string]string{"DOCKER_CONFIG": "/etc/dc", "HOME": "/root"})); d != "/etc/dc" {
		t.Fatal(d)
	}
	if d := Dir(env(map[string]string{"HOME": "/home/op"})); d != "/home/op/.docker" {
		t.Fatal(d)
	}
	f, err := Load(t.TempDir())
	if err != nil || f.CurrentContext != "" || len(f.Auths) != 0 {
		t.Fatalf("missing config.json: %+v %v", f, err)
	}
}

func TestRegistryAuthFromFile(t *testing.T) {
	up := base64.StdEncoding.EncodeToString([]byte("hubuser:hub:pass")) // a password may hold ':'
	f := writeConfig(t, `{"auths":{
		"https://index.docker.io/v1/":{"auth":"`+up+`"},
		"registry.example.com:5000":{"auth":"`+base64.StdEncoding.EncodeToString([]byte("op:s3cret"))+`"},
		"https://tokens.example.com":{"identitytoken":"tok"},
		"leftover.example.com":{}
	}}`)
	ctx := context.Background()
	for _, c := range []struct {
		image, user, pass, token, server string
	}{
		{"langgenius/dify-api:1.16.0", "hubuser", "hub:pass", "", "https://index.docker.io/v1/"},
		{"redis:6-alpine", "hubuser", "hub:pass", "", "https://index.docker.io/v1/"},
		{"registry.example.com:5000/dify/api:1", "op", "s3cret", "", "registry.example.com:5000"},
		{"tokens.example.com/x", "", "", "tok", "tokens.example.com"},
	} {
		v, err := f.RegistryAuth(ctx, c.image)
		if err != nil {
			t.Fatalf("%s: %v", c.image, err)
		}
		ac := decode(t, v)
		if ac.Username != c.user || ac.Password != c.pass || ac.IdentityToken != c.token || ac.ServerAddress != c.server {
			t.Errorf("%s: %+v", c.image, ac)
		}
	}
	for _, img := range []string{"ghcr.io/x/y:1", "leftover.example.com/x"} {
		if v, err := f.RegistryAuth(ctx, img); err != nil || v != "" {
			t.Errorf("%s: want anonymous, got %q %v", img, v, err)
		}
	}
	if _, err := f.RegistryAuth(ctx, "Not A Reference"); err == nil {
		t.Error("a bad reference is an error")
	}
	bad := writeConfig(t, `{"auths":{"bad.example.com":{"auth":"%%%"}}}`)
	if _, err := bad.RegistryAuth(ctx, "bad.example.com/x"); err == nil || strings.Contains(err.Error(), "%%%") {
		t.Errorf("undecodable auth: %v", err)
	}
}

// A credential helper answers for the hosts it knows; "credentials not
// found" means an anonymous pull; credHelpers beats credsStore.
func TestRegistryAuthFromHelpers(t *testing.T) {
	bin := t.TempDir()
	helper := `#!/bin/sh
read server
case "$server" in
  reg.example.com) echo '{"ServerURL":"reg.example.com","Username":"helper-user","Secret":"helper-secret"}' ;;
  https://index.docker.io/v1/) echo '{"ServerURL":"https://index.docker.io/v1/","Username":"<token>","Secret":"hub-token"}' ;;
  *) echo "credentials not found in native keychain"; exit 1 ;;
esac
`
	for _, name := range []string{"docker-credential-store", "docker-credential-special"} {
		if err := os.WriteFile(filepath.Join(bin, name), []byte(helper), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("PATH", bin+string(os.PathListSeparator)+os.Getenv("PATH"))
	ctx := context.Background()
	f := writeConfig(t, `{"credsStore":"store","credHelpers":{"other.example.com":"missing"}}`)
	v, err := f.RegistryAuth(ctx, "reg.example.com/a/b:1")
	if ac := decode(t, v); err != nil || ac.Username != "helper-user" || ac.Password != "helper-secret" {
		t.Fatalf("%+v %v", ac, err)
	}
	v, err = f.RegistryAuth(ctx, "nginx:latest")
	if ac := decode(t, v); err != nil || ac.IdentityToken != "hub-token" || ac.Username != "" {
		t.Fatalf("token: %+v %v", ac, err)
	}
	if v, err := f.RegistryAuth(ctx, "unknown.example.com/x"); err != nil || v != "" {
		t.Fatalf("not found: %q %v", v, err)
	}
	if _, err := f.RegistryAuth(ctx, "other.example.com/x"); err == nil || !strings.Contains(err.Error(), "docker-credential-missing") {
		t.Fatalf("missing helper: %v", err)
	}
}
