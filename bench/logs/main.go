// Command logs measures `difyctl logs` against `docker logs` on two
// containers and prints the wall time and peak resident memory of each:
// one that printed a single 300 MiB line without a newline, and one that
// printed 1 GiB of ordinary 100-byte lines.
//
//	go run ./bench/logs [-long-mib 300] [-lines-mib 1024] [-difyctl path]
//
// It needs the engine, the fixture images (make engine fixtures) and the
// docker CLI for the baseline. Output goes to /dev/null; memory is the
// child's ru_maxrss. Everything it creates is removed.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"

	"github.com/difyctl/difyctl/compose"
	"github.com/difyctl/difyctl/internal/testenv"
)

func main() {
	longMiB := flag.Int("long-mib", 300, "size of the line without a newline, MiB")
	linesMiB := flag.Int("lines-mib", 1024, "size of the ordinary lines, MiB")
	bin := flag.String("difyctl", "", "difyctl binary (default: build one)")
	flag.Parse()
	if err := run(*longMiB, *linesMiB, *bin); err != nil {
		fmt.Fprintln(os.Stderr, "logs:", err)
		os.Exit(1)
	}
}

func run(longMiB, linesMiB int, bin string) error {
	ctx := context.Background()
	bench, err := testenv.NewBench(ctx, bin)
	if err != nil {
		return err
	}
	defer bench.Close()
	fmt.Printf("%-34s %-14s %10s %10s %14s\n", "case", "tool", "time", "CPU", "peak RSS")
	for _, c := range []struct {
		name, script string
	}{
		{fmt.Sprintf("one %d MiB line, no newline", longMiB), fmt.Sprintf(`head -c %d /dev/zero | tr '\0' x`, longMiB<<20)},
		{fmt.Sprintf("%d MiB of 100-byte lines", linesMiB), fmt.Sprintf(`yes %s | head -c %d`, "ordinary-log-line-of-one-hundred-bytes-for-the-benchmark-0123456789-0123456789-0123456789-01234", linesMiB<<20)},
	} {
		project := bench.Project()
		id, err := produce(ctx, bench.Cli, project, c.script)
		if err != nil {
			return err
		}
		for _, tool := range []struct {
			name string
			args []string
		}{
			{"difyctl logs", []string{bench.Bin, "--project-dir", bench.Dir, "-p", project, "logs"}},
			{"docker logs", []string{"docker", "logs", id}},
		} {
			d, cpu, rss, err := measure(tool.args)
			if err != nil {
				return fmt.Errorf("%s: %w", tool.name, err)
			}
			fmt.Printf("%-34s %-14s %9.1fs %9.1fs %11.1f MiB\n", c.name, tool.name, d.Seconds(), cpu.Seconds(), float64(rss)/1024)
		}
	}
	return nil
}

// produce runs the script in a container of the project and waits for it
// to exit, so that both tools read the same finished log.
func produce(ctx context.Context, cli *client.Client, project, script string) (string, error) {
	res, err := cli.ContainerCreate(ctx, client.ContainerCreateOptions{
		Name: project + "-app-1",
		Config: &container.Config{Image: testenv.ImageBusybox, Cmd: []string{"sh", "-c", script},
			Labels: map[string]string{compose.LabelProject: project, compose.LabelService: "app", compose.LabelNumber: "1", compose.LabelOneoff: "False"}},
		HostConfig: &container.HostConfig{NetworkMode: "none"},
	})
	if err != nil {
		return "", err
	}
	start := time.Now()
	if _, err := cli.ContainerStart(ctx, res.ID, client.ContainerStartOptions{}); err != nil {
		return "", err
	}
	wait := cli.ContainerWait(ctx, res.ID, client.ContainerWaitOptions{Condition: container.WaitConditionNotRunning})
	select {
	case r := <-wait.Result:
		if r.StatusCode != 0 {
			return "", fmt.Errorf("producer exited %d", r.StatusCode)
		}
	case err := <-wait.Error:
		return "", err
	}
	fmt.Fprintf(os.Stderr, "logs: produced in %.1fs\n", time.Since(start).Seconds())
	return res.ID, nil
}

// measure runs args with stdout to /dev/null: wall time, CPU time (user +
// system: the rest of the wall time is the engine reading its log) and peak
// RSS (KiB).
func measure(args []string) (time.Duration, time.Duration, int64, error) {
	devnull, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		return 0, 0, 0, err
	}
	defer devnull.Close()
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Stdout, cmd.Stderr = devnull, os.Stderr
	start := time.Now()
	if err := cmd.Run(); err != nil {
		return 0, 0, 0, fmt.Errorf("%v: %w", args, err)
	}
	ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	if !ok {
		return 0, 0, 0, fmt.Errorf("no rusage")
	}
	cpu := time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	return time.Since(start), cpu, ru.Maxrss, nil
}
