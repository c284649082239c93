// Command envvalidate measures `difyctl env validate` (and `config`) on .env
// files of 10k, 100k and 1M lines and prints, for each, the wall time, the
// peak RSS of the difyctl process, its ratio to the file's size, and the
// bytes printed. Each file is a freshly generated .env (the default profiles)
// followed by operator variables and comments up to the line count, so that
// every added line is a finding (an unknown variable). Wall time depends on
// what else the machine runs; CPU time (user + system) does not.
//
//	go run ./bench/envvalidate [-difyctl BIN] [-lines 10000,100000,1000000] [-config]
//
// Targets (issue 24): linear in the file's size, 100k lines under a second
// with memory under 20 times the file.
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
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/difyctl/difyctl/envgen"
	"github.com/difyctl/difyctl/internal/testenv"
	"github.com/difyctl/difyctl/profiles"
)

func main() {
	bin := flag.String("difyctl", "", "difyctl binary to measure (default: build this tree)")
	counts := flag.String("lines", "10000,100000,1000000", "line counts")
	withConfig := flag.Bool("config", false, "also measure `difyctl config` on the files up to 100k lines (compose-go's loader reads the .env once per env_file: minutes and GiB at 1M)")
	flag.Parse()
	if err := run(*bin, *counts, *withConfig); err != nil {
		fmt.Fprintln(os.Stderr, "envvalidate:", err)
		os.Exit(1)
	}
}

func run(bin, counts string, withConfig bool) error {
	tmp, err := os.MkdirTemp("", "envvalidate-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	if bin == "" {
		if bin, err = testenv.BuildDifyctl(tmp); err != nil {
			return err
		}
	}
	sel, err := profiles.Select(nil, false)
	if err != nil {
		return err
	}
	base, err := envgen.Generate(envgen.DefaultSchema(), sel, rand.Reader, time.Now())
	if err != nil {
		return err
	}
	fmt.Printf("%-8s %7s %-25s %8s %8s %9s %8s %9s\n", "lines", "file", "command", "wall", "CPU", "peak RSS", "RSS/file", "printed")
	for _, c := range strings.Split(counts, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(c))
		if err != nil {
			return err
		}
		dir := filepath.Join(tmp, c)
		if err := os.Mkdir(dir, 0o700); err != nil {
			return err
		}
		size, err := writeEnv(filepath.Join(dir, ".env"), base.Bytes(), n)
		if err != nil {
			return err
		}
		cmds := [][]string{{"env", "validate"}, {"env", "validate", "-o", "json"}}
		if withConfig && n <= 100000 {
			cmds = append(cmds, []string{"config"})
		}
		for _, args := range cmds {
			m, err := measure(bin, dir, args)
			if err != nil {
				return err
			}
			fmt.Printf("%-8d %6.1fM %-25s %7.2fs %7.2fs %8.1fM %7.1fx %8.1fK\n", n, mb(size), strings.Join(args, " "),
				m.wall.Seconds(), m.cpu.Seconds(), mb(m.rss), float64(m.rss)/float64(size), float64(m.printed)/1024)
		}
	}
	return nil
}

func mb(n int64) float64 { return float64(n) / (1 << 20) }

// writeEnv writes base then operator variables (every tenth line a comment)
// up to n lines, and returns the file's size.
func writeEnv(path string, base []byte, n int) (int64, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return 0, err
	}
	w := bufio.NewWriter(f)
	w.Write(base)
	lines := strings.Count(string(base), "\n")
	for i := lines; i < n; i++ {
		if i%10 == 0 {
			fmt.Fprintf(w, "# operator setting %d\n", i)
			continue
		}
		fmt.Fprintf(w, "OPERATOR_SETTING_%07d=value-%07d-abcdefghij\n", i, i)
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return 0, err
	}
	st, err := f.Stat()
	f.Close()
	if err != nil {
		return 0, err
	}
	return st.Size(), nil
}

type measurement struct {
	wall    time.Duration
	cpu     time.Duration // user + system: what the run cost, whatever else the machine does
	rss     int64         // bytes
	printed int64
}

type counter struct{ n int64 }

func (c *counter) Write(p []byte) (int, error) { c.n += int64(len(p)); return len(p), nil }

func measure(bin, dir string, args []string) (measurement, error) {
	var out counter
	cmd := exec.Command(bin, append([]string{"--project-dir", dir}, args...)...)
	cmd.Stdout, cmd.Stderr = &out, io.MultiWriter(&out)
	start := time.Now()
	err := cmd.Run()
	wall := time.Since(start)
	if _, ok := err.(*exec.ExitError); err != nil && !ok {
		return measurement{}, err
	}
	ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	if !ok {
		return measurement{}, fmt.Errorf("no rusage")
	}
	cpu := time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	return measurement{wall: wall, cpu: cpu, rss: ru.Maxrss * 1024, printed: out.n}, nil
}
