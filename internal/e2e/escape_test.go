package e2e

import (
	"bytes"
	"context"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"

	"github.com/difyctl/difyctl/compose"
	"github.com/difyctl/difyctl/internal/testenv"
)

// Finding 5 (names, log lines) and finding 4 (a long line): a container
// whose service label carries an escape sequence and which prints one, then
// a 3 MB line without a newline.
func TestEscapesAndLongLines(t *testing.T) {
	cli := testenv.Fixtures(t)
	project := testenv.ProjectName(t, cli)
	const evil = "\x1b]0;pwned\x07\x1b[1A"
	const longLen = 3_000_000
	ctx := context.Background()
	res, err := cli.ContainerCreate(ctx, client.ContainerCreateOptions{
		Name: project + "-web-1",
		Config: &container.Config{Image: testenv.ImageBusybox,
			Cmd:    []string{"sh", "-c", `printf '\033]0;pwned\007\033[1Ahello\n'; head -c ` + strconv.Itoa(longLen) + ` /dev/zero | tr '\0' x; echo; echo done; sleep 3600`},
			Labels: map[string]string{compose.LabelProject: project, compose.LabelService: evil + "web", compose.LabelNumber: "1", compose.LabelOneoff: "False"}},
		HostConfig: &container.HostConfig{},
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cli.ContainerStart(ctx, res.ID, client.ContainerStartOptions{}); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	var r result
	for deadline := time.Now().Add(60 * time.Second); ; {
		r = run(t, nil, "--project-dir", dir, "-p", project, "logs")
		if strings.Contains(r.stdout, "| done") || time.Now().After(deadline) {
			break
		}
		time.Sleep(300 * time.Millisecond)
	}
	if r.code != 0 {
		t.Fatalf("logs: exit %d %s", r.code, r.stderr)
	}
	escPrefix := `\x1b]0;pwned\x07\x1b[1Aweb | `
	// Piped: the stream is raw, the service prefix (a label) is escaped.
	if !strings.Contains(r.stdout, escPrefix+evil+"hello\n") {
		t.Fatalf("piped logs: %q", r.stdout[:min(len(r.stdout), 300)])
	}
	// The long line is capped at 64 KiB and the rest counted.
	cut := "[... " + strconv.Itoa(longLen-compose.MaxLogLine) + " bytes cut]"
	for _, l := range strings.Split(r.stdout, "\n") {
		if len(l) > compose.MaxLogLine+len(escPrefix)+len(cut)+1 {
			t.Fatalf("a line of %d bytes", len(l))
		}
	}
	if !strings.Contains(r.stdout, strings.Repeat("x", 100)+" "+cut+"\n") {
		t.Fatalf("no cut marker %q", cut)
	}

	// On a terminal the log line's escapes are shown escaped.
	bin := testenv.Difyctl(t)
	out, err := exec.Command("script", "-qec", bin+" --project-dir "+dir+" -p "+project+" logs", "/dev/null").Output()
	if err != nil {
		t.Fatalf("logs on a pty: %v", err)
	}
	if bytes.IndexByte(out, 0x1b) >= 0 || !strings.Contains(string(out), escPrefix+`\x1b]0;pwned\x07\x1b[1Ahello`) {
		t.Fatalf("logs on a terminal: %q", out[:min(len(out), 300)])
	}

	// ps: the service name is escaped.
	r = run(t, nil, "--project-dir", dir, "-p", project, "ps")
	if r.code != 0 || strings.IndexByte(r.stdout, 0x1b) >= 0 || !strings.Contains(r.stdout, `\x1b]0;pwned\x07\x1b[1Aweb`) {
		t.Fatalf("ps: exit %d %q %s", r.code, r.stdout, r.stderr)
	}
}
