// Command init is lkbuild's offline stand-in for LinuxKit's init image
// (linuxkit/init). It is not LinuxKit's init: it implements just enough of
// its boot sequence to boot-test lkbuild's output in qemu without network
// access to the real images.
//
// As PID 1 it moves an initramfs root onto a tmpfs (runc's pivot_root fails
// on rootfs), mounts the usual pseudo filesystems, sets the hostname, brings
// up lo, loads kernel modules when /lib/modules has them, mounts the volumes
// of /containers/volumes (an overlay on a tmpfs, or read-only), applies each
// bundle's runtime.json and runs /containers/onboot/* in order and
// /containers/services/* in the background with runc, then reaps children
// until poweroff/reboot, when /containers/onshutdown/* run.
//
// Console markers, one line each, <name> being the YAML name (the bundle
// directory without LinuxKit's "000-" order prefix; runc's container id is
// the directory name):
//
//	lkinit: volume <name> mounted
//	lkinit: onboot <name> start
//	lkinit: onboot <name> exit <code>
//	lkinit: service <name> started
//	lkinit: service <name> exit <code>
//	lkinit: all services started
//	lkinit: onshutdown <name> start / exit <code>
//	lkinit: shutdown <poweroff|reboot|halt>
//
// Kernel command line: lkinit.rw keeps / writable (LinuxKit remounts it
// read-only), lkinit.shell starts /bin/sh on the console once services are up,
// lkinit.modules=a,b loads extra modules.
package main

import (
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

const (
	runcBinary   = "/usr/bin/runc"
	containerDir = "/containers"
	switchedEnv  = "LKINIT_SWITCHED"
)

// defaultModules are loaded (if present) at boot; failures are ignored.
// busybox modprobe ignores softdeps: crc32c_generic comes first for
// libcrc32c (erofs) and ext4.
var defaultModules = []string{
	"crc32c_generic", "overlay", "squashfs", "erofs", "isofs", "vfat", "nls_cp437", "nls_ascii", "nls_utf8", "ext4", "loop",
	"virtio_pci", "virtio_mmio", "virtio_blk", "virtio_net", "virtio_scsi", "virtio_console", "virtio-rng",
	"sr_mod", "sd_mod", "ata_piix", "ahci", "e1000", "9pnet_virtio", "9p", "fuse", "tun", "veth", "bridge",
	"vmw_vsock_virtio_transport",
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stdout, "lkinit: "+format+"\n", args...)
}

func main() {
	if os.Getpid() != 1 {
		fmt.Fprintln(os.Stderr, "lkinit: this is the stand-in init of an lkbuild test image; it only runs as PID 1")
		os.Exit(1)
	}
	if os.Getenv(switchedEnv) == "" && rootIsInitramfs() {
		if err := switchToTmpfs(); err != nil {
			logf("cannot move the initramfs to a tmpfs (runc will fail): %v", err)
		}
	}
	os.Unsetenv(switchedEnv)
	os.Setenv("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")

	cmdline := map[string]string{}
	mountBasics()
	ensureConsole()
	if dt, err := os.ReadFile("/proc/cmdline"); err == nil {
		cmdline = cmdlineFlags(string(dt))
	}
	logf("stand-in init for lkbuild tests (not LinuxKit's init)")
	if _, ok := cmdline["lkinit.rw"]; !ok {
		if err := syscall.Mount("", "/", "", syscall.MS_REMOUNT|syscall.MS_RDONLY, ""); err != nil {
			logf("remount / read-only: %v", err)
		}
	}
	r := newReaper()
	go r.loop()

	// Catch the signals busybox init reacts to before anything can send them.
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGUSR1, syscall.SIGUSR2, syscall.SIGINT)
	// Ctrl-Alt-Del sends SIGINT to init instead of rebooting at once.
	_ = syscall.Reboot(syscall.LINUX_REBOOT_CMD_CAD_OFF)

	// Modules first: NIC drivers must be loaded for the MAC-based hostname.
	loadModules(r, cmdline)
	setHostname()
	if err := loopbackUp(); err != nil {
		logf("lo: %v", err)
	}
	enableCgroupControllers()

	mountVolumes()
	runBundles(r, "onboot")
	startServices(r)
	logf("all services started")
	if _, ok := cmdline["lkinit.shell"]; ok {
		startShell(r)
	}

	for sig := range sigs {
		switch sig {
		case syscall.SIGUSR2:
			shutdown(r, "poweroff", syscall.LINUX_REBOOT_CMD_POWER_OFF)
		case syscall.SIGTERM, syscall.SIGINT:
			shutdown(r, "reboot", syscall.LINUX_REBOOT_CMD_RESTART)
		case syscall.SIGUSR1:
			shutdown(r, "halt", syscall.LINUX_REBOOT_CMD_HALT)
		}
	}
}

// prepareBundle applies runtime.json: mounts first, then mkdir, then cgroups,
// as LinuxKit does (so a directory can be made under a mount).
func prepareBundle(bundle string) error {
	rt, err := readRuntime(bundle)
	if err != nil {
		return err
	}
	for _, m := range rt.Mounts {
		plan, err := planMount(bundle, m)
		if err != nil {
			return err
		}
		if err := applyMountPlan(plan, m); err != nil {
			return err
		}
	}
	for _, d := range rt.Mkdir {
		if err := os.MkdirAll(resolvePath(bundle, d), 0o755); err != nil {
			return fmt.Errorf("mkdir %s: %w", d, err)
		}
	}
	for _, cg := range rt.Cgroups {
		if err := os.MkdirAll(filepath.Join("/sys/fs/cgroup", cg), 0o755); err != nil {
			logf("cgroup %s: %v", cg, err)
		}
	}
	if len(rt.Interfaces) > 0 || hasBindNS(rt.BindNS) {
		logf("%s: runtime interfaces/bindNS are not supported by the stand-in init (ignored)", filepath.Base(bundle))
	}
	return nil
}

func applyMountPlan(plan mountPlan, m Mount) error {
	for i, d := range plan.Dirs {
		if i == 0 && m.Source != "" && len(plan.Steps) > 0 && plan.Steps[0].Flags&syscall.MS_BIND != 0 {
			// A bind of a file needs a file as its mount point.
			if fi, err := os.Stat(plan.Steps[0].Source); err == nil && !fi.IsDir() {
				if _, err := os.Lstat(d); err != nil {
					if err := os.MkdirAll(filepath.Dir(d), 0o755); err != nil {
						return err
					}
					f, err := os.OpenFile(d, os.O_CREATE|os.O_WRONLY, 0o644)
					if err != nil {
						return err
					}
					f.Close()
				}
				continue
			}
		}
		if err := os.MkdirAll(d, 0o755); err != nil {
			return fmt.Errorf("mkdir for mount %s: %w", d, err)
		}
	}
	for _, s := range plan.Steps {
		if err := syscall.Mount(s.Source, s.Target, s.FSType, s.Flags, s.Data); err != nil {
			return fmt.Errorf("mount %q on %s (type %q, options %q): %w", s.Source, s.Target, s.FSType, strings.Join(m.Options, ","), err)
		}
	}
	return nil
}

// runBundles runs every bundle of /containers/<kind> in sorted order, waiting
// for each (onboot, onshutdown).
func runBundles(r *reaper, kind string) {
	dir := filepath.Join(containerDir, kind)
	names, err := bundleNames(dir)
	if err != nil {
		logf("%s: %v", dir, err)
		return
	}
	for _, id := range names {
		bundle := filepath.Join(dir, id)
		name := displayName(kind, id)
		logf("%s %s start", kind, name)
		if err := prepareBundle(bundle); err != nil {
			logf("%s %s: prepare: %v", kind, name, err)
			logf("%s %s exit %d", kind, name, 126)
			continue
		}
		_, done, err := r.start([]string{runcBinary, "run", "--bundle", bundle, id}, nil)
		if err != nil {
			logf("%s %s: %v", kind, name, err)
			logf("%s %s exit %d", kind, name, 127)
			continue
		}
		logf("%s %s exit %d", kind, name, exitCode(<-done))
	}
}

// startServices starts every /containers/services bundle with runc in the
// background, its output going to the console.
func startServices(r *reaper) {
	dir := filepath.Join(containerDir, "services")
	names, err := bundleNames(dir)
	if err != nil {
		logf("%s: %v", dir, err)
		return
	}
	for _, id := range names {
		bundle := filepath.Join(dir, id)
		name := displayName("services", id)
		if err := prepareBundle(bundle); err != nil {
			logf("service %s: prepare: %v", name, err)
			continue
		}
		_, done, err := r.start([]string{runcBinary, "run", "--bundle", bundle, id}, nil)
		if err != nil {
			logf("service %s: %v", name, err)
			continue
		}
		logf("service %s started", name)
		go func(name string) {
			ws := <-done
			logf("service %s exit %d", name, exitCode(ws))
		}(name)
	}
}

func startShell(r *reaper) {
	console, err := os.OpenFile("/dev/console", os.O_RDWR, 0)
	if err != nil {
		logf("shell: %v", err)
		return
	}
	attr := &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	_, done, err := r.start([]string{"/bin/sh"}, &startOpts{stdin: console, attr: attr})
	console.Close()
	if err != nil {
		logf("shell: %v", err)
		return
	}
	go func() { <-done; logf("shell exited") }()
}

func shutdown(r *reaper, what string, cmd int) {
	logf("shutdown %s", what)
	runBundles(r, "onshutdown")
	_ = syscall.Kill(-1, syscall.SIGTERM)
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if syscall.Kill(-1, 0) == syscall.ESRCH {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	_ = syscall.Kill(-1, syscall.SIGKILL)
	syscall.Sync()
	if err := syscall.Reboot(cmd); err != nil {
		logf("reboot(%s): %v", what, err)
	}
	// Reboot only returns on error; keep reaping as PID 1 must not exit.
	select {}
}

// hasBindNS reports whether any namespace is to be bound (LinuxKit writes
// every key, with "" for none).
func hasBindNS(m map[string]string) bool {
	for _, v := range m {
		if v != "" {
			return true
		}
	}
	return false
}
