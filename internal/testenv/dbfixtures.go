package testenv

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
)

// The database fixtures stand in for the images of Dify's db_postgres
// (postgres:15-alpine) and db_mysql (mysql:8.0) services: Debian's packages
// on scratch, with the shared libraries ldd names, busybox for CMD-SHELL
// healthchecks, and internal/testenv/dbentry as the entrypoint, which does
// what the official images' entrypoints do for the variables Dify sets.

// rootfs collects an image's entries, creating parent directories once.
type rootfs struct {
	entries []entry
	names   map[string]bool
	libs    map[string]bool
}

func newRootfs(base []entry) *rootfs {
	r := &rootfs{names: map[string]bool{}, libs: map[string]bool{}}
	for _, e := range base {
		r.names[e.name] = true
		r.entries = append(r.entries, e)
	}
	return r
}

func (r *rootfs) add(e entry) {
	e.name = strings.TrimPrefix(e.name, "/")
	if r.names[e.name] {
		return
	}
	r.parents(e.name)
	r.names[e.name] = true
	r.entries = append(r.entries, e)
}

func (r *rootfs) parents(name string) {
	var missing []string
	for d := filepath.Dir(name); d != "." && d != "/" && !r.names[d]; d = filepath.Dir(d) {
		missing = append(missing, d)
	}
	for i := len(missing) - 1; i >= 0; i-- {
		r.names[missing[i]] = true
		r.entries = append(r.entries, entry{name: missing[i], dir: true, mode: 0o755})
	}
}

func (r *rootfs) dir(name string, mode int64) { r.add(entry{name: name, dir: true, mode: mode}) }

// file copies a host file (following symlinks) to the same path in the image.
func (r *rootfs) file(path string, mode int64) { r.add(entry{name: path, mode: mode, source: path}) }

// elf copies host executables or libraries to the same paths in the image
// and records the shared libraries ldd names for them (one ldd for all).
func (r *rootfs) elf(pkg string, paths ...string) error {
	for _, p := range paths {
		if _, err := os.Stat(p); err != nil {
			return fmt.Errorf("%s missing: install Debian's %s (make test does)", p, pkg)
		}
		r.file(p, 0o755)
	}
	out, err := exec.Command("ldd", paths...).Output()
	if err != nil {
		return fmt.Errorf("ldd %s: %w", strings.Join(paths, " "), err)
	}
	sc := bufio.NewScanner(bytes.NewReader(out))
	file := paths[0]
	for sc.Scan() {
		l := sc.Text()
		if !strings.HasPrefix(l, "\t") && strings.HasSuffix(l, ":") {
			file = strings.TrimSuffix(l, ":") // a section per file when ldd gets several
			continue
		}
		if strings.Contains(l, "not found") {
			return fmt.Errorf("ldd %s: %s", file, strings.TrimSpace(l))
		}
		if m := lddPath.FindStringSubmatch(l); m != nil {
			r.libs[m[1]] = true
		}
	}
	return nil
}

// finish adds the libraries, each at the path ldd named, and returns the entries.
func (r *rootfs) finish() []entry {
	libs := make([]string, 0, len(r.libs))
	for l := range r.libs {
		libs = append(libs, l)
	}
	sort.Strings(libs)
	for _, l := range libs {
		r.file(l, 0o755)
	}
	return r.entries
}

// dbBase is busybox with the accounts of a database image.
func dbBase(passwd, group string) (*rootfs, error) {
	bb, err := busyboxEntries()
	if err != nil {
		return nil, err
	}
	var base []entry
	for _, e := range bb {
		switch e.name {
		case "etc/passwd":
			e.data = []byte(passwd)
		case "etc/group":
			e.data = []byte(group)
		}
		base = append(base, e)
	}
	r := newRootfs(base)
	r.dir("usr/local/bin", 0o755)
	return r, nil
}

// pgVersionDir is Debian's /usr/lib/postgresql/<major> with the newest major.
func pgVersionDir() (string, error) {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin/postgres")
	if len(dirs) == 0 {
		return "", fmt.Errorf("no /usr/lib/postgresql/*/bin/postgres: install Debian's postgresql (make test does)")
	}
	sort.Slice(dirs, func(i, j int) bool {
		return len(dirs[i]) < len(dirs[j]) || len(dirs[i]) == len(dirs[j]) && dirs[i] < dirs[j]
	})
	return filepath.Dir(filepath.Dir(dirs[len(dirs)-1])), nil
}

func postgresConfig() string {
	dir, err := pgVersionDir()
	if err != nil {
		dir = "/usr/lib/postgresql/missing" // postgresEntries reports it
	}
	return "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:" + dir + "/bin\n" +
		"ENV PGDATA=/var/lib/postgresql/data\n" +
		"VOLUME /var/lib/postgresql/data\n" +
		"ENTRYPOINT [\"/usr/local/bin/postgres-entrypoint\"]\n" +
		"STOPSIGNAL SIGINT\nEXPOSE 5432\nCMD [\"postgres\"]\n"
}

// postgresEntries: Debian's PostgreSQL server and client programs at their
// Debian paths (the server finds its share and lib directories relative to
// its binary), the modules in its lib directory (without the LLVM JIT), the
// share directory, UTC zone data, and the entrypoint.
func postgresEntries(ctx context.Context) ([]entry, error) {
	r, err := dbBase(
		"root:x:0:0:root:/root:/bin/sh\npostgres:x:999:999:postgres:/var/lib/postgresql:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
		"root:x:0:\npostgres:x:999:\nnogroup:x:65534:\n")
	if err != nil {
		return nil, err
	}
	vdir, err := pgVersionDir()
	if err != nil {
		return nil, err
	}
	major := filepath.Base(vdir)
	var elfs []string
	for _, bin := range []string{"postgres", "initdb", "pg_ctl", "pg_dump", "pg_dumpall", "pg_restore", "psql", "pg_isready", "createdb"} {
		elfs = append(elfs, filepath.Join(vdir, "bin", bin))
	}
	mods, _ := filepath.Glob(filepath.Join(vdir, "lib", "*.so"))
	for _, m := range mods {
		switch filepath.Base(m) {
		case "llvmjit.so", "sepgsql.so": // LLVM (hundreds of MB) and SELinux: not needed
			continue
		}
		elfs = append(elfs, m)
	}
	if err := r.elf("postgresql-"+major, elfs...); err != nil {
		return nil, err
	}
	share := filepath.Join("/usr/share/postgresql", major)
	err = filepath.WalkDir(share, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if d.Name() == "man" {
				return filepath.SkipDir
			}
			r.dir(path, 0o755)
			return nil
		}
		if st, err := os.Stat(path); err != nil || st.IsDir() {
			return nil // a dangling or directory symlink
		}
		r.file(path, 0o644)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("%s: %w (install Debian's postgresql-%s)", share, err, major)
	}
	// Debian builds PostgreSQL with the system zone data; UTC is enough here.
	for _, z := range []string{"/usr/share/zoneinfo/Etc/UTC", "/usr/share/zoneinfo/UTC", "/usr/share/zoneinfo/GMT", "/usr/share/zoneinfo/Etc/GMT"} {
		if _, err := os.Stat(z); err == nil {
			r.file(z, 0o644)
		}
	}
	ep, err := staticGoBinary(ctx, "./internal/testenv/dbentry")
	if err != nil {
		return nil, err
	}
	r.add(entry{name: "usr/local/bin/postgres-entrypoint", mode: 0o755, data: ep})
	r.dir("var/lib/postgresql", 0o755)
	r.dir("var/lib/postgresql/data", 0o1777) // as the official image
	r.dir("var/run/postgresql", 0o3777)
	return r.finish(), nil
}

// As the official mysql image: data in /var/lib/mysql, port 3306, the server
// is the command and flags alone are its arguments.
const mariadbConfig = rootPath +
	"VOLUME /var/lib/mysql\n" +
	"ENTRYPOINT [\"/usr/local/bin/mariadb-entrypoint\"]\n" +
	"EXPOSE 3306\nCMD [\"mariadbd\"]\n"

// mariadbEntries: Debian's MariaDB server, client, dump and admin programs
// (with the mysql* names Dify's healthcheck and the backup use),
// mariadb-install-db and what it runs, the share directory (system tables,
// error messages, character sets), a my.cnf, and the entrypoint.
func mariadbEntries(ctx context.Context) ([]entry, error) {
	r, err := dbBase(
		"root:x:0:0:root:/root:/bin/sh\nmysql:x:999:999:mysql:/var/lib/mysql:/bin/false\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
		"root:x:0:\nmysql:x:999:\nnogroup:x:65534:\n")
	if err != nil {
		return nil, err
	}
	for _, bin := range []struct{ path, pkg string }{
		{"/usr/sbin/mariadbd", "mariadb-server"},
		{"/usr/bin/mariadb", "mariadb-client"},
		{"/usr/bin/mariadb-dump", "mariadb-client"},
		{"/usr/bin/mariadb-admin", "mariadb-client"},
		{"/usr/bin/my_print_defaults", "mariadb-server"},
		{"/usr/bin/resolveip", "mariadb-server"},
	} {
		if err := r.elf(bin.pkg, bin.path); err != nil {
			return nil, err
		}
	}
	const installDB = "/usr/bin/mariadb-install-db" // a shell script, run by busybox sh
	if _, err := os.Stat(installDB); err != nil {
		return nil, fmt.Errorf("%s missing: install Debian's mariadb-server (make test does)", installDB)
	}
	r.file(installDB, 0o755)
	for link, target := range map[string]string{
		"usr/sbin/mysqld":          "mariadbd",
		"usr/bin/mysql":            "mariadb",
		"usr/bin/mysqldump":        "mariadb-dump",
		"usr/bin/mysqladmin":       "mariadb-admin",
		"usr/bin/mysql_install_db": "mariadb-install-db",
	} {
		r.add(entry{name: link, link: target})
	}
	const share = "/usr/share/mysql"
	err = filepath.WalkDir(share, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			r.dir(path, 0o755)
			return nil
		}
		if st, err := os.Stat(path); err != nil || st.IsDir() {
			return nil
		}
		r.file(path, 0o644)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("%s: %w (install Debian's mariadb-server)", share, err)
	}
	r.dir("usr/lib/mysql/plugin", 0o755)
	r.add(entry{name: "etc/mysql/my.cnf", mode: 0o644, data: []byte(
		"[mysqld]\nskip-host-cache\nskip-name-resolve\ndatadir=/var/lib/mysql\nsocket=/run/mysqld/mysqld.sock\n" +
			"[client]\nsocket=/run/mysqld/mysqld.sock\n")})
	ep, err := staticGoBinary(ctx, "./internal/testenv/dbentry")
	if err != nil {
		return nil, err
	}
	r.add(entry{name: "usr/local/bin/mariadb-entrypoint", mode: 0o755, data: ep})
	r.dir("var/lib/mysql", 0o755)
	r.dir("run/mysqld", 0o755)
	return r.finish(), nil
}
