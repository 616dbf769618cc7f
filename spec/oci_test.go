package spec

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lkbuild/lkbuild/internal/golden"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// imageConfigs stands for what the registry returns for the images of
// testdata/bundles.yml; sshd's label carries defaults the YAML overrides.
var imageConfigs = map[string]ImageConfig{
	"linuxkit/sysctl:1": {Entrypoint: []string{"/usr/bin/sysctl"}, Cmd: []string{"-p"}, Env: []string{"PATH=/bin"}},
	"linuxkit/format:1": {Cmd: []string{"/format"}, WorkingDir: "/work"},
	"linuxkit/sshd:1": {Cmd: []string{"/usr/sbin/sshd", "-D"}, Env: []string{"PATH=/usr/bin"}, Labels: map[string]string{
		LabelConfig: `{"binds": ["/run:/run"], "capabilities": ["CAP_NET_BIND_SERVICE"], "command": ["/label/cmd"], "readonly": true, "pid": "host"}`,
	}},
}

func loadBundles(t *testing.T) map[string]Bundle {
	t.Helper()
	dt, err := os.ReadFile("testdata/bundles.yml")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := Parse("bundles.yml", dt)
	if err != nil {
		t.Fatal(err)
	}
	bs, err := Bundles(cfg, imageConfigs)
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]Bundle{}
	for _, b := range bs {
		m[b.Name] = b
	}
	return m
}

func decodeSpec(t *testing.T, b Bundle) specs.Spec {
	t.Helper()
	var s specs.Spec
	if err := json.Unmarshal(b.Config, &s); err != nil {
		t.Fatal(err)
	}
	return s
}

func TestBundleLayout(t *testing.T) {
	m := loadBundles(t)
	for name, dir := range map[string]string{"sysctl": "containers/onboot/000-sysctl", "format": "containers/onboot/001-format", "sshd": "containers/services/sshd"} {
		if m[name].Dir != dir {
			t.Errorf("%s dir = %s, want %s", name, m[name].Dir, dir)
		}
	}
	if !m["sysctl"].Readonly || m["format"].Readonly || !m["sshd"].Readonly {
		t.Errorf("readonly: sysctl %v format %v sshd %v (sshd is read-only through its label)", m["sysctl"].Readonly, m["format"].Readonly, m["sshd"].Readonly)
	}
	var rt Runtime
	if err := json.Unmarshal(m["format"].Runtime, &rt); err != nil {
		t.Fatal(err)
	}
	mounts := *rt.Mounts
	if len(mounts) < 3 || mounts[2].Type != "overlay" || mounts[2].Destination != "/containers/onboot/001-format/rootfs" ||
		strings.Join(mounts[2].Options, ",") != "lowerdir=/containers/onboot/001-format/lower,upperdir=/containers/onboot/001-format/tmp/upper,workdir=/containers/onboot/001-format/tmp/work" {
		t.Errorf("writable bundle runtime mounts = %+v", mounts)
	}
}

func TestConfigSemantics(t *testing.T) {
	m := loadBundles(t)

	s := decodeSpec(t, m["sysctl"])
	if got := strings.Join(s.Process.Args, " "); got != "/usr/bin/sysctl -p" {
		t.Errorf("args from entrypoint+cmd = %q", got)
	}
	c := s.Process.Capabilities
	if strings.Join(c.Effective, ",") != "CAP_SYS_ADMIN,CAP_NET_ADMIN" ||
		strings.Join(c.Bounding, ",") != "CAP_CHOWN,CAP_NET_ADMIN,CAP_SYS_ADMIN" ||
		strings.Join(c.Ambient, ",") != "CAP_CHOWN" {
		t.Errorf("capabilities = %+v", c)
	}
	for _, mt := range s.Mounts {
		if (mt.Destination == "/dev" || mt.Destination == "/sys") && !strings.HasSuffix(strings.Join(mt.Options, ","), ",ro") {
			t.Errorf("readonly container: %s mounted %v, want ro", mt.Destination, mt.Options)
		}
	}
	if ns := nsTypes(s); ns != "mount" {
		t.Errorf("net/pid host: namespaces %s, want only mount", ns)
	}

	f := decodeSpec(t, m["format"])
	if f.Process.User.UID != 1000 || f.Process.User.GID != 0 && f.Process.User.GID != 102 {
		t.Errorf("uid/gid = %d/%d", f.Process.User.UID, f.Process.User.GID)
	}
	if f.Process.User.GID != 102 || len(f.Process.User.AdditionalGids) != 2 || f.Process.User.AdditionalGids[1] != 101 {
		t.Errorf("gid by name (sshd is the third container: 102), additionalGids %v (format: 101)", f.Process.User.AdditionalGids)
	}
	if f.Process.Cwd != "/work" || len(f.Process.Capabilities.Effective) != 0 {
		t.Errorf("cwd %q, capabilities %v (no default capabilities)", f.Process.Cwd, f.Process.Capabilities.Effective)
	}
	var dests []string
	for _, mt := range f.Mounts {
		dests = append(dests, mt.Destination)
		switch mt.Destination {
		case "/dev":
			if mt.Type != "bind" || strings.Join(mt.Options, ",") != "rw,rbind,rshared" {
				t.Errorf("bind /dev:/dev = %+v (binds replace defaults, default options rw,rbind,rshared)", mt)
			}
		case "/var":
			if strings.Join(mt.Options, ",") != "rshared,ro,rbind" {
				t.Errorf("bind options = %v", mt.Options)
			}
		case "/run":
			if mt.Type != "tmpfs" || strings.Join(mt.Options, ",") != "size=10m,mode=755" {
				t.Errorf("tmpfs = %+v", mt)
			}
		}
	}
	if strings.Join(dests, " ") != "/dev /dev/pts /proc /run /sys /sys/fs/cgroup /var" {
		t.Errorf("mounts not layered and sorted: %v", dests)
	}
	if len(f.Process.Rlimits) != 1 || f.Process.Rlimits[0].Type != "RLIMIT_NOFILE" || f.Process.Rlimits[0].Hard != ^uint64(0) {
		t.Errorf("rlimits = %+v", f.Process.Rlimits)
	}
	if len(f.Linux.Devices) != 1 || len(f.Linux.Resources.Devices) != 2 || *f.Linux.Devices[0].FileMode != 0o660 {
		t.Errorf("devices = %+v cgroup %+v", f.Linux.Devices, f.Linux.Resources.Devices)
	}
	if ns := nsTypes(f); ns != "pid,mount" {
		t.Errorf("default namespaces = %s, want pid,mount", ns)
	}

	d := decodeSpec(t, m["sshd"])
	if got := strings.Join(d.Process.Args, " "); got != "/label/cmd" {
		t.Errorf("label command must override the image's: %q", got)
	}
	if got := strings.Join(d.Process.Capabilities.Effective, ","); got != "CAP_NET_BIND_SERVICE,CAP_SETUID" {
		t.Errorf("capabilities.add must extend the label's: %s", got)
	}
	var hasRun, hasSSH bool
	for _, mt := range d.Mounts {
		hasRun = hasRun || mt.Destination == "/run" && mt.Type == "bind"
		hasSSH = hasSSH || mt.Destination == "/etc/ssh"
		if mt.Destination == "/sys/fs/cgroup" && strings.Join(mt.Options, ",") != "rw" {
			t.Errorf("mounts entry must replace the default cgroup mount: %+v", mt)
		}
		if mt.Destination == "/hostproc" && mt.Type != "proc" {
			t.Errorf("mount type not inferred from source: %+v", mt)
		}
	}
	if !hasRun || !hasSSH {
		t.Errorf("binds.add must extend the label's binds: /run %v /etc/ssh %v", hasRun, hasSSH)
	}
	if d.Hostname != "box" || d.Process.Cwd != "/srv" || strings.Join(d.Process.Env, " ") != "A=1" {
		t.Errorf("hostname %q cwd %q env %v", d.Hostname, d.Process.Cwd, d.Process.Env)
	}
	if ns := nsTypes(d); ns != "network,ipc,uts:/run/netns/x,mount" {
		t.Errorf("namespaces = %s (label pid host; net/ipc new; uts a path)", ns)
	}
}

func nsTypes(s specs.Spec) string {
	var out []string
	for _, n := range s.Linux.Namespaces {
		x := string(n.Type)
		if n.Path != "" {
			x += ":" + n.Path
		}
		out = append(out, x)
	}
	return strings.Join(out, ",")
}

func TestBadLabelNamesImage(t *testing.T) {
	cfg, err := Parse("t.yml", []byte("services:\n  - name: a\n    image: foo/bar:1\n"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = Bundles(cfg, map[string]ImageConfig{"foo/bar:1": {Labels: map[string]string{LabelConfig: `{"capabilitys": []}`}}})
	if err == nil || !strings.Contains(err.Error(), "foo/bar:1") || !strings.Contains(err.Error(), "capabilitys") || !strings.HasPrefix(err.Error(), "t.yml:3:12: services[0].image: foo/bar:1: bad org.mobyproject.config label: 1:2: capabilitys:") {
		t.Errorf("err = %v, want the entry's image position, the image and the bad key at its place in the label", err)
	}
}

// TestGolden compares every generated config.json and runtime.json with
// the hand-checked files under testdata/golden (go test -update rewrites).
func TestGolden(t *testing.T) {
	for name, b := range loadBundles(t) {
		for kind, got := range map[string][]byte{"config": b.Config, "runtime": b.Runtime} {
			golden.Check(t, filepath.Join("testdata/golden", name+"."+kind+".json"), got, "TestGolden")
		}
	}
}

func TestDeterministic(t *testing.T) {
	a, b := loadBundles(t), loadBundles(t)
	for n := range a {
		if string(a[n].Config) != string(b[n].Config) || string(a[n].Runtime) != string(b[n].Runtime) {
			t.Errorf("%s: two generations differ", n)
		}
	}
}

// TestResourcesAsLinuxKit: config.json's resources are written as
// LinuxKit's runtime-spec (1.2.1) writes them: there pids.limit is a plain
// number, so `pids: {}` is {"limit": 0}, not {} (the newer Go types used
// here make it an optional pointer).
func TestResourcesAsLinuxKit(t *testing.T) {
	for _, tc := range []struct{ yaml, want string }{
		{"pids: {}", `"pids":{"limit":0}`},
		{"pids: {limit: 0}", `"pids":{"limit":0}`},
		{"pids: {limit: 5}", `"pids":{"limit":5}`},
		{"memory: {limit: 5}", `"resources":{"memory":{"limit":5}}`},
	} {
		y := "services:\n  - name: a\n    image: b\n    resources: {" + tc.yaml + "}\n"
		cfg, err := Parse("t.yml", []byte(y))
		if err != nil {
			t.Fatal(err)
		}
		bs, err := Bundles(cfg, nil)
		if err != nil {
			t.Fatal(err)
		}
		var compact bytes.Buffer
		if err := json.Compact(&compact, bs[0].Config); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(compact.String(), tc.want) {
			t.Errorf("resources: {%s}: config.json has %s, want %s", tc.yaml, resourcesOf(compact.String()), tc.want)
		}
	}
}

func resourcesOf(config string) string {
	if i := strings.Index(config, `"resources"`); i >= 0 {
		return config[i:min(len(config), i+80)]
	}
	return "no resources"
}
