package spec

// mergeRuntime is runtime.json: the label's runtime a, overridden field by
// field by the YAML's b, with LinuxKit's empty values for what neither
// sets.
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
