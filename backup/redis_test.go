package backup

import (
	"strings"
	"testing"
	"time"
)

func TestDumpLocationChecks(t *testing.T) {
	r := &Redis{Name: "p-redis-1"}
	for _, d := range []string{"/data", "/var/lib/redis", "/"} {
		if err := r.checkDir(d); err != nil {
			t.Errorf("dir %q: %v", d, err)
		}
	}
	for _, d := range []string{"data", "/data/", "/data/../etc", "/a//b", "", "/data\n/x"} {
		if err := r.checkDir(d); err == nil || !strings.Contains(err.Error(), "p-redis-1") {
			t.Errorf("dir %q accepted (%v)", d, err)
		}
	}
	for _, n := range []string{"dump.rdb", "appendonly.aof", "appendonlydir", "dump 2.rdb"} {
		if err := r.checkBaseName("dbfilename", n); err != nil {
			t.Errorf("%q: %v", n, err)
		}
	}
	for _, n := range []string{"", ".", "..", "../dump.rdb", "sub/dump.rdb", "/etc/passwd", "du\x1b[2Jmp.rdb", "x\x00y"} {
		err := r.checkBaseName("dbfilename", n)
		if err == nil {
			t.Errorf("%q accepted", n)
			continue
		}
		if strings.ContainsAny(err.Error(), "\x1b\x00\n") {
			t.Errorf("control characters reach the error: %q", err)
		}
	}
}

func TestShown(t *testing.T) {
	for in, want := range map[string]string{
		"7.0.15":         "7.0.15",
		"/data":          "/data",
		"données":        "données",
		"a\x1b[31mred":   `"a\x1b[31mred"`,
		"two\nlines":     `"two\nlines"`,
		"tab\there":      `"tab\there"`,
		"quote\"d":       `"quote\"d"`,
		"bell\a":         `"bell\a"`,
		"\u202eoverride": `"\u202eoverride"`,
	} {
		if got := Shown(in); got != want {
			t.Errorf("Shown(%q) = %s, want %s", in, got, want)
		}
	}
}

func TestSaveTimeoutScalesWithData(t *testing.T) {
	if got := SaveTimeout(0); got != 2*time.Minute {
		t.Fatal(got)
	}
	if got := SaveTimeout(16 << 30); got != 2*time.Minute+1024*time.Second {
		t.Fatal(got)
	}
}
