package health

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"

	"github.com/difyctl/difyctl/internal/engine/enginefake"
)

func fakeContainer(t *testing.T, e *enginefake.Engine, service string, healthcheck bool) string {
	t.Helper()
	e.AddImage("img", enginefake.Image{ID: "sha256:img"})
	cfg := &container.Config{Image: "img", Labels: map[string]string{"com.docker.compose.service": service}}
	if healthcheck {
		cfg.Healthcheck = &container.HealthConfig{Test: []string{"CMD", "true"}}
	}
	res, err := e.ContainerCreate(context.Background(), client.ContainerCreateOptions{Name: "p-" + service + "-1", Config: cfg, HostConfig: &container.HostConfig{}})
	if err != nil {
		t.Fatal(err)
	}
	return res.ID
}

// Wait is woken by the engine's events, not by a timer: a container that
// becomes healthy later is seen as soon as the event arrives.
func TestWaitDrivenByEvents(t *testing.T) {
	e := enginefake.New()
	id := fakeContainer(t, e, "db", true)
	if _, err := e.ContainerStart(context.Background(), id, client.ContainerStartOptions{}); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := Wait(context.Background(), e, id, Healthy)
		done <- err
	}()
	select {
	case err := <-done:
		t.Fatalf("Wait returned while the container is starting: %v", err)
	case <-time.After(50 * time.Millisecond):
	}
	e.SetHealth(id, container.Healthy)
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Wait missed the health_status event")
	}
}

func TestWaitFailsOnExit(t *testing.T) {
	e := enginefake.New()
	id := fakeContainer(t, e, "job", false)
	e.Behave("job", enginefake.Behaviour{Exit: enginefake.Exit(3)})
	e.ContainerStart(context.Background(), id, client.ContainerStartOptions{})
	st, err := Wait(context.Background(), e, id, CompletedSuccessfully)
	var fe *FailedError
	if !errors.As(err, &fe) || fe.Reason != "exited with code 3" || st.ExitCode != 3 {
		t.Fatalf("got %v %+v", err, st)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	other := fakeContainer(t, e, "never", true)
	e.ContainerStart(context.Background(), other, client.ContainerStartOptions{})
	_, err = Wait(ctx, e, other, Healthy)
	if Reason(ctx, err, "timed out") != "timed out" {
		t.Fatalf("timeout: %v", err)
	}
}
