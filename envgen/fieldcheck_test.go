package envgen

import (
	"strings"
	"testing"
)

func TestCheckPort(t *testing.T) {
	for _, ok := range []string{"1", "80", "443", "8080", "65535"} {
		if err := CheckPort(ok); err != nil {
			t.Errorf("CheckPort(%q) = %v", ok, err)
		}
	}
	for _, bad := range []string{"", "0", "+80", "0080", "-1", " 80", "80 ", "65536", "99999", "8o", "0x50"} {
		if err := CheckPort(bad); err == nil || !strings.Contains(err.Error(), "not a port (1-65535)") {
			t.Errorf("CheckPort(%q) = %v, want a refusal", bad, err)
		}
	}
	if err := CheckPort("0080"); !strings.Contains(err.Error(), "write 80") {
		t.Errorf("no canonical form suggested: %v", err)
	}
}

func TestCheckOriginURL(t *testing.T) {
	for _, ok := range []string{"http://dify.local", "https://dify.example.com", "https://dify.example.com/", "http://10.0.0.5:8080", "http://[::1]:8080"} {
		if err := CheckOriginURL(ok); err != nil {
			t.Errorf("CheckOriginURL(%q) = %v", ok, err)
		}
	}
	for bad, want := range map[string]string{
		"https://example.com/some/path?x=1#frag": "has a path",
		"https://example.com?x=1":                "has a query",
		"https://example.com?":                   "has a query",
		"https://example.com#frag":               "has a fragment",
		"https://example.com#":                   "has a fragment",
		"http://user:pass@host.com":              "credentials",
		"http://:8080":                           "no host name",
		"http://host:99999":                      "not a port",
		"http://host:":                           "empty port",
		"http://host:+80":                        "port",
		"ftp://host":                             "use http://host or https://host",
		"host.com":                               "use http://host",
		"http:host.com":                          "no host name",
	} {
		err := CheckOriginURL(bad)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("CheckOriginURL(%q) = %v, want %q", bad, err, want)
		}
		if err != nil && strings.Contains(err.Error(), "pass@") {
			t.Errorf("the refusal repeats the password: %v", err)
		}
	}
}

func TestCheckSecret(t *testing.T) {
	if err := CheckSecret("operator-chosen_secret.0123+=~"); err != nil {
		t.Error(err)
	}
	for bad, want := range map[string]string{
		"short":                    "at least 16 characters",
		"with@at-sign-0123456789":  "would break a URL",
		"with space 0123456789abc": "would break a URL",
		"slash/0123456789abcdef":   "would break a URL",
		"dollar$0123456789abcdef":  "would break a URL",
		"ümlaut-0123456789abcdef":  "would break a URL",
	} {
		if err := CheckSecret(bad); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("CheckSecret(%q) = %v, want %q", bad, err, want)
		}
	}
}

func TestValidateUsesFieldChecks(t *testing.T) {
	d, err := Parse([]byte("EXPOSE_NGINX_PORT=+80\nEXPOSE_NGINX_SSL_PORT=0080\nCONSOLE_WEB_URL=https://example.com/some/path?x=1#frag\nAPP_WEB_URL=http://user:pass@host.com\n"))
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, f := range Validate(d, DefaultSchema()) {
		if f.Severity == Error {
			got[f.Var] += f.Message + "|"
		}
	}
	for k, want := range map[string]string{
		"EXPOSE_NGINX_PORT":     "not a port (1-65535)",
		"EXPOSE_NGINX_SSL_PORT": "write 80",
		"CONSOLE_WEB_URL":       "has a path",
		"APP_WEB_URL":           "credentials",
	} {
		if !strings.Contains(got[k], want) {
			t.Errorf("%s: findings %q, want %q", k, got[k], want)
		}
	}

	// Two published ports on one host port: an error naming both.
	d, _ = Parse([]byte("EXPOSE_NGINX_PORT=8080\nEXPOSE_NGINX_SSL_PORT=8080\n"))
	var dup *Finding
	for _, f := range Validate(d, DefaultSchema()) {
		if strings.Contains(f.Message, "publishes already") {
			dup = &f
		}
	}
	if dup == nil || dup.Var != "EXPOSE_NGINX_SSL_PORT" || dup.Severity != Error || !strings.Contains(dup.Message, "EXPOSE_NGINX_PORT") || dup.Line != 2 {
		t.Fatalf("duplicate published port not reported: %+v", dup)
	}
	// An unset one counts with its default (the plugin debugging port, 5003).
	d, _ = Parse([]byte("EXPOSE_NGINX_PORT=5003\n"))
	if k, first, port := DuplicatePort(d.Map(), DefaultSchema()); k != "EXPOSE_PLUGIN_DEBUGGING_PORT" || first != "EXPOSE_NGINX_PORT" || port != "5003" {
		t.Errorf("DuplicatePort = %q %q %q", k, first, port)
	}
	d, _ = Parse([]byte("EXPOSE_NGINX_PORT=80\nEXPOSE_NGINX_SSL_PORT=443\n"))
	if k, _, _ := DuplicatePort(d.Map(), DefaultSchema()); k != "" {
		t.Errorf("distinct ports reported as duplicate: %s", k)
	}
}
