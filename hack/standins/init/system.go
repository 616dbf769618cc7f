package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"unsafe"
)

const (
	ramfsMagic = 0x858458f6
	tmpfsMagic = 0x01021994
	newRootDir = "/.lkinit-root"
)

// rootIsInitramfs reports whether / is the kernel's initramfs (ramfs or
// tmpfs), on which runc's pivot_root fails.
func rootIsInitramfs() bool {
	var st syscall.Statfs_t
	if err := syscall.Statfs("/", &st); err != nil {
		return false
	}
	return uint32(st.Type) == ramfsMagic || uint32(st.Type) == tmpfsMagic
}

// switchToTmpfs moves the whole initramfs tree onto a new tmpfs (file by
// file, freeing each original once copied), moves that tmpfs onto / and
// re-executes this program in it.
func switchToTmpfs() error {
	if err := os.MkdirAll(newRootDir, 0o755); err != nil {
		return err
	}
	if err := syscall.Mount("rootfs", newRootDir, "tmpfs", 0, "mode=755"); err != nil {
		return fmt.Errorf("mount tmpfs: %w", err)
	}
	var rootSt syscall.Stat_t
	if err := syscall.Lstat("/", &rootSt); err != nil {
		return err
	}
	m := &mover{dev: rootSt.Dev, links: map[uint64]string{}, buf: make([]byte, 1<<20)}
	if err := m.moveDir("/", newRootDir); err != nil {
		return fmt.Errorf("copy root: %w", err)
	}
	if err := os.Chdir(newRootDir); err != nil {
		return err
	}
	if err := syscall.Mount(".", "/", "", syscall.MS_MOVE, ""); err != nil {
		return fmt.Errorf("move mount: %w", err)
	}
	if err := syscall.Chroot("."); err != nil {
		return fmt.Errorf("chroot: %w", err)
	}
	if err := os.Chdir("/"); err != nil {
		return err
	}
	self := "/init"
	if _, err := os.Stat(self); err != nil {
		self = os.Args[0]
	}
	env := append(os.Environ(), switchedEnv+"=1")
	return syscall.Exec(self, os.Args, env)
}

type mover struct {
	dev   uint64
	links map[uint64]string // inode -> first copy, for hard links
	buf   []byte
}

func (m *mover) moveDir(src, dst string) error {
	entries, err := os.ReadDir(src)
	if err != nil {
		return err
	}
	for _, e := range entries {
		s := filepath.Join(src, e.Name())
		if s == newRootDir {
			continue
		}
		if err := m.moveEntry(s, filepath.Join(dst, e.Name())); err != nil {
			return err
		}
	}
	return nil
}

func (m *mover) moveEntry(src, dst string) error {
	var st syscall.Stat_t
	if err := syscall.Lstat(src, &st); err != nil {
		return err
	}
	if st.Dev != m.dev {
		return nil // another mount: leave it
	}
	mode := st.Mode & syscall.S_IFMT
	perm := st.Mode & 0o7777
	switch mode {
	case syscall.S_IFDIR:
		if err := os.Mkdir(dst, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
			return err
		}
		if err := m.moveDir(src, dst); err != nil {
			return err
		}
		_ = os.Remove(src)
	case syscall.S_IFREG:
		if st.Nlink > 1 {
			if first, ok := m.links[st.Ino]; ok {
				if err := os.Link(first, dst); err != nil {
					return err
				}
				_ = os.Remove(src)
				return nil
			}
			m.links[st.Ino] = dst
		}
		if err := m.copyFile(src, dst); err != nil {
			return err
		}
		_ = os.Remove(src)
	case syscall.S_IFLNK:
		target, err := os.Readlink(src)
		if err != nil {
			return err
		}
		if err := os.Symlink(target, dst); err != nil {
			return err
		}
		_ = os.Lchown(dst, int(st.Uid), int(st.Gid))
		_ = os.Remove(src)
		return nil
	case syscall.S_IFCHR, syscall.S_IFBLK, syscall.S_IFIFO:
		if err := syscall.Mknod(dst, mode|perm, int(st.Rdev)); err != nil {
			return err
		}
		_ = os.Remove(src)
	default:
		return nil // sockets: nothing to copy
	}
	if err := os.Lchown(dst, int(st.Uid), int(st.Gid)); err != nil {
		return err
	}
	if err := syscall.Chmod(dst, perm); err != nil {
		return err
	}
	ts := []syscall.Timespec{st.Atim, st.Mtim}
	_ = syscall.UtimesNano(dst, ts)
	return nil
}

func (m *mover) copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.CopyBuffer(out, in, m.buf); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

type basicMount struct {
	source, target, fstype string
	flags                  uintptr
	data                   string
	mode                   os.FileMode
}

const (
	nodev   = syscall.MS_NODEV
	nosuid  = syscall.MS_NOSUID
	noexec  = syscall.MS_NOEXEC
	relatim = syscall.MS_RELATIME
)

var basicMounts = []basicMount{
	{"proc", "/proc", "proc", nodev | nosuid | noexec | relatim, "", 0o555},
	{"sysfs", "/sys", "sysfs", nodev | nosuid | noexec, "", 0o555},
	{"dev", "/dev", "devtmpfs", nosuid | noexec | relatim, "mode=755", 0o755},
	{"devpts", "/dev/pts", "devpts", nosuid | noexec, "newinstance,ptmxmode=0666,gid=5,mode=0620", 0o755},
	{"shm", "/dev/shm", "tmpfs", nodev | nosuid | noexec, "mode=1777", 0o1777},
	{"mqueue", "/dev/mqueue", "mqueue", nodev | nosuid | noexec, "", 0o1777},
	{"tmpfs", "/run", "tmpfs", nodev | nosuid | noexec | relatim, "size=10%,mode=755", 0o755},
	{"tmpfs", "/tmp", "tmpfs", nodev | nosuid | noexec | relatim, "size=10%,mode=1777", 0o1777},
	{"tmpfs", "/var", "tmpfs", nodev | nosuid | noexec | relatim, "size=50%,mode=755", 0o755},
	{"cgroup2", "/sys/fs/cgroup", "cgroup2", nodev | nosuid | noexec, "", 0o555},
}

var optionalMounts = []basicMount{
	{"securityfs", "/sys/kernel/security", "securityfs", nodev | nosuid | noexec, "", 0},
	{"debugfs", "/sys/kernel/debug", "debugfs", nodev | nosuid | noexec, "", 0},
	{"configfs", "/sys/kernel/config", "configfs", nodev | nosuid | noexec, "", 0},
	{"bpffs", "/sys/fs/bpf", "bpf", nodev, "", 0},
}

func mountBasics() {
	for _, bm := range basicMounts {
		if err := os.MkdirAll(bm.target, bm.mode); err != nil {
			logf("mkdir %s: %v", bm.target, err)
		}
		err := syscall.Mount(bm.source, bm.target, bm.fstype, bm.flags, bm.data)
		if err != nil && !(err == syscall.EBUSY && bm.target == "/dev") {
			logf("mount %s on %s: %v", bm.fstype, bm.target, err)
		}
	}
	for _, bm := range optionalMounts {
		_ = syscall.Mount(bm.source, bm.target, bm.fstype, bm.flags, bm.data)
	}
	for _, d := range []string{"/var/cache", "/var/lib", "/var/local", "/var/lock", "/var/log", "/var/opt", "/var/spool", "/run/resolvconf"} {
		_ = os.MkdirAll(d, 0o755)
	}
	_ = os.MkdirAll("/var/tmp", 0o1777)
	_ = os.Chmod("/var/tmp", 0o1777)
	if _, err := os.Stat("/run/resolvconf/resolv.conf"); err != nil {
		_ = os.WriteFile("/run/resolvconf/resolv.conf", nil, 0o644)
	}
	for link, target := range map[string]string{
		"/dev/fd": "/proc/self/fd", "/dev/stdin": "/proc/self/fd/0",
		"/dev/stdout": "/proc/self/fd/1", "/dev/stderr": "/proc/self/fd/2",
		"/dev/ptmx": "pts/ptmx",
	} {
		if link == "/dev/ptmx" {
			// devtmpfs has a ptmx node; point it at our devpts instance
			_ = os.Remove(link)
		}
		_ = os.Symlink(target, link)
	}
	// Make / shared so bind propagation options in containers work.
	if err := syscall.Mount("", "/", "", syscall.MS_REC|syscall.MS_SHARED, ""); err != nil {
		logf("make / rshared: %v", err)
	}
}

// ensureConsole reopens fds 0-2 on /dev/console if the kernel could not give
// init a console.
func ensureConsole() {
	var st syscall.Stat_t
	if syscall.Fstat(1, &st) == nil {
		return
	}
	fd, err := syscall.Open("/dev/console", syscall.O_RDWR, 0)
	if err != nil {
		return
	}
	for i := 0; i < 3; i++ {
		_ = syscall.Dup3(fd, i, 0)
	}
	if fd > 2 {
		syscall.Close(fd)
	}
}

// setHostname uses /etc/hostname, or linuxkit-<mac of the first NIC> as
// LinuxKit's init does when the kernel has no hostname.
func setHostname() {
	if dt, err := os.ReadFile("/etc/hostname"); err == nil {
		if h := strings.TrimSpace(string(dt)); h != "" {
			if err := syscall.Sethostname([]byte(h)); err != nil {
				logf("hostname: %v", err)
			}
			return
		}
	}
	if h, _ := os.Hostname(); h != "" && h != "(none)" {
		return
	}
	name := "linuxkit"
	if mac := firstMAC(); mac != "" {
		name += "-" + mac
	}
	if err := syscall.Sethostname([]byte(name)); err != nil {
		logf("hostname: %v", err)
		return
	}
	logf("hostname %s", name)
}

func firstMAC() string {
	entries, err := os.ReadDir("/sys/class/net")
	if err != nil {
		return ""
	}
	var names []string
	for _, e := range entries {
		if e.Name() != "lo" {
			names = append(names, e.Name())
		}
	}
	sort.Strings(names)
	for _, n := range names {
		dt, err := os.ReadFile(filepath.Join("/sys/class/net", n, "address"))
		if err != nil {
			continue
		}
		mac := strings.ReplaceAll(strings.TrimSpace(string(dt)), ":", "")
		if mac != "" && mac != "000000000000" {
			return mac
		}
	}
	return ""
}

// loopbackUp sets IFF_UP on lo (the kernel then adds 127.0.0.1/8 and ::1).
func loopbackUp() error {
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_DGRAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer syscall.Close(fd)
	var ifr struct {
		name  [syscall.IFNAMSIZ]byte
		flags uint16
		_     [22]byte
	}
	copy(ifr.name[:], "lo")
	if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, uintptr(fd), syscall.SIOCGIFFLAGS, uintptr(unsafe.Pointer(&ifr))); e != 0 {
		return e
	}
	ifr.flags |= syscall.IFF_UP | syscall.IFF_RUNNING
	if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, uintptr(fd), syscall.SIOCSIFFLAGS, uintptr(unsafe.Pointer(&ifr))); e != 0 {
		return e
	}
	return nil
}

// loadModules modprobes the default list, /etc/modules and lkinit.modules=
// when /lib/modules/<release> exists, using busybox's modprobe.
func loadModules(r *reaper, cmdline map[string]string) {
	var uts syscall.Utsname
	if err := syscall.Uname(&uts); err != nil {
		return
	}
	release := utsString(uts.Release[:])
	if _, err := os.Stat(filepath.Join("/lib/modules", release, "modules.dep")); err != nil {
		return
	}
	modprobe := "/sbin/modprobe"
	if _, err := os.Stat(modprobe); err != nil {
		logf("modules: %s missing, not loading modules", modprobe)
		return
	}
	mods := append([]string{}, defaultModules...)
	if dt, err := os.ReadFile("/etc/modules"); err == nil {
		for _, l := range strings.Split(string(dt), "\n") {
			if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
				mods = append(mods, strings.Fields(l)[0])
			}
		}
	}
	if v := cmdline["lkinit.modules"]; v != "" {
		mods = append(mods, strings.Split(v, ",")...)
	}
	loaded := 0
	for _, mod := range mods {
		ws, err := r.run([]string{modprobe, "-q", mod})
		if err == nil && ws.Exited() && ws.ExitStatus() == 0 {
			loaded++
		}
	}
	logf("modules: loaded %d of %d from /lib/modules/%s", loaded, len(mods), release)
}

func utsString(b []int8) string {
	var sb strings.Builder
	for _, c := range b {
		if c == 0 {
			break
		}
		sb.WriteByte(byte(c))
	}
	return sb.String()
}

// enableCgroupControllers delegates every available cgroup v2 controller to
// children of the root cgroup, so runc can set limits.
func enableCgroupControllers() {
	dt, err := os.ReadFile("/sys/fs/cgroup/cgroup.controllers")
	if err != nil {
		return
	}
	for _, c := range strings.Fields(string(dt)) {
		_ = os.WriteFile("/sys/fs/cgroup/cgroup.subtree_control", []byte("+"+c), 0o644)
	}
}
