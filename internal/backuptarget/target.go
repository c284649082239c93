// Package backuptarget resolves what the backup and restore commands act on
// from their shared flags: the project, its backup directory, the Redis
// service and its password, and the engine client.
package backuptarget

import (
	"context"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/difyctl/difyctl/internal/cmdutil"
	"github.com/difyctl/difyctl/internal/engine"
)

// DefaultSubdir is where a project's Redis backups go by default, under
// its directory.
var DefaultSubdir = filepath.Join("backups", "redis")

// Common are the flags every backup and restore command shares.
type Common struct {
	BackupDir string
	Service   string
}

// Target resolves the project, the backup directory and the fallback
// password (REDIS_PASSWORD from .env, used when the container has no
// REDISCLI_AUTH).
func (c *Common) Target(f *cmdutil.Factory) (dir, project, backupDir, password string, err error) {
	dir, project, err = f.Project()
	if err != nil {
		return
	}
	backupDir = c.BackupDir
	if backupDir == "" {
		backupDir = filepath.Join(dir, DefaultSubdir)
	} else if backupDir, err = filepath.Abs(backupDir); err != nil {
		return
	}
	// The factory's one reading of .env; an unreadable one leaves no
	// fallback password (the container's own is used).
	if env, e := f.EnvMap(); e == nil {
		password = env["REDIS_PASSWORD"]
	}
	return
}

// Dir resolves only the backup directory (list, verify, prune).
func (c *Common) Dir(f *cmdutil.Factory) (string, error) {
	_, _, dir, _, err := c.Target(f)
	return dir, err
}

// Flags adds --backup-dir and --service.
func (c *Common) Flags(cmd *cobra.Command) {
	cmd.Flags().StringVar(&c.BackupDir, "backup-dir", "", "backup directory (default <project-dir>/backups/redis)")
	cmd.Flags().StringVar(&c.Service, "service", "redis", "the compose service running Redis")
}

// Engine is a connected engine client.
type Engine struct{ engine.Engine }

// NewEngine connects to the engine and checks it answers (exit 3
// otherwise).
func NewEngine(f *cmdutil.Factory) (*Engine, error) {
	cli, err := f.Engine(context.Background())
	if err != nil {
		return nil, err
	}
	return &Engine{cli}, nil
}
