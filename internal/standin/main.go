// Command standin plays Dify's servers and the probe commands their
// healthchecks run, so the real embedded template can be brought up end to
// end on a host without a registry. It is one static binary, chosen by the
// name it is run as (argv[0]) or by its first argument (`standin curl ...`);
// the fixture images difyctl-test/standin:<role> (internal/testenv) carry it
// with symlinks for every name below, busybox for the shell and its applets,
// and bash for entrypoint scripts that need it.
//
// Servers (each listens only once it is ready, so every probe fails before):
//
//	standin serve        the role named by STANDIN_ROLE (set by each image)
//	postgres             role postgres  (5432, PGPORT)
//	nginx                role nginx     (NGINX_PORT 80; NGINX_SSL_PORT 443 when NGINX_HTTPS_ENABLED=true); `nginx -t` exits 0
//	squid                role squid     (HTTP_PORT 3128); `squid -z` exits 0
//	redis-server         role redis     (6379, answers PING and AUTH in RESP)
//	docker-entrypoint.sh runs its arguments (as the real images' entrypoints do), or the image's role without any
//
// Roles and what they listen on (HTTP answers 200 on every path):
//
//	dify-api       MODE=api: 5001 (DIFY_PORT); MODE=worker, beat, job: no port (ready marker only)
//	dify-web       3000 (PORT)
//	sandbox        8194 (SANDBOX_PORT)
//	local-sandbox  5004
//	plugin-daemon  5002 (SERVER_PORT) and 5003 (PLUGIN_REMOTE_INSTALLING_PORT)
//	agent-backend  5050
//	weaviate       8080 and 50051
//
// Probes, as the template's healthchecks call them:
//
//	curl [-f] [-s] [-S] [-o FILE] [-m SECS] URL   exit 0; 7 no connection; 22 HTTP >= 400 with -f; 28 timeout
//	pg_isready [-h H] [-p P] [-U U] [-d D] [-t S] exit 0 accepting connections; 2 no response
//	redis-cli [-h H] [-p P] [-a PASS] CMD ARGS... sends one command (REDISCLI_AUTH honoured), prints the reply
//	mysqladmin ping [...]                         exit 0 when 3306 (-h, -P) accepts a connection
//	celery ... inspect ping                       exit 0 once this container's service is ready
//	envsubst [SHELL-FORMAT]                       $VAR and ${VAR} from the environment (only those named, with a format)
//	standin probe                                 exit 0 once this container's service is ready
//
// Behaviour, from the environment (a test override sets it per service):
//
//	STANDIN_READY_AFTER   D   become ready (listen, mark ready) D after start (default 0)
//	STANDIN_NEVER_READY   1   never become ready
//	STANDIN_EXIT_AFTER    D   exit D after start (a crash: with restart: always, a crash loop)
//	STANDIN_EXIT_CODE     N   ... with code N (default 1)
//	STANDIN_MIGRATE       1   the api (MODE=api) migrates the real database first (migrate.go)
//
// Every server logs "starting", "ready" and "stopping" with a UTC timestamp;
// SIGTERM, SIGINT and SIGQUIT end it at once with code 0.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// readyFile marks that this container's service is ready (standin probe, celery).
const readyFile = "/tmp/standin.ready"

func main() {
	name := filepath.Base(os.Args[0])
	args := os.Args[1:]
	if name == "standin" && len(args) > 0 {
		name, args = args[0], args[1:]
	}
	os.Exit(run(name, args))
}

func run(name string, args []string) int {
	switch name {
	case "curl":
		return curl(args, os.Stdout, os.Stderr)
	case "pg_isready":
		return pgIsReady(args, os.Stdout)
	case "redis-cli":
		return redisCLI(args, os.Stdout, os.Stderr)
	case "mysqladmin":
		return mysqladmin(args, os.Stdout)
	case "celery", "probe":
		return probeReady(os.Stdout)
	case "envsubst":
		return envsubst(args, os.Stdin, os.Stdout)
	case "docker-entrypoint.sh":
		return entrypoint(args)
	case "serve":
		return serve(os.Getenv("STANDIN_ROLE"), args)
	case "postgres", "redis-server":
		return serve(strings.TrimSuffix(name, "-server"), args)
	case "nginx":
		if hasFlag(args, "-t") || hasFlag(args, "-v") || hasFlag(args, "-V") {
			fmt.Fprintln(os.Stderr, "nginx (standin): the configuration file syntax is ok")
			return 0
		}
		return serve("nginx", args)
	case "squid":
		if hasFlag(args, "-z") || hasFlag(args, "-Nz") || hasFlag(args, "-k") {
			return 0 // cache directories, signals to a running squid: nothing to do
		}
		return serve("squid", args)
	}
	fmt.Fprintf(os.Stderr, "standin: unknown program %q (run as one of curl, pg_isready, redis-cli, mysqladmin, celery, envsubst, serve, postgres, redis-server, nginx, squid, docker-entrypoint.sh, probe)\n", name)
	return 127
}

func hasFlag(args []string, f string) bool {
	for _, a := range args {
		if a == f {
			return true
		}
	}
	return false
}

// entrypoint is docker-entrypoint.sh: with arguments it runs them (as the
// official images' entrypoints end with exec "$@"), without it serves the
// image's role.
func entrypoint(args []string) int {
	if len(args) == 0 {
		return serve(os.Getenv("STANDIN_ROLE"), nil)
	}
	if strings.HasPrefix(args[0], "-") { // flags for the image's server: postgres -c ...
		return serve(os.Getenv("STANDIN_ROLE"), args)
	}
	path, err := exec.LookPath(args[0])
	if err != nil {
		fmt.Fprintf(os.Stderr, "docker-entrypoint.sh (standin): %s: command not found\n", args[0])
		return 127
	}
	err = syscall.Exec(path, args, os.Environ())
	fmt.Fprintf(os.Stderr, "docker-entrypoint.sh (standin): exec %s: %v\n", path, err)
	return 126
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

// listeners are the addresses a role serves, from the variables its real
// image reads.
func listeners(role string) ([]string, error) {
	port := func(key, def string) string { return ":" + envOr(key, def) }
	switch role {
	case "dify-api":
		switch mode := envOr("MODE", "api"); mode {
		case "api":
			return []string{port("DIFY_PORT", "5001")}, nil
		case "worker", "beat", "job":
			return nil, nil
		default:
			return nil, fmt.Errorf("MODE=%q: the api image knows api, worker, beat and job", mode)
		}
	case "dify-web":
		return []string{port("PORT", "3000")}, nil
	case "sandbox":
		return []string{port("SANDBOX_PORT", "8194")}, nil
	case "local-sandbox":
		return []string{":5004"}, nil
	case "plugin-daemon":
		return []string{port("SERVER_PORT", "5002"), port("PLUGIN_REMOTE_INSTALLING_PORT", "5003")}, nil
	case "agent-backend":
		return []string{":5050"}, nil
	case "weaviate":
		return []string{":8080", ":50051"}, nil
	case "postgres":
		return []string{port("PGPORT", "5432")}, nil
	case "redis":
		return []string{":6379"}, nil
	case "nginx":
		ls := []string{port("NGINX_PORT", "80")}
		if os.Getenv("NGINX_HTTPS_ENABLED") == "true" {
			ls = append(ls, port("NGINX_SSL_PORT", "443"))
		}
		return ls, nil
	case "squid":
		return []string{port("HTTP_PORT", "3128")}, nil
	case "":
		return nil, errors.New("no role: STANDIN_ROLE is not set (run as serve in a difyctl-test/standin image)")
	}
	return nil, fmt.Errorf("unknown role %q", role)
}

func envDuration(key string) (time.Duration, error) {
	v := os.Getenv(key)
	if v == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		return 0, fmt.Errorf("%s=%q: %v", key, v, err)
	}
	return d, nil
}

func serve(role string, args []string) int {
	logf := func(format string, a ...any) {
		fmt.Printf("%s standin %s: %s\n", time.Now().UTC().Format(time.RFC3339Nano), role, fmt.Sprintf(format, a...))
	}
	addrs, err := listeners(role)
	if err != nil {
		fmt.Fprintf(os.Stderr, "standin: %v\n", err)
		return 2
	}
	_ = os.Remove(readyFile) // a restarted container keeps /tmp: not ready before migrating
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT, syscall.SIGQUIT)
	err = migrateOnStart(ctx, role, logf)
	signalled := ctx.Err() != nil
	stop()
	if err != nil {
		if signalled {
			logf("stopping (during the migrations)")
			return 0
		}
		logf("ERROR [alembic] database migration failed: %v", err)
		return 1
	}
	readyAfter, err := envDuration("STANDIN_READY_AFTER")
	if err == nil {
		var exitAfter time.Duration
		if exitAfter, err = envDuration("STANDIN_EXIT_AFTER"); err == nil {
			return serveRole(role, addrs, readyAfter, exitAfter, logf)
		}
	}
	fmt.Fprintf(os.Stderr, "standin: %v\n", err)
	return 2
}

func serveRole(role string, addrs []string, readyAfter, exitAfter time.Duration, logf func(string, ...any)) int {
	_ = os.Remove(readyFile)
	logf("starting (mode %s, ready after %s)", envOr("MODE", "-"), readyAfter)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT, syscall.SIGQUIT)
	defer stop()

	var readyC, exitC <-chan time.Time
	if os.Getenv("STANDIN_NEVER_READY") == "" {
		readyC = time.After(readyAfter)
	}
	if exitAfter > 0 {
		exitC = time.After(exitAfter)
	}
	for {
		select {
		case <-ctx.Done():
			logf("stopping")
			return 0
		case <-exitC:
			code, err := strconv.Atoi(envOr("STANDIN_EXIT_CODE", "1"))
			if err != nil {
				code = 1
			}
			logf("exiting with code %d (STANDIN_EXIT_AFTER)", code)
			return code
		case <-readyC:
			readyC = nil
			for _, a := range addrs {
				ln, err := net.Listen("tcp", a)
				if err != nil {
					logf("listen %s: %v", a, err)
					return 1
				}
				if role == "redis" {
					go serveRESP(ln)
				} else {
					go http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
						w.Header().Set("Content-Type", "application/json")
						fmt.Fprintf(w, "{\"status\":\"ok\",\"standin\":%q,\"path\":%q}\n", role, r.URL.Path)
					}))
				}
			}
			if err := os.WriteFile(readyFile, []byte("ready\n"), 0o644); err != nil {
				logf("marking ready: %v", err)
				return 1
			}
			logf("ready, listening on %s", strings.Join(addrs, " "))
		}
	}
}

// serveRESP answers a Redis client: +PONG to PING, +OK to AUTH and to
// anything else an empty bulk string. Enough for redis-cli ping.
func serveRESP(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go func(c net.Conn) {
			defer c.Close()
			r := bufio.NewReader(c)
			for {
				cmd, err := readRESPCommand(r)
				if err != nil {
					return
				}
				switch strings.ToUpper(firstOr(cmd, "")) {
				case "PING":
					io.WriteString(c, "+PONG\r\n")
				case "AUTH", "SELECT":
					io.WriteString(c, "+OK\r\n")
				default:
					io.WriteString(c, "$-1\r\n")
				}
			}
		}(c)
	}
}

func firstOr(s []string, def string) string {
	if len(s) == 0 {
		return def
	}
	return s[0]
}

// readRESPCommand reads one command: an array of bulk strings, or an inline command.
func readRESPCommand(r *bufio.Reader) ([]string, error) {
	line, err := r.ReadString('\n')
	if err != nil {
		return nil, err
	}
	line = strings.TrimRight(line, "\r\n")
	if !strings.HasPrefix(line, "*") {
		return strings.Fields(line), nil
	}
	n, err := strconv.Atoi(line[1:])
	if err != nil || n < 0 || n > 1024 {
		return nil, fmt.Errorf("bad array header %q", line)
	}
	out := make([]string, 0, n)
	for i := 0; i < n; i++ {
		h, err := r.ReadString('\n')
		if err != nil {
			return nil, err
		}
		h = strings.TrimRight(h, "\r\n")
		if !strings.HasPrefix(h, "$") {
			return nil, fmt.Errorf("bad bulk header %q", h)
		}
		l, err := strconv.Atoi(h[1:])
		if err != nil || l < 0 || l > 1<<20 {
			return nil, fmt.Errorf("bad bulk length %q", h)
		}
		b := make([]byte, l+2)
		if _, err := io.ReadFull(r, b); err != nil {
			return nil, err
		}
		out = append(out, string(b[:l]))
	}
	return out, nil
}

func probeReady(stdout io.Writer) int {
	if _, err := os.Stat(readyFile); err != nil {
		fmt.Fprintln(stdout, "standin: not ready yet")
		return 1
	}
	fmt.Fprintln(stdout, "pong: ready")
	return 0
}

// curl does what the healthchecks ask of curl: one GET.
func curl(args []string, stdout, stderr io.Writer) int {
	fail, silent, showErr := false, false, false
	out := ""
	timeout := 30 * time.Second
	var url string
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "-o" || a == "--output" || a == "-m" || a == "--max-time" || a == "-H" || a == "--header" || a == "-w" || a == "-X":
			if i+1 >= len(args) {
				fmt.Fprintf(stderr, "curl: option %s: requires parameter\n", a)
				return 2
			}
			i++
			switch a {
			case "-o", "--output":
				out = args[i]
			case "-m", "--max-time":
				s, err := strconv.ParseFloat(args[i], 64)
				if err != nil {
					fmt.Fprintf(stderr, "curl: option %s: expected a number\n", a)
					return 2
				}
				timeout = time.Duration(s * float64(time.Second))
			}
		case a == "--fail":
			fail = true
		case a == "--silent":
			silent = true
		case a == "--show-error":
			showErr = true
		case strings.HasPrefix(a, "-") && !strings.HasPrefix(a, "--") && len(a) > 1:
			for _, c := range a[1:] {
				switch c {
				case 'f':
					fail = true
				case 's':
					silent = true
				case 'S':
					showErr = true
				case 'L', 'k', 'I', 'v': // follow, insecure, head, verbose: no effect here
				default:
					fmt.Fprintf(stderr, "curl (standin): option -%c is not supported\n", c)
					return 2
				}
			}
		case strings.HasPrefix(a, "--"):
			// long options without a value (--location, --insecure, ...): no effect here
		default:
			url = a
		}
	}
	if url == "" {
		fmt.Fprintln(stderr, "curl: no URL specified")
		return 2
	}
	if !strings.Contains(url, "://") {
		url = "http://" + url
	}
	report := func(code int, format string, a ...any) int {
		if !silent || showErr {
			fmt.Fprintf(stderr, "curl: (%d) %s\n", code, fmt.Sprintf(format, a...))
		}
		return code
	}
	cl := http.Client{Timeout: timeout}
	resp, err := cl.Get(url)
	if err != nil {
		var ne net.Error
		var dnsErr *net.DNSError
		switch {
		case errors.As(err, &dnsErr):
			return report(6, "Could not resolve host: %s", dnsErr.Name)
		case errors.As(err, &ne) && ne.Timeout():
			return report(28, "Operation timed out after %s", timeout)
		}
		return report(7, "Failed to connect: %v", err)
	}
	defer resp.Body.Close()
	if fail && resp.StatusCode >= 400 {
		return report(22, "The requested URL returned error: %d", resp.StatusCode)
	}
	w := stdout
	if out != "" && out != "-" {
		f, err := os.Create(out)
		if err != nil {
			return report(23, "Failure writing output to destination: %v", err)
		}
		defer f.Close()
		w = f
	}
	if _, err := io.Copy(w, resp.Body); err != nil {
		return report(56, "Failure when receiving data from the peer: %v", err)
	}
	return 0
}

func dial(host, port string, timeout time.Duration) error {
	c, err := net.DialTimeout("tcp", net.JoinHostPort(host, port), timeout)
	if err != nil {
		return err
	}
	return c.Close()
}

// pgIsReady is pg_isready over TCP (the real one would use the socket
// without -h; the stand-in server has no socket).
func pgIsReady(args []string, stdout io.Writer) int {
	fs := flag.NewFlagSet("pg_isready", flag.ContinueOnError)
	host := fs.String("h", envOr("PGHOST", "localhost"), "host")
	port := fs.String("p", envOr("PGPORT", "5432"), "port")
	fs.String("U", "", "user")
	fs.String("d", "", "database")
	secs := fs.Int("t", 3, "timeout in seconds")
	fs.Bool("q", false, "quiet")
	fs.SetOutput(io.Discard)
	if err := fs.Parse(args); err != nil {
		fmt.Fprintf(stdout, "pg_isready: %v\n", err)
		return 3
	}
	if err := dial(*host, *port, time.Duration(*secs)*time.Second); err != nil {
		fmt.Fprintf(stdout, "%s:%s - no response\n", *host, *port)
		return 2
	}
	fmt.Fprintf(stdout, "%s:%s - accepting connections\n", *host, *port)
	return 0
}

func mysqladmin(args []string, stdout io.Writer) int {
	host, port := "localhost", "3306"
	for i := 0; i < len(args); i++ {
		switch a := args[i]; {
		case a == "-h" && i+1 < len(args):
			i++
			host = args[i]
		case strings.HasPrefix(a, "-h") && len(a) > 2:
			host = a[2:]
		case a == "-P" && i+1 < len(args):
			i++
			port = args[i]
		case strings.HasPrefix(a, "-P") && len(a) > 2:
			port = a[2:]
		}
	}
	if err := dial(host, port, 3*time.Second); err != nil {
		fmt.Fprintf(stdout, "mysqladmin: connect to server at '%s' failed\n", host)
		return 1
	}
	fmt.Fprintln(stdout, "mysqld is alive")
	return 0
}

func redisCLI(args []string, stdout, stderr io.Writer) int {
	host, port, pass := "127.0.0.1", "6379", os.Getenv("REDISCLI_AUTH")
	var cmd []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if len(cmd) == 0 && (a == "-h" || a == "-p" || a == "-a") && i+1 < len(args) {
			i++
			switch a {
			case "-h":
				host = args[i]
			case "-p":
				port = args[i]
			case "-a":
				pass = args[i]
			}
			continue
		}
		if len(cmd) == 0 && a == "--no-auth-warning" {
			continue
		}
		cmd = append(cmd, a)
	}
	if len(cmd) == 0 {
		cmd = []string{"PING"}
	}
	c, err := net.DialTimeout("tcp", net.JoinHostPort(host, port), 3*time.Second)
	if err != nil {
		fmt.Fprintf(stderr, "Could not connect to Redis at %s:%s: Connection refused\n", host, port)
		return 1
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	r := bufio.NewReader(c)
	send := func(words []string) (string, error) {
		var b strings.Builder
		fmt.Fprintf(&b, "*%d\r\n", len(words))
		for _, w := range words {
			fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(w), w)
		}
		if _, err := io.WriteString(c, b.String()); err != nil {
			return "", err
		}
		line, err := r.ReadString('\n')
		return strings.TrimRight(line, "\r\n"), err
	}
	if pass != "" {
		if _, err := send([]string{"AUTH", pass}); err != nil {
			fmt.Fprintf(stderr, "redis-cli: %v\n", err)
			return 1
		}
	}
	reply, err := send(cmd)
	if err != nil {
		fmt.Fprintf(stderr, "redis-cli: %v\n", err)
		return 1
	}
	switch {
	case strings.HasPrefix(reply, "+"):
		fmt.Fprintln(stdout, reply[1:])
	case strings.HasPrefix(reply, "-"):
		fmt.Fprintf(stdout, "(error) %s\n", reply[1:])
	case reply == "$-1":
		fmt.Fprintln(stdout, "(nil)")
	default:
		fmt.Fprintln(stdout, reply)
	}
	return 0
}

var envRef = regexp.MustCompile(`\$(?:\{([A-Za-z_][A-Za-z0-9_]*)\}|([A-Za-z_][A-Za-z0-9_]*))`)

// envsubst replaces $VAR and ${VAR} with the environment's values (empty
// when unset); with a SHELL-FORMAT argument only the variables it names.
func envsubst(args []string, stdin io.Reader, stdout io.Writer) int {
	var only map[string]bool
	if len(args) > 0 {
		only = map[string]bool{}
		for _, m := range envRef.FindAllStringSubmatch(strings.Join(args, " "), -1) {
			only[m[1]+m[2]] = true
		}
	}
	in, err := io.ReadAll(stdin)
	if err != nil {
		fmt.Fprintf(os.Stderr, "envsubst: %v\n", err)
		return 1
	}
	out := envRef.ReplaceAllStringFunc(string(in), func(ref string) string {
		m := envRef.FindStringSubmatch(ref)
		name := m[1] + m[2]
		if only != nil && !only[name] {
			return ref
		}
		return os.Getenv(name)
	})
	if _, err := io.WriteString(stdout, out); err != nil {
		return 1
	}
	return 0
}
