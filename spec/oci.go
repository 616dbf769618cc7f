package spec

import (
	"fmt"
	"os"
	"sort"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// OCIVersion is the ociVersion of every config.json: the runtime-spec
// version LinuxKit vendors and writes, which its runc is validated against
// (the Go types used here may be newer).
const OCIVersion = "1.2.1"

// ConfigToOCI generates the OCI runtime config and runtime.json of an
// entry: image config < label < YAML, with LinuxKit's defaults.
func ConfigToOCI(img *Image, ic ImageConfig, ids map[string]uint32) (specs.Spec, Runtime, error) {
	return configToOCI(img, ic, ids, nil)
}

// configToOCI is ConfigToOCI reading labels through cache, whose label
// values it does not change. Its steps come in the order of their errors.
func configToOCI(img *Image, ic ImageConfig, ids map[string]uint32, cache labelCache) (specs.Spec, Runtime, error) {
	label, labelLoc, err := cache.overrides(ic)
	if err != nil {
		return specs.Spec{}, Runtime{}, err
	}
	y := &img.Overrides
	readonly := pickBool(label.Readonly, y.Readonly)
	mounts, err := containerMounts(label, y, readonly)
	if err != nil {
		return specs.Spec{}, Runtime{}, err
	}
	process, err := containerProcess(ic, label, y)
	if err != nil {
		return specs.Spec{}, Runtime{}, err
	}
	if process.User, err = processUser(label, y, labelLoc, ids); err != nil {
		return specs.Spec{}, Runtime{}, err
	}
	linux, err := containerLinux(label, y)
	if err != nil {
		return specs.Spec{}, Runtime{}, err
	}
	oci := specs.Spec{
		Version:     OCIVersion,
		Process:     process,
		Root:        &specs.Root{Path: "rootfs", Readonly: readonly},
		Hostname:    firstSet("", label.Hostname, y.Hostname),
		Mounts:      mounts,
		Annotations: pickMap(label.Annotations, y.Annotations),
		Linux:       linux,
	}
	return oci, mergeRuntime(label.Runtime, y.Runtime), nil
}

// containerProcess is config.json's process without its user: command,
// environment and working directory (image config < label < YAML),
// capabilities and rlimits.
func containerProcess(ic ImageConfig, label, y *Overrides) (*specs.Process, error) {
	caps, err := containerCapabilities(label, y)
	if err != nil {
		return nil, err
	}
	var rlimits []specs.POSIXRlimit
	for _, r := range pick(label.Rlimits, y.Rlimits) {
		rl, err := parseRlimit(r)
		if err != nil {
			return nil, err
		}
		rlimits = append(rlimits, rl)
	}
	return &specs.Process{
		Args:            pick3(append(append([]string(nil), ic.Entrypoint...), ic.Cmd...), label.Command, y.Command),
		Env:             pick3(ic.Env, label.Env, y.Env),
		Cwd:             firstSet("/", ic.WorkingDir, label.Cwd, y.Cwd),
		Capabilities:    caps,
		Rlimits:         rlimits,
		NoNewPrivileges: pickBool(label.NoNewPrivileges, y.NoNewPrivileges),
		OOMScoreAdj:     pickPtr(label.OOMScoreAdj, y.OOMScoreAdj),
	}, nil
}

// containerCapabilities are the effective capabilities (capabilities and
// capabilities.add) and the ambient ones; the bounding, inheritable and
// permitted sets hold both.
func containerCapabilities(label, y *Overrides) (*specs.LinuxCapabilities, error) {
	caps, err := capabilitySet(listLayers(label.Capabilities, label.CapabilitiesAdd, y.Capabilities, y.CapabilitiesAdd)...)
	if err != nil {
		return nil, err
	}
	ambient, err := capabilitySet(pick(label.Ambient, y.Ambient))
	if err != nil {
		return nil, err
	}
	bounding := map[string]bool{}
	for _, c := range append(append([]string(nil), caps...), ambient...) {
		bounding[c] = true
	}
	all := make([]string, 0, len(bounding))
	for c := range bounding {
		all = append(all, c)
	}
	sort.Strings(all)
	return &specs.LinuxCapabilities{Bounding: all, Effective: caps, Inheritable: all, Permitted: all, Ambient: ambient}, nil
}

// containerLinux is config.json's linux section.
func containerLinux(label, y *Overrides) (*specs.Linux, error) {
	resources := resourcesAsWritten(pickPtr(label.Resources, y.Resources))
	devices, err := containerDevices(label, y, &resources)
	if err != nil {
		return nil, err
	}
	return &specs.Linux{
		UIDMappings:       pickSlice(label.UIDMappings, y.UIDMappings),
		GIDMappings:       pickSlice(label.GIDMappings, y.GIDMappings),
		Sysctl:            pickMap(label.Sysctl, y.Sysctl),
		Resources:         &resources,
		CgroupsPath:       deref(pickPtr(label.CgroupsPath, y.CgroupsPath)),
		Namespaces:        containerNamespaces(label, y),
		Devices:           devices,
		RootfsPropagation: deref(pickPtr(label.RootfsPropagation, y.RootfsPropagation)),
		MaskedPaths:       pick(label.MaskedPaths, y.MaskedPaths),
		ReadonlyPaths:     pick(label.ReadonlyPaths, y.ReadonlyPaths),
	}, nil
}

// containerNamespaces are the namespaces the container gets: new ones
// unless net, ipc, uts or userns is "host" or "root" (the default; pid
// defaults to new), a path to join, and always a new mount namespace.
func containerNamespaces(label, y *Overrides) []specs.LinuxNamespace {
	var namespaces []specs.LinuxNamespace
	ns := func(t specs.LinuxNamespaceType, v string, none bool) {
		if v == "host" || v == "root" {
			return
		}
		if v == "new" || (none && v == "none") {
			v = ""
		}
		namespaces = append(namespaces, specs.LinuxNamespace{Type: t, Path: v})
	}
	ns(specs.NetworkNamespace, firstSet("root", label.Net, y.Net), true)
	ns(specs.IPCNamespace, firstSet("root", label.Ipc, y.Ipc), false)
	ns(specs.UTSNamespace, firstSet("root", label.Uts, y.Uts), false)
	ns(specs.PIDNamespace, firstSet("", label.Pid, y.Pid), false)
	ns(specs.UserNamespace, firstSet("root", label.Userns, y.Userns), false)
	return append(namespaces, specs.LinuxNamespace{Type: specs.MountNamespace})
}

// containerDevices are the device nodes made in the container; each (and
// "all" of a type) is allowed in the device cgroup, appended to
// resources.
func containerDevices(label, y *Overrides, resources *specs.LinuxResources) ([]specs.LinuxDevice, error) {
	devs := label.Devices
	if y.Devices != nil {
		devs = y.Devices
	}
	if devs == nil {
		return nil, nil
	}
	var devices []specs.LinuxDevice
	for _, d := range *devs {
		if d.Path == "all" {
			resources.Devices = append(resources.Devices, specs.LinuxDeviceCgroup{Allow: true, Type: d.Type, Access: "rwm"})
			continue
		}
		mode, err := parseMode(d.Mode)
		if err != nil {
			return nil, fmt.Errorf("cannot parse device mode %q as octal", d.Mode)
		}
		fm := os.FileMode(mode)
		devices = append(devices, specs.LinuxDevice{Path: d.Path, Type: d.Type, Major: d.Major, Minor: d.Minor, FileMode: &fm})
		major, minor := d.Major, d.Minor
		resources.Devices = append(resources.Devices, specs.LinuxDeviceCgroup{Allow: true, Type: d.Type, Major: &major, Minor: &minor, Access: "rwm"})
	}
	return devices, nil
}

// resourcesAsWritten is a copy of r (empty when nil) as the runtime-spec
// version LinuxKit writes (OCIVersion) has it. Of the types used in
// config.json, only pids changed since: its limit was a plain number, so
// `pids: {}` is a limit of 0 there, where the newer types would leave the
// limit out.
func resourcesAsWritten(r *specs.LinuxResources) specs.LinuxResources {
	if r == nil {
		return specs.LinuxResources{}
	}
	out := *r
	// Devices are appended to: not onto the label's or the YAML's list.
	out.Devices = append([]specs.LinuxDeviceCgroup(nil), r.Devices...)
	if out.Pids != nil && out.Pids.Limit == nil {
		out.Pids = &specs.LinuxPids{Limit: ptr(int64(0))}
	}
	return out
}
