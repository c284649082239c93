package e2e

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/client"

	"github.com/difyctl/difyctl/internal/testenv"
)

// dbExecLimit bounds one dbExec: a hang fails the test instead of running
// into the package's timeout.
const dbExecLimit = 5 * time.Minute

// dbExec runs cmd in a container through the engine API, with env (never on
// the command line), stdin streamed from in (when not nil) and stdout
// streamed to out. It returns stderr and the exit code.
func dbExec(t *testing.T, cli *client.Client, container string, env []string, in io.Reader, out io.Writer, cmd ...string) (string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), dbExecLimit)
	defer cancel()
	ex, err := cli.ExecCreate(ctx, container, client.ExecCreateOptions{Cmd: cmd, Env: env, AttachStdin: in != nil, AttachStdout: true, AttachStderr: true})
	if err != nil {
		t.Fatalf("exec %v in %s: %v", cmd, container, err)
	}
	att, err := cli.ExecAttach(ctx, ex.ID, client.ExecAttachOptions{})
	if err != nil {
		t.Fatalf("exec %v in %s: %v", cmd, container, err)
	}
	defer att.Close()
	if in != nil {
		go func() {
			io.Copy(att.Conn, in)
			if cw, ok := att.Conn.(interface{ CloseWrite() error }); ok {
				cw.CloseWrite()
			}
		}()
	}
	var errOut bytes.Buffer
	// A hang fails the test: the read ends when ctx does.
	stop := context.AfterFunc(ctx, func() { att.Close() })
	defer stop()
	if _, err := stdcopy.StdCopy(out, &errOut, att.Reader); err != nil || ctx.Err() != nil {
		t.Fatalf("reading the output of %v in %s (bounded by %s): %v %v", cmd, container, dbExecLimit, err, ctx.Err())
	}
	ins, err := cli.ExecInspect(ctx, ex.ID, client.ExecInspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return errOut.String(), ins.ExitCode
}

// dbQuery runs a client command and returns its trimmed stdout, failing the
// test on a non-zero exit.
func dbQuery(t *testing.T, cli *client.Client, container string, env []string, cmd ...string) string {
	t.Helper()
	var out bytes.Buffer
	if stderr, code := dbExec(t, cli, container, env, nil, &out, cmd...); code != 0 {
		t.Fatalf("%v in %s: exit %d: %s %s", cmd, container, code, stderr, out.String())
	}
	return strings.TrimSpace(out.String())
}

// upDBService brings up one database service of Dify's embedded templates
// with only its image pointed at a fixture by the project's override file,
// checks it is healthy, and returns the container's name and environment.
func upDBService(t *testing.T, cli *client.Client, service, image string, extra ...string) (string, map[string]string, []string) {
	t.Helper()
	project := testenv.ProjectName(t, cli)
	dir := t.TempDir()
	override := "services:\n  " + service + ":\n    image: " + image + "\n"
	if err := os.WriteFile(filepath.Join(dir, "docker-compose.override.yaml"), []byte(override), 0o644); err != nil {
		t.Fatal(err)
	}
	args := append([]string{"--project-dir", dir, "-p", project, "up", service, "--progress", "plain", "--wait-timeout", "180s"}, extra...)
	if r := run(t, nil, args...); r.code != 0 {
		t.Fatalf("up %s: exit %d\n%s", service, r.code, r.stderr)
	}
	name := project + "-" + service + "-1"
	ins, err := cli.ContainerInspect(context.Background(), name, client.ContainerInspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	c := ins.Container
	if c.Config.Image != image {
		t.Fatalf("%s runs %s, not the fixture %s", service, c.Config.Image, image)
	}
	if c.State == nil || c.State.Health == nil || c.State.Health.Status != "healthy" {
		t.Fatalf("%s is not healthy after up: %+v", service, c.State)
	}
	env := map[string]string{}
	for _, kv := range c.Config.Env {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	// The server runs as its own user, never as root.
	status := dbQuery(t, cli, name, nil, "cat", "/proc/1/status")
	for _, l := range strings.Split(status, "\n") {
		if f := strings.Fields(l); len(f) > 1 && f[0] == "Uid:" && f[1] == "0" {
			t.Fatalf("%s's server runs as root:\n%s", service, status)
		}
	}
	return name, env, c.Config.Cmd
}

// cmdSetting is the value a service's command gives a setting (-c name=v for
// PostgreSQL, --name=v for MySQL), as the template rendered it from .env.
func cmdSetting(t *testing.T, cmd []string, setting string) string {
	t.Helper()
	for _, a := range cmd {
		if v, ok := strings.CutPrefix(strings.TrimLeft(a, "-"), setting+"="); ok {
			return v
		}
	}
	t.Fatalf("the command %q sets no %s", cmd, setting)
	return ""
}

// TestPostgresFixtureUnderDifyService runs Dify's real db_postgres service
// (command with -c settings, PGDATA under the bind-mounted data directory,
// pg_isready healthcheck) on the PostgreSQL fixture, writes rows through
// psql, streams a pg_dump -Fc out of the container and reads its table of
// contents back with pg_restore --list, then restores it into a new database.
func TestPostgresFixtureUnderDifyService(t *testing.T) {
	cli := testenv.Fixtures(t)
	name, env, cmd := upDBService(t, cli, "db_postgres", testenv.ImagePostgres)
	user, db, pw := env["POSTGRES_USER"], env["POSTGRES_DB"], env["POSTGRES_PASSWORD"]
	if user == "" || db == "" || len(pw) < 16 {
		t.Fatalf("db_postgres environment: user %q db %q password of %d characters", user, db, len(pw))
	}
	// The command's -c settings reached the server.
	if got, want := dbQuery(t, cli, name, nil, "psql", "-U", user, "-d", db, "-tAc", "SHOW max_connections"), cmdSetting(t, cmd, "max_connections"); got != want {
		t.Fatalf("max_connections = %q, want %s from the command", got, want)
	}
	// From the network (the service name, not loopback, which initdb trusts
	// as in the official image) the password from .env is required.
	if got := dbQuery(t, cli, name, []string{"PGPASSWORD=" + pw}, "psql", "-h", "db_postgres", "-U", user, "-d", db, "-tAc", "SELECT current_database()"); got != db {
		t.Fatalf("current_database() over TCP = %q, want %q", got, db)
	}
	if stderr, code := dbExec(t, cli, name, []string{"PGPASSWORD=wrong-password"}, nil, io.Discard, "psql", "-h", "db_postgres", "-U", user, "-d", db, "-c", "SELECT 1"); code == 0 || !strings.Contains(stderr, "password authentication failed") {
		t.Fatalf("a wrong password was not refused: exit %d %s", code, stderr)
	}
	dbQuery(t, cli, name, nil, "psql", "-v", "ON_ERROR_STOP=1", "-U", user, "-d", db, "-c",
		// Dify's first migration creates uuid-ossp: the modules and extension
		// scripts are in the image.
		`CREATE EXTENSION IF NOT EXISTS "uuid-ossp"; `+
			"CREATE TABLE accounts (id uuid PRIMARY KEY DEFAULT uuid_generate_v4(), email text NOT NULL); "+
			"INSERT INTO accounts (email) SELECT 'user' || g || '@example.com' FROM generate_series(1, 1000) g;")

	// pg_dump -Fc streamed out of the container into a host file.
	dump := filepath.Join(t.TempDir(), "dify.dump")
	f, err := os.OpenFile(dump, os.O_CREATE|os.O_WRONLY|os.O_EXCL, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	stderr, code := dbExec(t, cli, name, nil, nil, f, "pg_dump", "-Fc", "-U", user, "-d", db)
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if code != 0 {
		t.Fatalf("pg_dump: exit %d: %s", code, stderr)
	}
	head := make([]byte, 5)
	if f, err := os.Open(dump); err != nil {
		t.Fatal(err)
	} else {
		io.ReadFull(f, head)
		f.Close()
	}
	if string(head) != "PGDMP" {
		t.Fatalf("the dump does not start with the custom-format magic: %q", head)
	}
	// Its table of contents, read back inside the container from stdin.
	in, err := os.Open(dump)
	if err != nil {
		t.Fatal(err)
	}
	var toc bytes.Buffer
	stderr, code = dbExec(t, cli, name, nil, in, &toc, "pg_restore", "--list")
	in.Close()
	if code != 0 {
		t.Fatalf("pg_restore --list: exit %d: %s", code, stderr)
	}
	if !tocHas(toc.String(), "EXTENSION - uuid-ossp") || !tocHas(toc.String(), "TABLE public accounts") || !tocHas(toc.String(), "TABLE DATA public accounts") {
		t.Fatalf("pg_restore --list does not list the table accounts:\n%s", toc.String())
	}
	// And it restores: into a new database, with every row.
	dbQuery(t, cli, name, nil, "createdb", "-U", user, "restored")
	in, err = os.Open(dump)
	if err != nil {
		t.Fatal(err)
	}
	stderr, code = dbExec(t, cli, name, nil, in, io.Discard, "pg_restore", "-U", user, "-d", "restored", "--no-owner", "--exit-on-error")
	in.Close()
	if code != 0 {
		t.Fatalf("pg_restore into a new database: exit %d: %s", code, stderr)
	}
	if got := dbQuery(t, cli, name, nil, "psql", "-U", user, "-d", "restored", "-tAc", "SELECT count(*), count(DISTINCT email), count(DISTINCT id) FROM accounts"); got != "1000|1000|1000" {
		t.Fatalf("restored rows: %q, want 1000|1000|1000", got)
	}
}

func tocHas(toc, what string) bool {
	sc := bufio.NewScanner(strings.NewReader(toc))
	for sc.Scan() {
		if l := sc.Text(); !strings.HasPrefix(l, ";") && strings.Contains(l, " "+what+" ") {
			return true
		}
	}
	return false
}

// TestMariaDBFixtureUnderDifyService runs Dify's real db_mysql service
// (profile mysql, its command's flags, the mysqladmin ping healthcheck) on
// the MariaDB fixture, writes rows through the mysql client, streams a
// mysqldump --single-transaction out of the container, and loads it into a
// new database.
func TestMariaDBFixtureUnderDifyService(t *testing.T) {
	cli := testenv.Fixtures(t)
	name, env, cmd := upDBService(t, cli, "db_mysql", testenv.ImageMariaDB, "--profile", "mysql")
	db, pw := env["MYSQL_DATABASE"], env["MYSQL_ROOT_PASSWORD"]
	if db == "" || len(pw) < 16 {
		t.Fatalf("db_mysql environment: database %q, root password of %d characters", db, len(pw))
	}
	auth := []string{"MYSQL_PWD=" + pw}
	if got, want := dbQuery(t, cli, name, auth, "mysql", "-uroot", "-N", "-e", "SELECT @@max_connections"), cmdSetting(t, cmd, "max_connections"); got != want {
		t.Fatalf("max_connections = %q, want %s from the command", got, want)
	}
	// Root from the network needs the password; a wrong one is refused.
	if got := dbQuery(t, cli, name, auth, "mysql", "-uroot", "-hdb_mysql", "-N", "-e", "SELECT DATABASE()", db); got != db {
		t.Fatalf("DATABASE() over TCP = %q, want %q", got, db)
	}
	if stderr, code := dbExec(t, cli, name, []string{"MYSQL_PWD=wrong-password"}, nil, io.Discard, "mysql", "-uroot", "-hdb_mysql", "-e", "SELECT 1"); code == 0 || !strings.Contains(stderr, "Access denied") {
		t.Fatalf("a wrong password was not refused: exit %d %s", code, stderr)
	}
	dbQuery(t, cli, name, auth, "mysql", "-uroot", db, "-e",
		"CREATE TABLE accounts (id INT AUTO_INCREMENT PRIMARY KEY, email VARCHAR(255) NOT NULL) ENGINE=InnoDB; "+
			"INSERT INTO accounts (email) SELECT CONCAT('user', seq, '@example.com') FROM seq_1_to_1000;")

	dump := filepath.Join(t.TempDir(), "dify.sql")
	f, err := os.OpenFile(dump, os.O_CREATE|os.O_WRONLY|os.O_EXCL, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	stderr, code := dbExec(t, cli, name, auth, nil, f, "mysqldump", "-uroot", "--single-transaction", "--routines", "--triggers", db)
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if code != 0 {
		t.Fatalf("mysqldump: exit %d: %s", code, stderr)
	}
	b, err := os.ReadFile(dump)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(b, []byte("CREATE TABLE `accounts`")) || !bytes.Contains(b, []byte("INSERT INTO `accounts`")) || !bytes.Contains(b, []byte("-- Dump completed")) {
		t.Fatalf("the dump lacks the table accounts or its completion line (%d bytes)", len(b))
	}
	dbQuery(t, cli, name, auth, "mysql", "-uroot", "-e", "CREATE DATABASE restored")
	in, err := os.Open(dump)
	if err != nil {
		t.Fatal(err)
	}
	stderr, code = dbExec(t, cli, name, auth, in, io.Discard, "mysql", "-uroot", "restored")
	in.Close()
	if code != 0 {
		t.Fatalf("loading the dump into a new database: exit %d: %s", code, stderr)
	}
	if got := dbQuery(t, cli, name, auth, "mysql", "-uroot", "-N", "-e", "SELECT COUNT(*), COUNT(DISTINCT email) FROM accounts", "restored"); got != "1000\t1000" {
		t.Fatalf("restored rows: %q, want 1000 1000", got)
	}
}
