// Package templates embeds the Dify release difyctl deploys: its compose
// file (compose/dify.yaml) and its env template (env/dify.env.tmpl), from
// which the variable schema and generated .env files derive. VERSION pins the
// release in one place.
package templates

import (
	_ "embed"
	"strings"
)

//go:embed VERSION
var version string

//go:embed compose/dify.yaml
var composeFile []byte

//go:embed env/dify.env.tmpl
var envTemplate []byte

// ComposeFileName is the name the embedded compose file is loaded under
// (relative to the project directory), as docker compose names its default.
const ComposeFileName = "docker-compose.yaml"

// OverrideFileName is the user's customisation file in the project directory,
// merged over the embedded templates as docker compose merges it.
const OverrideFileName = "docker-compose.override.yaml"

// DifyVersion is the Dify release the templates describe.
func DifyVersion() string { return strings.TrimSpace(version) }

// Compose returns the embedded compose file.
func Compose() []byte { return composeFile }

// EnvTemplate returns the embedded env template.
func EnvTemplate() []byte { return envTemplate }
