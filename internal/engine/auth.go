package engine

import (
	"context"
	"sync"

	"github.com/difyctl/difyctl/internal/dockerconfig"
)

// RegistryAuth finds pull credentials as the docker CLI does (config.json
// and its credential helpers), reading the configuration on first use; the
// result is the engine's X-Registry-Auth value ("" for an anonymous pull).
func RegistryAuth(getenv func(string) string) func(context.Context, string) (string, error) {
	var (
		once sync.Once
		cfg  *dockerconfig.File
		err  error
	)
	return func(ctx context.Context, image string) (string, error) {
		once.Do(func() { cfg, err = dockerconfig.Load(dockerconfig.Dir(getenv)) })
		if err != nil {
			return "", err
		}
		return cfg.RegistryAuth(ctx, image)
	}
}
