package cmdutil

import "testing"

func TestEnvOrNone(t *testing.T) {
	t.Setenv("HOME", "/from/the/process")
	if v := EnvOrNone(nil)("HOME"); v != "" {
		t.Fatalf("nil getenv read the process environment: %q", v)
	}
	if v := EnvOrNone(func(k string) string { return "x-" + k })("HOME"); v != "x-HOME" {
		t.Fatalf("getenv not used: %q", v)
	}
}
