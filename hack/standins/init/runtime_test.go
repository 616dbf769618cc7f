package main

import (
	"os"
	"path/filepath"
	"reflect"
	"syscall"
	"testing"
)

func TestParseRuntime(t *testing.T) {
	data := []byte(`{
  "cgroups": ["dhcpcd"],
  "mounts": [
    {"destination": "/containers/services/web/tmp", "type": "tmpfs", "source": "tmpfs"},
    {"destination": "/containers/services/web/tmp", "options": ["remount", "private"]},
    {"destination": "/containers/services/web/rootfs", "type": "overlay", "source": "overlay",
     "options": ["lowerdir=/containers/services/web/lower", "upperdir=/containers/services/web/tmp/upper", "workdir=/containers/services/web/tmp/work"]}
  ],
  "mkdir": ["/var/lib/web", "data"],
  "interfaces": [{"name": "eth1", "add": "veth", "peer": "eth1-peer", "createInRoot": false}],
  "bindNS": {"net": "/run/netns/web"},
  "namespace": "web"
}`)
	rt, err := parseRuntime(data)
	if err != nil {
		t.Fatal(err)
	}
	if len(rt.Mounts) != 3 || rt.Mounts[2].Type != "overlay" || len(rt.Mounts[2].Options) != 3 {
		t.Errorf("mounts = %+v", rt.Mounts)
	}
	if !reflect.DeepEqual(rt.Mkdir, []string{"/var/lib/web", "data"}) {
		t.Errorf("mkdir = %v", rt.Mkdir)
	}
	if !reflect.DeepEqual(rt.Cgroups, []string{"dhcpcd"}) || rt.Namespace != "web" || rt.BindNS["net"] != "/run/netns/web" || len(rt.Interfaces) != 1 {
		t.Errorf("runtime = %+v", rt)
	}

	for _, empty := range []string{"", "  \n", "{}"} {
		rt, err := parseRuntime([]byte(empty))
		if err != nil || len(rt.Mounts)+len(rt.Mkdir)+len(rt.Cgroups) != 0 {
			t.Errorf("parseRuntime(%q) = %+v, %v", empty, rt, err)
		}
	}
	if _, err := parseRuntime([]byte(`{"mounts": {}}`)); err == nil {
		t.Error("expected an error for mounts as an object")
	}
}

func TestReadRuntimeMissing(t *testing.T) {
	rt, err := readRuntime(t.TempDir())
	if err != nil || len(rt.Mounts) != 0 {
		t.Fatalf("readRuntime(no file) = %+v, %v", rt, err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "runtime.json"), []byte(`{"mkdir":["x"]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	rt, err = readRuntime(dir)
	if err != nil || !reflect.DeepEqual(rt.Mkdir, []string{"x"}) {
		t.Fatalf("readRuntime = %+v, %v", rt, err)
	}
}

func TestResolvePath(t *testing.T) {
	b := "/containers/onboot/000-hello"
	for _, tc := range []struct{ in, want string }{
		{"/var/lib/x", "/var/lib/x"},
		{"/var/lib/../run/", "/var/run"},
		{"tmp", b + "/rootfs/tmp"},
		{"var/lib/data", b + "/rootfs/var/lib/data"},
		{"./etc", b + "/rootfs/etc"},
	} {
		if got := resolvePath(b, tc.in); got != tc.want {
			t.Errorf("resolvePath(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestParseMountOptions(t *testing.T) {
	flags, prop, data := parseMountOptions([]string{"rw", "nosuid", "rbind", "rshared", "mode=755", "ro", "size=10m"})
	if flags != syscall.MS_NOSUID|syscall.MS_BIND|syscall.MS_REC|syscall.MS_RDONLY {
		t.Errorf("flags = %#x", flags)
	}
	if prop != syscall.MS_SHARED|syscall.MS_REC {
		t.Errorf("propagation = %#x", prop)
	}
	if !reflect.DeepEqual(data, []string{"mode=755", "size=10m"}) {
		t.Errorf("data = %v", data)
	}
	flags, _, _ = parseMountOptions([]string{"ro", "rw", "noexec", "exec"})
	if flags != 0 {
		t.Errorf("later options must clear earlier ones: %#x", flags)
	}
}

func TestPlanMount(t *testing.T) {
	b := "/containers/services/web"
	tests := []struct {
		name string
		m    Mount
		want mountPlan
	}{
		{
			name: "tmpfs",
			m:    Mount{Destination: b + "/tmp", Type: "tmpfs", Source: "tmpfs"},
			want: mountPlan{Dirs: []string{b + "/tmp"}, Steps: []mountStep{{Source: "tmpfs", Target: b + "/tmp", FSType: "tmpfs"}}},
		},
		{
			name: "remount private is only a propagation change",
			m:    Mount{Destination: b + "/tmp", Options: []string{"remount", "private"}},
			want: mountPlan{Dirs: []string{b + "/tmp"}, Steps: []mountStep{{Target: b + "/tmp", Flags: syscall.MS_PRIVATE}}},
		},
		{
			name: "overlay creates upper and work",
			m: Mount{Destination: b + "/rootfs", Type: "overlay", Source: "overlay",
				Options: []string{"lowerdir=" + b + "/lower", "upperdir=" + b + "/tmp/upper", "workdir=" + b + "/tmp/work"}},
			want: mountPlan{
				Dirs: []string{b + "/rootfs", b + "/tmp/upper", b + "/tmp/work"},
				Steps: []mountStep{{Source: "overlay", Target: b + "/rootfs", FSType: "overlay",
					Data: "lowerdir=" + b + "/lower,upperdir=" + b + "/tmp/upper,workdir=" + b + "/tmp/work"}},
			},
		},
		{
			name: "relative overlay paths are under rootfs",
			m:    Mount{Destination: "merged", Type: "overlay", Source: "overlay", Options: []string{"lowerdir=a:b", "upperdir=u", "workdir=w"}},
			want: mountPlan{
				Dirs: []string{b + "/rootfs/merged", b + "/rootfs/u", b + "/rootfs/w"},
				Steps: []mountStep{{Source: "overlay", Target: b + "/rootfs/merged", FSType: "overlay",
					Data: "lowerdir=" + b + "/rootfs/a:" + b + "/rootfs/b,upperdir=" + b + "/rootfs/u,workdir=" + b + "/rootfs/w"}},
			},
		},
		{
			name: "read-only bind gets a remount",
			m:    Mount{Destination: "/var/data", Source: "/containers/volumes/data/merged", Options: []string{"rbind", "ro", "rshared"}},
			want: mountPlan{
				Dirs: []string{"/var/data"},
				Steps: []mountStep{
					{Source: "/containers/volumes/data/merged", Target: "/var/data", Flags: syscall.MS_BIND | syscall.MS_REC | syscall.MS_RDONLY},
					{Target: "/var/data", Flags: syscall.MS_REMOUNT | syscall.MS_BIND | syscall.MS_RDONLY},
					{Target: "/var/data", Flags: syscall.MS_SHARED | syscall.MS_REC},
				},
			},
		},
		{
			name: "self bind of rootfs",
			m:    Mount{Destination: b + "/rootfs", Source: b + "/rootfs", Options: []string{"bind"}},
			want: mountPlan{Dirs: []string{b + "/rootfs"}, Steps: []mountStep{{Source: b + "/rootfs", Target: b + "/rootfs", Flags: syscall.MS_BIND}}},
		},
		{
			name: "relative destination",
			m:    Mount{Destination: "run", Type: "tmpfs", Source: "tmpfs", Options: []string{"nodev", "mode=755"}},
			want: mountPlan{Dirs: []string{b + "/rootfs/run"}, Steps: []mountStep{{Source: "tmpfs", Target: b + "/rootfs/run", FSType: "tmpfs", Flags: syscall.MS_NODEV, Data: "mode=755"}}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := planMount(b, tc.m)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("planMount:\n got %+v\nwant %+v", got, tc.want)
			}
		})
	}
	if _, err := planMount(b, Mount{Type: "tmpfs"}); err == nil {
		t.Error("expected an error for a mount without destination")
	}
}

func TestBundleNames(t *testing.T) {
	dir := t.TempDir()
	for _, d := range []string{"010-b", "000-a", "001-z"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "README"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := bundleNames(dir)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"000-a", "001-z", "010-b"}; !reflect.DeepEqual(got, want) {
		t.Errorf("bundleNames = %v, want %v", got, want)
	}
	got, err = bundleNames(filepath.Join(dir, "missing"))
	if err != nil || got != nil {
		t.Errorf("bundleNames(missing) = %v, %v", got, err)
	}
}

func TestCmdlineFlags(t *testing.T) {
	got := cmdlineFlags("console=ttyS0 lkinit.shell lkinit.modules=a,b quiet\n")
	want := map[string]string{"console": "ttyS0", "lkinit.shell": "", "lkinit.modules": "a,b", "quiet": ""}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("cmdlineFlags = %v", got)
	}
}

func TestExitCode(t *testing.T) {
	// Wait statuses as the kernel encodes them.
	if c := exitCode(syscall.WaitStatus(3 << 8)); c != 3 {
		t.Errorf("exit 3 -> %d", c)
	}
	if c := exitCode(syscall.WaitStatus(int(syscall.SIGKILL))); c != 137 {
		t.Errorf("SIGKILL -> %d", c)
	}
}

func TestDisplayName(t *testing.T) {
	for _, tc := range []struct{ kind, dir, want string }{
		{"onboot", "000-hello", "hello"},
		{"onboot", "012-dhcpcd", "dhcpcd"},
		{"onboot", "000-001-x", "001-x"},
		{"onshutdown", "003-shutdown", "shutdown"},
		{"onboot", "hello", "hello"},
		{"onboot", "000-", "000-"},
		{"services", "000-web", "000-web"},
		{"services", "getty", "getty"},
	} {
		if got := displayName(tc.kind, tc.dir); got != tc.want {
			t.Errorf("displayName(%q, %q) = %q, want %q", tc.kind, tc.dir, got, tc.want)
		}
	}
}
