package spec

import (
	"encoding/json"
	"fmt"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	yamlv2 "gopkg.in/yaml.v2"
)

// Metadata renders the whole configuration as LinuxKit's files[].metadata
// does, byte for byte: "yaml" is gopkg.in/yaml.v2's Marshal and "json" is
// json.MarshalIndent(config, "", "    ") (no trailing newline) of LinuxKit's
// config struct, with the image references of the kernel, init and
// containers expanded as LinuxKit expands them.
func Metadata(cfg *Config, format string) ([]byte, error) {
	md := metadataConfig(cfg)
	switch format {
	case "json":
		return json.MarshalIndent(md, "", "    ")
	case "yaml":
		return yamlv2.Marshal(md)
	}
	return nil, fmt.Errorf("unknown metadata format %q", format)
}

// The md types mirror LinuxKit's (moby/config.go): field order, keys and
// omitempty of the yaml and json tags, and the runtime-spec version it
// vendors (1.2.1) where that differs from the one used here. Types whose
// tags already match (Kernel, File, Volume, Device, Runtime) are shared.

// mdConfig is LinuxKit's Moby. It has no trust field; Kernel has no yaml
// tag there, so yaml.v2 always writes it as kernel.
type mdConfig struct {
	Kernel     Kernel     `yaml:"kernel" json:"kernel,omitempty"`
	Init       []string   `yaml:"init" json:"init"`
	Onboot     []*mdImage `yaml:"onboot" json:"onboot"`
	Onshutdown []*mdImage `yaml:"onshutdown" json:"onshutdown"`
	Services   []*mdImage `yaml:"services" json:"services"`
	Files      []*File    `yaml:"files" json:"files"`
	Volumes    []*Volume  `yaml:"volumes" json:"volumes"`
}

// mdImage is LinuxKit's Image.
type mdImage struct {
	Name          string `yaml:"name" json:"name"`
	Image         string `yaml:"image" json:"image"`
	mdImageConfig `yaml:",inline"`
}

// mdImageConfig is LinuxKit's ImageConfig: Overrides with runtime-spec
// 1.2.1's resources.
type mdImageConfig struct {
	Capabilities      *[]string               `yaml:"capabilities,omitempty" json:"capabilities,omitempty"`
	CapabilitiesAdd   *[]string               `yaml:"capabilities.add,omitempty" json:"capabilities.add,omitempty"`
	Ambient           *[]string               `yaml:"ambient,omitempty" json:"ambient,omitempty"`
	Mounts            *[]specs.Mount          `yaml:"mounts,omitempty" json:"mounts,omitempty"`
	Binds             *[]string               `yaml:"binds,omitempty" json:"binds,omitempty"`
	BindsAdd          *[]string               `yaml:"binds.add,omitempty" json:"binds.add,omitempty"`
	Devices           *[]Device               `yaml:"devices,omitempty" json:"devices,omitempty"`
	Tmpfs             *[]string               `yaml:"tmpfs,omitempty" json:"tmpfs,omitempty"`
	Command           *[]string               `yaml:"command,omitempty" json:"command,omitempty"`
	Env               *[]string               `yaml:"env,omitempty" json:"env,omitempty"`
	Cwd               string                  `yaml:"cwd,omitempty" json:"cwd,omitempty"`
	Net               string                  `yaml:"net,omitempty" json:"net,omitempty"`
	Pid               string                  `yaml:"pid,omitempty" json:"pid,omitempty"`
	Ipc               string                  `yaml:"ipc,omitempty" json:"ipc,omitempty"`
	Uts               string                  `yaml:"uts,omitempty" json:"uts,omitempty"`
	Userns            string                  `yaml:"userns,omitempty" json:"userns,omitempty"`
	Hostname          string                  `yaml:"hostname,omitempty" json:"hostname,omitempty"`
	Readonly          *bool                   `yaml:"readonly,omitempty" json:"readonly,omitempty"`
	MaskedPaths       *[]string               `yaml:"maskedPaths,omitempty" json:"maskedPaths,omitempty"`
	ReadonlyPaths     *[]string               `yaml:"readonlyPaths,omitempty" json:"readonlyPaths,omitempty"`
	UID               *ID                     `yaml:"uid,omitempty" json:"uid,omitempty"`
	GID               *ID                     `yaml:"gid,omitempty" json:"gid,omitempty"`
	AdditionalGids    *[]ID                   `yaml:"additionalGids,omitempty" json:"additionalGids,omitempty"`
	NoNewPrivileges   *bool                   `yaml:"noNewPrivileges,omitempty" json:"noNewPrivileges,omitempty"`
	OOMScoreAdj       *int                    `yaml:"oomScoreAdj,omitempty" json:"oomScoreAdj,omitempty"`
	RootfsPropagation *string                 `yaml:"rootfsPropagation,omitempty" json:"rootfsPropagation,omitempty"`
	CgroupsPath       *string                 `yaml:"cgroupsPath,omitempty" json:"cgroupsPath,omitempty"`
	Resources         *mdResources            `yaml:"resources,omitempty" json:"resources,omitempty"`
	Sysctl            *map[string]string      `yaml:"sysctl,omitempty" json:"sysctl,omitempty"`
	Rlimits           *[]string               `yaml:"rlimits,omitempty" json:"rlimits,omitempty"`
	UIDMappings       *[]specs.LinuxIDMapping `yaml:"uidMappings,omitempty" json:"uidMappings,omitempty"`
	GIDMappings       *[]specs.LinuxIDMapping `yaml:"gidMappings,omitempty" json:"gidMappings,omitempty"`
	Annotations       *map[string]string      `yaml:"annotations,omitempty" json:"annotations,omitempty"`
	Runtime           *Runtime                `yaml:"runtime,omitempty" json:"runtime,omitempty"`
}

// mdResources is runtime-spec 1.2.1's LinuxResources. It has no yaml
// tags: yaml.v2 writes every field under its lower-cased name.
type mdResources struct {
	Devices        []specs.LinuxDeviceCgroup  `json:"devices,omitempty"`
	Memory         *specs.LinuxMemory         `json:"memory,omitempty"`
	CPU            *specs.LinuxCPU            `json:"cpu,omitempty"`
	Pids           *mdPids                    `json:"pids,omitempty"`
	BlockIO        *specs.LinuxBlockIO        `json:"blockIO,omitempty"`
	HugepageLimits []specs.LinuxHugepageLimit `json:"hugepageLimits,omitempty"`
	Network        *specs.LinuxNetwork        `json:"network,omitempty"`
	Rdma           map[string]specs.LinuxRdma `json:"rdma,omitempty"`
	Unified        map[string]string          `json:"unified,omitempty"`
}

// mdPids is runtime-spec 1.2.1's LinuxPids: the limit is a plain number,
// 0 when not given.
type mdPids struct {
	Limit int64 `json:"limit"`
}

func metadataConfig(cfg *Config) mdConfig {
	kernel := cfg.Kernel
	if kernel.Image != "" {
		kernel.Image = linuxkitRef(kernel.Image)
	}
	md := mdConfig{Kernel: kernel, Files: nonEmpty(cfg.Files), Volumes: nonEmpty(cfg.Volumes)}
	for _, r := range cfg.Init {
		md.Init = append(md.Init, linuxkitRef(r))
	}
	images := func(list []*Image) []*mdImage {
		var out []*mdImage
		for _, img := range list {
			out = append(out, &mdImage{Name: img.Name, Image: linuxkitRef(img.Image), mdImageConfig: mdOverrides(img.Overrides)})
		}
		return out
	}
	md.Onboot, md.Onshutdown, md.Services = images(cfg.Onboot), images(cfg.Onshutdown), images(cfg.Services)
	return md
}

// nonEmpty is list, or nil when it is empty: LinuxKit appends each file's
// lists onto an empty config, so an empty list is written as null in JSON.
func nonEmpty[T any](list []T) []T {
	if len(list) == 0 {
		return nil
	}
	return list
}

func mdOverrides(o Overrides) mdImageConfig {
	return mdImageConfig{
		Capabilities: o.Capabilities, CapabilitiesAdd: o.CapabilitiesAdd, Ambient: o.Ambient, Mounts: o.Mounts,
		Binds: o.Binds, BindsAdd: o.BindsAdd, Devices: o.Devices, Tmpfs: o.Tmpfs, Command: o.Command, Env: o.Env,
		Cwd: o.Cwd, Net: o.Net, Pid: o.Pid, Ipc: o.Ipc, Uts: o.Uts, Userns: o.Userns, Hostname: o.Hostname,
		Readonly: o.Readonly, MaskedPaths: o.MaskedPaths, ReadonlyPaths: o.ReadonlyPaths, UID: o.UID, GID: o.GID,
		AdditionalGids: o.AdditionalGids, NoNewPrivileges: o.NoNewPrivileges, OOMScoreAdj: o.OOMScoreAdj,
		RootfsPropagation: o.RootfsPropagation, CgroupsPath: o.CgroupsPath, Resources: mdResourcesOf(o.Resources),
		Sysctl: o.Sysctl, Rlimits: o.Rlimits, UIDMappings: o.UIDMappings, GIDMappings: o.GIDMappings,
		Annotations: o.Annotations, Runtime: o.Runtime,
	}
}

func mdResourcesOf(r *specs.LinuxResources) *mdResources {
	if r == nil {
		return nil
	}
	md := &mdResources{Devices: r.Devices, Memory: r.Memory, CPU: r.CPU, BlockIO: r.BlockIO,
		HugepageLimits: r.HugepageLimits, Network: r.Network, Rdma: r.Rdma, Unified: r.Unified}
	if r.Pids != nil {
		md.Pids = &mdPids{}
		if r.Pids.Limit != nil {
			md.Pids.Limit = *r.Pids.Limit
		}
	}
	return md
}

// linuxkitRef writes an image reference as LinuxKit's metadata does: a
// name without a registry gets docker.io/ (and library/ when it has no
// slash); other references, including ones with three or more path
// components, are kept as written.
func linuxkitRef(ref string) string {
	parts := strings.Split(ref, "/")
	switch {
	case len(parts) == 1:
		return "docker.io/library/" + ref
	case len(parts) == 2 && !strings.ContainsAny(parts[0], ".:") && parts[0] != "localhost":
		return "docker.io/" + ref
	}
	return ref
}
