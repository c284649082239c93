package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"

	"github.com/difyctl/difyctl/compose"
	"github.com/difyctl/difyctl/internal/testenv"
)

// TestStandinAPIMigratesARealDatabase runs the api stand-in's migrations
// (internal/standin/migrate.go) against the PostgreSQL fixture, without
// difyctl: what the upgrade tests rely on, and the half-migrated state a
// failed migration leaves, which only restoring the database undoes.
//
//  1. the 1.15.0 api on an empty database: alembic_version created, schema
//     at r1, ready;
//  2. the 1.16.0 api with STANDIN_MIGRATE_FAIL=r2: exits 1; the database
//     keeps what r2 committed before failing (its autocommit block: the
//     column and the index) with the version still r1;
//  3. the 1.15.0 api starts on that database (its head is r1): it does not
//     notice;
//  4. the 1.16.0 api without the switch cannot migrate it forward any more
//     (the column exists): the state the upgrade's rollback must not leave.
func TestStandinAPIMigratesARealDatabase(t *testing.T) {
	cli := testenv.Fixtures(t)
	testenv.WithStandins(t, "1.16.0", testenv.StandinOptions{}) // builds the per-release api images
	ctx := context.Background()
	project := testenv.ProjectName(t, cli) // removes what carries its label, passed or failed
	labels := map[string]string{compose.LabelProject: project}
	if _, err := cli.NetworkCreate(ctx, project, client.NetworkCreateOptions{Labels: labels}); err != nil {
		t.Fatal(err)
	}
	pw := make([]byte, 12)
	rand.Read(pw)
	password := hex.EncodeToString(pw)
	start := func(name, image string, env []string) string {
		t.Helper()
		c, err := cli.ContainerCreate(ctx, client.ContainerCreateOptions{Name: project + "-" + name,
			Config:           &container.Config{Image: image, Env: env, Labels: labels},
			NetworkingConfig: &network.NetworkingConfig{EndpointsConfig: map[string]*network.EndpointSettings{project: {Aliases: []string{name}}}}})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := cli.ContainerStart(ctx, c.ID, client.ContainerStartOptions{}); err != nil {
			t.Fatal(err)
		}
		return c.ID
	}
	db := start("db", testenv.ImagePostgres, []string{"POSTGRES_PASSWORD=" + password, "POSTGRES_DB=dify"})
	deadline := time.Now().Add(2 * time.Minute)
	for {
		var out bytes.Buffer
		if _, code := dbExec(t, cli, db, nil, nil, &out, "psql", "-U", "postgres", "-d", "dify", "-tAc", "SELECT 1"); code == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the PostgreSQL fixture did not accept queries within 2 minutes")
		}
		time.Sleep(500 * time.Millisecond)
	}

	// api runs one api stand-in until it is ready (its probe passes) or
	// exits, and returns which, with its log; it is removed after.
	n := 0
	api := func(release string, extra ...string) (string, string) {
		t.Helper()
		n++
		env := append([]string{"MODE=api", "STANDIN_MIGRATE=1", "DB_HOST=db", "DB_PORT=5432", "DB_USERNAME=postgres",
			"DB_PASSWORD=" + password, "DB_DATABASE=dify"}, extra...)
		id := start(fmt.Sprintf("api-%d", n), testenv.StandinImage("dify-api-"+release), env)
		defer cli.ContainerRemove(ctx, id, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true})
		outcome := ""
		for end := time.Now().Add(90 * time.Second); outcome == "" && time.Now().Before(end); time.Sleep(300 * time.Millisecond) {
			ins, err := cli.ContainerInspect(ctx, id, client.ContainerInspectOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if st := ins.Container.State; !st.Running {
				outcome = fmt.Sprintf("exited %d", st.ExitCode)
				break
			}
			if probed(ctx, cli, id) {
				outcome = "ready"
			}
		}
		logs, err := cli.ContainerLogs(ctx, id, client.ContainerLogsOptions{ShowStdout: true, ShowStderr: true})
		if err != nil {
			t.Fatal(err)
		}
		defer logs.Close()
		var out bytes.Buffer
		stdcopy.StdCopy(&out, &out, logs)
		if outcome == "" {
			outcome = "neither ready nor exited within 90s"
		}
		return outcome, out.String()
	}

	if got, log := api("1.15.0"); got != "ready" {
		t.Fatalf("the 1.15.0 api on an empty database: %s\n%s", got, log)
	}
	if got := schemaIn(t, cli, db); got != schemaR1 {
		t.Fatalf("after the 1.15.0 api: %s, want %s", got, schemaR1)
	}
	dbQuery(t, cli, db, nil, "psql", "-v", "ON_ERROR_STOP=1", "-U", "postgres", "-d", "dify", "-tAc", "INSERT INTO apps (name) SELECT 'app-' || g FROM generate_series(1, 10) g")

	got, log := api("1.16.0", "STANDIN_MIGRATE_FAIL=r2")
	if got != "exited 1" || !strings.Contains(log, "failed half-way") {
		t.Fatalf("the 1.16.0 api with a failing migration: %s\n%s", got, log)
	}
	const halfway = "rev=r1 apps=created_at,id,mode,name app_mode_idx=1 agent_sessions=none"
	if got := schemaIn(t, cli, db); got != halfway {
		t.Fatalf("after the failed migration: %s, want the half-migrated %s", got, halfway)
	}
	if got, log := api("1.15.0"); got != "ready" {
		t.Fatalf("the 1.15.0 api on the half-migrated database: %s\n%s", got, log)
	}
	got, log = api("1.16.0")
	if got != "exited 1" || !strings.Contains(log, "already exists") {
		t.Fatalf("the 1.16.0 api on the half-migrated database: %s, want a failure on the column r2 committed\n%s", got, log)
	}
	if c := dbQuery(t, cli, db, nil, "psql", "-U", "postgres", "-d", "dify", "-tAc", "SELECT count(*) FROM apps"); c != "10" {
		t.Fatalf("apps holds %s rows, want 10", c)
	}
}

// probed runs `standin probe` in a container: false when it fails, or the
// container is gone or stopped meanwhile.
func probed(ctx context.Context, cli *client.Client, id string) bool {
	ex, err := cli.ExecCreate(ctx, id, client.ExecCreateOptions{Cmd: []string{"standin", "probe"}, AttachStdout: true, AttachStderr: true})
	if err != nil {
		return false
	}
	att, err := cli.ExecAttach(ctx, ex.ID, client.ExecAttachOptions{})
	if err != nil {
		return false
	}
	io.Copy(io.Discard, att.Reader) // until the probe ends
	att.Close()
	ins, err := cli.ExecInspect(ctx, ex.ID, client.ExecInspectOptions{})
	return err == nil && !ins.Running && ins.ExitCode == 0
}
