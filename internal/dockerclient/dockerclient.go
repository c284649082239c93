// Package dockerclient opens the connection to the Docker engine the way the
// docker CLI would: DOCKER_HOST first, then DOCKER_CONTEXT (or the current
// context in the CLI's config.json), then the default local socket, with API
// version negotiation so that one binary talks to old and new engines alike.
//
// The connection is secured as the docker CLI secures it (tls.go):
// DOCKER_TLS_VERIFY / DOCKER_TLS with DOCKER_CERT_PATH (default ~/.docker),
// or a context's TLS material and SkipTLSVerify. Unlike the CLI, a tcp://
// engine without verified TLS is refused unless the operator allows it
// (--engine-insecure or DIFYCTL_ENGINE_INSECURE=1), since container-create
// bodies carry every .env secret. ssh:// hosts go through `docker system
// dial-stdio` over ssh (ssh.go), as the CLI's connection helper does.
package dockerclient

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/moby/moby/client"

	"github.com/difyctl/difyctl/internal/dockerconfig"
	"github.com/difyctl/difyctl/internal/termsafe"
)

// Endpoint is where the engine is and how it was chosen.
type Endpoint struct {
	Host    string // e.g. unix:///var/run/docker.sock; empty means the client's default
	Context string // the docker context it came from, if any
	Source  string // "DOCKER_HOST", "DOCKER_CONTEXT", "config.json", "default"
	TLS     *TLSSpec
	// Warning, when set, says the connection is not verified and was
	// allowed only because the operator asked (--engine-insecure).
	Warning string
}

// ResolveEndpoint finds the engine endpoint from the environment and the
// docker CLI configuration, without connecting.
func ResolveEndpoint(getenv func(string) string) (Endpoint, error) {
	if h := getenv("DOCKER_HOST"); h != "" {
		return Endpoint{Host: h, Source: "DOCKER_HOST", TLS: envTLS(getenv)}, nil
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
		return Endpoint{Source: "default", TLS: envTLS(getenv)}, nil
	}
	sum := sha256.Sum256([]byte(name))
	id := hex.EncodeToString(sum[:])
	metaPath := filepath.Join(cfgDir, "contexts", "meta", id, "meta.json")
	b, err := os.ReadFile(metaPath)
	if err != nil {
		return Endpoint{}, fmt.Errorf("docker context %q (from %s) not found: %w; list contexts with \"docker context ls\"", name, source, err)
	}
	var meta struct {
		Endpoints map[string]struct {
			Host          string `json:"Host"`
			SkipTLSVerify bool   `json:"SkipTLSVerify"`
		} `json:"Endpoints"`
	}
	if err := json.Unmarshal(b, &meta); err != nil {
		return Endpoint{}, fmt.Errorf("docker context %q: reading %s: %w", name, metaPath, err)
	}
	ep, ok := meta.Endpoints["docker"]
	if !ok || ep.Host == "" {
		return Endpoint{}, fmt.Errorf("docker context %q has no docker endpoint", name)
	}
	spec, err := contextTLS(filepath.Join(cfgDir, "contexts", "tls", id, "docker"), ep.SkipTLSVerify)
	if err != nil {
		return Endpoint{}, fmt.Errorf("docker context %q: %w", name, err)
	}
	return Endpoint{Host: ep.Host, Context: name, Source: source, TLS: spec}, nil
}

// ConfigError: the endpoint is refused or misconfigured before any
// connection (scheme, TLS material, security rules); starting the engine
// would not help.
type ConfigError struct{ Err error }

func (e *ConfigError) Error() string { return e.Err.Error() }
func (e *ConfigError) Unwrap() error { return e.Err }

// Hint is what to do about err from New or Probe: nothing more for a
// configuration error (its message says it), else UnreachableHint.
func Hint(err error) string {
	var ce *ConfigError
	if errors.As(err, &ce) {
		return ""
	}
	return UnreachableHint
}

// InsecureEnv, set to 1 (or --engine-insecure), allows a tcp:// engine
// without verified TLS.
const InsecureEnv = "DIFYCTL_ENGINE_INSECURE"

// New opens a client for the resolved endpoint. The API version comes from
// DOCKER_API_VERSION, else is negotiated on first use.
func New(getenv func(string) string) (*client.Client, Endpoint, error) {
	ep, err := ResolveEndpoint(getenv)
	if err != nil {
		return nil, ep, &ConfigError{err}
	}
	if ep.Host == "" {
		ep.Host = client.DefaultDockerHost
	}
	opts, err := ep.options(getenv)
	if err != nil {
		return nil, ep, &ConfigError{err}
	}
	cli, err := client.New(opts...)
	if err != nil {
		return nil, ep, fmt.Errorf("docker client for %s: %w", ep.describe(), err)
	}
	return cli, ep, nil
}

// options checks the endpoint's scheme and security and returns the client
// options that connect to it.
func (ep *Endpoint) options(getenv func(string) string) ([]client.Opt, error) {
	opts := []client.Opt{client.WithAPIVersionNegotiation()}
	if v := getenv("DOCKER_API_VERSION"); v != "" {
		opts = append(opts, client.WithAPIVersion(v))
	}
	scheme, _, ok := strings.Cut(ep.Host, "://")
	if !ok {
		return nil, fmt.Errorf("engine host %q (from %s) has no scheme; use unix:///path, tcp://host:port or ssh://[user@]host", ep.Host, ep.Source)
	}
	insecureOK := isTrue(getenv(InsecureEnv))
	switch scheme {
	case "unix":
		opts = append(opts, client.WithHost(ep.Host))
		return opts, nil
	case "ssh":
		// ssh secures the channel; TLS settings do not apply (as in the CLI).
		helper, err := newSSHHelper(ep.Host)
		if err != nil {
			return nil, fmt.Errorf("engine host %s (from %s): %w", ep.Host, ep.Source, err)
		}
		return append(opts, client.WithHost("http://docker.example.com"), client.WithDialContext(helper.dial)), nil
	case "tcp":
		var cfg *tls.Config
		if ep.TLS != nil && ep.TLS.Enabled() {
			c, err := ep.TLS.Config()
			if err != nil {
				return nil, fmt.Errorf("engine %s (from %s): %w", ep.Host, ep.Source, err)
			}
			cfg = c
		}
		switch {
		case cfg != nil && !cfg.InsecureSkipVerify:
		case !insecureOK:
			return nil, fmt.Errorf("refusing engine %s (from %s): %s, so container settings (every .env secret) and registry credentials would be exposed on the network; "+
				"set DOCKER_TLS_VERIFY=1 and DOCKER_CERT_PATH to a directory with ca.pem, cert.pem and key.pem (or use a docker context with TLS material, or an ssh:// host), "+
				"or pass --engine-insecure to connect anyway", ep.Host, ep.sourceDesc(), insecureReason(cfg))
		default:
			ep.Warning = fmt.Sprintf("warning: the connection to the engine %s is not secured (%s); --engine-insecure allowed it", ep.Host, insecureReason(cfg))
		}
		if cfg != nil {
			opts = append(opts, client.WithHTTPClient(&http.Client{Transport: &http.Transport{TLSClientConfig: cfg}, CheckRedirect: client.CheckRedirect}))
		}
		return append(opts, client.WithHost(ep.Host)), nil
	case "npipe":
		return nil, fmt.Errorf("engine host %s (from %s): npipe:// is a Windows named pipe; on this host use unix://, tcp:// with TLS or ssh://", ep.Host, ep.sourceDesc())
	default:
		return nil, fmt.Errorf("engine host %s (from %s): unsupported scheme %q; use unix:///path, tcp://host:port (with TLS) or ssh://[user@]host as the docker CLI does", termsafe.String(ep.Host), ep.sourceDesc(), termsafe.String(scheme))
	}
}

func insecureReason(cfg *tls.Config) string {
	if cfg == nil {
		return "it is plain HTTP without TLS"
	}
	return "TLS does not verify the engine's certificate (DOCKER_TLS_VERIFY unset, DOCKER_TLS set, or the context's SkipTLSVerify)"
}

func isTrue(s string) bool {
	switch strings.ToLower(s) {
	case "1", "true", "yes", "on":
		return true
	}
	return false
}

func (ep Endpoint) sourceDesc() string {
	if ep.Context != "" {
		return fmt.Sprintf("docker context %q", ep.Context)
	}
	return ep.Source
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
	ping, err := cli.Ping(ctx, client.PingOptions{NegotiateAPIVersion: true})
	if err != nil {
		if looksLikeWebPage(err.Error()) {
			return EngineInfo{Host: ep.Host}, notEngine(ep)
		}
		return EngineInfo{Host: ep.Host}, fmt.Errorf("%w at %s: %s", ErrUnreachable, ep.describe(), termsafe.String(firstLine(err)))
	}
	if ping.APIVersion == "" {
		// Every Docker engine (and compatible) sends API-Version on /_ping.
		return EngineInfo{Host: ep.Host}, notEngine(ep)
	}
	v, err := cli.ServerVersion(ctx, client.ServerVersionOptions{})
	if err != nil {
		return EngineInfo{Host: ep.Host}, fmt.Errorf("%w at %s: %s", ErrUnreachable, ep.describe(), termsafe.String(firstLine(err)))
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

func notEngine(ep Endpoint) error {
	return fmt.Errorf("%w at %s (from %s): it answered HTTP but is not a Docker engine (no API-Version on /_ping: a web server or proxy on that address?)",
		ErrUnreachable, ep.describe(), ep.sourceDesc())
}

func looksLikeWebPage(s string) bool {
	l := strings.ToLower(s)
	return strings.Contains(l, "<!doctype") || strings.Contains(l, "<html") || strings.Contains(l, "<head") || strings.Contains(l, "<body")
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
