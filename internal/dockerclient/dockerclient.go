// Package dockerclient opens the connection to the Docker engine the way the
// docker CLI would: DOCKER_HOST first, then DOCKER_CONTEXT (or the current
// context in the CLI's config.json), then the default local socket, with API
// version negotiation so that one binary talks to old and new engines alike.
package dockerclient

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/moby/moby/client"

	"github.com/difyctl/difyctl/internal/dockerconfig"
)

// Endpoint is where the engine is and how it was chosen.
type Endpoint struct {
	Host    string // e.g. unix:///var/run/docker.sock; empty means the client's default
	Context string // the docker context it came from, if any
	Source  string // "DOCKER_HOST", "DOCKER_CONTEXT", "config.json", "default"
}

// ResolveEndpoint finds the engine endpoint from the environment and the
// docker CLI configuration, without connecting.
func ResolveEndpoint(getenv func(string) string) (Endpoint, error) {
	if h := getenv("DOCKER_HOST"); h != "" {
		return Endpoint{Host: h, Source: "DOCKER_HOST"}, nil
	}
	cfgDir := dockerconfig.Dir(getenv)
	name, source := getenv("DOCKER_CONTEXT"), "DOCKER_CONTEXT"
	if name == "" {
		cfg, err := dockerconfig.Load(cfgDir)
		if err != nil {
			return Endpoint{}, err
		}
		name, source = cfg.CurrentContext, "config.json"
	}
	if name == "" || name == "default" {
		return Endpoint{Source: "default"}, nil
	}
	sum := sha256.Sum256([]byte(name))
	metaPath := filepath.Join(cfgDir, "contexts", "meta", hex.EncodeToString(sum[:]), "meta.json")
	b, err := os.ReadFile(metaPath)
	if err != nil {
		return Endpoint{}, fmt.Errorf("docker context %q (from %s) not found: %w; list contexts with \"docker context ls\"", name, source, err)
	}
	var meta struct {
		Endpoints map[string]struct {
			Host string `json:"Host"`
		} `json:"Endpoints"`
	}
	if err := json.Unmarshal(b, &meta); err != nil {
		return Endpoint{}, fmt.Errorf("docker context %q: reading %s: %w", name, metaPath, err)
	}
	ep, ok := meta.Endpoints["docker"]
	if !ok || ep.Host == "" {
		return Endpoint{}, fmt.Errorf("docker context %q has no docker endpoint", name)
	}
	return Endpoint{Host: ep.Host, Context: name, Source: source}, nil
}

// New opens a client for the resolved endpoint. TLS settings and
// DOCKER_API_VERSION come from the environment as for the docker CLI; the API
// version is otherwise negotiated on first use.
func New(getenv func(string) string) (*client.Client, Endpoint, error) {
	ep, err := ResolveEndpoint(getenv)
	if err != nil {
		return nil, ep, err
	}
	opts := []client.Opt{client.FromEnv, client.WithAPIVersionNegotiation()}
	if ep.Host != "" {
		opts = append(opts, client.WithHost(ep.Host))
	}
	cli, err := client.New(opts...)
	if err != nil {
		return nil, ep, fmt.Errorf("docker client for %s: %w", ep.describe(), err)
	}
	if ep.Host == "" {
		ep.Host = cli.DaemonHost()
	}
	return cli, ep, nil
}

func (ep Endpoint) describe() string {
	if ep.Context != "" {
		return fmt.Sprintf("context %q (%s)", ep.Context, ep.Host)
	}
	if ep.Host != "" {
		return ep.Host
	}
	return "the default socket"
}

// EngineInfo is what difyctl reports about the engine.
type EngineInfo struct {
	Host          string `json:"host"`
	Version       string `json:"version"`
	APIVersion    string `json:"apiVersion"`    // the highest the engine speaks
	MinAPIVersion string `json:"minAPIVersion"` // the lowest it accepts
	ClientAPI     string `json:"clientAPI"`     // the version difyctl negotiated
	OS            string `json:"os"`
	Arch          string `json:"arch"`
}

// ErrUnreachable marks an engine that did not answer.
var ErrUnreachable = errors.New("docker engine unreachable")

// Probe pings the engine (negotiating the API version) and reads its version,
// bounded by timeout.
func Probe(ctx context.Context, cli *client.Client, ep Endpoint, timeout time.Duration) (EngineInfo, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if _, err := cli.Ping(ctx, client.PingOptions{NegotiateAPIVersion: true}); err != nil {
		return EngineInfo{Host: ep.Host}, fmt.Errorf("%w at %s: %v", ErrUnreachable, ep.describe(), firstLine(err))
	}
	v, err := cli.ServerVersion(ctx, client.ServerVersionOptions{})
	if err != nil {
		return EngineInfo{Host: ep.Host}, fmt.Errorf("%w at %s: %v", ErrUnreachable, ep.describe(), firstLine(err))
	}
	return EngineInfo{
		Host:          ep.Host,
		Version:       v.Version,
		APIVersion:    v.APIVersion,
		MinAPIVersion: v.MinAPIVersion,
		ClientAPI:     cli.ClientVersion(),
		OS:            v.Os,
		Arch:          v.Arch,
	}, nil
}

// UnreachableHint tells an operator what to do about an unreachable engine.
const UnreachableHint = "start the engine (systemctl start docker, or dockerd &) or point DOCKER_HOST / DOCKER_CONTEXT at a running one"

func firstLine(err error) string {
	s := err.Error()
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	return s
}
