package spec

import (
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Config is a LinuxKit configuration: one YAML file or several merged.
// YAML and JSON names are LinuxKit's.
type Config struct {
	Kernel     Kernel    `yaml:"kernel" json:"kernel,omitempty"`
	Init       []string  `yaml:"init" json:"init"`
	Onboot     []*Image  `yaml:"onboot" json:"onboot"`
	Onshutdown []*Image  `yaml:"onshutdown" json:"onshutdown"`
	Services   []*Image  `yaml:"services" json:"services"`
	Files      []*File   `yaml:"files" json:"files"`
	Volumes    []*Volume `yaml:"volumes" json:"volumes"`
	// Trust is accepted for compatibility with old files and ignored.
	Trust *Trust `yaml:"trust" json:"-"`

	// InitPos holds the position of each Init entry.
	InitPos []Pos `yaml:"-" json:"-"`
}

// Trust is LinuxKit's former content-trust section: image and org lists.
type Trust struct {
	Image []string `yaml:"image"`
	Org   []string `yaml:"org"`
}

// Kernel is the kernel section.
type Kernel struct {
	Image   string  `yaml:"image" json:"image"`
	Cmdline string  `yaml:"cmdline" json:"cmdline,omitempty"`
	Binary  string  `yaml:"binary" json:"binary,omitempty"`
	TarOpt  *string `yaml:"tar" json:"tar,omitempty"`
	UCode   string  `yaml:"ucode" json:"ucode,omitempty"`
	// Tar is the modules tarball in the image; "" when NoTar.
	Tar   string `yaml:"-" json:"-"`
	NoTar bool   `yaml:"-" json:"-"`
	Pos   Pos    `yaml:"-" json:"-"`
}

// Image is an entry of onboot, onshutdown or services.
type Image struct {
	Name      string `yaml:"name" json:"name"`
	Image     string `yaml:"image" json:"image"`
	Overrides `yaml:",inline"`
	Pos       Pos `yaml:"-" json:"-"`
}

// Overrides are what an entry or the org.mobyproject.config label may set
// (LinuxKit's ImageConfig). Pointers distinguish "unset" from "empty".
type Overrides struct {
	Capabilities      *[]string               `yaml:"capabilities" json:"capabilities,omitempty"`
	CapabilitiesAdd   *[]string               `yaml:"capabilities.add" json:"capabilities.add,omitempty"`
	Ambient           *[]string               `yaml:"ambient" json:"ambient,omitempty"`
	Mounts            *[]specs.Mount          `yaml:"mounts" json:"mounts,omitempty"`
	Binds             *[]string               `yaml:"binds" json:"binds,omitempty"`
	BindsAdd          *[]string               `yaml:"binds.add" json:"binds.add,omitempty"`
	Devices           *[]Device               `yaml:"devices" json:"devices,omitempty"`
	Tmpfs             *[]string               `yaml:"tmpfs" json:"tmpfs,omitempty"`
	Command           *[]string               `yaml:"command" json:"command,omitempty"`
	Env               *[]string               `yaml:"env" json:"env,omitempty"`
	Cwd               string                  `yaml:"cwd" json:"cwd,omitempty"`
	Net               string                  `yaml:"net" json:"net,omitempty"`
	Pid               string                  `yaml:"pid" json:"pid,omitempty"`
	Ipc               string                  `yaml:"ipc" json:"ipc,omitempty"`
	Uts               string                  `yaml:"uts" json:"uts,omitempty"`
	Userns            string                  `yaml:"userns" json:"userns,omitempty"`
	Hostname          string                  `yaml:"hostname" json:"hostname,omitempty"`
	Readonly          *bool                   `yaml:"readonly" json:"readonly,omitempty"`
	MaskedPaths       *[]string               `yaml:"maskedPaths" json:"maskedPaths,omitempty"`
	ReadonlyPaths     *[]string               `yaml:"readonlyPaths" json:"readonlyPaths,omitempty"`
	UID               *ID                     `yaml:"uid" json:"uid,omitempty"`
	GID               *ID                     `yaml:"gid" json:"gid,omitempty"`
	AdditionalGids    *[]ID                   `yaml:"additionalGids" json:"additionalGids,omitempty"`
	NoNewPrivileges   *bool                   `yaml:"noNewPrivileges" json:"noNewPrivileges,omitempty"`
	OOMScoreAdj       *int                    `yaml:"oomScoreAdj" json:"oomScoreAdj,omitempty"`
	RootfsPropagation *string                 `yaml:"rootfsPropagation" json:"rootfsPropagation,omitempty"`
	CgroupsPath       *string                 `yaml:"cgroupsPath" json:"cgroupsPath,omitempty"`
	Resources         *specs.LinuxResources   `yaml:"resources" json:"resources,omitempty"`
	Sysctl            *map[string]string      `yaml:"sysctl" json:"sysctl,omitempty"`
	Rlimits           *[]string               `yaml:"rlimits" json:"rlimits,omitempty"`
	UIDMappings       *[]specs.LinuxIDMapping `yaml:"uidMappings" json:"uidMappings,omitempty"`
	GIDMappings       *[]specs.LinuxIDMapping `yaml:"gidMappings" json:"gidMappings,omitempty"`
	Annotations       *map[string]string      `yaml:"annotations" json:"annotations,omitempty"`
	Runtime           *Runtime                `yaml:"runtime" json:"runtime,omitempty"`
}

// Device is a device node made in the container.
type Device struct {
	Path  string `yaml:"path" json:"path"`
	Type  string `yaml:"type" json:"type"`
	Major int64  `yaml:"major" json:"major"`
	Minor int64  `yaml:"minor" json:"minor"`
	Mode  string `yaml:"mode" json:"mode,omitempty"`
}

// Runtime is what the init does around a container: runtime.json.
type Runtime struct {
	Cgroups    *[]string      `yaml:"cgroups" json:"cgroups,omitempty"`
	Mounts     *[]specs.Mount `yaml:"mounts" json:"mounts,omitempty"`
	Mkdir      *[]string      `yaml:"mkdir" json:"mkdir,omitempty"`
	Interfaces *[]Interface   `yaml:"interfaces" json:"interfaces,omitempty"`
	BindNS     Namespaces     `yaml:"bindNS" json:"bindNS,omitempty"`
	Namespace  *string        `yaml:"namespace" json:"namespace,omitempty"`
}

// Namespaces are paths where the init bind-mounts a container's namespaces.
type Namespaces struct {
	Cgroup *string `yaml:"cgroup" json:"cgroup,omitempty"`
	Ipc    *string `yaml:"ipc" json:"ipc,omitempty"`
	Mnt    *string `yaml:"mnt" json:"mnt,omitempty"`
	Net    *string `yaml:"net" json:"net,omitempty"`
	Pid    *string `yaml:"pid" json:"pid,omitempty"`
	User   *string `yaml:"user" json:"user,omitempty"`
	Uts    *string `yaml:"uts" json:"uts,omitempty"`
}

// Interface is a network interface the init moves or creates.
type Interface struct {
	Name         string `yaml:"name" json:"name,omitempty"`
	Add          string `yaml:"add" json:"add,omitempty"`
	Peer         string `yaml:"peer" json:"peer,omitempty"`
	CreateInRoot bool   `yaml:"createInRoot" json:"createInRoot"`
}

// File is an entry of the files section.
type File struct {
	Path      string  `yaml:"path" json:"path"`
	Directory bool    `yaml:"directory" json:"directory"`
	Symlink   string  `yaml:"symlink" json:"symlink,omitempty"`
	Contents  *string `yaml:"contents" json:"contents,omitempty"`
	Source    string  `yaml:"source" json:"source,omitempty"`
	Metadata  string  `yaml:"metadata" json:"metadata,omitempty"`
	Optional  bool    `yaml:"optional" json:"optional"`
	Mode      string  `yaml:"mode" json:"mode,omitempty"`
	UID       *ID     `yaml:"uid" json:"uid,omitempty"`
	GID       *ID     `yaml:"gid" json:"gid,omitempty"`
	Pos       Pos     `yaml:"-" json:"-"`
}

// Volume is an entry of the volumes section.
type Volume struct {
	Name      string   `yaml:"name" json:"name"`
	Image     string   `yaml:"image" json:"image,omitempty"`
	ReadOnly  bool     `yaml:"readonly" json:"readonly,omitempty"`
	Format    string   `yaml:"format" json:"format,omitempty"`
	Platforms []string `yaml:"platforms" json:"platforms,omitempty"`
	Pos       Pos      `yaml:"-" json:"-"`
}

// ImageConfig is the part of an image's OCI config that bundles use.
type ImageConfig struct {
	Entrypoint, Cmd, Env []string
	WorkingDir           string
	Labels               map[string]string
}
