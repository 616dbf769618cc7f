package spec

import (
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Config is a LinuxKit configuration: one YAML file or several merged.
// YAML and JSON names are LinuxKit's.
type Config struct {
	Kernel     Kernel    `yaml:"kernel,omitempty" json:"kernel,omitempty"`
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
	// Pos is where the first file's top-level mapping starts: errors about
	// a section that is missing point there.
	Pos Pos `yaml:"-" json:"-"`
}

// Trust is LinuxKit's former content-trust section: image and org lists.
type Trust struct {
	Image []string `yaml:"image"`
	Org   []string `yaml:"org"`
}

// Kernel is the kernel section. Binary, TarOpt and UCode are as written
// (for merging and metadata); File, Tar/NoTar and UCodeFile are what the
// build uses.
type Kernel struct {
	Image   string  `yaml:"image" json:"image"`
	Cmdline string  `yaml:"cmdline,omitempty" json:"cmdline,omitempty"`
	Binary  string  `yaml:"binary,omitempty" json:"binary,omitempty"`
	TarOpt  *string `yaml:"tar,omitempty" json:"tar,omitempty"`
	UCode   *string `yaml:"ucode,omitempty" json:"ucode,omitempty"`
	// Tar is the modules tarball in the image; "" when NoTar.
	Tar   string `yaml:"-" json:"-"`
	NoTar bool   `yaml:"-" json:"-"`
	Loc   `yaml:"-" json:"-"`
}

// Image is an entry of onboot, onshutdown or services.
type Image struct {
	Name      string `yaml:"name" json:"name"`
	Image     string `yaml:"image" json:"image"`
	Overrides `yaml:",inline"`
	Loc       `yaml:"-" json:"-"`

	// resolved is a copy with the volume references of binds and mounts
	// resolved, made by Check (see withVolumes).
	resolved *Image
}

// Overrides are what an entry or the org.mobyproject.config label may set
// (LinuxKit's ImageConfig). Pointers distinguish "unset" from "empty".
type Overrides struct {
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
	Resources         *specs.LinuxResources   `yaml:"resources,omitempty" json:"resources,omitempty"`
	Sysctl            *map[string]string      `yaml:"sysctl,omitempty" json:"sysctl,omitempty"`
	Rlimits           *[]string               `yaml:"rlimits,omitempty" json:"rlimits,omitempty"`
	UIDMappings       *[]specs.LinuxIDMapping `yaml:"uidMappings,omitempty" json:"uidMappings,omitempty"`
	GIDMappings       *[]specs.LinuxIDMapping `yaml:"gidMappings,omitempty" json:"gidMappings,omitempty"`
	Annotations       *map[string]string      `yaml:"annotations,omitempty" json:"annotations,omitempty"`
	Runtime           *Runtime                `yaml:"runtime,omitempty" json:"runtime,omitempty"`
}

// Device is a device node made in the container.
type Device struct {
	Path  string `yaml:"path" json:"path"`
	Type  string `yaml:"type" json:"type"`
	Major int64  `yaml:"major" json:"major"`
	Minor int64  `yaml:"minor" json:"minor"`
	Mode  string `yaml:"mode,omitempty" json:"mode,omitempty"`
}

// Runtime is what the init does around a container: runtime.json.
type Runtime struct {
	Cgroups    *[]string      `yaml:"cgroups,omitempty" json:"cgroups,omitempty"`
	Mounts     *[]specs.Mount `yaml:"mounts,omitempty" json:"mounts,omitempty"`
	Mkdir      *[]string      `yaml:"mkdir,omitempty" json:"mkdir,omitempty"`
	Interfaces *[]Interface   `yaml:"interfaces,omitempty" json:"interfaces,omitempty"`
	BindNS     Namespaces     `yaml:"bindNS,omitempty" json:"bindNS,omitempty"`
	Namespace  *string        `yaml:"namespace,omitempty" json:"namespace,omitempty"`
}

// Namespaces are paths where the init bind-mounts a container's namespaces.
type Namespaces struct {
	Cgroup *string `yaml:"cgroup,omitempty" json:"cgroup,omitempty"`
	Ipc    *string `yaml:"ipc,omitempty" json:"ipc,omitempty"`
	Mnt    *string `yaml:"mnt,omitempty" json:"mnt,omitempty"`
	Net    *string `yaml:"net,omitempty" json:"net,omitempty"`
	Pid    *string `yaml:"pid,omitempty" json:"pid,omitempty"`
	User   *string `yaml:"user,omitempty" json:"user,omitempty"`
	Uts    *string `yaml:"uts,omitempty" json:"uts,omitempty"`
}

// Interface is a network interface the init moves or creates.
type Interface struct {
	Name         string `yaml:"name,omitempty" json:"name,omitempty"`
	Add          string `yaml:"add,omitempty" json:"add,omitempty"`
	Peer         string `yaml:"peer,omitempty" json:"peer,omitempty"`
	CreateInRoot bool   `yaml:"createInRoot" json:"createInRoot"`
}

// File is an entry of the files section.
type File struct {
	Path      string  `yaml:"path" json:"path"`
	Directory bool    `yaml:"directory" json:"directory"`
	Symlink   string  `yaml:"symlink,omitempty" json:"symlink,omitempty"`
	Contents  *string `yaml:"contents,omitempty" json:"contents,omitempty"`
	Source    string  `yaml:"source,omitempty" json:"source,omitempty"`
	Metadata  string  `yaml:"metadata,omitempty" json:"metadata,omitempty"`
	Optional  bool    `yaml:"optional" json:"optional"`
	Mode      string  `yaml:"mode,omitempty" json:"mode,omitempty"`
	UID       *ID     `yaml:"uid,omitempty" json:"uid,omitempty"`
	GID       *ID     `yaml:"gid,omitempty" json:"gid,omitempty"`
	Loc       `yaml:"-" json:"-"`
}

// Volume is an entry of the volumes section.
type Volume struct {
	Name      string   `yaml:"name" json:"name"`
	Image     string   `yaml:"image,omitempty" json:"image,omitempty"`
	ReadOnly  bool     `yaml:"readonly,omitempty" json:"readonly,omitempty"`
	Format    string   `yaml:"format,omitempty" json:"format,omitempty"`
	Platforms []string `yaml:"platforms,omitempty" json:"platforms,omitempty"`
	Loc       `yaml:"-" json:"-"`
}

// ImageConfig is the part of an image's OCI config that bundles use.
type ImageConfig struct {
	Entrypoint, Cmd, Env []string
	WorkingDir           string
	Labels               map[string]string
}

// File is the kernel's path in its image: binary, else "kernel".
func (k Kernel) File() string {
	if k.Binary == "" {
		return "kernel"
	}
	return k.Binary
}

// UCodeFile is the microcode cpio's path in the kernel image, or "".
func (k Kernel) UCodeFile() string {
	if k.UCode == nil {
		return ""
	}
	return *k.UCode
}
