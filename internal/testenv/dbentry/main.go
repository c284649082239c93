// Command dbentry is the entrypoint of the database fixture images
// (difyctl-test/postgres, difyctl-test/mariadb). It does, for what Dify's
// db_postgres and db_mysql services use, what the official images'
// docker-entrypoint.sh does: on an empty data directory it initialises the
// cluster with the password and database from the environment, then it runs
// the server as its own unprivileged user, never as root.
//
// The image it runs in is chosen by the name it is started under:
// postgres-entrypoint or mariadb-entrypoint. It is built static (CGO_ENABLED=0)
// because the images are FROM scratch.
package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func main() {
	var err error
	switch filepath.Base(os.Args[0]) {
	case "postgres-entrypoint":
		err = postgres(os.Args[1:])
	case "mariadb-entrypoint":
		err = mariadb(os.Args[1:])
	default:
		err = fmt.Errorf("started as %q: run as postgres-entrypoint or mariadb-entrypoint", os.Args[0])
	}
	fmt.Fprintf(os.Stderr, "entrypoint: %v\n", err)
	os.Exit(1)
}

func logf(format string, a ...any) {
	fmt.Fprintf(os.Stderr, "entrypoint: "+format+"\n", a...)
}

func env(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// account is an unprivileged user from /etc/passwd.
type account struct {
	name     string
	uid, gid int
}

func lookup(name string) (account, error) {
	u, err := user.Lookup(name)
	if err != nil {
		return account{}, fmt.Errorf("user %s: %w", name, err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return account{name: name, uid: uid, gid: gid}, nil
}

// own creates dir (and parents) and gives it to acc with mode.
func own(dir string, acc account, mode os.FileMode) error {
	if err := os.MkdirAll(dir, mode); err != nil {
		return err
	}
	if os.Geteuid() == 0 {
		if err := os.Chown(dir, acc.uid, acc.gid); err != nil {
			return err
		}
	}
	return os.Chmod(dir, mode)
}

// become drops root for acc; Go applies it to every thread of the process.
func become(acc account) error {
	if os.Geteuid() != 0 {
		return nil
	}
	if err := syscall.Setgroups([]int{acc.gid}); err != nil {
		return fmt.Errorf("setgroups: %w", err)
	}
	if err := syscall.Setgid(acc.gid); err != nil {
		return fmt.Errorf("setgid %d: %w", acc.gid, err)
	}
	if err := syscall.Setuid(acc.uid); err != nil {
		return fmt.Errorf("setuid %d: %w", acc.uid, err)
	}
	os.Setenv("HOME", "/tmp")
	os.Setenv("USER", acc.name)
	return nil
}

func run(name string, args ...string) error {
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s %s: %w", name, strings.Join(args, " "), err)
	}
	return nil
}

func execv(name string, args []string) error {
	path, err := exec.LookPath(name)
	if err != nil {
		return err
	}
	return syscall.Exec(path, append([]string{name}, args...), os.Environ())
}

// secretFile writes content to a 0600 file in a fresh 0700 directory and
// returns its path and the removal (secrets never go on a command line).
func secretFile(content string) (string, func(), error) {
	dir, err := os.MkdirTemp("", "entrypoint-")
	if err != nil {
		return "", nil, err
	}
	path := filepath.Join(dir, "secret")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		os.RemoveAll(dir)
		return "", nil, err
	}
	return path, func() { os.RemoveAll(dir) }, nil
}

// serverArgs is the command as the official entrypoints read it: none or
// flags alone run the server (servers[0]) with them; a command naming one of
// servers runs it after initialisation; anything else runs as given.
func serverArgs(args []string, servers ...string) ([]string, bool) {
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		return append([]string{servers[0]}, args...), true
	}
	for _, s := range servers {
		if args[0] == s {
			return args, true
		}
	}
	return args, false
}

func quoteIdent(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }
func quoteLit(s string) string   { return `'` + strings.ReplaceAll(s, `'`, `''`) + `'` }

// postgres: POSTGRES_USER, POSTGRES_PASSWORD, POSTGRES_DB, PGDATA,
// POSTGRES_INITDB_ARGS, POSTGRES_HOST_AUTH_METHOD as the official image.
func postgres(args []string) error {
	args, isServer := serverArgs(args, "postgres")
	if !isServer {
		return execv(args[0], args[1:]) // e.g. `sh`: not the server
	}
	acc, err := lookup("postgres")
	if err != nil {
		return err
	}
	pgdata := env("PGDATA", "/var/lib/postgresql/data")
	os.Setenv("PGDATA", pgdata)
	if err := own(pgdata, acc, 0o700); err != nil {
		return fmt.Errorf("data directory %s: %w", pgdata, err)
	}
	if err := own("/var/run/postgresql", acc, os.ModeSetgid|os.ModeSticky|0o777); err != nil {
		return err
	}
	if err := become(acc); err != nil {
		return err
	}
	if _, err := os.Stat(filepath.Join(pgdata, "PG_VERSION")); errors.Is(err, os.ErrNotExist) {
		if err := pgInit(pgdata); err != nil {
			return err
		}
	} else if err != nil {
		return err
	}
	return execv("postgres", args[1:])
}

func pgInit(pgdata string) error {
	pw := os.Getenv("POSTGRES_PASSWORD")
	method := env("POSTGRES_HOST_AUTH_METHOD", "scram-sha-256")
	if pw == "" && method != "trust" {
		return errors.New("the database is uninitialised and POSTGRES_PASSWORD is not set: set it (or POSTGRES_HOST_AUTH_METHOD=trust)")
	}
	pgUser := env("POSTGRES_USER", "postgres")
	db := env("POSTGRES_DB", pgUser)
	pwfile, done, err := secretFile(pw + "\n")
	if err != nil {
		return err
	}
	defer done()
	initArgs := []string{"-D", pgdata, "--username=" + pgUser, "--pwfile=" + pwfile, "--encoding=UTF8", "--locale=C"}
	initArgs = append(initArgs, strings.Fields(os.Getenv("POSTGRES_INITDB_ARGS"))...)
	logf("initialising the PostgreSQL cluster in %s", pgdata)
	if err := run("initdb", initArgs...); err != nil {
		return err
	}
	// As the official image: listen on every address, password auth from
	// the network (local socket connections stay trusted, initdb's default).
	if err := appendFile(filepath.Join(pgdata, "postgresql.conf"), "\nlisten_addresses = '*'\n"); err != nil {
		return err
	}
	if err := appendFile(filepath.Join(pgdata, "pg_hba.conf"), "\nhost all all all "+method+"\n"); err != nil {
		return err
	}
	if db == "postgres" {
		return nil
	}
	// A server on the socket only, to create the database, then stopped.
	if err := run("pg_ctl", "-D", pgdata, "-o", "-c listen_addresses='' -p 5432", "-w", "-t", "60", "start"); err != nil {
		return err
	}
	sql := "CREATE DATABASE " + quoteIdent(db)
	cerr := run("psql", "-v", "ON_ERROR_STOP=1", "--no-password", "--no-psqlrc", "-U", pgUser, "-d", "postgres", "-c", sql)
	if err := run("pg_ctl", "-D", pgdata, "-m", "fast", "-w", "stop"); err != nil {
		return err
	}
	if cerr != nil {
		return cerr
	}
	logf("created database %s", db)
	return nil
}

func appendFile(path, s string) error {
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	if _, err := f.WriteString(s); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// mariadb: MYSQL_ROOT_PASSWORD (or MARIADB_ROOT_PASSWORD), MYSQL_DATABASE,
// MYSQL_USER / MYSQL_PASSWORD as the official mysql image; data in
// /var/lib/mysql.
func mariadb(args []string) error {
	args, isServer := serverArgs(args, "mariadbd", "mysqld")
	if !isServer {
		return execv(args[0], args[1:])
	}
	acc, err := lookup("mysql")
	if err != nil {
		return err
	}
	const datadir = "/var/lib/mysql"
	if err := own(datadir, acc, 0o750); err != nil {
		return fmt.Errorf("data directory %s: %w", datadir, err)
	}
	if err := own("/run/mysqld", acc, 0o755); err != nil {
		return err
	}
	if err := become(acc); err != nil {
		return err
	}
	if _, err := os.Stat(filepath.Join(datadir, "mysql")); errors.Is(err, os.ErrNotExist) {
		if err := mariadbInit(datadir); err != nil {
			return err
		}
	} else if err != nil {
		return err
	}
	return execv(args[0], args[1:])
}

func mariadbInit(datadir string) error {
	pw := env("MYSQL_ROOT_PASSWORD", os.Getenv("MARIADB_ROOT_PASSWORD"))
	if pw == "" {
		return errors.New("the database is uninitialised and MYSQL_ROOT_PASSWORD is not set: set it")
	}
	logf("initialising the MariaDB data directory %s", datadir)
	if err := run("mariadb-install-db", "--datadir="+datadir, "--skip-test-db", "--skip-name-resolve",
		"--auth-root-authentication-method=normal", "--rpm"); err != nil {
		return err
	}
	// A server on the socket only (no network), to set the root password and
	// create the database and user, then shut down.
	const sock = "/run/mysqld/init.sock"
	srv := exec.Command("mariadbd", "--datadir="+datadir, "--skip-networking", "--socket="+sock, "--skip-log-error")
	srv.Stdout, srv.Stderr = os.Stderr, os.Stderr
	if err := srv.Start(); err != nil {
		return err
	}
	stopped := false
	defer func() {
		if !stopped {
			srv.Process.Kill()
			srv.Wait()
		}
	}()
	client := func(sql string) error {
		cmd := exec.Command("mariadb", "--protocol=socket", "--socket="+sock, "-uroot", "--batch")
		cmd.Stdin = strings.NewReader(sql)
		out, err := cmd.CombinedOutput()
		if err != nil {
			// The server may quote the statement back: never the password.
			msg := strings.TrimSpace(string(out))
			if pw != "" {
				msg = strings.ReplaceAll(msg, pw, "***")
			}
			return fmt.Errorf("mariadb client: %w: %s", err, msg)
		}
		return nil
	}
	var err error
	for i := 0; i < 120; i++ {
		if err = client("SELECT 1"); err == nil {
			break
		}
		time.Sleep(250 * time.Millisecond)
	}
	if err != nil {
		return fmt.Errorf("the bootstrap server did not answer: %w", err)
	}
	sql := []string{
		"SET @@SESSION.SQL_LOG_BIN=0;",
		"DELETE FROM mysql.global_priv WHERE user NOT IN ('mysql.sys', 'mariadb.sys', 'root') OR host NOT IN ('localhost');",
		"ALTER USER 'root'@'localhost' IDENTIFIED BY " + quoteLit(pw) + ";",
		"CREATE USER 'root'@'%' IDENTIFIED BY " + quoteLit(pw) + ";",
		"GRANT ALL ON *.* TO 'root'@'%' WITH GRANT OPTION;",
	}
	if db := os.Getenv("MYSQL_DATABASE"); db != "" {
		sql = append(sql, "CREATE DATABASE IF NOT EXISTS `"+strings.ReplaceAll(db, "`", "``")+"`;")
		if u, p := os.Getenv("MYSQL_USER"), os.Getenv("MYSQL_PASSWORD"); u != "" && p != "" {
			sql = append(sql, "CREATE USER "+quoteLit(u)+"@'%' IDENTIFIED BY "+quoteLit(p)+";",
				"GRANT ALL ON `"+strings.ReplaceAll(db, "`", "``")+"`.* TO "+quoteLit(u)+"@'%';")
		}
	}
	sql = append(sql, "FLUSH PRIVILEGES;")
	if err := client(strings.Join(sql, "\n")); err != nil {
		return fmt.Errorf("setting the root password and database: %w", err)
	}
	if err := srv.Process.Signal(syscall.SIGTERM); err != nil {
		return err
	}
	stopped = true
	if err := srv.Wait(); err != nil {
		return fmt.Errorf("the bootstrap server did not stop cleanly: %w", err)
	}
	logf("MariaDB initialised")
	return nil
}
