package e2e

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/moby/moby/client"

	"github.com/difyctl/difyctl/internal/testenv"
)

type certAuthority struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

func newCA(t *testing.T, name string) *certAuthority {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return &certAuthority{cert: cert, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

// issue writes <prefix>cert.pem and <prefix>key.pem into dir.
func (ca *certAuthority) issue(t *testing.T, dir, certName, keyName string, server bool) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{SerialNumber: serial, Subject: pkix.Name{CommonName: "difyctl-test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment}
	if server {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		tmpl.IPAddresses = []net.IP{net.ParseIP("127.0.0.1")}
		tmpl.DNSNames = []string{"localhost"}
	} else {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := x509.MarshalECPrivateKey(key)
	os.MkdirAll(dir, 0o700)
	os.WriteFile(filepath.Join(dir, certName), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(filepath.Join(dir, keyName), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600)
}

// clientDir writes ca.pem (of ca), cert.pem and key.pem (issued by issuer).
func clientDir(t *testing.T, dir string, ca, issuer *certAuthority, withCert bool) string {
	t.Helper()
	os.MkdirAll(dir, 0o700)
	if ca != nil {
		os.WriteFile(filepath.Join(dir, "ca.pem"), ca.pem, 0o600)
	}
	if withCert {
		issuer.issue(t, dir, "cert.pem", "key.pem", false)
	}
	return dir
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// tlsDockerd starts a second engine with --tlsverify on a loopback port,
// with its own data, exec root, pidfile and unix socket, no iptables and no
// ip_forward change, so that the main engine is not disturbed. Its default
// bridge is one the test creates: with --bridge none dockerd deletes the
// host's docker0 (removeDefaultBridgeInterface), which the main engine's
// containers need. It is stopped and its bridge and directories removed
// when the test ends.
func tlsDockerd(t *testing.T, ca *certAuthority) (host string) {
	t.Helper()
	if _, err := exec.LookPath("dockerd"); err != nil {
		if testenv.InCI() {
			t.Fatal("CI=true: dockerd not found")
		}
		t.Skip("dockerd not found")
	}
	root, err := os.MkdirTemp("", "dd-")
	if err != nil {
		t.Fatal(err)
	}
	srv := filepath.Join(root, "tls")
	os.MkdirAll(srv, 0o700)
	os.WriteFile(filepath.Join(srv, "ca.pem"), ca.pem, 0o600)
	ca.issue(t, srv, "server.pem", "server-key.pem", true)
	rb := make([]byte, 3)
	rand.Read(rb)
	bridge := "dctl" + hex.EncodeToString(rb)
	if out, err := exec.Command("ip", "link", "add", bridge, "type", "bridge").CombinedOutput(); err != nil {
		t.Fatalf("creating bridge %s: %v %s", bridge, err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "link", "del", bridge).CombinedOutput(); err != nil {
			t.Errorf("removing bridge %s: %v %s", bridge, err, out)
		}
	})
	if out, err := exec.Command("ip", "addr", "add", fmt.Sprintf("10.213.%d.1/30", rb[0]), "dev", bridge).CombinedOutput(); err != nil {
		t.Fatalf("address for bridge %s: %v %s", bridge, err, out)
	}
	port := freePort(t)
	sock := filepath.Join(root, "docker.sock")
	host = fmt.Sprintf("tcp://127.0.0.1:%d", port)
	logf, _ := os.Create(filepath.Join(root, "dockerd.log"))
	cmd := exec.Command("dockerd",
		"--data-root", filepath.Join(root, "data"), "--exec-root", filepath.Join(root, "exec"),
		"--pidfile", filepath.Join(root, "dockerd.pid"), "-H", "unix://"+sock, "-H", host,
		"--tlsverify", "--tlscacert", filepath.Join(srv, "ca.pem"), "--tlscert", filepath.Join(srv, "server.pem"), "--tlskey", filepath.Join(srv, "server-key.pem"),
		"--bridge", bridge, "--iptables=false", "--ip-masq=false", "--ip-forward=false")
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-done
		}
		logf.Close()
		if t.Failed() {
			b, _ := os.ReadFile(filepath.Join(root, "dockerd.log"))
			t.Logf("second dockerd's log (tail): %s", tail(string(b), 2000))
		}
		if err := os.RemoveAll(root); err != nil {
			t.Errorf("removing the second engine's files: %v", err)
		}
	})
	cli, err := client.New(client.WithHost("unix://" + sock))
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	deadline := time.Now().Add(90 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_, err := cli.Ping(ctx, client.PingOptions{})
		cancel()
		if err == nil {
			return host
		}
		select {
		case <-done:
			b, _ := os.ReadFile(filepath.Join(root, "dockerd.log"))
			t.Fatalf("the second dockerd exited: %s", tail(string(b), 2000))
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("the second dockerd did not answer: %v", err)
		}
		time.Sleep(300 * time.Millisecond)
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// plainListener accepts connections and records the first bytes of each.
type plainListener struct {
	l     net.Listener
	mu    sync.Mutex
	first [][]byte
}

func newPlainListener(t *testing.T) *plainListener {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &plainListener{l: l}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				c.SetReadDeadline(time.Now().Add(5 * time.Second))
				b := make([]byte, 64)
				n, _ := c.Read(b)
				p.mu.Lock()
				p.first = append(p.first, b[:n])
				p.mu.Unlock()
			}()
		}
	}()
	return p
}

func (p *plainListener) host() string { return "tcp://" + p.l.Addr().String() }

func (p *plainListener) seen() [][]byte {
	time.Sleep(200 * time.Millisecond)
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([][]byte(nil), p.first...)
}

func writeTLSContext(t *testing.T, cfgDir, name, host string, skip bool, material string) {
	t.Helper()
	sum := sha256.Sum256([]byte(name))
	id := hex.EncodeToString(sum[:])
	meta := filepath.Join(cfgDir, "contexts", "meta", id)
	os.MkdirAll(meta, 0o700)
	os.WriteFile(filepath.Join(meta, "meta.json"), []byte(fmt.Sprintf(`{"Name":%q,"Metadata":{},"Endpoints":{"docker":{"Host":%q,"SkipTLSVerify":%v}}}`, name, host, skip)), 0o600)
	if material != "" {
		dst := filepath.Join(cfgDir, "contexts", "tls", id, "docker")
		os.MkdirAll(dst, 0o700)
		for _, f := range []string{"ca.pem", "cert.pem", "key.pem"} {
			if b, err := os.ReadFile(filepath.Join(material, f)); err == nil {
				os.WriteFile(filepath.Join(dst, f), b, 0o600)
			}
		}
	}
}

// Finding 2: the engine connection is secured as the docker CLI secures
// it, and never falls back to plain HTTP on tcp:// unless told.
func TestEngineTLS(t *testing.T) {
	testenv.Engine(t)
	needRoot(t) // dockerd
	ca, otherCA := newCA(t, "difyctl test CA"), newCA(t, "another CA")
	host := tlsDockerd(t, ca)
	plain := newPlainListener(t)
	base := t.TempDir()
	good := clientDir(t, filepath.Join(base, "good"), ca, ca, true)
	wrongCA := clientDir(t, filepath.Join(base, "wrong-ca"), otherCA, ca, true)
	noCert := clientDir(t, filepath.Join(base, "no-cert"), ca, nil, false)
	certOnly := clientDir(t, filepath.Join(base, "cert-only"), nil, ca, true)
	emptyHome := filepath.Join(base, "home")
	os.Mkdir(emptyHome, 0o700)
	homeWithCerts := filepath.Join(base, "home2")
	clientDir(t, filepath.Join(homeWithCerts, ".docker"), ca, ca, true)
	proj := t.TempDir()

	clean := []string{"DOCKER_HOST=", "DOCKER_TLS_VERIFY=", "DOCKER_TLS=", "DOCKER_CERT_PATH=", "DOCKER_CONTEXT=", "DOCKER_CONFIG=" + filepath.Join(base, "noconfig"), "HOME=" + emptyHome, "DIFYCTL_ENGINE_INSECURE="}
	ps := func(env []string, flags ...string) result {
		t.Helper()
		return run(t, append(append([]string{}, clean...), env...), append(flags, "--project-dir", proj, "ps")...)
	}
	expect := func(name string, r result, code int, want ...string) {
		t.Helper()
		if r.code != code {
			t.Fatalf("%s: exit %d, want %d; stderr %s", name, r.code, code, r.stderr)
		}
		for _, w := range want {
			if !strings.Contains(r.stderr, w) {
				t.Fatalf("%s: stderr lacks %q: %s", name, w, r.stderr)
			}
		}
	}

	// Verified TLS with client certificates: works.
	expect("DOCKER_TLS_VERIFY with DOCKER_CERT_PATH", ps([]string{"DOCKER_HOST=" + host, "DOCKER_TLS_VERIFY=1", "DOCKER_CERT_PATH=" + good}), 0)
	expect("DOCKER_CERT_PATH defaults to ~/.docker", ps([]string{"DOCKER_HOST=" + host, "DOCKER_TLS_VERIFY=1", "HOME=" + homeWithCerts, "DOCKER_CONFIG="}), 0)
	// DOCKER_TLS_VERIFY without certificates: refused as the CLI refuses (no ca.pem), nothing sent.
	expect("verify without ca.pem", ps([]string{"DOCKER_HOST=" + plain.host(), "DOCKER_TLS_VERIFY=1", "DOCKER_CONFIG="}), 3, filepath.Join(emptyHome, ".docker", "ca.pem"))
	if n := len(plain.seen()); n != 0 {
		t.Fatalf("%d connection(s) made without a CA", n)
	}
	// A server certificate from another CA, or no client certificate: refused by TLS.
	expect("another CA", ps([]string{"DOCKER_HOST=" + host, "DOCKER_TLS_VERIFY=1", "DOCKER_CERT_PATH=" + wrongCA}), 3, "certificate")
	expect("no client certificate", ps([]string{"DOCKER_HOST=" + host, "DOCKER_TLS_VERIFY=1", "DOCKER_CERT_PATH=" + noCert}), 3)
	// DOCKER_CERT_PATH alone does not verify: refused, never unverified TLS.
	expect("cert path without verify", ps([]string{"DOCKER_HOST=" + host, "DOCKER_CERT_PATH=" + good}), 3, "refusing engine "+host, "--engine-insecure")
	expect("DOCKER_TLS without verify", ps([]string{"DOCKER_HOST=" + host, "DOCKER_TLS=1", "DOCKER_CERT_PATH=" + good}), 3, "does not verify")
	r := ps([]string{"DOCKER_HOST=" + host, "DOCKER_TLS=1", "DOCKER_CERT_PATH=" + good}, "--engine-insecure")
	expect("DOCKER_TLS with --engine-insecure", r, 0, "warning: the connection to the engine "+host+" is not secured")

	// Plain tcp://: refused without a byte sent; with --engine-insecure it
	// warns and speaks HTTP; with TLS asked it speaks TLS (a ClientHello).
	expect("plain tcp", ps([]string{"DOCKER_HOST=" + plain.host()}), 3, "refusing engine "+plain.host(), "plain HTTP")
	if n := len(plain.seen()); n != 0 {
		t.Fatalf("%d connection(s) made to a refused plaintext engine", n)
	}
	expect("plain tcp allowed", ps([]string{"DOCKER_HOST=" + plain.host()}, "--engine-insecure"), 3, "warning: the connection to the engine "+plain.host()+" is not secured")
	if s := plain.seen(); len(s) == 0 || !strings.HasPrefix(string(s[0]), "HEAD /_ping") {
		t.Fatalf("insecure connection: first bytes %q", s)
	}
	n := len(plain.seen())
	expect("TLS to a plaintext listener", ps([]string{"DOCKER_HOST=" + plain.host(), "DOCKER_TLS_VERIFY=1", "DOCKER_CERT_PATH=" + good}), 3)
	if s := plain.seen(); len(s) <= n || s[n][0] != 0x16 {
		t.Fatalf("want a TLS handshake record, got %q", s[n:])
	}

	// A docker context: its TLS material is used; SkipTLSVerify is refused unless told.
	cfg := filepath.Join(base, "dockerconfig")
	writeTLSContext(t, cfg, "secure", host, false, good)
	writeTLSContext(t, cfg, "skip", host, true, certOnly)
	writeTLSContext(t, cfg, "bare", host, false, "")
	expect("context with TLS material", ps([]string{"DOCKER_CONFIG=" + cfg, "DOCKER_CONTEXT=secure"}), 0)
	expect("context SkipTLSVerify", ps([]string{"DOCKER_CONFIG=" + cfg, "DOCKER_CONTEXT=skip"}), 3, `docker context "skip"`, "does not verify")
	expect("context SkipTLSVerify allowed", ps([]string{"DOCKER_CONFIG=" + cfg, "DOCKER_CONTEXT=skip"}, "--engine-insecure"), 0, "warning:")
	expect("context without TLS", ps([]string{"DOCKER_CONFIG=" + cfg, "DOCKER_CONTEXT=bare"}), 3, "plain HTTP")
	// The environment's TLS does not leak into a context (as in the CLI).
	expect("context ignores DOCKER_CERT_PATH", ps([]string{"DOCKER_CONFIG=" + cfg, "DOCKER_CONTEXT=bare", "DOCKER_TLS_VERIFY=1", "DOCKER_CERT_PATH=" + good}), 3, "plain HTTP")
}

// An HTTP server on DOCKER_HOST is named as such, not "Error response from
// daemon: <!DOCTYPE HTML>"; unknown schemes are refused.
func TestEngineNotAnEngine(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(http.StatusNotFound)
		fmt.Fprint(w, "<!DOCTYPE HTML>\n<html><body>Not found</body></html>\n")
	})}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	host := "tcp://" + l.Addr().String()
	r := run(t, []string{"DOCKER_HOST=" + host}, "--engine-insecure", "--project-dir", t.TempDir(), "ps")
	if r.code != 3 || !strings.Contains(r.stderr, "is not a Docker engine") || strings.Contains(r.stderr, "DOCTYPE") {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	for _, h := range []string{"foo://bar", "http://127.0.0.1:80", "npipe:////./pipe/docker_engine"} {
		r := run(t, []string{"DOCKER_HOST=" + h}, "--project-dir", t.TempDir(), "ps")
		if r.code != 3 || !strings.Contains(r.stderr, h) || strings.Contains(r.stderr, "lookup") {
			t.Fatalf("%s: exit %d: %s", h, r.code, r.stderr)
		}
	}
}

// ssh:// engines go through `ssh ... docker system dial-stdio` as the
// docker CLI's connection helper does. No sshd runs here, so ssh is a
// stand-in on PATH that runs the remote command locally: the engine at the
// far end is the real one.
func TestEngineSSH(t *testing.T) {
	testenv.Engine(t)
	if _, err := exec.LookPath("docker"); err != nil {
		if testenv.InCI() {
			t.Fatal("CI=true: the docker CLI (for docker system dial-stdio) is missing")
		}
		t.Skip("docker CLI missing")
	}
	dir := t.TempDir()
	log := filepath.Join(dir, "ssh.args")
	shim := "#!/bin/sh\necho \"$@\" >> " + log + "\nwhile [ \"$1\" != \"--\" ]; do shift; done\nshift; shift\nexec env -u DOCKER_HOST \"$@\"\n"
	os.WriteFile(filepath.Join(dir, "ssh"), []byte(shim), 0o755)
	env := []string{"PATH=" + dir + ":" + os.Getenv("PATH"), "DOCKER_HOST=ssh://operator@127.0.0.1:2222"}
	r := run(t, env, "--project-dir", t.TempDir(), "ps")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	b, _ := os.ReadFile(log)
	if !strings.Contains(string(b), "-o ConnectTimeout=30 -T -l operator -p 2222 -- 127.0.0.1 docker system dial-stdio") {
		t.Fatalf("ssh invoked as %q", b)
	}
	// ssh failing: its message, not a DNS lookup of user@host.
	os.WriteFile(filepath.Join(dir, "ssh"), []byte("#!/bin/sh\necho 'ssh: connect to host 127.0.0.1 port 2222: Connection refused' >&2\nexit 255\n"), 0o755)
	r = run(t, env, "--project-dir", t.TempDir(), "ps")
	if r.code != 3 || !strings.Contains(r.stderr, "Connection refused") || strings.Contains(r.stderr, "lookup") {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
}
