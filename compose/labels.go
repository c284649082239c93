// Package compose loads compose projects and drives the engine to run them.
package compose

// Labels docker compose puts on what it creates. difyctl sets and reads the
// same ones, so each tool works on what the other created. These names are
// defined here and nowhere else.
const (
	LabelPrefix          = "com.docker.compose."
	LabelProject         = "com.docker.compose.project"
	LabelService         = "com.docker.compose.service"
	LabelNumber          = "com.docker.compose.container-number"
	LabelOneoff          = "com.docker.compose.oneoff"
	LabelConfigHash      = "com.docker.compose.config-hash"
	LabelWorkingDir      = "com.docker.compose.project.working_dir"
	LabelConfigFiles     = "com.docker.compose.project.config_files"
	LabelEnvironmentFile = "com.docker.compose.project.environment_file"
	LabelDependencies    = "com.docker.compose.depends_on"
	LabelImage           = "com.docker.compose.image"
	LabelVersion         = "com.docker.compose.version"
	LabelNetwork         = "com.docker.compose.network"
	LabelVolume          = "com.docker.compose.volume"
	LabelReplace         = "com.docker.compose.replace"

	// LabelDifyRelease is difyctl's own: the Dify release of the catalogue
	// the container was created for.
	LabelDifyRelease = "io.difyctl.dify-release"
)

// ProjectFilter is the engine filter that selects a project's objects.
func ProjectFilter(project string) string { return LabelProject + "=" + project }
