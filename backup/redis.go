// Package backup backs up and restores a compose project's Redis: a SAVE or
// BGSAVE inside the container, the dump streamed out through the engine's
// archive API and verified, kept with a manifest under a timestamped name,
// rotated, and put back by a restore that keeps a safety copy.
package backup

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"

	"github.com/difyctl/difyctl/compose"
	"github.com/difyctl/difyctl/internal/engine"
)

// Redis is a running Redis container reached through docker exec.
type Redis struct {
	cli       engine.Engine
	ID        string
	Name      string
	Image     string
	password  string // given to redis-cli as REDISCLI_AUTH in the exec's environment
	inspected container.InspectResponse
}

// ErrNoContainer: the project has no running container for the service.
var ErrNoContainer = errors.New("no running Redis container")

// FindRedis finds the running container of project's service by compose
// labels. The password comes from the container's own REDISCLI_AUTH (Dify's
// redis service has it), else from fallbackPassword (REDIS_PASSWORD in .env).
func FindRedis(ctx context.Context, cli engine.Engine, project, service, fallbackPassword string) (*Redis, error) {
	f := make(client.Filters).Add("label", compose.ProjectFilter(project), compose.LabelService+"="+service).Add("status", "running")
	res, err := cli.ContainerList(ctx, client.ContainerListOptions{Filters: f})
	if err != nil {
		return nil, fmt.Errorf("listing containers of project %s: %w", project, err)
	}
	if len(res.Items) == 0 {
		return nil, fmt.Errorf("%w for service %q of project %q; start it (difyctl up), or name the project (-p) or service (--service)", ErrNoContainer, service, project)
	}
	return redisByID(ctx, cli, res.Items[0].ID, fallbackPassword)
}

// redisByID is the Redis of container id, running or not.
func redisByID(ctx context.Context, cli engine.Engine, id, fallbackPassword string) (*Redis, error) {
	ins, err := cli.ContainerInspect(ctx, id, client.ContainerInspectOptions{})
	if err != nil {
		return nil, err
	}
	c := ins.Container
	r := &Redis{cli: cli, ID: c.ID, Name: strings.TrimPrefix(c.Name, "/"), password: fallbackPassword, inspected: c}
	if c.Config != nil {
		r.Image = c.Config.Image
		for _, kv := range c.Config.Env {
			if v, ok := strings.CutPrefix(kv, "REDISCLI_AUTH="); ok {
				r.password = v
			}
		}
	}
	return r, nil
}

// Inspect returns the container's inspect data from when it was found.
func (r *Redis) Inspect() container.InspectResponse { return r.inspected }

// CLI runs redis-cli with args inside the container and returns its output.
// The password travels in the exec's environment, never in its arguments.
func (r *Redis) CLI(ctx context.Context, args ...string) (string, error) {
	env := []string{}
	if r.password != "" {
		env = append(env, "REDISCLI_AUTH="+r.password)
	}
	out, errOut, code, err := r.exec(ctx, env, append([]string{"redis-cli"}, args...))
	if err != nil {
		return "", err
	}
	s := strings.TrimSpace(out)
	if code != 0 {
		return s, fmt.Errorf("redis-cli %s in %s exited %d: %s", args[0], r.Name, code, Shown(strings.TrimSpace(errOut+" "+s)))
	}
	if strings.HasPrefix(s, "NOAUTH") || strings.HasPrefix(s, "WRONGPASS") {
		return s, fmt.Errorf("redis in %s refused the password (%s); check REDIS_PASSWORD / REDISCLI_AUTH", r.Name, Shown(firstLine(s)))
	}
	if strings.HasPrefix(s, "ERR ") {
		return s, fmt.Errorf("redis %s in %s: %s", args[0], r.Name, Shown(firstLine(s)))
	}
	return s, nil
}

func (r *Redis) exec(ctx context.Context, env, cmd []string) (string, string, int, error) {
	ex, err := r.cli.ExecCreate(ctx, r.ID, client.ExecCreateOptions{Cmd: cmd, Env: env, AttachStdout: true, AttachStderr: true})
	if err != nil {
		return "", "", 0, fmt.Errorf("exec in %s: %w", r.Name, err)
	}
	att, err := r.cli.ExecAttach(ctx, ex.ID, client.ExecAttachOptions{})
	if err != nil {
		return "", "", 0, fmt.Errorf("exec in %s: %w", r.Name, err)
	}
	defer att.Close()
	var out, errOut bytes.Buffer
	if _, err := stdcopy.StdCopy(&out, &errOut, att.Reader); err != nil {
		return "", "", 0, fmt.Errorf("reading exec output from %s: %w", r.Name, err)
	}
	ins, err := r.cli.ExecInspect(ctx, ex.ID, client.ExecInspectOptions{})
	if err != nil {
		return "", "", 0, err
	}
	return out.String(), errOut.String(), ins.ExitCode, nil
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	return s
}

// Shown is a value Redis reported, fit for an error or a terminal: quoted
// when it holds anything but printable characters (control characters and
// escape sequences escaped), as is otherwise.
func Shown(s string) string {
	for _, c := range s {
		if !unicode.IsGraphic(c) || c == '"' || c == '\\' {
			return strconv.QuoteToGraphic(s)
		}
	}
	return s
}

// Info returns INFO section as a map.
func (r *Redis) Info(ctx context.Context, section string) (map[string]string, error) {
	out, err := r.CLI(ctx, "INFO", section)
	if err != nil {
		return nil, err
	}
	m := map[string]string{}
	for _, l := range strings.Split(out, "\n") {
		if k, v, ok := strings.Cut(strings.TrimSpace(l), ":"); ok {
			m[k] = v
		}
	}
	return m, nil
}

// Config returns CONFIG GET name.
func (r *Redis) Config(ctx context.Context, name string) (string, error) {
	out, err := r.CLI(ctx, "CONFIG", "GET", name)
	if err != nil {
		return "", err
	}
	lines := strings.Split(out, "\n")
	if len(lines) < 2 {
		return "", nil
	}
	return strings.TrimSpace(lines[1]), nil
}

// DumpLocation returns the server's version info and where it writes its
// dump (CONFIG GET dir / dbfilename). It refuses a dir that is not an
// absolute clean path and a dbfilename that is not a plain file name: the
// backup reads that file out of the container and a restore writes it back,
// so neither may point anywhere else.
func (r *Redis) DumpLocation(ctx context.Context) (server map[string]string, dir, file string, err error) {
	if server, err = r.Info(ctx, "server"); err != nil {
		return
	}
	if dir, err = r.Config(ctx, "dir"); err != nil {
		return
	}
	if err = r.checkDir(dir); err != nil {
		return
	}
	if file, err = r.Config(ctx, "dbfilename"); err != nil {
		return
	}
	err = r.checkBaseName("dbfilename", file)
	return
}

// checkDir refuses a dir that is not absolute and clean.
func (r *Redis) checkDir(dir string) error {
	if !path.IsAbs(dir) || path.Clean(dir) != dir || hasControl(dir) {
		return fmt.Errorf("Redis in %s reports dir %s: not an absolute, clean path; refusing to copy files there (set dir to the data directory, e.g. /data)", r.Name, Shown(dir))
	}
	return nil
}

// checkBaseName refuses a file name setting (dbfilename, appendfilename,
// appenddirname) that is not a plain base name.
func (r *Redis) checkBaseName(setting, name string) error {
	if name == "" || name == "." || name == ".." || strings.ContainsAny(name, "/\x00") || hasControl(name) {
		return fmt.Errorf("Redis in %s reports %s %s: not a plain file name; refusing to read or write it (set %s to a name without a directory, e.g. dump.rdb)", r.Name, setting, Shown(name), setting)
	}
	return nil
}

func hasControl(s string) bool {
	for _, c := range s {
		if unicode.IsControl(c) {
			return true
		}
	}
	return false
}

// KeyCount sums the keys of every database from INFO keyspace.
func (r *Redis) KeyCount(ctx context.Context) (int64, error) {
	info, err := r.Info(ctx, "keyspace")
	if err != nil {
		return 0, err
	}
	var total int64
	for k, v := range info {
		if !strings.HasPrefix(k, "db") {
			continue
		}
		for _, f := range strings.Split(v, ",") {
			if n, ok := strings.CutPrefix(f, "keys="); ok {
				x, _ := strconv.ParseInt(n, 10, 64)
				total += x
			}
		}
	}
	return total, nil
}

// SaveTimeout is the default bound on one SAVE or BGSAVE for a dataset of
// usedMemory bytes: two minutes, plus one per GiB at a pessimistic 16 MiB/s
// of disk (a SAVE writes less than the memory it holds).
func SaveTimeout(usedMemory int64) time.Duration {
	return 2*time.Minute + time.Duration(usedMemory/(16<<20))*time.Second
}

// Save makes Redis write its dump, waiting at most timeout (0: SaveTimeout
// of the dataset's used_memory). With bgsave it triggers BGSAVE and waits
// for that background save to finish, so clients are not blocked: done when
// rdb_bgsave_in_progress is 0 and a save newer than the one before ours is
// recorded (rdb_saves grows on Redis 7+, LASTSAVE moves on older ones). A save
// already in progress is waited for, then ours is asked for. With save it
// runs SAVE, blocking Redis as the manual procedure does. When the bound
// passes, the error says what Redis last reported.
func (r *Redis) Save(ctx context.Context, mode string, timeout time.Duration) error {
	if timeout <= 0 {
		mem, err := r.Info(ctx, "memory")
		if err != nil {
			return err
		}
		used, _ := strconv.ParseInt(mem["used_memory"], 10, 64)
		timeout = SaveTimeout(used)
	}
	sctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	err := r.save(sctx, mode)
	if err != nil && ctx.Err() == nil && sctx.Err() != nil { // our bound, not the caller's
		return r.saveTimedOut(ctx, mode, timeout)
	}
	return err
}

// saveTimedOut names what Redis reports about its save when the bound passed.
func (r *Redis) saveTimedOut(ctx context.Context, mode string, timeout time.Duration) error {
	what := map[string]string{"save": "SAVE", "bgsave": "BGSAVE"}[mode]
	qctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	info, err := r.Info(qctx, "persistence")
	if err != nil {
		return fmt.Errorf("%s in %s did not finish within %s (--save-timeout), and Redis does not answer INFO (%v): a SAVE blocks it until done; raise --save-timeout or see its log", what, r.Name, timeout, err)
	}
	var said []string
	for _, k := range []string{"rdb_bgsave_in_progress", "rdb_current_bgsave_time_sec", "rdb_last_bgsave_status", "rdb_changes_since_last_save", "rdb_saves", "rdb_last_save_time"} {
		if v, ok := info[k]; ok {
			said = append(said, k+"="+Shown(v))
		}
	}
	return fmt.Errorf("%s in %s did not finish within %s (--save-timeout); Redis reports %s; raise --save-timeout, or see its log (disk full, a slow disk, vm.overcommit_memory=0)", what, r.Name, timeout, strings.Join(said, ", "))
}

func (r *Redis) save(ctx context.Context, mode string) error {
	if mode == "save" {
		out, err := r.CLI(ctx, "SAVE")
		if err != nil {
			return err
		}
		if out != "OK" {
			return fmt.Errorf("SAVE in %s answered %s", r.Name, strconv.QuoteToGraphic(out))
		}
		return nil
	}
	for attempt := 0; ; attempt++ {
		before, err := r.Info(ctx, "persistence")
		if err != nil {
			return err
		}
		if before["rdb_bgsave_in_progress"] == "1" {
			if err := r.waitBGSave(ctx, nil); err != nil {
				return err
			}
			continue
		}
		if _, ok := before["rdb_saves"]; !ok {
			// LASTSAVE has one-second resolution: let the clock pass it.
			if err := r.pastSecond(ctx, before["rdb_last_save_time"]); err != nil {
				return err
			}
		}
		if _, err := r.CLI(ctx, "BGSAVE"); err != nil {
			if strings.Contains(err.Error(), "in progress") && attempt < 100 {
				continue
			}
			return err
		}
		return r.waitBGSave(ctx, before)
	}
}

// pastSecond waits until the server's clock is past the unix second last.
func (r *Redis) pastSecond(ctx context.Context, last string) error {
	l, _ := strconv.ParseInt(last, 10, 64)
	for {
		out, err := r.CLI(ctx, "TIME")
		if err != nil {
			return err
		}
		now, _ := strconv.ParseInt(firstLine(out), 10, 64)
		if now > l {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// waitBGSave polls INFO persistence until no background save runs and, when
// before is given, a newer save is recorded. Redis has no event for this; the
// poll is bounded by ctx. Each poll is an exec, which costs the engine tens
// of milliseconds of CPU that the forked save needs: the interval starts at
// 50 ms (a small dataset is done at once) and grows by half up to 500 ms, so
// a long save is polled twice a second, not twenty times.
func (r *Redis) waitBGSave(ctx context.Context, before map[string]string) error {
	delay := 50 * time.Millisecond
	for {
		info, err := r.Info(ctx, "persistence")
		if err != nil {
			return err
		}
		if info["rdb_bgsave_in_progress"] == "0" {
			if before == nil {
				return nil
			}
			if before["rdb_last_bgsave_status"] == "ok" && info["rdb_last_bgsave_status"] != "ok" {
				return fmt.Errorf("BGSAVE in %s failed (rdb_last_bgsave_status=%s); see its log: often vm.overcommit_memory=0 or a full disk", r.Name, Shown(info["rdb_last_bgsave_status"]))
			}
			newer := false
			if n0, ok := before["rdb_saves"]; ok {
				a, _ := strconv.ParseInt(n0, 10, 64)
				b, _ := strconv.ParseInt(info["rdb_saves"], 10, 64)
				newer = b > a
			} else {
				a, _ := strconv.ParseInt(before["rdb_last_save_time"], 10, 64)
				b, _ := strconv.ParseInt(info["rdb_last_save_time"], 10, 64)
				newer = b > a
			}
			if newer {
				if info["rdb_last_bgsave_status"] != "ok" {
					return fmt.Errorf("BGSAVE in %s failed (rdb_last_bgsave_status=%s); see its log: often vm.overcommit_memory=0 or a full disk", r.Name, Shown(info["rdb_last_bgsave_status"]))
				}
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for BGSAVE in %s: %w", r.Name, ctx.Err())
		case <-time.After(delay):
		}
		delay = min(delay*3/2, maxBGSavePoll)
	}
}

// maxBGSavePoll is the longest interval between two polls of a BGSAVE.
const maxBGSavePoll = 500 * time.Millisecond
