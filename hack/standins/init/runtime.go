package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
)

// Runtime is the part of a bundle's runtime.json (LinuxKit's runtime format)
// that the stand-in init understands. Interfaces and bindNS are parsed so a
// file that uses them is accepted, but they are not applied.
type Runtime struct {
	Cgroups    []string          `json:"cgroups,omitempty"`
	Mounts     []Mount           `json:"mounts,omitempty"`
	Mkdir      []string          `json:"mkdir,omitempty"`
	Interfaces []json.RawMessage `json:"interfaces,omitempty"`
	BindNS     map[string]string `json:"bindNS,omitempty"`
	Namespace  string            `json:"namespace,omitempty"`
}

// Mount is an OCI runtime-spec mount as written in runtime.json.
type Mount struct {
	Destination string   `json:"destination"`
	Type        string   `json:"type,omitempty"`
	Source      string   `json:"source,omitempty"`
	Options     []string `json:"options,omitempty"`
}

// parseRuntime decodes runtime.json content. Empty input is an empty runtime.
func parseRuntime(data []byte) (Runtime, error) {
	var rt Runtime
	if len(strings.TrimSpace(string(data))) == 0 {
		return rt, nil
	}
	if err := json.Unmarshal(data, &rt); err != nil {
		return Runtime{}, fmt.Errorf("parse runtime.json: %w", err)
	}
	return rt, nil
}

// readRuntime reads <bundle>/runtime.json; a missing file is an empty runtime.
func readRuntime(bundle string) (Runtime, error) {
	data, err := os.ReadFile(filepath.Join(bundle, "runtime.json"))
	if errors.Is(err, os.ErrNotExist) {
		return Runtime{}, nil
	}
	if err != nil {
		return Runtime{}, err
	}
	rt, err := parseRuntime(data)
	if err != nil {
		return Runtime{}, fmt.Errorf("%s: %w", bundle, err)
	}
	return rt, nil
}

// resolvePath makes a runtime.json path absolute. As in LinuxKit's init, a
// relative path (mount destination or mkdir entry) is relative to the bundle's
// rootfs directory, i.e. <bundle>/rootfs/<p>.
func resolvePath(bundle, p string) string {
	if filepath.IsAbs(p) {
		return filepath.Clean(p)
	}
	return filepath.Join(bundle, "rootfs", p)
}

type mountFlag struct {
	clear bool
	flag  uintptr
}

// mountFlags maps fstab-style option words to mount(2) flags. Words not in the
// table are passed to the filesystem as data.
var mountFlags = map[string]mountFlag{
	"async":         {true, syscall.MS_SYNCHRONOUS},
	"atime":         {true, syscall.MS_NOATIME},
	"bind":          {false, syscall.MS_BIND},
	"defaults":      {false, 0},
	"dev":           {true, syscall.MS_NODEV},
	"diratime":      {true, syscall.MS_NODIRATIME},
	"dirsync":       {false, syscall.MS_DIRSYNC},
	"exec":          {true, syscall.MS_NOEXEC},
	"mand":          {false, syscall.MS_MANDLOCK},
	"noatime":       {false, syscall.MS_NOATIME},
	"nodev":         {false, syscall.MS_NODEV},
	"nodiratime":    {false, syscall.MS_NODIRATIME},
	"noexec":        {false, syscall.MS_NOEXEC},
	"nomand":        {true, syscall.MS_MANDLOCK},
	"norelatime":    {true, syscall.MS_RELATIME},
	"nostrictatime": {true, syscall.MS_STRICTATIME},
	"nosuid":        {false, syscall.MS_NOSUID},
	"rbind":         {false, syscall.MS_BIND | syscall.MS_REC},
	"relatime":      {false, syscall.MS_RELATIME},
	"remount":       {false, syscall.MS_REMOUNT},
	"ro":            {false, syscall.MS_RDONLY},
	"rw":            {true, syscall.MS_RDONLY},
	"strictatime":   {false, syscall.MS_STRICTATIME},
	"suid":          {true, syscall.MS_NOSUID},
	"sync":          {false, syscall.MS_SYNCHRONOUS},
}

// propagationFlags are applied by a separate mount(2) call, as the kernel
// ignores them when combined with a real mount or a remount.
var propagationFlags = map[string]uintptr{
	"private":     syscall.MS_PRIVATE,
	"rprivate":    syscall.MS_PRIVATE | syscall.MS_REC,
	"shared":      syscall.MS_SHARED,
	"rshared":     syscall.MS_SHARED | syscall.MS_REC,
	"slave":       syscall.MS_SLAVE,
	"rslave":      syscall.MS_SLAVE | syscall.MS_REC,
	"unbindable":  syscall.MS_UNBINDABLE,
	"runbindable": syscall.MS_UNBINDABLE | syscall.MS_REC,
}

// parseMountOptions splits options into mount flags, propagation flags and
// the filesystem data string.
func parseMountOptions(options []string) (flags, propagation uintptr, data []string) {
	for _, o := range options {
		if f, ok := mountFlags[o]; ok {
			if f.clear {
				flags &^= f.flag
			} else {
				flags |= f.flag
			}
			continue
		}
		if p, ok := propagationFlags[o]; ok {
			propagation |= p
			continue
		}
		data = append(data, o)
	}
	return flags, propagation, data
}

// mountStep is one mount(2) call.
type mountStep struct {
	Source string
	Target string
	FSType string
	Flags  uintptr
	Data   string
}

// mountPlan is what applying one runtime.json mount does: directories to
// create first, then mount(2) calls in order.
type mountPlan struct {
	Dirs  []string
	Steps []mountStep
}

// overlayDirOptions name directories in overlay data that must exist
// (upperdir, workdir) or that are resolved like other paths (lowerdir).
var overlayDirOptions = map[string]bool{"lowerdir": true, "upperdir": true, "workdir": true}

// planMount turns a runtime.json mount into directories and mount(2) calls.
func planMount(bundle string, m Mount) (mountPlan, error) {
	if m.Destination == "" {
		return mountPlan{}, errors.New("mount has no destination")
	}
	var plan mountPlan
	target := resolvePath(bundle, m.Destination)
	plan.Dirs = append(plan.Dirs, target)

	flags, propagation, data := parseMountOptions(m.Options)
	for i, d := range data {
		k, v, ok := strings.Cut(d, "=")
		if !ok || !overlayDirOptions[k] {
			continue
		}
		var dirs []string
		for _, dir := range strings.Split(v, ":") {
			dirs = append(dirs, resolvePath(bundle, dir))
		}
		data[i] = k + "=" + strings.Join(dirs, ":")
		if k != "lowerdir" {
			plan.Dirs = append(plan.Dirs, dirs...)
		}
	}
	dataStr := strings.Join(data, ",")

	source := m.Source
	if flags&syscall.MS_BIND != 0 && source != "" && !filepath.IsAbs(source) {
		source = resolvePath(bundle, source)
	}
	onlyPropagation := propagation != 0 && flags&^syscall.MS_REMOUNT == 0 &&
		dataStr == "" && m.Type == "" && m.Source == ""
	if !onlyPropagation {
		plan.Steps = append(plan.Steps, mountStep{Source: source, Target: target, FSType: m.Type, Flags: flags, Data: dataStr})
		// A first bind mount ignores ro/nosuid/nodev/noexec: a remount applies them.
		const perMount = syscall.MS_RDONLY | syscall.MS_NOSUID | syscall.MS_NODEV | syscall.MS_NOEXEC
		if flags&syscall.MS_BIND != 0 && flags&syscall.MS_REMOUNT == 0 && flags&perMount != 0 {
			plan.Steps = append(plan.Steps, mountStep{Target: target,
				Flags: syscall.MS_REMOUNT | syscall.MS_BIND | flags&(perMount|syscall.MS_NOATIME|syscall.MS_RELATIME|syscall.MS_STRICTATIME)})
		}
	}
	if propagation != 0 {
		plan.Steps = append(plan.Steps, mountStep{Target: target, Flags: propagation})
	}
	return plan, nil
}

// bundleNames lists the bundle directories under dir in sorted order. A
// missing dir has no bundles.
func bundleNames(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var names []string
	for _, e := range entries {
		fi, err := os.Stat(filepath.Join(dir, e.Name()))
		if err != nil || !fi.IsDir() {
			continue
		}
		names = append(names, e.Name())
	}
	sort.Strings(names)
	return names, nil
}

// displayName is the name a bundle directory is reported under on the
// console: the YAML name, i.e. without the "000-" order prefix LinuxKit puts
// on onboot and onshutdown directories. Services have no prefix.
func displayName(kind, dir string) string {
	if kind == "services" {
		return dir
	}
	i := 0
	for i < len(dir) && dir[i] >= '0' && dir[i] <= '9' {
		i++
	}
	if i > 0 && i < len(dir)-1 && dir[i] == '-' {
		return dir[i+1:]
	}
	return dir
}

// cmdlineFlags parses /proc/cmdline content into key -> value ("" for bare words).
func cmdlineFlags(cmdline string) map[string]string {
	m := map[string]string{}
	for _, f := range strings.Fields(cmdline) {
		k, v, _ := strings.Cut(f, "=")
		m[k] = v
	}
	return m
}

// exitCode turns a wait status into a shell-style exit code.
func exitCode(ws syscall.WaitStatus) int {
	switch {
	case ws.Exited():
		return ws.ExitStatus()
	case ws.Signaled():
		return 128 + int(ws.Signal())
	default:
		return -1
	}
}
