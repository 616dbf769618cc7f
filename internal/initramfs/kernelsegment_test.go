package initramfs

import (
	"strings"
	"testing"
)

// TestKernelThenBase applies the kernel's modules' segment, then the
// base's, as a segmented initrd has them (docs/formats.md): the base
// writes the directories it shares with the kernel again and leaves out
// the kernel's files. The cases that do not come out as the merged tree
// are those llbgen avoids by keeping the kernel in the base or by storing
// its tree through the init image's symlink.
func TestKernelThenBase(t *testing.T) {
	kernel := []ent{
		{name: "lib", mode: dir | 0o755, mtime: 100},
		{name: "lib/modules", mode: dir | 0o755, mtime: 101},
		{name: "lib/modules/a.ko", mode: reg | 0o644, mtime: 102, data: "module", ino: 7, nlink: 2},
		{name: "lib/modules/b.ko", mode: reg | 0o644, mtime: 102, ino: 7, nlink: 2},
		{name: "lib/modules/build", mode: link | 0o777, mtime: 103, data: "/usr/src"},
	}
	for _, tc := range []struct {
		name   string
		kernel []ent
		base   []ent
		want   map[string]string // Describe() prefixes; "" means absent
		linked bool              // a.ko and b.ko share their inode
		errs   int
	}{
		{
			name:   "shared directories: the base's mode, owner and time",
			kernel: kernel,
			base: []ent{{name: "lib", mode: dir | 0o700, mtime: 300, uid: 3}, {name: "lib/libc.so", mode: reg | 0o755, mtime: 301, data: "c"},
				{name: "lib/modules", mode: dir | 0o750, mtime: 302, uid: 4}},
			want: map[string]string{"lib": "mode 040700 uid 3 gid 0 mtime 300", "lib/modules": "mode 040750 uid 4 gid 0 mtime 302",
				"lib/modules/a.ko": "mode 100644 uid 0 gid 0 mtime 102 size 6", "lib/modules/build": "mode 120777 uid 0 gid 0 mtime 103 -> /usr/src",
				"lib/libc.so": "mode 100755"},
			linked: true,
		},
		{
			name:   "a new file among the modules: the directory's time is the base's",
			kernel: kernel,
			base: []ent{{name: "lib", mode: dir | 0o755, mtime: 100}, {name: "lib/modules", mode: dir | 0o755, mtime: 400},
				{name: "lib/modules/x.conf", mode: reg | 0o600, mtime: 401, data: "x"}},
			want:   map[string]string{"lib/modules": "mode 040755 uid 0 gid 0 mtime 400", "lib/modules/x.conf": "mode 100600", "lib/modules/b.ko": "mode 100644 uid 0 gid 0 mtime 102 size 6"},
			linked: true,
		},
		{
			name:   "a file written over one of the kernel's hard links changes the other (the kernel stays in the base)",
			kernel: kernel,
			base:   []ent{{name: "lib/modules/b.ko", mode: reg | 0o600, mtime: 500, data: "other module"}},
			want:   map[string]string{"lib/modules/a.ko": "mode 100600 uid 0 gid 0 mtime 500 size 12"},
			linked: true,
		},
		{
			name:   "the init image's lib symlink over the kernel's lib fails (the kernel's tree is stored through it)",
			kernel: kernel,
			base:   []ent{{name: "usr", mode: dir | 0o755}, {name: "usr/lib", mode: dir | 0o755}, {name: "lib", mode: link | 0o777, data: "usr/lib"}},
			want:   map[string]string{"lib": "mode 040755", "usr/lib/modules": ""},
			linked: true,
			errs:   1,
		},
		{
			name: "the kernel's tree stored through the init image's lib symlink",
			kernel: []ent{{name: "usr", mode: dir | 0o755, mtime: 50}, {name: "usr/lib", mode: dir | 0o755, mtime: 50},
				{name: "usr/lib/modules", mode: dir | 0o755, mtime: 101}, {name: "usr/lib/modules/a.ko", mode: reg | 0o644, mtime: 102, data: "module"}},
			base: []ent{{name: "lib", mode: link | 0o777, mtime: 600, data: "usr/lib"}, {name: "usr", mode: dir | 0o755, mtime: 601},
				{name: "usr/lib", mode: dir | 0o755, mtime: 602}, {name: "usr/lib/libc.so", mode: reg | 0o755, data: "c"}},
			want: map[string]string{"lib": "mode 120777 uid 0 gid 0 mtime 600 -> usr/lib", "usr": "mode 040755 uid 0 gid 0 mtime 601",
				"usr/lib": "mode 040755 uid 0 gid 0 mtime 602", "usr/lib/modules/a.ko": "mode 100644 uid 0 gid 0 mtime 102 size 6"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fs := unpack(t, archive(t, tc.kernel...), archive(t, tc.base...))
			for p, want := range tc.want {
				n := fs.Nodes[p]
				switch {
				case want == "" && n != nil:
					t.Errorf("/%s = %s, want absent", p, n.Describe())
				case want != "" && n == nil:
					t.Errorf("/%s absent, want %s", p, want)
				case want != "" && !strings.HasPrefix(n.Describe(), want):
					t.Errorf("/%s = %s, want %s", p, n.Describe(), want)
				}
			}
			if a, b := fs.Nodes["lib/modules/a.ko"], fs.Nodes["lib/modules/b.ko"]; tc.linked && (a == nil || a != b) {
				t.Errorf("a.ko and b.ko are not one inode")
			}
			if len(fs.Errors) != tc.errs {
				t.Errorf("errors %q, want %d", fs.Errors, tc.errs)
			}
		})
	}
}
