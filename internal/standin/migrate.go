package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// The api stand-in's database migrations, as Dify's api runs alembic on
// start (`flask upgrade-db` in its entrypoint when MIGRATION_ENABLED=true):
// with STANDIN_MIGRATE=1 the api (MODE=api) connects to the database Dify's
// own DB_HOST, DB_PORT, DB_USERNAME, DB_PASSWORD and DB_DATABASE name,
// brings it to the head revision of the release it plays, and only then
// listens (so its healthcheck fails until the schema is migrated). A failed
// migration ends the process with code 1 (with restart: always, a crash
// loop that never becomes healthy), as the real api does when upgrade-db
// fails.
//
// What alembic does on PostgreSQL, reproduced here: the alembic_version
// table (version_num varchar(32), primary key) holds the current revision;
// all pending migrations run in ONE transaction (Dify's migrations/env.py
// leaves transaction_per_migration at its default, False; PostgreSQL's DDL
// is transactional), each followed by the version row's update; a step in
// an autocommit block (alembic's autocommit_block(): CREATE INDEX
// CONCURRENTLY, ALTER TYPE ... ADD VALUE) first COMMITS what ran before it,
// runs outside any transaction, and a new transaction begins. So a
// migration that fails half-way leaves the work committed by an autocommit
// block (and everything before it) in the database, with the version row at
// the revision before: the half-migrated state a rollback must undo by
// restoring the database.
//
// Environment:
//
//	STANDIN_MIGRATE        1    run the migrations on start (off by default: most stand-in
//	                            deployments run the stand-in postgres, which speaks no SQL)
//	STANDIN_RELEASE        V    the Dify release this api image plays (set by the per-release
//	                            image difyctl-test/standin:dify-api-V); its head is the newest
//	                            revision of the chain shipped by V or earlier
//	STANDIN_MIGRATE_TO     REV  the revision to migrate to instead of the release's head
//	STANDIN_MIGRATE_FAIL   REV  the migration to REV fails half-way ("1": whichever runs)

// step is one statement of a migration.
type step struct {
	sql string
	// autocommit: inside alembic's autocommit_block(), outside the
	// migration's transaction (which it commits first).
	autocommit bool
	// failPoint: where STANDIN_MIGRATE_FAIL makes the migration raise.
	failPoint bool
}

// migration is one revision file of the chain.
type migration struct {
	rev, down string // down "": the first revision
	release   string // the Dify release that ships it
	message   string
	steps     []step
}

// chain is the stand-in api's migration history, oldest first.
var chain = []migration{
	{rev: "r1", release: "1.15.0", message: "apps", steps: []step{
		{sql: `CREATE TABLE apps (id bigserial NOT NULL, name varchar(255) NOT NULL, created_at timestamp DEFAULT CURRENT_TIMESTAMP(0) NOT NULL, CONSTRAINT app_pkey PRIMARY KEY (id))`},
		{sql: `CREATE INDEX app_name_idx ON apps (name)`},
	}},
	{rev: "r2", down: "r1", release: "1.16.0", message: "app mode and agent sessions", steps: []step{
		{sql: `ALTER TABLE apps ADD COLUMN mode varchar(32) DEFAULT 'chat' NOT NULL`},
		{sql: `CREATE INDEX CONCURRENTLY app_mode_idx ON apps (mode)`, autocommit: true},
		{sql: `CREATE TABLE agent_sessions (id bigserial NOT NULL, app_id bigint NOT NULL, created_at timestamp DEFAULT CURRENT_TIMESTAMP(0) NOT NULL, CONSTRAINT agent_session_pkey PRIMARY KEY (id), CONSTRAINT agent_session_app_fkey FOREIGN KEY (app_id) REFERENCES apps (id))`},
		{failPoint: true},
		{sql: `INSERT INTO agent_sessions (app_id) SELECT id FROM apps`},
	}},
}

func findMigration(rev string) (migration, bool) {
	for _, m := range chain {
		if m.rev == rev {
			return m, true
		}
	}
	return migration{}, false
}

// headOf is the newest revision shipped by release or an earlier one.
func headOf(release string) (string, error) {
	head := ""
	for _, m := range chain {
		if compareVersions(m.release, release) <= 0 {
			head = m.rev
		}
	}
	if head == "" {
		return "", fmt.Errorf("release %q ships no revision of the stand-in's chain (the first is %s, shipped by %s)", release, chain[0].rev, chain[0].release)
	}
	return head, nil
}

// compareVersions compares dotted numeric versions.
func compareVersions(a, b string) int {
	as, bs := strings.Split(a, "."), strings.Split(b, ".")
	for i := 0; i < len(as) || i < len(bs); i++ {
		var x, y int
		if i < len(as) {
			x, _ = strconv.Atoi(as[i])
		}
		if i < len(bs) {
			y, _ = strconv.Atoi(bs[i])
		}
		if x != y {
			if x < y {
				return -1
			}
			return 1
		}
	}
	return 0
}

// path lists the migrations from current ("" : an empty database) up to
// head, in order; an error when current is not head's ancestor (a database
// migrated by a newer release: alembic's "Can't locate revision").
func path(current, head string) ([]migration, error) {
	if _, ok := findMigration(head); !ok {
		return nil, fmt.Errorf("no revision %q in the chain", head)
	}
	var out []migration
	for rev := head; rev != current; {
		m, ok := findMigration(rev)
		if !ok {
			return nil, fmt.Errorf("Can't locate revision identified by %q: the database is at a revision this release does not know (migrated by a newer Dify?)", current)
		}
		out = append([]migration{m}, out...)
		rev = m.down
		if rev == "" && current != "" {
			return nil, fmt.Errorf("Can't locate revision identified by %q: the database is at a revision this release does not know (migrated by a newer Dify?)", current)
		}
	}
	return out, nil
}

// migrateConfig is what the environment asks of the migration.
type migrateConfig struct {
	head string
	fail string // "" none, "1" any, or a revision
	dsn  string // keyword/value connection string (holds the password: never printed)
	addr string // host:port/database, for messages
}

// quoteDSN quotes a keyword/value connection string value.
func quoteDSN(v string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(v) + "'"
}

func migrateConfigFrom(getenv func(string) string) (*migrateConfig, error) {
	c := &migrateConfig{head: getenv("STANDIN_MIGRATE_TO"), fail: getenv("STANDIN_MIGRATE_FAIL")}
	if c.head == "" {
		rel := getenv("STANDIN_RELEASE")
		if rel == "" {
			return nil, errors.New("STANDIN_MIGRATE=1 needs the release this api plays (STANDIN_RELEASE, set by the per-release images difyctl-test/standin:dify-api-VERSION) or STANDIN_MIGRATE_TO")
		}
		h, err := headOf(rel)
		if err != nil {
			return nil, err
		}
		c.head = h
	}
	if _, ok := findMigration(c.head); !ok {
		return nil, fmt.Errorf("STANDIN_MIGRATE_TO=%q: no such revision in the chain", c.head)
	}
	if t := getenv("DB_TYPE"); t != "" && t != "postgresql" {
		return nil, fmt.Errorf("DB_TYPE=%s: the stand-in migrates PostgreSQL only", t)
	}
	or := func(k, def string) string {
		if v := getenv(k); v != "" {
			return v
		}
		return def
	}
	host, port, user, db := or("DB_HOST", "db_postgres"), or("DB_PORT", "5432"), or("DB_USERNAME", "postgres"), or("DB_DATABASE", "dify")
	c.dsn = fmt.Sprintf("host=%s port=%s user=%s password=%s dbname=%s sslmode=disable connect_timeout=5",
		quoteDSN(host), quoteDSN(port), quoteDSN(user), quoteDSN(getenv("DB_PASSWORD")), quoteDSN(db))
	c.addr = host + ":" + port + "/" + db
	return c, nil
}

func (c *migrateConfig) fails(rev string) bool { return c.fail == "1" || c.fail == rev }

// migrate brings the database to c.head, retrying the connection for up to
// connectFor (the database may still be starting).
func migrate(ctx context.Context, c *migrateConfig, connectFor time.Duration, logf func(string, ...any)) error {
	var conn *pgx.Conn
	deadline := time.Now().Add(connectFor)
	for {
		var err error
		conn, err = pgx.Connect(ctx, c.dsn)
		if err == nil {
			break
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("connecting to the database %s: %w", c.addr, err)
		}
		logf("database %s not reachable yet (%v): retrying", c.addr, err)
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
	defer conn.Close(context.Background())
	logf("INFO  [alembic.runtime.migration] Context impl PostgresqlImpl.")
	logf("INFO  [alembic.runtime.migration] Will assume transactional DDL.")

	tx, err := conn.Begin(ctx)
	if err != nil {
		return err
	}
	defer func() { tx.Rollback(context.Background()) }() // after a Commit: a no-op
	if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS alembic_version (version_num VARCHAR(32) NOT NULL, CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num))`); err != nil {
		return fmt.Errorf("creating alembic_version: %w", err)
	}
	current := ""
	if err := tx.QueryRow(ctx, `SELECT version_num FROM alembic_version`).Scan(&current); err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("reading alembic_version: %w", err)
	}
	todo, err := path(current, c.head)
	if err != nil {
		return err
	}
	for _, m := range todo {
		from := m.down
		if from == "" {
			from = " "
		}
		logf("INFO  [alembic.runtime.migration] Running upgrade %s -> %s, %s", strings.TrimSpace(from), m.rev, m.message)
		for i, s := range m.steps {
			switch {
			case s.failPoint:
				if c.fails(m.rev) {
					_, err := tx.Exec(ctx, fmt.Sprintf(`DO $$ BEGIN RAISE EXCEPTION 'stand-in migration %s failed half-way, after step %d (STANDIN_MIGRATE_FAIL)'; END $$`, m.rev, i))
					return fmt.Errorf("migration %s -> %s: %w", m.down, m.rev, err)
				}
			case s.autocommit:
				// alembic's autocommit_block(): commit, run outside a
				// transaction, begin again.
				if err := tx.Commit(ctx); err != nil {
					return fmt.Errorf("migration %s -> %s: committing before an autocommit block: %w", m.down, m.rev, err)
				}
				if _, err := conn.Exec(ctx, s.sql); err != nil {
					return fmt.Errorf("migration %s -> %s, step %d (autocommit): %w", m.down, m.rev, i, err)
				}
				next, err := conn.Begin(ctx)
				if err != nil {
					return err // tx, committed, stays what the deferred Rollback ends (a no-op)
				}
				tx = next
			default:
				if _, err := tx.Exec(ctx, s.sql); err != nil {
					return fmt.Errorf("migration %s -> %s, step %d: %w", m.down, m.rev, i, err)
				}
			}
		}
		if m.down == "" {
			_, err = tx.Exec(ctx, `INSERT INTO alembic_version (version_num) VALUES ($1)`, m.rev)
		} else {
			_, err = tx.Exec(ctx, `UPDATE alembic_version SET version_num=$1 WHERE alembic_version.version_num = $2`, m.rev, m.down)
		}
		if err != nil {
			return fmt.Errorf("stamping revision %s: %w", m.rev, err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("committing the migrations: %w", err)
	}
	if len(todo) == 0 {
		logf("database %s already at revision %s: nothing to migrate", c.addr, c.head)
	} else {
		logf("Database migration successful! (%s at revision %s)", c.addr, c.head)
	}
	return nil
}

// migrateOnStart runs the migrations when the api is asked to (see above).
func migrateOnStart(ctx context.Context, role string, logf func(string, ...any)) error {
	if role != "dify-api" || envOr("MODE", "api") != "api" || os.Getenv("STANDIN_MIGRATE") != "1" {
		return nil
	}
	c, err := migrateConfigFrom(os.Getenv)
	if err != nil {
		return err
	}
	logf("Running migrations (to revision %s)", c.head)
	return migrate(ctx, c, 60*time.Second, logf)
}
