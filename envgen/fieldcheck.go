package envgen

import (
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// Per-value checks. `env validate` applies them to a whole .env; the setup
// wizard applies the same functions to one answer at a time, so the two never
// disagree about what a port, a public URL or a replacement secret may be.

// PublishedPorts are the variables holding host ports the default services
// publish; no two may be the same port.
var PublishedPorts = []string{"EXPOSE_NGINX_PORT", "EXPOSE_NGINX_SSL_PORT", "EXPOSE_PLUGIN_DEBUGGING_PORT"}

// OriginURLs are the variables Dify takes as the public origin of a
// deployment (scheme://host[:port]): it appends its own paths to them, so a
// path, a query, a fragment or credentials in them produce broken links or
// leak a password into every page.
var OriginURLs = []string{"CONSOLE_API_URL", "CONSOLE_WEB_URL", "SERVICE_API_URL", "APP_API_URL", "APP_WEB_URL", "FILES_URL", "TRIGGER_URL"}

// SecretChars are the characters a secret the operator chooses may use:
// REDIS_PASSWORD is embedded in CELERY_BROKER_URL, and .env values are read by
// shells and compose interpolation.
const SecretChars = "letters, digits and - _ . + = ~"

// CheckPort accepts a port written canonically: a decimal integer 1-65535
// without sign, leading zeros or spaces ("+80" and "0080" would be published
// as typed and compared as strings).
func CheckPort(v string) error {
	if p := portProblem(v); p != "" {
		return fmt.Errorf("%q is %s", v, p)
	}
	return nil
}

// portProblem is what is wrong with v as a port, or "".
func portProblem(v string) string {
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > 65535 {
		return "not a port (1-65535)"
	}
	if c := strconv.Itoa(n); c != v {
		return "not a port (1-65535) as written; write " + c
	}
	return ""
}

// CheckOriginURL accepts http(s)://host[:port] with an optional trailing
// slash: the form Dify's public URL variables take.
func CheckOriginURL(v string) error {
	u, err := url.Parse(v)
	if err != nil {
		if strings.Contains(v, "@") { // do not repeat what may be a password
			return errors.New("the URL is not valid and seems to carry credentials (user:password@); give only scheme://host[:port]")
		}
		return fmt.Errorf("%q is not a URL: %v", v, errors.Unwrap(err))
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return fmt.Errorf("%q: use http://host or https://host", v)
	case u.Opaque != "" || u.Hostname() == "":
		return fmt.Errorf("%q has no host name: use http(s)://host", v)
	case u.User != nil:
		return fmt.Errorf("the URL carries credentials (user:password@); Dify would show them in every link, remove them")
	case u.Path != "" && u.Path != "/":
		return fmt.Errorf("%q has a path (%s); Dify adds its own paths, give only scheme://host[:port]", v, u.Path)
	case u.RawQuery != "" || u.ForceQuery:
		return fmt.Errorf("%q has a query (?...); give only scheme://host[:port]", v)
	case u.Fragment != "" || strings.Contains(v, "#"):
		return fmt.Errorf("%q has a fragment (#...); give only scheme://host[:port]", v)
	}
	if p := u.Port(); p != "" {
		if err := CheckPort(p); err != nil {
			return fmt.Errorf("%q: %v", v, err)
		}
	} else if strings.HasSuffix(u.Host, ":") {
		return fmt.Errorf("%q has an empty port", v)
	}
	return nil
}

// CheckSecret accepts a secret the operator chooses: at least 16 characters,
// only characters that survive inside a URL and a shell.
func CheckSecret(v string) error {
	if len(v) < minSecretLen {
		return fmt.Errorf("at least %d characters, please (%d given)", minSecretLen, len(v))
	}
	for _, r := range v {
		if !secretRune(r) {
			return fmt.Errorf("%q would break a URL or a shell; use %s", string(r), SecretChars)
		}
	}
	return nil
}

func secretRune(r rune) bool {
	return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_.+=~", r)
}

// DuplicatePort returns the first published-port variable of env whose port
// an earlier one already publishes, with that earlier one; "" when they are
// distinct, and the port. Unset variables take their template default.
func DuplicatePort(env map[string]string, schema *Schema) (dup, first, port string) {
	seen := map[string]string{}
	for _, k := range PublishedPorts {
		v, ok := env[k]
		if !ok || v == "" {
			if sv, found := schema.Lookup(k); found {
				v = sv.Default
			}
		}
		if v == "" {
			continue
		}
		if o, taken := seen[v]; taken {
			return k, o, v
		}
		seen[v] = k
	}
	return "", "", ""
}

// fieldFindings are the whole-file findings of the per-value checks.
func fieldFindings(d *Doc, env map[string]string, schema *Schema) []Finding {
	var out []Finding
	if dup, first, port := DuplicatePort(env, schema); dup != "" {
		out = append(out, Finding{Severity: Error, Var: dup, Line: d.Line(dup),
			Message: fmt.Sprintf("publishes host port %s, which %s publishes already", port, first),
			Fix:     fmt.Sprintf("choose another port for %s or %s", dup, first)})
	}
	return out
}

// originMsg is what is wrong with val as the public origin name takes, or
// "" (also for a variable that is no origin, and for an empty value: Dify
// then derives it from the request).
func originMsg(name, val string) string {
	if val == "" || !slices.Contains(OriginURLs, name) {
		return ""
	}
	u, err := url.Parse(val)
	if err != nil || u.Scheme == "" || u.Host == "" {
		return "" // checkType reports it
	}
	if err := CheckOriginURL(val); err != nil {
		return "is not a public origin: " + err.Error()
	}
	return ""
}
