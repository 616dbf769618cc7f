package llbgen

import "sort"

// Target is an output format selectable with --target.
type Target struct {
	Name        string
	Description string
	// Rootfs targets return the root filesystem itself; the others run
	// `lkbuild mkimage --format <Name>` over it.
	Rootfs bool
}

// DefaultTarget is built when no --target is given, as LinuxKit's default.
const DefaultTarget = "kernel+initrd"

var targets = []Target{
	{Name: "kernel+initrd", Description: "kernel, gzip cpio initrd and cmdline (<name>-kernel, <name>-initrd.img, <name>-cmdline)"},
	{Name: "tar-kernel-initrd", Description: "<name>-initrd.tar holding kernel, initrd.img, cmdline and ucode.cpio"},
	{Name: "tar", Description: "the root filesystem tree (use -o type=tar for LinuxKit's tar output)", Rootfs: true},
	{Name: "docker", Description: "the root filesystem tree with a Dockerfile (FROM scratch, ENTRYPOINT /bin/rc.init), for docker import/build", Rootfs: true},
}

// Targets lists every target, sorted by name.
func Targets() []Target {
	out := append([]Target(nil), targets...)
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// LookupTarget finds a target by name.
func LookupTarget(name string) (Target, bool) {
	for _, t := range targets {
		if t.Name == name {
			return t, true
		}
	}
	return Target{}, false
}
