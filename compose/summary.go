package compose

import (
	"sort"
	"strings"

	"github.com/compose-spec/compose-go/v2/types"
)

// ServiceSummary is what a deployment's shape consists of: what runs, from
// which image, after what, checked how, with which data and networks. Two
// renderings of Dify agree when their summaries are equal; the golden files
// and the comparison with upstream use it.
type ServiceSummary struct {
	Image       string            `yaml:"image" json:"image"`
	DependsOn   map[string]string `yaml:"depends_on,omitempty" json:"depends_on,omitempty"`
	Healthcheck string            `yaml:"healthcheck,omitempty" json:"healthcheck,omitempty"`
	Volumes     []string          `yaml:"volumes,omitempty" json:"volumes,omitempty"`
	Networks    []string          `yaml:"networks,omitempty" json:"networks,omitempty"`
}

// Summary is the shape of a whole project.
type Summary struct {
	Services map[string]ServiceSummary `yaml:"services" json:"services"`
	Networks map[string]string         `yaml:"networks,omitempty" json:"networks,omitempty"`
	Volumes  []string                  `yaml:"volumes,omitempty" json:"volumes,omitempty"`
}

// Summarize reduces a loaded project to its Summary. Bind-mount sources are
// made relative to the project directory.
func Summarize(p *types.Project) Summary {
	s := Summary{Services: map[string]ServiceSummary{}, Networks: map[string]string{}}
	for name, svc := range p.Services {
		ss := ServiceSummary{Image: svc.Image}
		if svc.Build != nil && svc.Image == "" {
			ss.Image = "build:" + svc.Build.Context
		}
		for dep, d := range svc.DependsOn {
			if ss.DependsOn == nil {
				ss.DependsOn = map[string]string{}
			}
			v := d.Condition
			if !d.Required {
				v += ",required=false"
			}
			if d.Restart {
				v += ",restart=true"
			}
			ss.DependsOn[dep] = v
		}
		if hc := svc.HealthCheck; hc != nil {
			if hc.Disable {
				ss.Healthcheck = "disabled"
			} else {
				ss.Healthcheck = strings.Join(hc.Test, " ")
			}
		}
		for _, v := range svc.Volumes {
			src := v.Source
			if v.Type == types.VolumeTypeBind {
				src = "./" + strings.TrimPrefix(strings.TrimPrefix(src, p.WorkingDir), "/")
			}
			ss.Volumes = append(ss.Volumes, v.Type+":"+src+":"+v.Target)
		}
		sort.Strings(ss.Volumes)
		for n := range svc.Networks {
			ss.Networks = append(ss.Networks, n)
		}
		sort.Strings(ss.Networks)
		s.Services[name] = ss
	}
	for name, n := range p.Networks {
		desc := n.Driver
		if n.Internal {
			desc += ",internal"
		}
		s.Networks[name] = desc
	}
	for name := range p.Volumes {
		s.Volumes = append(s.Volumes, name)
	}
	sort.Strings(s.Volumes)
	return s
}
