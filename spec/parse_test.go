package spec

import (
	"errors"
	"strings"
	"testing"
)

func TestParseErrors(t *testing.T) {
	for _, tc := range []struct {
		name, yaml string
		want       string // exact first error
	}{
		{"unknown top-level key", "kernel:\n  image: a\nservice:\n  - name: x\n", `t.yml:3:1: service: unknown field, did you mean "services"?`},
		{"unknown nested key", "kernel:\n  image: a\n  cmdlin: x\n", `t.yml:3:3: kernel.cmdlin: unknown field, did you mean "cmdline"?`},
		{"unknown key in an entry", "onboot:\n  - name: a\n    image: b\n    foo: 1\n", "t.yml:4:5: onboot[0].foo: unknown field"},
		{"wrong type", "kernel:\n  image: a\n  cmdline: [x]\n", "t.yml:3:12: kernel.cmdline: expected a string, got a list"},
		{"number for a string", "files:\n  - path: a\n    mode: 0644\n    contents: x\n", "t.yml:3:11: files[0].mode: expected a string, got int 0644 (quote it)"},
		{"bool type", "services:\n  - name: a\n    image: b\n    readonly: yes please\n", `t.yml:4:15: services[0].readonly: expected true or false, got the string "yes please"`},
		{"missing image", "services:\n  - name: a\n", "t.yml:2:5: services[0].image: image is required"},
		{"missing name", "onboot:\n  - image: b\n", "t.yml:2:5: onboot[0].name: name is required"},
		{"duplicate service", "services:\n  - name: a\n    image: b\n  - name: a\n    image: c\n", `t.yml:4:11: services[1].name: duplicate service name "a": already defined at t.yml:2:11 (services[0].name)`},
		{"bad capability", "services:\n  - name: a\n    image: b\n    capabilities: [CAP_SYS_ADMIN, CAP_FOO]\n", `t.yml:4:35: services[0].capabilities[1]: unknown capability "CAP_FOO"`},
		{"bad rlimit", "services:\n  - name: a\n    image: b\n    rlimits: [\"nofile,10\"]\n", `t.yml:4:15: services[0].rlimits[0]: rlimit "nofile,10" is not name,soft,hard`},
		{"unknown rlimit", "services:\n  - name: a\n    image: b\n    rlimits: [\"files,1,2\"]\n", `t.yml:4:15: services[0].rlimits[0]: unknown rlimit "files"`},
		{"contents and source", "files:\n  - path: a\n    contents: x\n    source: y\n", "t.yml:4:13: files[0].source: specified contents and source"},
		{"directory and source", "files:\n  - path: a\n    directory: true\n    source: y\n", "t.yml:4:13: files[0].source: directory with source not allowed"},
		{"no file contents", "files:\n  - path: a\n", "t.yml:2:5: files[0]: contents of file (a) not specified: give contents, source, metadata, directory or symlink"},
		{"bad volume name", "volumes:\n  - name: My_Vol\n", `t.yml:2:11: volumes[0].name: invalid name "My_Vol": a name is one path component of lower case letters, digits, _ and - only (LinuxKit's rule for volume names)`},
		{"bad bind", "services:\n  - name: a\n    image: b\n    binds: [/a]\n", `t.yml:4:13: services[0].binds[0]: bind "/a" is not src:dst[:options]`},
		{"duplicate key", "kernel:\n  image: a\n  image: b\n", "t.yml:3:3: kernel.image: duplicate key"},
		{"bad image ref", "init:\n  - linuxkit/Init:1\n", `t.yml:2:5: init[0]: invalid image reference "linuxkit/Init:1"`},
		{"syntax error", "kernel:\n  image: a\n bad\n", "t.yml:3:2: YAML syntax: did not find expected key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("t.yml", []byte(tc.yaml))
			var errs Errors
			if !errors.As(err, &errs) || len(errs) == 0 {
				t.Fatalf("err = %v, want spec.Errors", err)
			}
			if got := errs[0].Error(); !strings.HasPrefix(got, tc.want) {
				t.Errorf("error\n got %s\nwant %s", got, tc.want)
			}
		})
	}
}

func TestParseDefaults(t *testing.T) {
	cfg, err := Parse("t.yml", []byte("kernel:\n  image: linuxkit/kernel:6.6\n  cmdline: console=ttyS0\ninit:\n  - linuxkit/init:1\ntrust:\n  org: [linuxkit]\n"))
	if err != nil {
		t.Fatal(err)
	}
	k := cfg.Kernel
	if k.File() != "kernel" || k.Binary != "" || k.Tar != "kernel.tar" || k.NoTar || k.Cmdline != "console=ttyS0" {
		t.Errorf("kernel = %+v", k)
	}
	if k.Pos.Line != 2 || cfg.InitPos[0].Line != 5 {
		t.Errorf("positions: kernel %v init %v", k.Pos, cfg.InitPos)
	}
	for _, tar := range []string{`""`, "none"} {
		cfg, err := Parse("t.yml", []byte("kernel:\n  image: k\n  tar: "+tar+"\n"))
		if err != nil {
			t.Fatal(err)
		}
		if !cfg.Kernel.NoTar || cfg.Kernel.Tar != "" {
			t.Errorf("tar: %s gives %+v, want no tar", tar, cfg.Kernel)
		}
	}
}

func TestMerge(t *testing.T) {
	a, err := Parse("a.yml", []byte("kernel:\n  image: k:1\n  cmdline: a\ninit: [i:1]\nservices:\n  - name: s1\n    image: x:1\n"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := Parse("b.yml", []byte("kernel:\n  cmdline: b\ninit: [i:2]\nservices:\n  - name: s2\n    image: x:2\n"))
	if err != nil {
		t.Fatal(err)
	}
	m := Merge(a, b)
	if m.Kernel.Image != "k:1" || m.Kernel.Cmdline != "b" {
		t.Errorf("kernel = %+v (image from a, cmdline from b)", m.Kernel)
	}
	if strings.Join(m.Init, ",") != "i:1,i:2" || len(m.Services) != 2 || m.Services[1].Name != "s2" {
		t.Errorf("lists not appended: init %v services %d", m.Init, len(m.Services))
	}
	if len(a.Init) != 1 {
		t.Error("Merge modified its input")
	}
	if got := strings.Join(m.Images(), " "); got != "k:1 i:1 i:2 x:1 x:2" {
		t.Errorf("Images() = %s", got)
	}
}

// TestConfigPos: the configuration records where its first file's
// top-level mapping starts, and keeps it when later files are merged.
func TestConfigPos(t *testing.T) {
	a, err := Parse("a.yml", []byte("# a comment\n\nonboot:\n  - name: x\n    image: busybox\n"))
	if err != nil {
		t.Fatal(err)
	}
	if a.Pos != (Pos{File: "a.yml", Line: 3, Col: 1}) {
		t.Errorf("a.yml: Pos = %v, want a.yml:3:1", a.Pos)
	}
	b, err := Parse("b.yml", []byte("kernel:\n  image: linuxkit/kernel:6.12.59\n"))
	if err != nil {
		t.Fatal(err)
	}
	if m := Merge(a, b); m.Pos != a.Pos {
		t.Errorf("merged Pos = %v, want the first file's %v", m.Pos, a.Pos)
	}
}
