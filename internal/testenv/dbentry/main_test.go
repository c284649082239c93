package main

import (
	"slices"
	"testing"
)

func TestServerArgs(t *testing.T) {
	for _, tc := range []struct {
		in      []string
		want    []string
		servers []string
		server  bool
	}{
		{nil, []string{"postgres"}, []string{"postgres"}, true},
		{[]string{"-c", "max_connections=100"}, []string{"postgres", "-c", "max_connections=100"}, []string{"postgres"}, true},
		{[]string{"postgres", "-c", "a=b"}, []string{"postgres", "-c", "a=b"}, []string{"postgres"}, true},
		{[]string{"sh", "-c", "true"}, []string{"sh", "-c", "true"}, []string{"postgres"}, false},
		{[]string{"--max_connections=1000"}, []string{"mariadbd", "--max_connections=1000"}, []string{"mariadbd", "mysqld"}, true},
		{[]string{"mysqld", "--x=1"}, []string{"mysqld", "--x=1"}, []string{"mariadbd", "mysqld"}, true},
		{[]string{"mariadb", "-e", "select 1"}, []string{"mariadb", "-e", "select 1"}, []string{"mariadbd", "mysqld"}, false},
	} {
		got, server := serverArgs(tc.in, tc.servers...)
		if !slices.Equal(got, tc.want) || server != tc.server {
			t.Errorf("serverArgs(%q) = %q %v, want %q %v", tc.in, got, server, tc.want, tc.server)
		}
	}
}

func TestQuoting(t *testing.T) {
	if got := quoteIdent(`my"db`); got != `"my""db"` {
		t.Errorf("quoteIdent = %s", got)
	}
	if got := quoteLit(`it's`); got != `'it''s'` {
		t.Errorf("quoteLit = %s", got)
	}
}
