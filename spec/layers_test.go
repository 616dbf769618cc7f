package spec

import (
	"sort"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// ociOf generates the config.json of the single onboot entry of doc, for
// an image whose org.mobyproject.config label is label ("" for none).
func ociOf(t *testing.T, doc, label string) (specs.Spec, error) {
	t.Helper()
	cfg, err := Parse("t.yml", []byte(doc))
	if err != nil {
		t.Fatalf("%s: %v", doc, err)
	}
	ic := ImageConfig{Labels: map[string]string{}}
	if label != "" {
		ic.Labels[LabelConfig] = label
	}
	oci, _, err := ConfigToOCI(cfg.Onboot[0], ic, IDs(cfg))
	return oci, err
}

// sortedCaps is the sorted set of c, as bounding, permitted and
// inheritable hold it.
func sortedCaps(c []string) string {
	set := map[string]bool{}
	for _, x := range c {
		set[x] = true
	}
	out := make([]string, 0, len(set))
	for x := range set {
		out = append(out, x)
	}
	sort.Strings(out)
	return strings.Join(out, ",")
}

// TestCapabilityLayers: a label's list, the YAML's list and their .add
// lists combine as sets. LinuxKit fails on `all` plus an add ("unknown
// capability: all"), repeats added names in effective, and ignores an add
// next to a list in the same layer.
func TestCapabilityLayers(t *testing.T) {
	all := strings.Join(allCapabilities, ",")
	for _, tc := range []struct {
		name, entry, label string
		effective, ambient string
	}{
		{"add to label all", "capabilities.add: [CAP_CHOWN]", `{"capabilities": ["all"]}`, all, ""},
		{"add all to label list", "capabilities.add: [all]", `{"capabilities": ["CAP_KILL"]}`, "CAP_KILL," + strings.Join(without(allCapabilities, "CAP_KILL"), ","), ""},
		{"add all to label all", "capabilities.add: [ALL]", `{"capabilities": ["all"]}`, all, ""},
		{"add present name", "capabilities.add: [CAP_CHOWN, CAP_KILL]", `{"capabilities": ["CAP_CHOWN"]}`, "CAP_CHOWN,CAP_KILL", ""},
		{"duplicates in add", "capabilities.add: [CAP_KILL, CAP_CHOWN, CAP_KILL]", "", "CAP_KILL,CAP_CHOWN", ""},
		{"duplicates in list", "capabilities: [CAP_KILL, CAP_KILL]", "", "CAP_KILL", ""},
		{"add none to label list", "capabilities.add: [none]", `{"capabilities": ["CAP_CHOWN"]}`, "CAP_CHOWN", ""},
		{"add none alone", "capabilities.add: [None]", "", "", ""},
		{"add to label none", "capabilities.add: [CAP_KILL]", `{"capabilities": ["none"]}`, "CAP_KILL", ""},
		{"yaml list replaces label all", "capabilities: [CAP_KILL]", `{"capabilities": ["all"]}`, "CAP_KILL", ""},
		{"add extends the yaml list", "capabilities: [CAP_KILL]\n    capabilities.add: [CAP_CHOWN]", `{"capabilities": ["all"]}`, "CAP_KILL,CAP_CHOWN", ""},
		{"label add extends label list", "readonly: true", `{"capabilities": ["CAP_KILL"], "capabilities.add": ["CAP_CHOWN"]}`, "CAP_KILL,CAP_CHOWN", ""},
		{"all with ambient", "capabilities: [all]\n    ambient: [CAP_NET_RAW, CAP_NET_RAW]", "", all, "CAP_NET_RAW"},
		{"ambient all", "ambient: [all]", "", "", all},
	} {
		oci, err := ociOf(t, "onboot:\n  - name: a\n    image: busybox\n    "+tc.entry+"\n", tc.label)
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		c := oci.Process.Capabilities
		if got := strings.Join(c.Effective, ","); got != tc.effective {
			t.Errorf("%s: effective = %s, want %s", tc.name, got, tc.effective)
		}
		if got := strings.Join(c.Ambient, ","); got != tc.ambient {
			t.Errorf("%s: ambient = %s, want %s", tc.name, got, tc.ambient)
		}
		bounding := sortedCaps(append(append([]string(nil), c.Effective...), c.Ambient...))
		if tc.effective == all || tc.ambient == all {
			bounding = sortedCaps(allCapabilities)
		}
		for n, set := range map[string][]string{"bounding": c.Bounding, "permitted": c.Permitted, "inheritable": c.Inheritable} {
			if got := strings.Join(set, ","); got != bounding {
				t.Errorf("%s: %s = %s, want %s", tc.name, n, got, bounding)
			}
		}
	}
	if len(allCapabilities) != 41 {
		t.Errorf("%d capabilities, want the kernel's 41", len(allCapabilities))
	}
}

func without(list []string, x string) []string {
	var out []string
	for _, s := range list {
		if s != x {
			out = append(out, s)
		}
	}
	return out
}

// TestCapabilityErrors: names are LinuxKit's (upper case, CAP_ prefix);
// all and none only alone. The messages say what to write instead.
func TestCapabilityErrors(t *testing.T) {
	for _, tc := range []struct{ entry, label, want string }{
		{"readonly: true", `{"capabilities": ["cap_chown"]}`, `unknown capability "cap_chown" (write CAP_CHOWN)`},
		{"capabilities: [CAP_KILL]", `{"ambient": ["sys_admin"]}`, `unknown capability "sys_admin" (write CAP_SYS_ADMIN)`},
		{"readonly: true", `{"capabilities": ["all", "CAP_KILL"]}`, `"all" must be the only entry`},
		{"readonly: true", `{"capabilities.add": ["CAP_NOPE"]}`, `unknown capability "CAP_NOPE"`},
	} {
		_, err := ociOf(t, "onboot:\n  - name: a\n    image: busybox\n    "+tc.entry+"\n", tc.label)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s + label %s: err = %v, want %q", tc.entry, tc.label, err, tc.want)
		}
	}
	for _, tc := range []struct{ entry, want string }{
		{"capabilities.add: [cap_chown]", `onboot[0].capabilities.add[0]: unknown capability "cap_chown" (write CAP_CHOWN)`},
		{"capabilities: [CAP_KILL, none]", `onboot[0].capabilities[1]: "none" must be the only entry`},
		{"ambient: [net_raw]", `onboot[0].ambient[0]: unknown capability "net_raw" (write CAP_NET_RAW)`},
	} {
		_, err := Parse("t.yml", []byte("onboot:\n  - name: a\n    image: busybox\n    "+tc.entry+"\n"))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want %q", tc.entry, err, tc.want)
		}
	}
}

// TestBindLayers: binds (and every mount kind) are keyed by destination,
// a trailing slash included; the later layer replaces. LinuxKit keeps
// /b and /b/ as two mounts on the same directory, and ignores binds.add
// next to binds in the same layer.
func TestBindLayers(t *testing.T) {
	for _, tc := range []struct {
		name, entry, label string
		want               string // dest=source of the non-default mounts, sorted
	}{
		{"add replaces label bind", `binds.add: ["/x:/b"]`, `{"binds": ["/y:/b"]}`, "/b=/x"},
		{"add replaces label bind, trailing slash", `binds.add: ["/x:/b/"]`, `{"binds": ["/y:/b"]}`, "/b/=/x"},
		{"label bind with trailing slash", `binds.add: ["/x:/b"]`, `{"binds": ["/y:/b//"]}`, "/b=/x"},
		{"same destination twice in add", `binds.add: ["/x:/b", "/z:/b/"]`, "", "/b/=/z"},
		{"add extends yaml binds", `binds: ["/x:/c"]` + "\n    " + `binds.add: ["/z:/b"]`, `{"binds": ["/y:/d"]}`, "/b=/z,/c=/x"},
		{"label add extends label binds", "readonly: true", `{"binds": ["/y:/d"], "binds.add": ["/z:/b"]}`, "/b=/z,/d=/y"},
		{"tmpfs replaces default /dev", `tmpfs: ["/dev/:size=1m"]`, "", "/dev/=tmpfs"},
		{"mount replaces bind", "binds: [\"/x:/tmp/\"]\n    mounts: [{type: tmpfs, destination: /tmp}]", "", "/tmp=tmpfs"},
	} {
		oci, err := ociOf(t, "onboot:\n  - name: a\n    image: busybox\n    "+tc.entry+"\n", tc.label)
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		var got []string
		dests := map[string]bool{}
		for _, m := range oci.Mounts {
			clean := strings.TrimRight(m.Destination, "/")
			if dests[clean] {
				t.Errorf("%s: two mounts on %s: %+v", tc.name, clean, oci.Mounts)
			}
			dests[clean] = true
			switch m.Destination {
			case "/proc", "/dev", "/dev/pts", "/sys", "/sys/fs/cgroup":
				if m.Source == m.Type {
					continue // a default
				}
			}
			got = append(got, m.Destination+"="+m.Source)
		}
		if strings.Join(got, ",") != tc.want {
			t.Errorf("%s: mounts %s, want %s", tc.name, strings.Join(got, ","), tc.want)
		}
	}
}

// TestOCIVersion: config.json carries the runtime-spec version LinuxKit
// writes (the one its runc is validated against), not the library's.
func TestOCIVersion(t *testing.T) {
	oci, err := ociOf(t, "onboot:\n  - name: a\n    image: busybox\n", "")
	if err != nil {
		t.Fatal(err)
	}
	if oci.Version != "1.2.1" {
		t.Errorf("ociVersion = %s, want 1.2.1", oci.Version)
	}
}
