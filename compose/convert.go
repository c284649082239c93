package compose

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/compose-spec/compose-go/v2/types"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/api/types/network"
)

// supportedFields are the service attributes difyctl carries into the
// engine. Any other attribute set on a service is an error that names it:
// nothing is dropped silently.
var supportedFields = map[string]bool{
	"name": true, "image": true, "command": true, "entrypoint": true, "environment": true, "env_file": true,
	"volumes": true, "ports": true, "expose": true, "networks": true, "healthcheck": true, "restart": true,
	"ulimits": true, "user": true, "working_dir": true, "extra_hosts": true, "labels": true, "tmpfs": true,
	"deploy": true, "mem_limit": true, "privileged": true, "init": true, "tty": true, "stdin_open": true,
	"hostname": true, "container_name": true, "cap_add": true, "cap_drop": true, "shm_size": true,
	"stop_grace_period": true, "stop_signal": true, "security_opt": true, "depends_on": true, "profiles": true,
	"pull_policy": true, "dns": true, "read_only": true, "sysctls": true, "cpus": true,
}

// UnsupportedError names a service attribute the engine path cannot honour.
type UnsupportedError struct{ Service, Field string }

func (e *UnsupportedError) Error() string {
	return fmt.Sprintf("service %s: %q is not supported by difyctl's engine driver; remove it or run this project with docker compose", e.Service, e.Field)
}

func checkSupported(s types.ServiceConfig) error {
	b, err := json.Marshal(s)
	if err != nil {
		return err
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		return err
	}
	var bad []string
	for k := range m {
		if !supportedFields[k] {
			bad = append(bad, k)
		}
	}
	sort.Strings(bad)
	if len(bad) > 0 {
		return &UnsupportedError{Service: s.Name, Field: bad[0]}
	}
	if s.Deploy != nil {
		if s.Deploy.Replicas != nil && *s.Deploy.Replicas != 1 {
			return &UnsupportedError{Service: s.Name, Field: "deploy.replicas"}
		}
		if r := s.Deploy.Resources.Reservations; r != nil && len(r.Devices) > 0 {
			return &UnsupportedError{Service: s.Name, Field: "deploy.resources.reservations.devices"}
		}
	}
	return nil
}

// ContainerName is what compose names a service's container.
func ContainerName(project string, s types.ServiceConfig) string {
	if s.ContainerName != "" {
		return s.ContainerName
	}
	return project + "-" + s.Name + "-1"
}

// NetworkName is the engine name of a project network.
func NetworkName(p *types.Project, key string) string {
	if n, ok := p.Networks[key]; ok && n.Name != "" {
		return n.Name
	}
	return p.Name + "_" + key
}

// VolumeName is the engine name of a project volume.
func VolumeName(p *types.Project, key string) string {
	if v, ok := p.Volumes[key]; ok && v.Name != "" {
		return v.Name
	}
	return p.Name + "_" + key
}

// Spec is everything needed to create one service's container.
type Spec struct {
	Service    types.ServiceConfig
	Name       string
	Config     *container.Config
	Host       *container.HostConfig
	Networks   []string // engine network names, in order; the first is set at create
	Aliases    map[string][]string
	ConfigHash string
}

func seconds(d *types.Duration) time.Duration {
	if d == nil {
		return 0
	}
	return time.Duration(*d)
}

// Convert turns a service into the engine's container configuration.
func Convert(p *types.Project, s types.ServiceConfig, labels map[string]string) (*Spec, error) {
	if err := checkSupported(s); err != nil {
		return nil, err
	}
	if s.NetworkMode != "" {
		return nil, &UnsupportedError{Service: s.Name, Field: "network_mode"}
	}
	cfg := containerConfig(s, labels)
	host, err := hostConfig(s)
	if err != nil {
		return nil, err
	}
	if host.Mounts, err = mounts(p, s); err != nil {
		return nil, err
	}
	if err := ports(s, cfg, host); err != nil {
		return nil, err
	}
	spec := &Spec{Service: s, Name: ContainerName(p.Name, s), Config: cfg, Host: host, Aliases: map[string][]string{}}
	for _, key := range networkOrder(s) {
		name := NetworkName(p, key)
		aliases := []string{s.Name}
		if n := s.Networks[key]; n != nil {
			aliases = append(aliases, n.Aliases...)
		}
		spec.Networks = append(spec.Networks, name)
		spec.Aliases[name] = aliases
	}
	if len(spec.Networks) > 0 {
		host.NetworkMode = container.NetworkMode(spec.Networks[0])
	}
	return spec, nil
}

// containerConfig is the container's own configuration: image, command,
// environment, labels, stop and health settings.
func containerConfig(s types.ServiceConfig, labels map[string]string) *container.Config {
	env := make([]string, 0, len(s.Environment))
	for k, v := range s.Environment {
		if v != nil {
			env = append(env, k+"="+*v)
		}
	}
	sort.Strings(env)
	cfg := &container.Config{
		Image: s.Image, Cmd: s.Command, Entrypoint: s.Entrypoint, Env: env, User: s.User, WorkingDir: s.WorkingDir,
		Hostname: s.Hostname, Tty: s.Tty, OpenStdin: s.StdinOpen, StopSignal: s.StopSignal, Labels: map[string]string{},
		ExposedPorts: network.PortSet{},
	}
	for k, v := range s.Labels {
		cfg.Labels[k] = v
	}
	for k, v := range labels {
		cfg.Labels[k] = v
	}
	if s.StopGracePeriod != nil {
		t := int(time.Duration(*s.StopGracePeriod).Seconds())
		cfg.StopTimeout = &t
	}
	if hc := s.HealthCheck; hc != nil {
		if hc.Disable {
			cfg.Healthcheck = &container.HealthConfig{Test: []string{"NONE"}}
		} else {
			cfg.Healthcheck = &container.HealthConfig{Test: hc.Test, Interval: seconds(hc.Interval), Timeout: seconds(hc.Timeout),
				StartPeriod: seconds(hc.StartPeriod), StartInterval: seconds(hc.StartInterval)}
			if hc.Retries != nil {
				cfg.Healthcheck.Retries = int(*hc.Retries)
			}
		}
	}
	return cfg
}

// hostConfig is what the host gives the container: privileges, restart
// policy, limits, extra hosts, tmpfs, DNS.
func hostConfig(s types.ServiceConfig) (*container.HostConfig, error) {
	dns, err := toAddrs(s.DNS)
	if err != nil {
		return nil, fmt.Errorf("service %s: dns: %w; give IP addresses", s.Name, err)
	}
	host := &container.HostConfig{
		Privileged: s.Privileged, Init: s.Init, CapAdd: s.CapAdd, CapDrop: s.CapDrop, SecurityOpt: s.SecurityOpt,
		ShmSize: int64(s.ShmSize), DNS: dns, ReadonlyRootfs: s.ReadOnly, Sysctls: s.Sysctls,
		PortBindings: network.PortMap{},
	}
	if host.RestartPolicy, err = restartPolicy(s); err != nil {
		return nil, err
	}
	names := make([]string, 0, len(s.Ulimits))
	for n := range s.Ulimits {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		u := s.Ulimits[n]
		soft, hard := int64(u.Soft), int64(u.Hard)
		if u.Single != 0 {
			soft, hard = int64(u.Single), int64(u.Single)
		}
		host.Ulimits = append(host.Ulimits, &container.Ulimit{Name: n, Soft: soft, Hard: hard})
	}
	resources(s, host)
	for h, ips := range s.ExtraHosts {
		for _, ip := range ips {
			host.ExtraHosts = append(host.ExtraHosts, h+":"+ip)
		}
	}
	sort.Strings(host.ExtraHosts)
	if len(s.Tmpfs) > 0 {
		host.Tmpfs = map[string]string{}
		for _, t := range s.Tmpfs {
			path, opts, _ := strings.Cut(t, ":")
			host.Tmpfs[path] = opts
		}
	}
	return host, nil
}

func restartPolicy(s types.ServiceConfig) (container.RestartPolicy, error) {
	switch r := s.Restart; {
	case r == "" || r == "no":
		return container.RestartPolicy{Name: container.RestartPolicyDisabled}, nil
	case r == "always":
		return container.RestartPolicy{Name: container.RestartPolicyAlways}, nil
	case r == "unless-stopped":
		return container.RestartPolicy{Name: container.RestartPolicyUnlessStopped}, nil
	case strings.HasPrefix(r, "on-failure"):
		rp := container.RestartPolicy{Name: container.RestartPolicyOnFailure}
		if _, n, ok := strings.Cut(r, ":"); ok {
			rp.MaximumRetryCount, _ = strconv.Atoi(n)
		}
		return rp, nil
	default:
		return container.RestartPolicy{}, &UnsupportedError{Service: s.Name, Field: "restart: " + r}
	}
}

// resources sets memory and CPU limits: mem_limit and cpus, overridden by
// deploy.resources.
func resources(s types.ServiceConfig, host *container.HostConfig) {
	host.Memory = int64(s.MemLimit)
	host.NanoCPUs = int64(s.CPUS * 1e9)
	if d := s.Deploy; d != nil {
		if l := d.Resources.Limits; l != nil {
			if l.MemoryBytes > 0 {
				host.Memory = int64(l.MemoryBytes)
			}
			if l.NanoCPUs > 0 {
				host.NanoCPUs = int64(l.NanoCPUs * 1e9)
			}
		}
		if r := d.Resources.Reservations; r != nil && r.MemoryBytes > 0 {
			host.MemoryReservation = int64(r.MemoryBytes)
		}
	}
}

// mounts are the service's volumes as engine mounts: bind sources made
// absolute, named volumes given their engine names.
func mounts(p *types.Project, s types.ServiceConfig) ([]mount.Mount, error) {
	var out []mount.Mount
	for _, v := range s.Volumes {
		m := mount.Mount{Target: v.Target, ReadOnly: v.ReadOnly}
		switch v.Type {
		case types.VolumeTypeBind:
			m.Type, m.Source = mount.TypeBind, v.Source
			if !filepath.IsAbs(m.Source) {
				m.Source = filepath.Join(p.WorkingDir, m.Source)
			}
		case types.VolumeTypeVolume:
			m.Type = mount.TypeVolume
			if v.Source != "" {
				m.Source = VolumeName(p, v.Source)
			}
			if v.Volume != nil {
				m.VolumeOptions = &mount.VolumeOptions{NoCopy: v.Volume.NoCopy}
			}
		case types.VolumeTypeTmpfs:
			m.Type = mount.TypeTmpfs
		default:
			return nil, &UnsupportedError{Service: s.Name, Field: "volumes type " + v.Type}
		}
		out = append(out, m)
	}
	return out, nil
}

// ports sets the exposed and published ports.
func ports(s types.ServiceConfig, cfg *container.Config, host *container.HostConfig) error {
	for _, e := range s.Expose {
		port, err := network.ParsePort(withProto(e, ""))
		if err != nil {
			return fmt.Errorf("service %s: expose %q: %w", s.Name, e, err)
		}
		cfg.ExposedPorts[port] = struct{}{}
	}
	for _, pc := range s.Ports {
		port, err := network.ParsePort(withProto(strconv.Itoa(int(pc.Target)), pc.Protocol))
		if err != nil {
			return fmt.Errorf("service %s: port %d: %w", s.Name, pc.Target, err)
		}
		cfg.ExposedPorts[port] = struct{}{}
		b := network.PortBinding{HostPort: pc.Published}
		if pc.HostIP != "" {
			ip, err := netip.ParseAddr(pc.HostIP)
			if err != nil {
				return fmt.Errorf("service %s: port host_ip %q: %w", s.Name, pc.HostIP, err)
			}
			b.HostIP = ip
		}
		host.PortBindings[port] = append(host.PortBindings[port], b)
	}
	return nil
}

// networkOrder is the service's networks as compose orders them: by
// priority, then name.
func networkOrder(s types.ServiceConfig) []string {
	nets := make([]string, 0, len(s.Networks))
	for key := range s.Networks {
		nets = append(nets, key)
	}
	sort.Slice(nets, func(i, j int) bool {
		pi, pj := 0, 0
		if n := s.Networks[nets[i]]; n != nil {
			pi = n.Priority
		}
		if n := s.Networks[nets[j]]; n != nil {
			pj = n.Priority
		}
		if pi != pj {
			return pi > pj
		}
		return nets[i] < nets[j]
	})
	return nets
}

func withProto(port, proto string) string {
	if strings.Contains(port, "/") {
		return port
	}
	if proto == "" {
		proto = "tcp"
	}
	return port + "/" + proto
}

// toAddrs parses dns entries; one that is not an IP address is an error
// (the engine takes addresses only), not dropped.
func toAddrs(ss []string) ([]netip.Addr, error) {
	var out []netip.Addr
	for _, s := range ss {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return nil, fmt.Errorf("%q is not an IP address", s)
		}
		out = append(out, a)
	}
	return out, nil
}
