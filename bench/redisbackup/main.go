// Command redisbackup measures `difyctl backup redis` against the manual
// procedure it replaces (`docker exec redis-cli SAVE` + `docker cp`), on the
// Redis fixture filled with incompressible data, and prints both in one run:
//
//	go run ./bench/redisbackup [-size 1GiB-in-MiB] [-difyctl path]
//
// It needs the engine and the fixture images (make engine fixtures) and a
// docker CLI for the `docker cp` baseline. Everything it creates is removed.
package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/client"

	"github.com/difyctl/difyctl/compose"
	"github.com/difyctl/difyctl/internal/testenv"
)

const password = "bench-redis-password"

func main() {
	sizeMiB := flag.Int("size", 1024, "data to load, MiB of random 4 KiB values")
	bin := flag.String("difyctl", "", "difyctl binary (default: build one)")
	flag.Parse()
	if err := run(*sizeMiB, *bin); err != nil {
		fmt.Fprintln(os.Stderr, "redisbackup:", err)
		os.Exit(1)
	}
}

func run(sizeMiB int, bin string) error {
	ctx := context.Background()
	bench, err := testenv.NewBench(ctx, bin)
	if err != nil {
		return err
	}
	defer bench.Close()
	cli, work, bin, project := bench.Cli, bench.Dir, bench.Bin, bench.Project()

	vol := project + "_redisdata"
	if _, err := cli.VolumeCreate(ctx, client.VolumeCreateOptions{Name: vol, Labels: map[string]string{compose.LabelProject: project}}); err != nil {
		return err
	}
	res, err := cli.ContainerCreate(ctx, client.ContainerCreateOptions{
		Name: project + "-redis-1",
		Config: &container.Config{Image: testenv.ImageRedis, Env: []string{"REDISCLI_AUTH=" + password},
			Cmd:    []string{"sh", "-c", `exec redis-server --requirepass "$REDISCLI_AUTH" --save ""`},
			Labels: map[string]string{compose.LabelProject: project, compose.LabelService: "redis", compose.LabelNumber: "1"}},
		HostConfig: &container.HostConfig{Mounts: []mount.Mount{{Type: mount.TypeVolume, Source: vol, Target: "/data"}}},
	})
	if err != nil {
		return err
	}
	if _, err := cli.ContainerStart(ctx, res.ID, client.ContainerStartOptions{}); err != nil {
		return err
	}
	time.Sleep(500 * time.Millisecond)

	keys := sizeMiB * 256
	fmt.Printf("loading %d keys of 4 KiB random values (%d MiB)...\n", keys, sizeMiB)
	t0 := time.Now()
	if err := load(project+"-redis-1", keys); err != nil {
		return err
	}
	fmt.Printf("loaded in %s\n\n", time.Since(t0).Round(time.Millisecond))

	// 1. The manual procedure: SAVE, then docker cp.
	saveWall, _, err := timed("docker", "exec", "-e", "REDISCLI_AUTH="+password, project+"-redis-1", "redis-cli", "SAVE")
	if err != nil {
		return err
	}
	cpWall, cpRSS, err := timed("docker", "cp", project+"-redis-1:/data/dump.rdb", filepath.Join(work, "manual.rdb"))
	if err != nil {
		return err
	}
	st, _ := os.Stat(filepath.Join(work, "manual.rdb"))
	os.Remove(filepath.Join(work, "manual.rdb"))
	checkWall, _, _ := timed("docker", "exec", project+"-redis-1", "redis-check-rdb", "/data/dump.rdb")

	// 2. difyctl, SAVE mode (the same work: save, copy out) plus verification.
	dWall, dRSS, err := timed(bin, "-p", project, "--project-dir", work, "backup", "redis", "--mode", "save", "--quiet", "--backup-dir", filepath.Join(work, "b1"))
	if err != nil {
		return err
	}
	// 3. difyctl, BGSAVE mode (the default).
	bWall, bRSS, err := timed(bin, "-p", project, "--project-dir", work, "backup", "redis", "--quiet", "--backup-dir", filepath.Join(work, "b2"))
	if err != nil {
		return err
	}

	manual := saveWall + cpWall
	fmt.Printf("dump size: %.2f GiB\n", float64(st.Size())/(1<<30))
	fmt.Printf("manual:  SAVE %s + docker cp %s = %s   (docker cp peak RSS %d MiB)\n", r(saveWall), r(cpWall), r(manual), cpRSS>>10)
	fmt.Printf("         redis-check-rdb walk: %s\n", r(checkWall))
	fmt.Printf("difyctl backup redis --mode save:   %s   peak RSS %d MiB   (%.2fx the manual path)\n", r(dWall), dRSS>>10, float64(dWall)/float64(manual))
	fmt.Printf("difyctl backup redis (bgsave):      %s   peak RSS %d MiB   (%.2fx the manual path)\n", r(bWall), bRSS>>10, float64(bWall)/float64(manual))
	fmt.Printf("targets: peak RSS < 64 MiB; wall <= 1.2x the manual path\n")
	return nil
}

func r(d time.Duration) string { return d.Round(10 * time.Millisecond).String() }

// timed runs a command and returns its wall time and peak RSS (KiB).
func timed(name string, args ...string) (time.Duration, int64, error) {
	cmd := exec.Command(name, args...)
	cmd.Stderr = os.Stderr
	t := time.Now()
	if err := cmd.Run(); err != nil {
		return 0, 0, fmt.Errorf("%s %v: %w", name, args, err)
	}
	wall := time.Since(t)
	ru := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	return wall, ru.Maxrss, nil
}

// load streams SET commands in RESP through redis-cli --pipe.
func load(containerName string, keys int) error {
	cmd := exec.Command("docker", "exec", "-i", "-e", "REDISCLI_AUTH="+password, containerName, "redis-cli", "--pipe")
	in, err := cmd.StdinPipe()
	if err != nil {
		return err
	}
	cmd.Stdout = nil
	if err := cmd.Start(); err != nil {
		return err
	}
	w := bufio.NewWriterSize(in, 1<<20)
	val := make([]byte, 4096)
	for i := 0; i < keys; i++ {
		rand.Read(val)
		key := "bench:" + strconv.Itoa(i)
		fmt.Fprintf(w, "*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n", len(key), key, len(val))
		w.Write(val)
		w.WriteString("\r\n")
	}
	if err := w.Flush(); err != nil {
		return err
	}
	in.Close()
	return cmd.Wait()
}
