// Command testsvc is the project's own test service: a static binary that the
// fixture image difyctl-test/testsvc runs on scratch. Each behaviour the
// engine tests need is a flag, or the environment variable named beside it,
// so a compose file can set it either way:
//
//	--name               TESTSVC_NAME            name printed in logs and served over HTTP
//	--healthy-after D    TESTSVC_HEALTHY_AFTER   become healthy D after start (default 0)
//	--never-healthy      TESTSVC_NEVER_HEALTHY   never become healthy
//	--unhealthy-after D  TESTSVC_UNHEALTHY_AFTER turn unhealthy again D after start
//	--exit-after D       TESTSVC_EXIT_AFTER      exit D after start...
//	--exit-code N        TESTSVC_EXIT_CODE       ...with code N (default 0)
//	--write-file PATH    TESTSVC_WRITE_FILE      write --write-content to PATH at start
//	--write-content S    TESTSVC_WRITE_CONTENT
//	--listen ADDR        TESTSVC_LISTEN          serve HTTP on ADDR (GET / answers the name)
//	--health-file PATH   TESTSVC_HEALTH_FILE     marker file (default /tmp/testsvc.healthy)
//
// "Healthy" is the marker file existing. `testsvc probe` is the exec-form
// healthcheck: it exits 0 when the marker exists, 1 otherwise; `testsvc probe
// --tcp ADDR` and `--http URL` probe a listener instead.
// SIGTERM and SIGINT end the service at once with code 0.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"
)

const defaultHealthFile = "/tmp/testsvc.healthy"

func main() {
	if len(os.Args) > 1 && os.Args[1] == "probe" {
		os.Exit(probe(os.Args[2:]))
	}
	os.Exit(serve(os.Args[1:]))
}

func envOr(key, def string) string {
	if v, ok := os.LookupEnv(key); ok {
		return v
	}
	return def
}

func envDuration(key string) time.Duration {
	d, err := time.ParseDuration(envOr(key, "0s"))
	if err != nil {
		fmt.Fprintf(os.Stderr, "testsvc: %s: %v\n", key, err)
		os.Exit(2)
	}
	return d
}

func envInt(key string, def int) int {
	v, err := strconv.Atoi(envOr(key, strconv.Itoa(def)))
	if err != nil {
		fmt.Fprintf(os.Stderr, "testsvc: %s: %v\n", key, err)
		os.Exit(2)
	}
	return v
}

type config struct {
	name           string
	healthyAfter   time.Duration
	neverHealthy   bool
	unhealthyAfter time.Duration
	exitAfter      time.Duration
	exitCode       int
	writeFile      string
	writeContent   string
	listen         string
	healthFile     string
}

func parse(args []string) (*config, error) {
	c := &config{}
	fs := flag.NewFlagSet("testsvc", flag.ContinueOnError)
	fs.StringVar(&c.name, "name", envOr("TESTSVC_NAME", "testsvc"), "name")
	fs.DurationVar(&c.healthyAfter, "healthy-after", envDuration("TESTSVC_HEALTHY_AFTER"), "become healthy after")
	fs.BoolVar(&c.neverHealthy, "never-healthy", envOr("TESTSVC_NEVER_HEALTHY", "") != "", "never become healthy")
	fs.DurationVar(&c.unhealthyAfter, "unhealthy-after", envDuration("TESTSVC_UNHEALTHY_AFTER"), "turn unhealthy after")
	fs.DurationVar(&c.exitAfter, "exit-after", envDuration("TESTSVC_EXIT_AFTER"), "exit after")
	fs.IntVar(&c.exitCode, "exit-code", envInt("TESTSVC_EXIT_CODE", 0), "exit code")
	fs.StringVar(&c.writeFile, "write-file", envOr("TESTSVC_WRITE_FILE", ""), "file to write at start")
	fs.StringVar(&c.writeContent, "write-content", envOr("TESTSVC_WRITE_CONTENT", "written by testsvc\n"), "content to write")
	fs.StringVar(&c.listen, "listen", envOr("TESTSVC_LISTEN", ""), "HTTP listen address")
	fs.StringVar(&c.healthFile, "health-file", envOr("TESTSVC_HEALTH_FILE", defaultHealthFile), "health marker file")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	return c, nil
}

func serve(args []string) int {
	c, err := parse(args)
	if err != nil {
		return 2
	}
	logf := func(format string, a ...any) {
		fmt.Printf("%s %s: %s\n", time.Now().UTC().Format(time.RFC3339Nano), c.name, fmt.Sprintf(format, a...))
	}
	_ = os.Remove(c.healthFile)
	logf("starting")

	if c.writeFile != "" {
		if err := os.WriteFile(c.writeFile, []byte(c.writeContent), 0o644); err != nil {
			logf("write %s: %v", c.writeFile, err)
			return 1
		}
		logf("wrote %s", c.writeFile)
	}
	if c.listen != "" {
		ln, err := net.Listen("tcp", c.listen)
		if err != nil {
			logf("listen %s: %v", c.listen, err)
			return 1
		}
		go http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, c.name+"\n") }))
		logf("listening on %s", ln.Addr())
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()

	var healthyC, unhealthyC, exitC <-chan time.Time
	if !c.neverHealthy {
		healthyC = time.After(c.healthyAfter)
	}
	if c.unhealthyAfter > 0 {
		unhealthyC = time.After(c.unhealthyAfter)
	}
	if c.exitAfter > 0 {
		exitC = time.After(c.exitAfter)
	}
	for {
		select {
		case <-ctx.Done():
			logf("signalled, stopping")
			return 0
		case <-healthyC:
			healthyC = nil
			if err := os.WriteFile(c.healthFile, []byte("ok\n"), 0o644); err != nil {
				logf("marking healthy: %v", err)
				return 1
			}
			logf("healthy")
		case <-unhealthyC:
			unhealthyC = nil
			_ = os.Remove(c.healthFile)
			logf("unhealthy")
		case <-exitC:
			logf("exiting with code %d", c.exitCode)
			return c.exitCode
		}
	}
}

func probe(args []string) int {
	fs := flag.NewFlagSet("probe", flag.ContinueOnError)
	file := fs.String("file", envOr("TESTSVC_HEALTH_FILE", defaultHealthFile), "marker file")
	tcp := fs.String("tcp", "", "probe a TCP address instead")
	url := fs.String("http", "", "probe an HTTP URL instead")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	switch {
	case *tcp != "":
		conn, err := net.DialTimeout("tcp", *tcp, 2*time.Second)
		if err != nil {
			fmt.Println("probe:", err)
			return 1
		}
		conn.Close()
	case *url != "":
		cl := http.Client{Timeout: 2 * time.Second}
		resp, err := cl.Get(*url)
		if err != nil {
			fmt.Println("probe:", err)
			return 1
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			fmt.Println("probe: status", resp.Status)
			return 1
		}
	default:
		if _, err := os.Stat(*file); err != nil {
			fmt.Println("probe: not healthy yet")
			return 1
		}
	}
	fmt.Println("probe: ok")
	return 0
}
