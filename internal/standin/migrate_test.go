package main

import (
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
)

func TestHeadOfARelease(t *testing.T) {
	for rel, want := range map[string]string{"1.15.0": "r1", "1.15.3": "r1", "1.16.0": "r2", "1.17.1": "r2"} {
		if got, err := headOf(rel); err != nil || got != want {
			t.Errorf("headOf(%s) = %q, %v; want %s", rel, got, err, want)
		}
	}
	if _, err := headOf("1.14.0"); err == nil {
		t.Error("a release older than the chain has a head")
	}
}

func TestPathFromTheDatabasesRevision(t *testing.T) {
	revs := func(ms []migration) string {
		var s []string
		for _, m := range ms {
			s = append(s, m.rev)
		}
		return strings.Join(s, ",")
	}
	for _, c := range []struct{ current, head, want string }{
		{"", "r1", "r1"},
		{"", "r2", "r1,r2"},
		{"r1", "r2", "r2"},
		{"r1", "r1", ""},
		{"r2", "r2", ""},
	} {
		got, err := path(c.current, c.head)
		if err != nil || revs(got) != c.want {
			t.Errorf("path(%q, %q) = %s, %v; want %s", c.current, c.head, revs(got), err, c.want)
		}
	}
	// A database a newer release migrated: the older api refuses, as
	// alembic does ("Can't locate revision").
	for _, c := range []struct{ current, head string }{{"r2", "r1"}, {"zz", "r2"}} {
		if _, err := path(c.current, c.head); err == nil || !strings.Contains(err.Error(), "Can't locate revision") {
			t.Errorf("path(%q, %q): %v", c.current, c.head, err)
		}
	}
}

// The chain is what the e2e tests rely on: r2 fails after an autocommit
// block (so a half-way failure leaves committed work behind), every
// revision revises the one before it.
func TestChainShape(t *testing.T) {
	for i, m := range chain {
		if i == 0 && m.down != "" || i > 0 && m.down != chain[i-1].rev {
			t.Errorf("%s revises %q", m.rev, m.down)
		}
	}
	r2, _ := findMigration("r2")
	auto, fail := -1, -1
	for i, s := range r2.steps {
		if s.autocommit {
			auto = i
		}
		if s.failPoint {
			fail = i
		}
	}
	if auto < 1 || fail < auto || fail == len(r2.steps)-1 {
		t.Errorf("r2: autocommit step %d, fail point %d of %d steps: a failure would not be half-way", auto, fail, len(r2.steps))
	}
}

func TestMigrateConfigFromDifysVariables(t *testing.T) {
	env := map[string]string{"STANDIN_RELEASE": "1.16.0", "DB_HOST": "db_postgres", "DB_PORT": "5432", "DB_USERNAME": "postgres",
		"DB_PASSWORD": `pa ss'w\rd`, "DB_DATABASE": "dify", "STANDIN_MIGRATE_FAIL": "r2"}
	c, err := migrateConfigFrom(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	if c.head != "r2" || !c.fails("r2") || c.fails("r1") {
		t.Fatalf("head %s, fails r2 %v, r1 %v", c.head, c.fails("r2"), c.fails("r1"))
	}
	if strings.Contains(c.addr, "pa ss") {
		t.Fatal("the address for messages holds the password")
	}
	cfg, err := pgx.ParseConfig(c.dsn)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Host != "db_postgres" || cfg.Port != 5432 || cfg.User != "postgres" || cfg.Password != `pa ss'w\rd` || cfg.Database != "dify" {
		t.Fatalf("parsed %s:%d %s/%s password %q", cfg.Host, cfg.Port, cfg.User, cfg.Database, cfg.Password)
	}

	env["STANDIN_MIGRATE_TO"] = "r1"
	if c, _ := migrateConfigFrom(func(k string) string { return env[k] }); c.head != "r1" {
		t.Errorf("STANDIN_MIGRATE_TO=r1: head %s", c.head)
	}
	for k, v := range map[string]string{"STANDIN_MIGRATE_TO": "r9", "DB_TYPE": "mysql"} {
		bad := map[string]string{"STANDIN_RELEASE": "1.16.0", k: v}
		if _, err := migrateConfigFrom(func(k string) string { return bad[k] }); err == nil {
			t.Errorf("%s=%s accepted", k, v)
		}
	}
	if _, err := migrateConfigFrom(func(string) string { return "" }); err == nil || !strings.Contains(err.Error(), "STANDIN_RELEASE") {
		t.Errorf("no release: %v", err)
	}
}
