package main

import (
	"bytes"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestCurlExitCodes(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/broken" {
			http.Error(w, "no", http.StatusServiceUnavailable)
			return
		}
		w.Write([]byte("body\n"))
	}))
	defer srv.Close()
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	closed := ln.Addr().String()
	ln.Close()

	for _, tc := range []struct {
		args []string
		want int
		out  string
	}{
		{[]string{"-f", srv.URL + "/health"}, 0, "body\n"},
		{[]string{"-f", srv.URL + "/broken"}, 22, ""},
		{[]string{srv.URL + "/broken"}, 0, "no\n"}, // without -f an HTTP error is a success, as curl
		{[]string{"-s", "http://" + closed + "/"}, 7, ""},
		{[]string{"-fsS", "-o", "/dev/null", srv.URL}, 0, ""},
		{[]string{"-f"}, 2, ""},
		{[]string{"-Z", srv.URL}, 2, ""},
	} {
		var out, errb bytes.Buffer
		if got := curl(tc.args, &out, &errb); got != tc.want || out.String() != tc.out {
			t.Errorf("curl %v = %d, stdout %q (stderr %q); want %d, %q", tc.args, got, out.String(), errb.String(), tc.want, tc.out)
		}
	}
}

func TestPgIsReadyAndMysqladmin(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	var out bytes.Buffer
	if got := pgIsReady([]string{"-h", "127.0.0.1", "-p", port, "-U", "postgres", "-d", "dify"}, &out); got != 0 || !strings.Contains(out.String(), "accepting connections") {
		t.Errorf("pg_isready on a listener = %d %q", got, out.String())
	}
	if got := mysqladmin([]string{"ping", "-h127.0.0.1", "-P", port, "-u", "root"}, &out); got != 0 {
		t.Errorf("mysqladmin ping on a listener = %d", got)
	}
	ln.Close()
	out.Reset()
	if got := pgIsReady([]string{"-h", "127.0.0.1", "-p", port}, &out); got != 2 || !strings.Contains(out.String(), "no response") {
		t.Errorf("pg_isready without a listener = %d %q", got, out.String())
	}
	if got := mysqladmin([]string{"ping", "-h", "127.0.0.1", "-P", port}, &out); got != 1 {
		t.Errorf("mysqladmin ping without a listener = %d", got)
	}
}

func TestRedisCLIAgainstRESPServer(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go serveRESP(ln)
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	t.Setenv("REDISCLI_AUTH", "secret")
	var out, errb bytes.Buffer
	if got := redisCLI([]string{"-h", "127.0.0.1", "-p", port, "ping"}, &out, &errb); got != 0 || out.String() != "PONG\n" {
		t.Errorf("redis-cli ping = %d %q %q", got, out.String(), errb.String())
	}
}

func TestEnvsubst(t *testing.T) {
	t.Setenv("A", "1")
	t.Setenv("B", "two")
	var out bytes.Buffer
	envsubst(nil, strings.NewReader("x $A ${B} $UNSET_X $$ y\n"), &out)
	if got := out.String(); got != "x 1 two  $$ y\n" {
		t.Errorf("envsubst = %q", got)
	}
	out.Reset()
	envsubst([]string{"$A,$NOPE"}, strings.NewReader("$A $B $host\n"), &out)
	if got := out.String(); got != "1 $B $host\n" {
		t.Errorf("envsubst with a format = %q", got)
	}
}

func TestListeners(t *testing.T) {
	t.Setenv("MODE", "worker")
	if ls, err := listeners("dify-api"); err != nil || len(ls) != 0 {
		t.Errorf("worker listens on %v, %v", ls, err)
	}
	t.Setenv("MODE", "api")
	if ls, _ := listeners("dify-api"); strings.Join(ls, ",") != ":5001" {
		t.Errorf("api listens on %v", ls)
	}
	t.Setenv("NGINX_HTTPS_ENABLED", "true")
	t.Setenv("NGINX_PORT", "8080")
	if ls, _ := listeners("nginx"); strings.Join(ls, ",") != ":8080,:443" {
		t.Errorf("nginx listens on %v", ls)
	}
	if _, err := listeners(""); err == nil {
		t.Error("no role accepted")
	}
	if run("no-such-program", nil) != 127 {
		t.Error("an unknown program name does not exit 127")
	}
}
