// Command bundle measures `difyctl backup all` and `difyctl restore all`
// against the manual path a careful operator types, on a project running
// Dify's db_postgres and redis services on the fixtures (api and
// plugin_daemon as busybox holding Dify's volumes), and prints both from one
// run:
//
//	go run ./bench/bundle [-db-mib 1024] [-files-mib 1024] [-difyctl path]
//
// The database is filled like `pgbench -i -s 70` (pgbench_accounts rows of
// 100 bytes, 100 000 per scale unit, with its primary key); storage with
// mixed files (random and text, 4 KiB to 8 MiB). The manual backup is
// `docker exec db pg_dump -Fc > db.dump` then `tar -czf files.tgz volumes/`
// (the data directories, not the database's); the manual restore is
// `pg_restore` into a new database plus `tar -xzf`. difyctl's restore is
// measured twice: into a new project (no safety bundle) and over project A
// itself (a safety bundle first). Each figure is printed with the load
// average before it (the machine may be shared) and difyctl's own step
// timings (its --output json). It needs the engine, the fixture images
// (make engine fixtures) and a docker CLI. Everything it creates is removed.
package main

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/difyctl/difyctl/backup/bundle"
	"github.com/difyctl/difyctl/internal/testenv"
)

func main() {
	dbMiB := flag.Int("db-mib", 1024, "database size to load, MiB (pgbench_accounts rows, as pgbench -i -s N)")
	filesMiB := flag.Int("files-mib", 1024, "storage files to write, MiB (mixed random and text)")
	bin := flag.String("difyctl", "", "difyctl binary (default: build one)")
	flag.Parse()
	if err := run(*dbMiB, *filesMiB, *bin); err != nil {
		fmt.Fprintln(os.Stderr, "bundle:", err)
		os.Exit(1)
	}
}

func run(dbMiB, filesMiB int, bin string) error {
	ctx := context.Background()
	bench, err := testenv.NewBench(ctx, bin)
	if err != nil {
		return err
	}
	defer bench.Close()
	work, bin := bench.Dir, bench.Bin
	a, b := bench.Project(), bench.Project()
	dirA, dirB := filepath.Join(work, "a"), filepath.Join(work, "b")
	if err := os.MkdirAll(dirA, 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dirA, "docker-compose.override.yaml"), []byte(testenv.BundleOverride("db_postgres")), 0o644); err != nil {
		return err
	}
	fmt.Printf("starting project %s...\n", a)
	if _, _, err := timed(nil, bin, "--project-dir", dirA, "-p", a, "up", "--progress", "quiet", "--wait-timeout", "600s", "db_postgres", "redis", "api", "plugin_daemon"); err != nil {
		return err
	}
	db := a + "-db_postgres-1"

	scale := max(1, dbMiB*70/1024) // pgbench -s 70 is about 1 GiB with its index
	fmt.Printf("loading pgbench_accounts at scale %d (%d rows) and %d MiB of files...\n", scale, scale*100000, filesMiB)
	t0 := time.Now()
	sql := fmt.Sprintf(`CREATE TABLE pgbench_accounts (aid int NOT NULL, bid int, abalance int, filler char(84)) WITH (fillfactor=100);
INSERT INTO pgbench_accounts SELECT g, (g-1)/100000+1, 0, '' FROM generate_series(1, %d) g;
ALTER TABLE pgbench_accounts ADD PRIMARY KEY (aid);
CREATE TABLE pgbench_branches (bid int PRIMARY KEY, bbalance int, filler char(88));
INSERT INTO pgbench_branches SELECT g, 0, '' FROM generate_series(1, %d) g;`, scale*100000, scale)
	// VACUUM cannot run in the transaction one -c runs: its own -c.
	if _, _, err := timed(nil, "docker", "exec", db, "psql", "-q", "-v", "ON_ERROR_STOP=1", "-U", "postgres", "-d", "dify", "-c", sql, "-c", "VACUUM ANALYZE"); err != nil {
		return err
	}
	if err := writeFiles(filepath.Join(dirA, "volumes", "app", "storage", "upload_files"), int64(filesMiB)<<20); err != nil {
		return err
	}
	size, _ := output("docker", "exec", db, "psql", "-U", "postgres", "-d", "dify", "-tAc", "SELECT pg_size_pretty(pg_database_size('dify'))")
	fmt.Printf("loaded in %s: database %s, files %d MiB\n\n", time.Since(t0).Round(time.Second), strings.TrimSpace(size), filesMiB)

	// 1. The manual backup: pg_dump -Fc to a file, then tar -czf of the data volumes.
	mLoad := loadavg()
	manual := filepath.Join(work, "manual")
	os.MkdirAll(manual, 0o700)
	dump, err := os.Create(filepath.Join(manual, "db.dump"))
	if err != nil {
		return err
	}
	dumpWall, dumpRSS, err := timed(dump, "docker", "exec", db, "pg_dump", "-Fc", "-U", "postgres", "-d", "dify")
	dump.Close()
	if err != nil {
		return err
	}
	tarWall, tarRSS, err := timed(nil, "tar", "-czf", filepath.Join(manual, "files.tgz"), "-C", dirA, "volumes/app", "volumes/plugin_daemon")
	if err != nil {
		return err
	}
	manualBackup := dumpWall + tarWall

	// 2. difyctl backup all.
	bLoad := loadavg()
	var bRes bundle.Result
	bWall, bRSS, err := timedJSON(&bRes, bin, "--project-dir", dirA, "-p", a, "backup", "all", "-o", "json")
	if err != nil {
		return err
	}

	// 3. The manual restore: pg_restore into a new database, tar -xzf.
	mrLoad := loadavg()
	if _, _, err := timed(nil, "docker", "exec", db, "createdb", "-U", "postgres", "manual_restore"); err != nil {
		return err
	}
	in, err := os.Open(filepath.Join(manual, "db.dump"))
	if err != nil {
		return err
	}
	prWall, prRSS, err := timedIn(in, "docker", "exec", "-i", db, "pg_restore", "-U", "postgres", "-d", "manual_restore")
	in.Close()
	if err != nil {
		return err
	}
	untar := filepath.Join(work, "untar")
	os.MkdirAll(untar, 0o755)
	xWall, xRSS, err := timed(nil, "tar", "-xzf", filepath.Join(manual, "files.tgz"), "-C", untar)
	if err != nil {
		return err
	}
	manualRestore := prWall + xWall

	// 4. difyctl restore all into project B (new directory, new name): this
	// includes writing .env, starting the data services and, at the end,
	// every service, which the manual path does not do.
	rLoad := loadavg()
	var rNew bundle.RestoreResult
	rWall, rRSS, err := timedJSON(&rNew, bin, "--project-dir", dirB, "-p", b, "restore", "all", bRes.Path, "--yes", "-o", "json")
	if err != nil {
		return err
	}

	// 5. difyctl restore all over project A itself (the same deployment):
	// a safety bundle of A first, the application stopped, the data
	// replaced, everything started again.
	sLoad := loadavg()
	var rSame bundle.RestoreResult
	sWall, sRSS, err := timedJSON(&rSame, bin, "--project-dir", dirA, "-p", a, "restore", "all", bRes.Path, "--yes", "-o", "json")
	if err != nil {
		return err
	}
	var safety time.Duration
	for _, t := range rSame.Timings {
		if t.Step == "safety bundle" {
			safety = time.Duration(t.Seconds * float64(time.Second))
		}
	}

	fmt.Printf("manual backup:  pg_dump -Fc %s + tar -czf %s = %s   (peak RSS %d MiB; load before %s)\n", r(dumpWall), r(tarWall), r(manualBackup), max(dumpRSS, tarRSS)>>10, mLoad)
	fmt.Printf("difyctl backup all:              %s   peak RSS %d MiB   (%.2fx the manual path; target <= 0.8x, RSS <= 128 MiB; load before %s)\n", r(bWall), bRSS>>10, float64(bWall)/float64(manualBackup), bLoad)
	fmt.Printf("    steps: %s\n", bundle.TimingWords(bRes.Manifest.Timings))
	for _, p := range bRes.Manifest.Parts {
		fmt.Printf("    part %-36s %8s  raw %s, stored %s\n", p.Name, p.Took, mib(p.RawSize), mib(p.Size))
	}
	fmt.Printf("manual restore: pg_restore %s + tar -xzf %s = %s   (peak RSS %d MiB; load before %s)\n", r(prWall), r(xWall), r(manualRestore), max(prRSS, xRSS)>>10, mrLoad)
	fmt.Printf("difyctl restore all, new project (no safety bundle; data services and every service started): %s   peak RSS %d MiB   (%.2fx the manual path; target <= 1.0x, RSS <= 128 MiB; load before %s)\n", r(rWall), rRSS>>10, float64(rWall)/float64(manualRestore), rLoad)
	fmt.Printf("    steps: %s\n", bundle.TimingWords(rNew.Timings))
	fmt.Printf("difyctl restore all, same deployment (safety bundle first): %s   peak RSS %d MiB   (%.2fx the manual path; without the safety bundle's %s: %s, %.2fx; load before %s)\n", r(sWall), sRSS>>10, float64(sWall)/float64(manualRestore), r(safety), r(sWall-safety), float64(sWall-safety)/float64(manualRestore), sLoad)
	fmt.Printf("    steps: %s\n", bundle.TimingWords(rSame.Timings))
	return nil
}

// loadavg is the machine's load average (1, 5, 15 min): the machine is
// shared, so each figure is printed beside it.
func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	fs := strings.Fields(string(b))
	if len(fs) < 3 {
		return "unknown"
	}
	return strings.Join(fs[:3], " ")
}

func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }

// timedJSON runs a difyctl command with -o json and decodes its stdout
// into v.
func timedJSON(v any, name string, args ...string) (time.Duration, int64, error) {
	cmd := exec.Command(name, args...)
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, os.Stderr
	wall, rss, err := runTimed(cmd)
	if err != nil {
		return wall, rss, err
	}
	if err := json.Unmarshal([]byte(out.String()), v); err != nil {
		return wall, rss, fmt.Errorf("%v: reading its JSON: %w", cmd.Args, err)
	}
	return wall, rss, nil
}

// writeFiles writes total bytes of files under dir: a mix of random
// (incompressible, as uploaded images and PDFs) and repetitive text, sizes
// from 4 KiB to 8 MiB.
func writeFiles(dir string, total int64) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	sizes := []int64{4 << 10, 64 << 10, 512 << 10, 2 << 20, 8 << 20}
	text := []byte(strings.Repeat("Dify stores uploaded documents here; text compresses. ", 100))
	var written int64
	for i := 0; written < total; i++ {
		n := min(sizes[i%len(sizes)], total-written)
		b := make([]byte, n)
		if i%2 == 0 {
			rand.Read(b)
		} else {
			for j := int64(0); j < n; j += int64(len(text)) {
				copy(b[j:], text)
			}
		}
		sub := filepath.Join(dir, fmt.Sprintf("t%02d", i%16))
		os.MkdirAll(sub, 0o755)
		if err := os.WriteFile(filepath.Join(sub, fmt.Sprintf("f%05d", i)), b, 0o644); err != nil {
			return err
		}
		written += n
	}
	return nil
}

func r(d time.Duration) string { return d.Round(10 * time.Millisecond).String() }

func output(name string, args ...string) (string, error) {
	out, err := exec.Command(name, args...).Output()
	return string(out), err
}

// timed runs a command (stdout to out when given) and returns its wall time
// and peak RSS (KiB).
func timed(out *os.File, name string, args ...string) (time.Duration, int64, error) {
	cmd := exec.Command(name, args...)
	if out != nil {
		cmd.Stdout = out
	}
	cmd.Stderr = os.Stderr
	return runTimed(cmd)
}

func timedIn(in *os.File, name string, args ...string) (time.Duration, int64, error) {
	cmd := exec.Command(name, args...)
	cmd.Stdin, cmd.Stderr = in, os.Stderr
	return runTimed(cmd)
}

func runTimed(cmd *exec.Cmd) (time.Duration, int64, error) {
	t := time.Now()
	if err := cmd.Run(); err != nil {
		return 0, 0, fmt.Errorf("%v: %w", cmd.Args, err)
	}
	wall := time.Since(t)
	ru := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	return wall, ru.Maxrss, nil
}
