package spec

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path"
	"reflect"
	"sort"
	"strings"

	"github.com/distribution/reference"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"gopkg.in/yaml.v3"
)

// OCIVersion is the ociVersion of every config.json: the runtime-spec
// version LinuxKit vendors and writes, which its runc is validated against
// (the Go types used here may be newer).
const OCIVersion = "1.2.1"

// LabelConfig is the image label that carries an image's default overrides.
const LabelConfig = "org.mobyproject.config"

// Bundle is one runc bundle to place in the root filesystem.
type Bundle struct {
	Section  string // "onboot", "onshutdown" or "services"
	Name     string
	Dir      string // e.g. containers/onboot/000-dhcpcd (no leading slash)
	Image    string // image ref as written in the YAML
	Readonly bool   // image in Dir/rootfs; else in Dir/lower with empty Dir/tmp and Dir/rootfs
	// Shared is set when an earlier bundle already holds the same image:
	// the directory (rootfs or lower of that bundle) this one mounts
	// instead of a copy of its own, as LinuxKit extracts an image once.
	Shared  string
	Config  []byte // config.json
	Runtime []byte // runtime.json
	Pos     Pos    // the YAML entry
}

// IDs allocates the uid/gid of every container by name, from 100 in
// LinuxKit's order (onboot, onshutdown, services), for names used as
// uid, gid or additionalGids.
func IDs(cfg *Config) map[string]uint32 {
	ids := map[string]uint32{}
	id := uint32(100)
	for _, list := range [][]*Image{cfg.Onboot, cfg.Onshutdown, cfg.Services} {
		for _, img := range list {
			ids[img.Name] = id
			id++
		}
	}
	return ids
}

// ResolveID turns an ID into a number: nil, "" and "root" are 0, other
// names are looked up in ids.
func ResolveID(id *ID, ids map[string]uint32) (uint32, error) {
	if id == nil {
		return 0, nil
	}
	if !id.IsName {
		return id.Number, nil
	}
	if id.Name == "" || id.Name == "root" {
		return 0, nil
	}
	if n, ok := ids[id.Name]; ok {
		return n, nil
	}
	return 0, fmt.Errorf("cannot find id %q (not a container name)", id.Name)
}

// Bundles generates every bundle in LinuxKit's order. imageConfigs is
// keyed by the image ref as written in the YAML.
func Bundles(cfg *Config, imageConfigs map[string]ImageConfig) ([]Bundle, error) {
	ids := IDs(cfg)
	var out []Bundle
	vols := cfg.volumes()
	extracted := map[string]string{} // normalized ref -> image dir
	labels := labelCache{}
	for _, s := range cfg.sections() {
		for i, img := range s.images {
			dir := path.Join("containers", s.name, img.Name)
			if s.name != "services" {
				dir = path.Join("containers", s.name, fmt.Sprintf("%03d-%s", i, img.Name))
			}
			if p := nameProblem(img.Name, s.name); p != "" {
				return nil, img.errorAt("name", "%s", p)
			}
			img, err := resolveVolumes(img, vols)
			if err != nil {
				return nil, err
			}
			ic := imageConfigs[img.Image]
			oci, rt, err := configToOCI(img, ic, ids, labels)
			if err != nil {
				return nil, img.errorAt("image", "%s: %v", img.Image, err)
			}
			readonly := oci.Root.Readonly
			imgDir := path.Join(dir, "rootfs")
			if !readonly {
				imgDir = path.Join(dir, "lower")
			}
			key := normalizedRef(img.Image)
			shared, dup := extracted[key]
			if dup {
				imgDir = shared
			} else {
				extracted[key] = imgDir
				shared = ""
			}
			rt.Mounts = ptr(append(rootfsMounts(dir, imgDir, readonly), *rt.Mounts...))
			config, err := json.MarshalIndent(oci, "", "    ")
			if err != nil {
				return nil, err
			}
			runtime, err := json.MarshalIndent(rt, "", "    ")
			if err != nil {
				return nil, err
			}
			out = append(out, Bundle{Section: s.name, Name: img.Name, Dir: dir, Image: img.Image,
				Readonly: readonly, Shared: shared, Config: config, Runtime: runtime, Pos: img.Pos})
		}
	}
	return out, nil
}

// rootfsMounts are the runtime mounts that make a bundle's rootfs/ from
// the image in imgDir: a bind for read-only containers (of itself, as runc
// wants a mount point, or of the bundle that holds the image), a tmpfs upper
// and an overlay on imgDir for writable ones.
func rootfsMounts(dir, imgDir string, readonly bool) []specs.Mount {
	root := "/" + path.Join(dir, "rootfs")
	if readonly {
		return []specs.Mount{{Source: "/" + imgDir, Destination: root, Options: []string{"bind"}}}
	}
	tmp := "/" + path.Join(dir, "tmp")
	return []specs.Mount{
		{Source: "tmpfs", Type: "tmpfs", Destination: tmp},
		{Destination: tmp, Options: []string{"remount", "private"}},
		{Source: "overlay", Type: "overlay", Destination: root, Options: []string{
			"lowerdir=/" + imgDir, "upperdir=" + path.Join(tmp, "upper"), "workdir=" + path.Join(tmp, "work"),
		}},
	}
}

// normalizedRef is the key under which an image is extracted once:
// "busybox" and "docker.io/library/busybox:latest" are the same image.
func normalizedRef(ref string) string {
	if n, err := reference.ParseNormalizedNamed(ref); err == nil {
		return reference.TagNameOnly(n).String()
	}
	return ref
}

// labelConfig is what the org.mobyproject.config label may hold: the
// overrides of an entry, and name and image only when empty or null
// (LinuxKit checks the label as an entry with a name and an image of its
// own, then refuses a non-empty name or image).
type labelConfig struct {
	Name      labelKey `yaml:"name"`
	Image     labelKey `yaml:"image"`
	Overrides `yaml:",inline"`
}

// labelKey is the name or image key of a label.
type labelKey struct{}

var labelKeyType = reflect.TypeOf(labelKey{})

func (d *decoder) decodeLabelKey(n *yaml.Node, v reflect.Value, field string) {
	if n.Kind == yaml.ScalarNode && (n.Tag == "!!null" || n.Tag == "!!str" && n.Value == "") {
		return
	}
	d.errorf(n, field, "an image's label cannot set the %s (the YAML entry gives it), got %s", field, kindName(n))
}

// parseLabel reads the org.mobyproject.config label (YAML or JSON) and
// checks it as a YAML entry is checked. It returns the label's overrides
// and where their values are written in the label.
func parseLabel(label string) (*Overrides, Loc, error) {
	var lc labelConfig
	d, root, err := decodeYAML("", []byte(label), reflect.ValueOf(&lc).Elem())
	if err != nil {
		return nil, Loc{}, labelError(err)
	}
	l := Loc{Pos: d.pos(root), table: d.table}
	errs := &errorList{}
	validateOverrides(l, &lc.Overrides, errs)
	if err := errs.err(); err != nil {
		return nil, Loc{}, labelError(err)
	}
	return &lc.Overrides, l, nil
}

// labelError is err, errors in a label's text, as one error that gives
// each position within the label.
func labelError(err error) error {
	var errs Errors
	if !errors.As(err, &errs) {
		return fmt.Errorf("bad %s label: %w", LabelConfig, err)
	}
	var msgs []string
	for _, e := range errs {
		if e.Msg == errEmpty {
			msgs = append(msgs, "no value")
			continue
		}
		msgs = append(msgs, fmt.Sprintf("%d:%d: %s", e.Line, e.Col, strings.TrimPrefix(e.Field+": "+e.Msg, ": ")))
	}
	return fmt.Errorf("bad %s label: %s", LabelConfig, strings.Join(msgs, "; "))
}

// labelCache holds the labels already read, by text: an image used by
// many entries has its label read once (a label can be large: its
// aliases may expand it a hundredfold).
type labelCache map[string]parsedLabel

type parsedLabel struct {
	o   *Overrides
	loc Loc
	err error
}

func (c labelCache) parse(s string) (*Overrides, Loc, error) {
	if p, ok := c[s]; ok {
		return p.o, p.loc, p.err
	}
	o, loc, err := parseLabel(s)
	if c != nil {
		c[s] = parsedLabel{o, loc, err}
	}
	return o, loc, err
}

// ConfigToOCI generates the OCI runtime config and runtime.json of an
// entry: image config < label < YAML, with LinuxKit's defaults.
func ConfigToOCI(img *Image, ic ImageConfig, ids map[string]uint32) (specs.Spec, Runtime, error) {
	return configToOCI(img, ic, ids, nil)
}

// configToOCI is ConfigToOCI reading labels through cache, whose label
// values it does not change.
func configToOCI(img *Image, ic ImageConfig, ids map[string]uint32, cache labelCache) (specs.Spec, Runtime, error) {
	label := &Overrides{}
	var labelLoc Loc
	if s := ic.Labels[LabelConfig]; s != "" {
		var err error
		if label, labelLoc, err = cache.parse(s); err != nil {
			return specs.Spec{}, Runtime{}, err
		}
	}
	y := &img.Overrides

	args := pick3(append(append([]string(nil), ic.Entrypoint...), ic.Cmd...), label.Command, y.Command)
	env := pick3(ic.Env, label.Env, y.Env)
	cwd := firstSet("/", ic.WorkingDir, label.Cwd, y.Cwd)
	readonly := pickBool(label.Readonly, y.Readonly)

	devOpts := []string{"nosuid", "strictatime", "mode=755", "size=65536k"}
	sysOpts := []string{"nosuid", "noexec", "nodev"}
	if readonly {
		devOpts = append(devOpts, "ro")
		sysOpts = append(sysOpts, "ro")
	}
	// Mounts are layered by destination (defaults < tmpfs < binds <
	// mounts); /b and /b/ are the same destination.
	mounts := map[string]specs.Mount{
		"/proc":          {Destination: "/proc", Type: "proc", Source: "proc", Options: []string{"nosuid", "nodev", "noexec", "relatime"}},
		"/dev":           {Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: devOpts},
		"/dev/pts":       {Destination: "/dev/pts", Type: "devpts", Source: "devpts", Options: []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"}},
		"/sys":           {Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: sysOpts},
		"/sys/fs/cgroup": {Destination: "/sys/fs/cgroup", Type: "cgroup", Source: "cgroup", Options: []string{"nosuid", "noexec", "nodev", "relatime", "ro"}},
	}
	for _, t := range pick(label.Tmpfs, y.Tmpfs) {
		dest, opts, hasOpts := strings.Cut(t, ":")
		if strings.Contains(opts, ":") {
			return specs.Spec{}, Runtime{}, fmt.Errorf("cannot parse tmpfs, too many ':': %s", t)
		}
		m := specs.Mount{Destination: dest, Type: "tmpfs", Source: "tmpfs"}
		if hasOpts {
			m.Options = strings.Split(opts, ",")
		}
		mounts[path.Clean(dest)] = m
	}
	var binds []string
	for _, l := range listLayers(label.Binds, label.BindsAdd, y.Binds, y.BindsAdd) {
		binds = append(binds, l...)
	}
	for _, b := range binds {
		parts := strings.Split(b, ":")
		if len(parts) < 2 || len(parts) > 3 {
			return specs.Spec{}, Runtime{}, fmt.Errorf("cannot parse bind %q (src:dst[:options])", b)
		}
		opts := []string{"rw", "rbind", "rshared"}
		if len(parts) == 3 {
			opts = append(strings.Split(parts[2], ","), "rbind")
		}
		mounts[path.Clean(parts[1])] = specs.Mount{Destination: parts[1], Type: "bind", Source: parts[0], Options: opts}
	}
	for _, m := range pickMounts(label.Mounts, y.Mounts) {
		m, err := inferMount(m)
		if err != nil {
			return specs.Spec{}, Runtime{}, err
		}
		mounts[path.Clean(m.Destination)] = m
	}
	mountList := make([]specs.Mount, 0, len(mounts))
	for _, m := range mounts {
		mountList = append(mountList, m)
	}
	sort.Slice(mountList, func(i, j int) bool { return mountList[i].Destination < mountList[j].Destination })

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
	namespaces = append(namespaces, specs.LinuxNamespace{Type: specs.MountNamespace})

	bounding := map[string]bool{}
	caps, err := capabilitySet(listLayers(label.Capabilities, label.CapabilitiesAdd, y.Capabilities, y.CapabilitiesAdd)...)
	if err != nil {
		return specs.Spec{}, Runtime{}, err
	}
	ambient, err := capabilitySet(pick(label.Ambient, y.Ambient))
	if err != nil {
		return specs.Spec{}, Runtime{}, err
	}
	for _, c := range append(append([]string(nil), caps...), ambient...) {
		bounding[c] = true
	}
	boundingList := make([]string, 0, len(bounding))
	for c := range bounding {
		boundingList = append(boundingList, c)
	}
	sort.Strings(boundingList)

	var rlimits []specs.POSIXRlimit
	for _, r := range pick(label.Rlimits, y.Rlimits) {
		rl, err := parseRlimit(r)
		if err != nil {
			return specs.Spec{}, Runtime{}, err
		}
		rlimits = append(rlimits, rl)
	}

	// A name the YAML gives was checked with the whole configuration
	// (Check); one from the label is checked here.
	resolve := func(rel string, label, yaml *ID) (uint32, error) {
		n, err := ResolveID(pickID(label, yaml), ids)
		if err != nil && yaml == nil {
			return 0, labelError(Errors{labelLoc.errorAt(rel, "%v", err)})
		}
		if err != nil {
			return 0, fmt.Errorf("%s: %w", rel, err)
		}
		return n, nil
	}
	uid, err := resolve("uid", label.UID, y.UID)
	if err != nil {
		return specs.Spec{}, Runtime{}, err
	}
	gid, err := resolve("gid", label.GID, y.GID)
	if err != nil {
		return specs.Spec{}, Runtime{}, err
	}
	var groups []uint32
	agids := label.AdditionalGids
	if y.AdditionalGids != nil {
		agids = y.AdditionalGids
	}
	if agids != nil {
		for i, g := range *agids {
			var fromYAML *ID
			if y.AdditionalGids != nil {
				fromYAML = &g
			}
			n, err := resolve(fmt.Sprintf("additionalGids[%d]", i), &g, fromYAML)
			if err != nil {
				return specs.Spec{}, Runtime{}, err
			}
			groups = append(groups, n)
		}
	}

	oci := specs.Spec{Version: OCIVersion}
	oci.Process = &specs.Process{
		User: specs.User{UID: uid, GID: gid, AdditionalGids: groups},
		Args: args,
		Env:  env,
		Cwd:  cwd,
		Capabilities: &specs.LinuxCapabilities{
			Bounding: boundingList, Effective: caps, Inheritable: boundingList, Permitted: boundingList, Ambient: ambient,
		},
		Rlimits:         rlimits,
		NoNewPrivileges: pickBool(label.NoNewPrivileges, y.NoNewPrivileges),
		OOMScoreAdj:     pickPtr(label.OOMScoreAdj, y.OOMScoreAdj),
	}
	oci.Root = &specs.Root{Path: "rootfs", Readonly: readonly}
	oci.Hostname = firstSet("", label.Hostname, y.Hostname)
	oci.Mounts = mountList
	oci.Annotations = pickMap(label.Annotations, y.Annotations)

	resources := resourcesAsWritten(pickPtr(label.Resources, y.Resources))
	var devices []specs.LinuxDevice
	devs := label.Devices
	if y.Devices != nil {
		devs = y.Devices
	}
	if devs != nil {
		for _, d := range *devs {
			if d.Path == "all" {
				resources.Devices = append(resources.Devices, specs.LinuxDeviceCgroup{Allow: true, Type: d.Type, Access: "rwm"})
				continue
			}
			mode, err := parseMode(d.Mode)
			if err != nil {
				return specs.Spec{}, Runtime{}, fmt.Errorf("cannot parse device mode %q as octal", d.Mode)
			}
			fm := os.FileMode(mode)
			ld := specs.LinuxDevice{Path: d.Path, Type: d.Type, Major: d.Major, Minor: d.Minor, FileMode: &fm}
			devices = append(devices, ld)
			major, minor := d.Major, d.Minor
			resources.Devices = append(resources.Devices, specs.LinuxDeviceCgroup{Allow: true, Type: d.Type, Major: &major, Minor: &minor, Access: "rwm"})
		}
	}
	oci.Linux = &specs.Linux{
		UIDMappings:       pickSlice(label.UIDMappings, y.UIDMappings),
		GIDMappings:       pickSlice(label.GIDMappings, y.GIDMappings),
		Sysctl:            pickMap(label.Sysctl, y.Sysctl),
		Resources:         &resources,
		CgroupsPath:       deref(pickPtr(label.CgroupsPath, y.CgroupsPath)),
		Namespaces:        namespaces,
		Devices:           devices,
		RootfsPropagation: deref(pickPtr(label.RootfsPropagation, y.RootfsPropagation)),
		MaskedPaths:       pick(label.MaskedPaths, y.MaskedPaths),
		ReadonlyPaths:     pick(label.ReadonlyPaths, y.ReadonlyPaths),
	}
	return oci, mergeRuntime(label.Runtime, y.Runtime), nil
}

// inferMount fills in what a mount leaves out as LinuxKit does: the type
// from a source naming a pseudo filesystem (or tmpfs for /dev), the
// source from the type, the destination from the type.
func inferMount(m specs.Mount) (specs.Mount, error) {
	tp, src, dest := m.Type, m.Source, m.Destination
	if tp == "" {
		switch src {
		case "mqueue", "devpts", "proc", "sysfs", "cgroup":
			tp = src
		}
	}
	if tp == "" && dest == "/dev" {
		tp = "tmpfs"
	}
	if tp == "" {
		return specs.Mount{}, fmt.Errorf("mount for destination %s is missing type", dest)
	}
	if src == "" {
		src = tp
	}
	if dest == "" {
		dest = defaultMountpoint(tp)
	}
	if dest == "" {
		return specs.Mount{}, fmt.Errorf("mount type %s is missing destination", tp)
	}
	return specs.Mount{Destination: dest, Type: tp, Source: src, Options: m.Options,
		UIDMappings: m.UIDMappings, GIDMappings: m.GIDMappings}, nil
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

func defaultMountpoint(tp string) string {
	switch tp {
	case "proc":
		return "/proc"
	case "devpts":
		return "/dev/pts"
	case "sysfs":
		return "/sys"
	case "cgroup":
		return "/sys/fs/cgroup"
	case "mqueue":
		return "/dev/mqueue"
	}
	return ""
}

func mergeRuntime(a, b *Runtime) Runtime {
	if a == nil {
		a = &Runtime{}
	}
	if b == nil {
		b = &Runtime{}
	}
	str := func(x, y *string) *string {
		if v := pickPtr(x, y); v != nil {
			return v
		}
		return ptr("")
	}
	ifaces := []Interface{}
	if b.Interfaces != nil {
		ifaces = *b.Interfaces
	} else if a.Interfaces != nil {
		ifaces = *a.Interfaces
	}
	return Runtime{
		Cgroups:    ptr(pick(a.Cgroups, b.Cgroups)),
		Mounts:     ptr(pickMounts(a.Mounts, b.Mounts)),
		Mkdir:      ptr(pick(a.Mkdir, b.Mkdir)),
		Interfaces: &ifaces,
		BindNS: Namespaces{
			Cgroup: str(a.BindNS.Cgroup, b.BindNS.Cgroup),
			Ipc:    str(a.BindNS.Ipc, b.BindNS.Ipc),
			Mnt:    str(a.BindNS.Mnt, b.BindNS.Mnt),
			Net:    str(a.BindNS.Net, b.BindNS.Net),
			Pid:    str(a.BindNS.Pid, b.BindNS.Pid),
			User:   str(a.BindNS.User, b.BindNS.User),
			Uts:    str(a.BindNS.Uts, b.BindNS.Uts),
		},
		Namespace: str(a.Namespace, b.Namespace),
	}
}

// Precedence helpers: the YAML value (second) wins over the label's.

func ptr[T any](v T) *T { return &v }

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func pickPtr[T any](label, yaml *T) *T {
	if yaml != nil {
		return yaml
	}
	return label
}

func pick(label, yaml *[]string) []string {
	if v := pickPtr(label, yaml); v != nil {
		return *v
	}
	return []string{}
}

func pickSlice[T any](label, yaml *[]T) []T {
	if v := pickPtr(label, yaml); v != nil {
		return *v
	}
	return []T{}
}

func pickMounts(label, yaml *[]specs.Mount) []specs.Mount { return pickSlice(label, yaml) }

func pick3(image []string, label, yaml *[]string) []string {
	if v := pickPtr(label, yaml); v != nil {
		return *v
	}
	return image
}

func pickBool(label, yaml *bool) bool {
	if v := pickPtr(label, yaml); v != nil {
		return *v
	}
	return false
}

func pickID(label, yaml *ID) *ID { return pickPtr(label, yaml) }

func pickMap(label, yaml *map[string]string) map[string]string {
	if v := pickPtr(label, yaml); v != nil {
		return *v
	}
	return map[string]string{}
}

// firstSet returns the last non-empty value, else def.
func firstSet(def string, vals ...string) string {
	out := def
	for _, v := range vals {
		if v != "" {
			out = v
		}
	}
	return out
}

// listLayers returns the lists that make up a field with an `.add`
// companion (capabilities, binds): in each layer, the label's then the
// YAML's, the field replaces what the layers below gave and `.add`
// extends the result. (LinuxKit ignores an `.add` beside its field in the
// same layer.)
func listLayers(labelSet, labelAdd, yamlSet, yamlAdd *[]string) [][]string {
	var lists [][]string
	for _, layer := range [][2]*[]string{{labelSet, labelAdd}, {yamlSet, yamlAdd}} {
		if set := layer[0]; set != nil {
			lists = [][]string{*set}
		}
		if add := layer[1]; add != nil {
			lists = append(lists, *add)
		}
	}
	return lists
}
