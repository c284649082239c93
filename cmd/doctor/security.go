package doctor

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/difyctl/difyctl/internal/dockerclient"
	"github.com/difyctl/difyctl/internal/trust"
)

// securityChecks: the project's files as internal/trust judges them, live
// data readable by other users, and an engine connection that is not
// secured.
func securityChecks(opts *Options) []Check {
	var out []Check
	euid := os.Geteuid()
	fs := trust.Check(trust.ProjectPaths(opts.ProjectDir, nil), euid)
	for _, f := range fs {
		c := Check{Name: "project files", Status: Warn, Detail: f.Path + " " + f.Problem, Hint: trimFix(f.Fix)}
		if f.Level == trust.Refuse {
			c.Status = Fail
		}
		out = append(out, c)
	}
	if len(fs) == 0 {
		who := "this user"
		if euid == 0 {
			who = "root"
		}
		out = append(out, Check{Name: "project files", Status: OK, Detail: fmt.Sprintf("%s, .env, override file and backups/ are safe for %s to use", opts.ProjectDir, who)})
	}
	vol := filepath.Join(opts.ProjectDir, "volumes")
	if st, err := os.Stat(vol); err == nil && st.IsDir() {
		if st.Mode().Perm()&0o007 != 0 {
			out = append(out, Check{Name: "data directory", Status: Warn,
				Detail: fmt.Sprintf("%s is mode %04o: every local user can reach the live data (Redis dump, database files)", vol, st.Mode().Perm()),
				Hint:   "chmod 700 " + vol + " (containers see their bind mounts from inside; the parent needs no wider mode)"})
		} else {
			out = append(out, Check{Name: "data directory", Status: OK, Detail: fmt.Sprintf("%s is mode %04o", vol, st.Mode().Perm())})
		}
	}
	getenv := opts.Getenv
	if getenv == nil {
		getenv = func(string) string { return "" }
	}
	if cli, ep, err := dockerclient.New(getenv); err == nil {
		cli.Close()
		if ep.Warning != "" {
			out = append(out, Check{Name: "engine connection", Status: Warn, Detail: ep.Warning,
				Hint: "set DOCKER_TLS_VERIFY=1 and DOCKER_CERT_PATH (ca.pem, cert.pem, key.pem), use a docker context with TLS, or an ssh:// host"})
		}
	}
	return out
}

func trimFix(s string) string {
	if len(s) > 5 && s[:5] == "fix: " {
		return s[5:]
	}
	return s
}
