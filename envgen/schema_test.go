package envgen

import "testing"

func TestDefaultSchema(t *testing.T) {
	s := DefaultSchema()
	if len(s.Vars) < 700 {
		t.Fatalf("only %d variables in the embedded template", len(s.Vars))
	}
	for name, want := range map[string]Type{"REDIS_PASSWORD": TypeString, "DB_PORT": TypePort, "DEBUG": TypeBool, "DB_TYPE": TypeEnum, "SERVER_CONSOLE_API_URL": TypeURL} {
		v, ok := s.Lookup(name)
		if !ok || v.Type != want {
			t.Errorf("%s: got %+v, want type %s", name, v, want)
		}
	}
	if v, _ := s.Lookup("REDIS_PASSWORD"); !v.IsSecret() {
		t.Error("REDIS_PASSWORD is not a secret")
	}
	if v, _ := s.Lookup("QDRANT_URL"); len(v.Profiles) != 1 || v.Profiles[0] != "qdrant" {
		t.Errorf("QDRANT_URL profiles %q", v.Profiles)
	}
}

func TestParseSchemaErrors(t *testing.T) {
	for _, src := range []string{
		"A=1\n",                                // no annotation
		"#@ type=nope\nA=1\n",                  // unknown type
		"#@ type=int\nA=1\n#@ type=int\nA=2\n", // duplicate
	} {
		if _, err := ParseSchema([]byte(src)); err == nil {
			t.Errorf("%q accepted", src)
		}
	}
}
