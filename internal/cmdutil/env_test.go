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

func TestProcEnvIsTheFactorys(t *testing.T) {
	f := &Factory{Getenv: func(k string) string { return "f-" + k }, Environ: func() []string { return []string{"A=f"} }}
	pe := f.ProcEnv()
	if pe.Getenv("X") != "f-X" || len(pe.Environ) != 1 || pe.Environ[0] != "A=f" {
		t.Fatalf("%+v", pe)
	}
}
