package dockerclient

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/difyctl/difyctl/internal/dockerconfig"
)

// TLSSpec is the TLS material for an engine connection, found as the docker
// CLI finds it.
type TLSSpec struct {
	On         bool   // TLS at all
	SkipVerify bool   // do not check the engine's certificate
	Dir        string // where ca.pem, cert.pem, key.pem are looked for
	From       string // what turned TLS on, for messages
	// CAOptional: a missing ca.pem means the system roots (contexts), not an
	// error (DOCKER_TLS_VERIFY, where the CLI requires ca.pem).
	CAOptional bool
}

// Enabled reports whether the connection uses TLS.
func (s *TLSSpec) Enabled() bool { return s != nil && s.On }

// envTLS reads DOCKER_TLS_VERIFY, DOCKER_TLS and DOCKER_CERT_PATH as the
// docker CLI does: DOCKER_TLS_VERIFY (any value) turns TLS on with
// verification; DOCKER_TLS turns it on without; DOCKER_CERT_PATH alone does
// not turn it on; the certificates are in DOCKER_CERT_PATH, default the
// CLI's configuration directory (~/.docker).
func envTLS(getenv func(string) string) *TLSSpec {
	verify, plain := getenv("DOCKER_TLS_VERIFY") != "", getenv("DOCKER_TLS") != ""
	if !verify && !plain {
		return nil
	}
	dir := getenv("DOCKER_CERT_PATH")
	if dir == "" {
		dir = dockerconfig.Dir(getenv)
	}
	from := "DOCKER_TLS_VERIFY"
	if !verify {
		from = "DOCKER_TLS"
	}
	return &TLSSpec{On: true, SkipVerify: !verify, Dir: dir, From: from}
}

// contextTLS reads a context's TLS material (contexts/tls/<id>/docker): TLS
// is on when there is material or SkipTLSVerify is set.
func contextTLS(dir string, skip bool) (*TLSSpec, error) {
	has := false
	for _, n := range []string{"ca.pem", "cert.pem", "key.pem"} {
		if _, err := os.Stat(filepath.Join(dir, n)); err == nil {
			has = true
		} else if !errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("TLS material %s: %w", filepath.Join(dir, n), err)
		}
	}
	if !has && !skip {
		return nil, nil
	}
	return &TLSSpec{On: true, SkipVerify: skip, Dir: dir, From: "the context's TLS material", CAOptional: true}, nil
}

// Config builds the client's TLS configuration: ca.pem as the only root
// (system roots only for a context without one), cert.pem and key.pem as the
// client certificate when both exist, TLS 1.2 at least.
func (s *TLSSpec) Config() (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: s.SkipVerify}
	caPath := filepath.Join(s.Dir, "ca.pem")
	ca, err := os.ReadFile(caPath)
	switch {
	case err == nil:
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(ca) {
			return nil, fmt.Errorf("%s (TLS from %s) holds no PEM certificate", caPath, s.From)
		}
		cfg.RootCAs = pool
	case s.SkipVerify || (s.CAOptional && errors.Is(err, os.ErrNotExist)):
	default:
		return nil, fmt.Errorf("TLS is on (%s) but the CA certificate %s cannot be read: %w; set DOCKER_CERT_PATH to the directory holding ca.pem, cert.pem and key.pem", s.From, caPath, err)
	}
	certPath, keyPath := filepath.Join(s.Dir, "cert.pem"), filepath.Join(s.Dir, "key.pem")
	_, cerr := os.Stat(certPath)
	_, kerr := os.Stat(keyPath)
	if cerr == nil && kerr == nil {
		pair, err := tls.LoadX509KeyPair(certPath, keyPath)
		if err != nil {
			return nil, fmt.Errorf("client certificate %s / %s (TLS from %s): %w", certPath, keyPath, s.From, err)
		}
		cfg.Certificates = []tls.Certificate{pair}
	} else if (cerr == nil) != (kerr == nil) {
		return nil, fmt.Errorf("client certificate: %s and %s must both exist (TLS from %s)", certPath, keyPath, s.From)
	}
	return cfg, nil
}
