package spec

import (
	"fmt"
	"path"
	"sort"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Bind is an entry of binds or binds.add, SOURCE:DESTINATION[:OPTIONS],
// as LinuxKit reads it.
type Bind struct {
	// Source is a path (it starts with "/"), else the name of a volume.
	Source      string
	Destination string
	// Options are OPTIONS split at commas, nil when the bind has none.
	Options []string
}

// ParseBind splits a bind string at its colons. ok is false unless it has
// two or three fields; the fields it has are set all the same (Source is
// the text before the first colon, Options the third field's).
func ParseBind(s string) (b Bind, ok bool) {
	parts := strings.Split(s, ":")
	b.Source = parts[0]
	if len(parts) > 1 {
		b.Destination = parts[1]
	}
	if len(parts) > 2 {
		b.Options = strings.Split(parts[2], ",")
	}
	return b, len(parts) == 2 || len(parts) == 3
}

// ReadOnly reports whether the bind mounts read-only: its options are
// "ro" alone, LinuxKit's test for binding a read-only volume.
func (b Bind) ReadOnly() bool {
	return len(b.Options) == 1 && b.Options[0] == "ro"
}

// Mount is the OCI mount LinuxKit makes of the bind: a recursive bind
// with its options, by default read-write and shared.
func (b Bind) Mount() specs.Mount {
	opts := []string{"rw", "rbind", "rshared"}
	if b.Options != nil {
		opts = append(append([]string(nil), b.Options...), "rbind")
	}
	return specs.Mount{Destination: b.Destination, Type: "bind", Source: b.Source, Options: opts}
}

// withSource returns the bind string s with its source replaced by src.
func withSource(s, src string) string {
	b, _ := ParseBind(s)
	return src + s[len(b.Source):]
}

// defaultMounts are the mounts of every container: /proc, /dev, /dev/pts,
// /sys and /sys/fs/cgroup, /dev and /sys read-only in a read-only
// container.
func defaultMounts(readonly bool) map[string]specs.Mount {
	devOpts := []string{"nosuid", "strictatime", "mode=755", "size=65536k"}
	sysOpts := []string{"nosuid", "noexec", "nodev"}
	if readonly {
		devOpts = append(devOpts, "ro")
		sysOpts = append(sysOpts, "ro")
	}
	return map[string]specs.Mount{
		"/proc":          {Destination: "/proc", Type: "proc", Source: "proc", Options: []string{"nosuid", "nodev", "noexec", "relatime"}},
		"/dev":           {Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: devOpts},
		"/dev/pts":       {Destination: "/dev/pts", Type: "devpts", Source: "devpts", Options: []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"}},
		"/sys":           {Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: sysOpts},
		"/sys/fs/cgroup": {Destination: "/sys/fs/cgroup", Type: "cgroup", Source: "cgroup", Options: []string{"nosuid", "noexec", "nodev", "relatime", "ro"}},
	}
}

// containerMounts are config.json's mounts, layered by destination
// (defaults < tmpfs < binds < mounts; /b and /b/ are the same
// destination) and sorted by destination.
func containerMounts(label, y *Overrides, readonly bool) ([]specs.Mount, error) {
	mounts := defaultMounts(readonly)
	for _, t := range pick(label.Tmpfs, y.Tmpfs) {
		dest, opts, hasOpts := strings.Cut(t, ":")
		if strings.Contains(opts, ":") {
			return nil, fmt.Errorf("cannot parse tmpfs, too many ':': %s", t)
		}
		m := specs.Mount{Destination: dest, Type: "tmpfs", Source: "tmpfs"}
		if hasOpts {
			m.Options = strings.Split(opts, ",")
		}
		mounts[path.Clean(dest)] = m
	}
	for _, l := range listLayers(label.Binds, label.BindsAdd, y.Binds, y.BindsAdd) {
		for _, s := range l {
			b, ok := ParseBind(s)
			if !ok {
				return nil, fmt.Errorf("cannot parse bind %q (src:dst[:options])", s)
			}
			mounts[path.Clean(b.Destination)] = b.Mount()
		}
	}
	for _, m := range pickMounts(label.Mounts, y.Mounts) {
		m, err := inferMount(m)
		if err != nil {
			return nil, err
		}
		mounts[path.Clean(m.Destination)] = m
	}
	list := make([]specs.Mount, 0, len(mounts))
	for _, m := range mounts {
		list = append(list, m)
	}
	sort.Slice(list, func(i, j int) bool { return list[i].Destination < list[j].Destination })
	return list, nil
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
