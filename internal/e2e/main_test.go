// Package e2e runs the difyctl binary and difyctl's engine code against the
// real Docker engine with the locally built fixture images.
package e2e

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"testing"

	"github.com/difyctl/difyctl/internal/testenv"
)

func TestMain(m *testing.M) {
	flag.Parse()
	if testing.Short() {
		// make unit: end-to-end tests run the real binary against the
		// engine; none of them is a unit test.
		fmt.Println("e2e: skipped with -short (make unit); make e2e runs them")
		os.Exit(0)
	}
	code := m.Run()
	testenv.RemoveBinary()
	os.Exit(code)
}

type result struct {
	stdout, stderr string
	code           int
}

// run executes the difyctl binary with args; env entries are added to the
// test process's environment.
func run(t *testing.T, env []string, args ...string) result {
	t.Helper()
	cmd := exec.Command(testenv.Difyctl(t), args...)
	cmd.Env = append(os.Environ(), env...)
	return runCmd(t, cmd)
}

// runCmd runs cmd and returns its output and exit code; only a failure to
// start it fails the test.
func runCmd(t *testing.T, cmd *exec.Cmd) result {
	t.Helper()
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	r := result{stdout: out.String(), stderr: errOut.String()}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		r.code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("running %v: %v", cmd.Args, err)
	}
	return r
}
