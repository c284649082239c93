// Package dockerconfig reads the docker CLI's configuration (config.json in
// DOCKER_CONFIG or ~/.docker): the current context, and the credentials for
// a registry, from the file itself or from a credential helper, the way the
// docker CLI finds them. Credentials only ever leave as the engine's
// X-Registry-Auth header value; nothing here prints them.
package dockerconfig

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/distribution/reference"
	"github.com/moby/moby/api/types/registry"
)

// File is the part of config.json difyctl uses.
type File struct {
	Path           string               `json:"-"`
	CurrentContext string               `json:"currentContext,omitempty"`
	Auths          map[string]authEntry `json:"auths,omitempty"`
	CredsStore     string               `json:"credsStore,omitempty"`
	CredHelpers    map[string]string    `json:"credHelpers,omitempty"`
}

type authEntry struct {
	Auth          string `json:"auth,omitempty"` // base64 of user:password
	Username      string `json:"username,omitempty"`
	Password      string `json:"password,omitempty"`
	IdentityToken string `json:"identitytoken,omitempty"`
}

// Dir is the docker CLI's configuration directory: DOCKER_CONFIG, or
// ~/.docker.
func Dir(getenv func(string) string) string {
	if d := getenv("DOCKER_CONFIG"); d != "" {
		return d
	}
	home := getenv("HOME")
	if home == "" {
		home, _ = os.UserHomeDir()
	}
	return filepath.Join(home, ".docker")
}

// Load reads dir/config.json; a missing file is an empty configuration.
func Load(dir string) (*File, error) {
	f := &File{Path: filepath.Join(dir, "config.json")}
	b, err := os.ReadFile(f.Path)
	if errors.Is(err, os.ErrNotExist) {
		return f, nil
	}
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(b, f); err != nil {
		return nil, fmt.Errorf("reading %s: %w", f.Path, err)
	}
	return f, nil
}

// dockerHubKey is the key the docker CLI stores Docker Hub credentials under.
const dockerHubKey = "https://index.docker.io/v1/"

// RegistryOf is the registry host an image reference points at
// ("docker.io" for Docker Hub).
func RegistryOf(image string) (string, error) {
	named, err := reference.ParseNormalizedNamed(image)
	if err != nil {
		return "", fmt.Errorf("image reference %q: %w", image, err)
	}
	return reference.Domain(named), nil
}

// RegistryAuth returns the X-Registry-Auth value for pulling image: the
// credentials config.json or its credential helper holds for the image's
// registry, or "" when there are none (anonymous pull).
func (f *File) RegistryAuth(ctx context.Context, image string) (string, error) {
	host, err := RegistryOf(image)
	if err != nil {
		return "", err
	}
	ac, err := f.credentials(ctx, host)
	if err != nil || ac == nil {
		return "", err
	}
	b, err := json.Marshal(ac)
	if err != nil {
		return "", err
	}
	return base64.URLEncoding.EncodeToString(b), nil
}

// keys are the config.json keys a registry's credentials may be under.
func keys(host string) []string {
	if host == "docker.io" {
		return []string{dockerHubKey, "index.docker.io", "docker.io", "registry-1.docker.io", "https://index.docker.io", "https://registry-1.docker.io"}
	}
	return []string{host, "https://" + host, "http://" + host, "https://" + host + "/v1/", "https://" + host + "/v2/"}
}

func (f *File) credentials(ctx context.Context, host string) (*registry.AuthConfig, error) {
	server := host
	if host == "docker.io" {
		server = dockerHubKey
	}
	helper := f.CredsStore
	for _, k := range keys(host) {
		if h, ok := f.CredHelpers[k]; ok {
			helper = h
			break
		}
	}
	if helper != "" {
		return fromHelper(ctx, helper, server)
	}
	for _, k := range keys(host) {
		e, ok := f.Auths[k]
		if !ok {
			continue
		}
		ac := &registry.AuthConfig{Username: e.Username, Password: e.Password, IdentityToken: e.IdentityToken, ServerAddress: server}
		if e.Auth != "" {
			raw, err := base64.StdEncoding.DecodeString(e.Auth)
			if err != nil {
				return nil, fmt.Errorf("%s: the auth entry for %s is not base64: %w", f.Path, k, err)
			}
			user, pass, ok := strings.Cut(string(raw), ":")
			if !ok {
				return nil, fmt.Errorf("%s: the auth entry for %s is not user:password", f.Path, k)
			}
			ac.Username, ac.Password = user, pass
		}
		if ac.Username == "" && ac.Password == "" && ac.IdentityToken == "" {
			continue // e.g. an entry a credential helper left behind
		}
		return ac, nil
	}
	return nil, nil
}

// fromHelper asks docker-credential-<helper> for server's credentials (the
// server URL on stdin, JSON on stdout); "not found" means anonymous.
func fromHelper(ctx context.Context, helper, server string) (*registry.AuthConfig, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	prog := "docker-credential-" + helper
	cmd := exec.CommandContext(ctx, prog, "get")
	cmd.Stdin = strings.NewReader(server)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(out.String() + " " + errOut.String())
		if strings.Contains(strings.ToLower(msg), "credentials not found") {
			return nil, nil
		}
		if errors.Is(err, exec.ErrNotFound) {
			return nil, fmt.Errorf("credential helper %s (set in config.json) is not installed", prog)
		}
		return nil, fmt.Errorf("credential helper %s for %s failed: %v", prog, server, err) // its output may hold secrets: not shown
	}
	var creds struct {
		ServerURL string `json:"ServerURL"`
		Username  string `json:"Username"`
		Secret    string `json:"Secret"`
	}
	if err := json.Unmarshal(out.Bytes(), &creds); err != nil {
		return nil, fmt.Errorf("credential helper %s for %s: unreadable answer", prog, server)
	}
	ac := &registry.AuthConfig{ServerAddress: server}
	if creds.Username == "<token>" {
		ac.IdentityToken = creds.Secret
	} else {
		ac.Username, ac.Password = creds.Username, creds.Secret
	}
	return ac, nil
}
