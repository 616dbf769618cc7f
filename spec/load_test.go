package spec

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

func TestLoadErrors(t *testing.T) {
	const head = "kernel:\n  image: linuxkit/kernel:6.6\n"
	for _, tc := range []struct {
		name  string
		files []string
		want  string
	}{
		{"duplicate service across files", []string{head + "services:\n  - name: a\n    image: b\n", "services:\n  - name: a\n    image: c\n"},
			`b.yml:2:11: services[0].name: duplicate service name "a": already defined at a.yml:4:11 (services[0].name)`},
		{"duplicate volume across files", []string{head + "volumes:\n  - name: v\n", "volumes:\n  - name: v\n"},
			`b.yml:2:11: volumes[0].name: duplicate volume name "v": already defined at a.yml:4:11 (volumes[0].name)`},
		{"undefined volume in binds", []string{head + "services:\n  - name: a\n    image: b\n    binds: [data:/data]\n"},
			`a.yml:6:13: services[0].binds[0]: volume "data" is not defined in volumes`},
		{"read-only volume bound read-write", []string{head + "volumes:\n  - name: v\n    readonly: true\nonboot:\n  - name: a\n    image: b\n    binds.add: [v:/v]\n"},
			`a.yml:9:17: onboot[0].binds.add[0]: volume "v" is read-only, but is mounted read-write`},
		{"read-only volume in a rw mount", []string{head + "volumes:\n  - name: v\n    readonly: true\nonboot:\n  - name: a\n    image: b\n    mounts:\n      - {type: bind, source: v, destination: /v, options: [rbind, rw]}\n"},
			`a.yml:10:30: onboot[0].mounts[0].source: volume "v" is read-only`},
		{"file owner not a container", []string{head + "files:\n  - path: etc/x\n    contents: x\n    uid: nobody\n"},
			`a.yml:6:10: files[0].uid: cannot find id "nobody"`},
		{"empty file", []string{""}, "a.yml:1:1: the file is empty"},
		{"bad volume platform", []string{head + "volumes:\n  - name: v\n    image: a\n    format: oci\n    platforms: [linux/nope/x/y]\n"}, `a.yml:7:17: volumes[0].platforms[0]: invalid platform "linux/nope/x/y"`},
		{"oci volume without image", []string{head + "volumes:\n  - name: v\n    format: oci\n"}, `a.yml:4:5: volumes[0].image: a volume of format oci needs an image`},
		{"null list", []string{head + "onboot:\n"}, "a.yml:3:8: onboot: expected a list, got null"},
		{"null entry", []string{head + "services:\n  -\n"}, "a.yml:4:4: services[0]: expected a mapping, got null"},
		{"trust keys", []string{head + "trust:\n  orgs: [x]\n"}, `a.yml:4:3: trust.orgs: unknown field, did you mean "org"?`},
		{"OCI key outside LinuxKit's schema", []string{head + "services:\n  - name: a\n    image: b\n    resources:\n      memory:\n        checkBeforeUpdate: true\n"},
			"a.yml:8:9: services[0].resources.memory.checkBeforeUpdate: unknown field"},
		{"mount id mappings are lower case", []string{head + "services:\n  - name: a\n    image: b\n    mounts:\n      - {type: bind, source: /a, destination: /a, uidMappings: []}\n"},
			`services[0].mounts[0].uidMappings: unknown field, did you mean "uidmappings"?`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var srcs []Source
			for i, f := range tc.files {
				srcs = append(srcs, Source{Filename: string(rune('a'+i)) + ".yml", Data: []byte(f)})
			}
			_, err := Load(srcs...)
			var errs Errors
			var one *Error
			switch {
			case errors.As(err, &errs) && len(errs) > 0:
				one = errs[0]
			case errors.As(err, &one):
			default:
				t.Fatalf("err = %v, want a positioned error", err)
			}
			if !strings.Contains(one.Error(), tc.want) {
				t.Errorf("error\n got %s\nwant %s", one.Error(), tc.want)
			}
		})
	}
}

func TestLoadMergeAndVolumes(t *testing.T) {
	a := "kernel:\n  image: linuxkit/kernel:6.6\n  cmdline: console=ttyS0\nvolumes:\n  - name: data\n    readonly: true\n"
	b := "kernel:\n  cmdline: console=ttyAMA0\nservices:\n  - name: a\n    image: b\n    binds: [data:/data:ro]\n    mounts:\n      - {type: bind, source: data, destination: /d2, options: [rbind, ro]}\n"
	cfg, err := Load(Source{"a.yml", []byte(a)}, Source{"b.yml", []byte(b)})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Kernel.Image != "linuxkit/kernel:6.6" || cfg.Kernel.Cmdline != "console=ttyAMA0" {
		t.Errorf("kernel = %+v", cfg.Kernel)
	}
	bundles, err := Bundles(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	s := decodeSpec(t, bundles[0])
	got := map[string]string{}
	for _, m := range s.Mounts {
		got[m.Destination] = m.Source
	}
	// LinuxKit leaves the source of a bind *mount* naming a volume as it
	// is (docs/compat.md); lkbuild resolves both.
	if got["/data"] != "/containers/volumes/data/merged" || got["/d2"] != "/containers/volumes/data/merged" {
		t.Errorf("volume sources: %v", got)
	}
}

// TestBundleDedupe: an image used by several containers is extracted once;
// later bundles mount the first one's directory, as LinuxKit does.
func TestBundleDedupe(t *testing.T) {
	y := `onboot:
  - name: one
    image: busybox:latest
  - name: two
    image: docker.io/library/busybox
    readonly: true
services:
  - name: three
    image: busybox
  - name: other
    image: alpine:3
`
	cfg, err := Load(Source{"t.yml", []byte(y)})
	if err != nil {
		t.Fatal(err)
	}
	bundles, err := Bundles(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := []struct{ shared, first string }{
		{"", "lowerdir=/containers/onboot/000-one/lower"},
		{"containers/onboot/000-one/lower", "/containers/onboot/000-one/lower"},
		{"containers/onboot/000-one/lower", "lowerdir=/containers/onboot/000-one/lower"},
		{"", "lowerdir=/containers/services/other/lower"},
	}
	for i, b := range bundles {
		var rt Runtime
		if err := json.Unmarshal(b.Runtime, &rt); err != nil {
			t.Fatal(err)
		}
		mounts := *rt.Mounts
		first := mounts[0].Source
		if !b.Readonly {
			first = mounts[2].Options[0]
		}
		if b.Shared != want[i].shared || first != want[i].first {
			t.Errorf("%s: shared %q image dir %q, want %q %q", b.Dir, b.Shared, first, want[i].shared, want[i].first)
		}
	}
}

// TestMergeKernel: as in LinuxKit, a later file's kernel fields win when
// written, even when they name the default or clear ucode.
func TestMergeKernel(t *testing.T) {
	a := "kernel:\n  image: k:1\n  binary: bzImage\n  ucode: intel-ucode.cpio\n  tar: none\n"
	b := "kernel:\n  binary: kernel\n  ucode: \"\"\n"
	cfg, err := Load(Source{"a.yml", []byte(a)}, Source{"b.yml", []byte(b)})
	if err != nil {
		t.Fatal(err)
	}
	k := cfg.Kernel
	if k.File() != "kernel" || k.UCodeFile() != "" || !k.NoTar || k.Image != "k:1" {
		t.Errorf("kernel = %+v", k)
	}
	cfg, _ = Load(Source{"a.yml", []byte(a)})
	if k := cfg.Kernel; k.File() != "bzImage" || k.UCodeFile() != "intel-ucode.cpio" {
		t.Errorf("kernel = %+v", k)
	}
}

// TestLabelNameAndImage: as in LinuxKit, an image's label cannot name the
// container or the image (the error names the YAML entry and the image),
// but may carry them empty or null; the label may use anchors and merges.
func TestLabelNameAndImage(t *testing.T) {
	cfg, err := Parse("t.yml", []byte("services:\n  - name: a\n    image: foo/bar:1\n"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ label, want string }{
		{`{"name": "x", "capabilities": ["all"]}`, `t.yml:3:12: services[0].image: foo/bar:1: bad org.mobyproject.config label: 1:10: name: an image's label cannot set the name (the YAML entry gives it), got the string "x"`},
		{"image: other", `1:8: image: an image's label cannot set the image`},
		{"name: 5", `1:7: name: an image's label cannot set the name (the YAML entry gives it), got int 5`},
		{"name: [x]", `name: an image's label cannot set the name`},
		{"{}\n# nothing else", ""},
		{" ", "bad org.mobyproject.config label: no value"},
		{`{"name": "", "image": null, "cwd": "/x"}`, ""},
		{"name: ~\nimage:\ncwd: /x", ""},
		{"<<: {cwd: /y, hostname: h}\ncwd: /x", ""},
	} {
		bs, err := Bundles(cfg, map[string]ImageConfig{"foo/bar:1": {Labels: map[string]string{LabelConfig: tc.label}}})
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("label %q: %v", tc.label, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("label %q: err = %v, want %s", tc.label, err, tc.want)
		case tc.want == "" && !strings.Contains(tc.label, "cwd") && !strings.Contains(string(bs[0].Config), `"cwd": "/"`):
			t.Errorf("label %q: config %s", tc.label, bs[0].Config)
		case tc.want == "" && strings.Contains(tc.label, "cwd") && !strings.Contains(string(bs[0].Config), `"cwd": "/x"`):
			t.Errorf("label %q: config %s, want cwd /x", tc.label, bs[0].Config)
		}
	}
}
