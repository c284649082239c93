// Command rdbverify measures the RDB verifier (backup/rdb) beside
// redis-check-rdb and sha256sum on the same file, best of several runs of
// each in one program run:
//
//	go run ./bench/rdbverify [-size 500] [-runs 5] [-data mixed|random] [-file dump.rdb] [-keep]
//
// Without -file it writes a dump of about -size MB with the local Debian
// redis-server in a temporary directory, removed at the end unless -keep:
// -data mixed (random and compressible strings, listpack and hashtable
// hashes, quicklists, sets, sorted sets, a stream, keys with expiries) or
// -data random (4 KiB random strings only: the checksum's share at its
// largest). Every run reads the
// file from the page cache (one warm-up read first), so the figures compare
// the programs' work, not the disk.
package main

import (
	"bufio"
	"crypto/rand"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/difyctl/difyctl/backup/rdb"
)

func main() {
	size := flag.Int("size", 500, "MB of data to generate")
	runs := flag.Int("runs", 5, "runs of each tool; the best is kept")
	file := flag.String("file", "", "an existing RDB to measure (default: generate one)")
	keep := flag.Bool("keep", false, "keep the generated file")
	flag.StringVar(&data, "data", "mixed", "what to generate: mixed or random")
	flag.Parse()
	if data != "mixed" && data != "random" {
		fmt.Fprintln(os.Stderr, "rdbverify: -data is mixed or random")
		os.Exit(2)
	}
	if err := run(*size, *runs, *file, *keep); err != nil {
		fmt.Fprintln(os.Stderr, "rdbverify:", err)
		os.Exit(1)
	}
}

var data string // -data

func run(sizeMB, runs int, file string, keep bool) error {
	if file == "" {
		dir, err := os.MkdirTemp("", "rdbverify-")
		if err != nil {
			return err
		}
		if !keep {
			defer os.RemoveAll(dir)
		}
		if file, err = generate(dir, sizeMB); err != nil {
			return err
		}
		if keep {
			fmt.Println("kept", file)
		}
	}
	st, err := os.Stat(file)
	if err != nil {
		return err
	}
	mb := float64(st.Size()) / 1e6
	if err := warm(file); err != nil {
		return err
	}
	info, err := verify(file)
	if err != nil {
		return fmt.Errorf("the verifier refuses %s: %w", file, err)
	}
	fmt.Printf("file: %s, %.1f MB, RDB v%d, %d keys (%d with expiry), %s\n", file, mb, info.Version, info.Keys, info.Expires, info.Integrity())

	fmt.Printf("best of %d runs each; wall time, and CPU time (user+sys: what the run cost, whatever else the machine runs)\n", runs)
	// best keeps the shortest wall and the smallest CPU time over the runs;
	// f returns the CPU time of its run.
	best := func(name string, f func() (time.Duration, error)) (wall, cpu time.Duration, err error) {
		for i := 0; i < runs; i++ {
			t0 := time.Now()
			c, err := f()
			if err != nil {
				return 0, 0, fmt.Errorf("%s: %w", name, err)
			}
			if d := time.Since(t0); i == 0 || d < wall {
				wall = d
			}
			if i == 0 || c < cpu {
				cpu = c
			}
		}
		fmt.Printf("  %-30s wall %8s %6.0f MB/s   cpu %8s %6.0f MB/s\n", name, wall.Round(time.Millisecond), mb/wall.Seconds(), cpu.Round(time.Millisecond), mb/cpu.Seconds())
		return wall, cpu, nil
	}
	vw, vc, err := best("difyctl verifier (rdb.Verify)", func() (time.Duration, error) {
		c0 := selfCPU()
		_, err := verify(file)
		return selfCPU() - c0, err
	})
	if err != nil {
		return err
	}
	cw, cc, err := best("redis-check-rdb", func() (time.Duration, error) { return child("redis-check-rdb", file) })
	if err != nil {
		return err
	}
	if _, _, err := best("sha256sum", func() (time.Duration, error) { return child("sha256sum", file) }); err != nil {
		return err
	}
	fmt.Printf("verifier throughput: %.2fx redis-check-rdb by wall time, %.2fx by CPU time (target >= 1.0x)\n", float64(cw)/float64(vw), float64(cc)/float64(vc))
	return nil
}

// selfCPU is this process's user+sys time so far.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func verify(file string) (rdb.Info, error) {
	f, err := os.Open(file)
	if err != nil {
		return rdb.Info{}, err
	}
	defer f.Close()
	return rdb.Verify(f)
}

func warm(file string) error {
	f, err := os.Open(file)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = io.Copy(io.Discard, f)
	return err
}

// child runs a tool and returns its user+sys time.
func child(name string, args ...string) (time.Duration, error) {
	c := exec.Command(name, args...)
	out, err := c.CombinedOutput()
	if err != nil {
		return 0, fmt.Errorf("%v: %s", err, lastLine(out))
	}
	return c.ProcessState.UserTime() + c.ProcessState.SystemTime(), nil
}

func lastLine(b []byte) string {
	s := strings.TrimSpace(string(b))
	return s[strings.LastIndex(s, "\n")+1:]
}

// generate fills a local redis-server through redis-cli --pipe and SAVEs.
func generate(dir string, sizeMB int) (string, error) {
	sock := filepath.Join(dir, "redis.sock")
	srv := exec.Command("redis-server", "--port", "0", "--unixsocket", sock, "--dir", dir, "--save", "", "--appendonly", "no")
	if err := srv.Start(); err != nil {
		return "", fmt.Errorf("redis-server (apt-get install redis-server): %w", err)
	}
	defer func() { srv.Process.Kill(); srv.Wait() }()
	for i := 0; i < 200; i++ {
		if _, err := os.Stat(sock); err == nil {
			break
		}
		time.Sleep(25 * time.Millisecond)
	}
	fmt.Printf("generating about %d MB (%s) with %s...\n", sizeMB, data, version())
	t0 := time.Now()
	pipe := exec.Command("redis-cli", "-s", sock, "--pipe")
	in, err := pipe.StdinPipe()
	if err != nil {
		return "", err
	}
	pipe.Stdout, pipe.Stderr = io.Discard, os.Stderr
	if err := pipe.Start(); err != nil {
		return "", err
	}
	w := bufio.NewWriterSize(in, 1<<20)
	cmd := func(args ...string) {
		fmt.Fprintf(w, "*%d\r\n", len(args))
		for _, a := range args {
			fmt.Fprintf(w, "$%d\r\n%s\r\n", len(a), a)
		}
	}
	random := func(n int) string {
		b := make([]byte, n)
		rand.Read(b)
		return string(b)
	}
	text := strings.Repeat("the quick brown fox jumps over the lazy dog; ", 60) // LZF-compressible
	budget := int64(sizeMB) * 1e6 * 3 / 2                                       // what the loop counts overstates the dump by about a half
	var written int64
	for i := 0; data == "random" && written < budget*2/3; i++ {
		cmd("SET", fmt.Sprintf("r:%d", i), random(4096))
		written += 4096
	}
	for i := 0; data == "mixed" && written < budget; i++ {
		switch i % 10 {
		case 0, 1, 2: // random 1 KiB strings
			cmd("SET", fmt.Sprintf("s:%d", i), random(1024))
			written += 1024
		case 3: // compressible 2.7 KB JSON-ish strings, some with an expiry
			cmd("SET", fmt.Sprintf("t:%d", i), fmt.Sprintf(`{"id":%d,"body":"%s"}`, i, text), "EX", "86400")
			written += int64(len(text))
		case 4, 5: // small hashes (listpack)
			args := []string{"HSET", fmt.Sprintf("h:%d", i)}
			for f := 0; f < 20; f++ {
				args = append(args, fmt.Sprintf("field%d", f), random(24))
			}
			cmd(args...)
			written += 20 * 32
		case 6: // big hash (hashtable)
			if i%1000 == 6 {
				for f := 0; f < 2000; f++ {
					cmd("HSET", fmt.Sprintf("bh:%d", i), fmt.Sprintf("field%d", f), random(100))
				}
				written += 2000 * 110
			}
		case 7: // lists (quicklist of listpacks)
			if i%100 == 7 {
				args := []string{"RPUSH", fmt.Sprintf("l:%d", i)}
				for e := 0; e < 1000; e++ {
					args = append(args, fmt.Sprintf("item-%d-%d", i, e))
				}
				cmd(args...)
				written += 1000 * 14
			}
		case 8: // sets and sorted sets
			cmd("SADD", fmt.Sprintf("set:%d", i), "a", "b", "c", fmt.Sprint(i))
			cmd("ZADD", fmt.Sprintf("z:%d", i), "1", "one", "2.5", "two", fmt.Sprint(i), "n")
			written += 64
		case 9: // a stream
			cmd("XADD", "events", "*", "n", fmt.Sprint(i), "payload", random(64))
			written += 96
		}
	}
	if err := w.Flush(); err != nil {
		return "", err
	}
	in.Close()
	if err := pipe.Wait(); err != nil {
		return "", fmt.Errorf("redis-cli --pipe: %w", err)
	}
	if out, err := exec.Command("redis-cli", "-s", sock, "SAVE").CombinedOutput(); err != nil || strings.TrimSpace(string(out)) != "OK" {
		return "", fmt.Errorf("SAVE: %v %s", err, out)
	}
	fmt.Printf("generated in %s\n", time.Since(t0).Round(time.Millisecond))
	return filepath.Join(dir, "dump.rdb"), nil
}

func version() string {
	out, _ := exec.Command("redis-server", "--version").Output()
	return strings.TrimSpace(string(out))
}
