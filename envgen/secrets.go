package envgen

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"io"
	"math/big"
)

const alnum = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

// generators make secrets from crypto/rand. Passwords and keys are
// alphanumeric so they survive inside URLs (CELERY_BROKER_URL) and shells.
var generators = map[string]func(io.Reader) (string, error){
	"pw":  func(r io.Reader) (string, error) { return randString(r, alnum, 32) },
	"key": func(r io.Reader) (string, error) { return randString(r, alnum, 40) },
	// As `openssl rand -base64 42`, what upstream documents for SECRET_KEY.
	"b64_42": func(r io.Reader) (string, error) {
		b := make([]byte, 42)
		if _, err := io.ReadFull(r, b); err != nil {
			return "", err
		}
		return base64.StdEncoding.EncodeToString(b), nil
	},
	// As Python's secrets.token_urlsafe(32).
	"urlsafe32": func(r io.Reader) (string, error) {
		b := make([]byte, 32)
		if _, err := io.ReadFull(r, b); err != nil {
			return "", err
		}
		return base64.RawURLEncoding.EncodeToString(b), nil
	},
	// For servers that insist on upper, lower, digit and symbol (OpenSearch, openGauss).
	"complexpw": func(r io.Reader) (string, error) {
		s, err := randString(r, alnum, 28)
		return "Aa1-" + s, err
	},
}

// Generate makes a secret with the named generator.
func generateSecret(kind string, r io.Reader) (string, error) {
	g, ok := generators[kind]
	if !ok {
		return "", fmt.Errorf("no generator %q", kind)
	}
	return g(r)
}

// randString draws n characters uniformly from chars.
func randString(r io.Reader, chars string, n int) (string, error) {
	b := make([]byte, n)
	max := big.NewInt(int64(len(chars)))
	for i := range b {
		x, err := rand.Int(r, max)
		if err != nil {
			return "", err
		}
		b[i] = chars[x.Int64()]
	}
	return string(b), nil
}

// Generated reports whether a variable's secret kind is one difyctl generates.
func (v *Var) Generated() bool {
	_, ok := generators[v.Secret]
	return ok
}

// GenerateSecret makes a fresh value for v with its own generator (what
// init writes for it).
func GenerateSecret(v *Var, r io.Reader) (string, error) {
	if !v.Generated() {
		return "", fmt.Errorf("%s is not a secret difyctl generates", v.Name)
	}
	return generateSecret(v.Secret, r)
}
