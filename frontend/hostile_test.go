package frontend_test

import (
	"archive/tar"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/lkbuild/lkbuild/internal/cli"
	"github.com/lkbuild/lkbuild/internal/testenv"
	"github.com/moby/buildkit/client"
)

// buildStatus runs cli.Build and returns the names of the steps BuildKit
// showed, the warnings it printed and the error.
func buildStatus(t *testing.T, env testenv.Env, o cli.BuildOptions) ([]string, []string, error) {
	t.Helper()
	if o.Output == "" {
		o.Output = filepath.Join(t.TempDir(), "out")
	}
	o.Addr, o.Helper, o.Progress = env.Addr, env.Helper, "quiet"
	var vertices, warnings []string
	o.OnStatus = func(st *client.SolveStatus) {
		for _, v := range st.Vertexes {
			vertices = append(vertices, v.Name)
		}
		for _, w := range st.Warnings {
			warnings = append(warnings, string(w.Short))
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	err := cli.Build(ctx, o)
	return vertices, warnings, err
}

// noImageLookedUp fails the test when a step of the build looked up or
// fetched an image.
func noImageLookedUp(t *testing.T, what string, err error, vertices []string) {
	t.Helper()
	if err != nil && strings.Contains(err.Error(), "no-such-kernel") {
		t.Errorf("%s: an image was looked up before the check: %v", what, err)
	}
	for _, v := range vertices {
		if strings.Contains(v, "load metadata") || strings.Contains(v, "no-such-kernel") {
			t.Errorf("%s: an image was looked up before the check (step %q)", what, v)
		}
	}
}

// hostileYAML names a kernel image that does not exist, so a check that
// comes after the images are looked up fails with another error.
func hostileYAML(source string, optional bool) string {
	y := "kernel:\n  image: lkbuild/no-such-kernel:0\nfiles:\n  - path: etc/ok\n    contents: fine\n  - path: etc/x\n    source: '" + source + "'\n"
	if optional {
		y += "    optional: true\n"
	}
	return y
}

// TestHostileSources: a files source that is missing, absolute, outside
// the build context (~/, ../, /proc, /dev) or not a regular file fails at
// its own line, column and field before any image is looked up, and the
// host's files are never read.
func TestHostileSources(t *testing.T) {
	env := testenv.Integration(t)
	root := t.TempDir()
	ctxDir := filepath.Join(root, "context")
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(ctxDir, "conf"), 0o755))
	must(os.WriteFile(filepath.Join(root, "x"), []byte("outside the context\n"), 0o644))
	must(os.WriteFile(filepath.Join(ctxDir, "conf/app.conf"), []byte("port = 80\n"), 0o644))
	must(syscall.Mkfifo(filepath.Join(ctxDir, "conf/fifo"), 0o644))
	must(os.Symlink("/dev/zero", filepath.Join(ctxDir, "conf/devzero")))
	must(os.Symlink("../../../../../../../../etc/shadow", filepath.Join(ctxDir, "conf/shadow")))
	const at = "x.yml:7:13: files[1].source: "
	cases := map[string]string{
		"conf/missing":       at + "conf/missing does not exist in the build context (optional: true skips a missing source)",
		"/etc/shadow":        at + "/etc/shadow is outside the build context (sources are read from the context only)",
		"../x":               at + "../x is outside the build context (sources are read from the context only)",
		"conf/../../x":       at + "conf/../../x is outside the build context (sources are read from the context only)",
		"~/.ssh/id_rsa.pub":  at + "~/.ssh/id_rsa.pub is outside the build context (sources are read from the context only; ~ is not expanded)",
		"/proc/self/environ": at + "/proc/self/environ is outside the build context (sources are read from the context only)",
		"/dev/zero":          at + "/dev/zero is outside the build context (sources are read from the context only)",
		"conf/fifo":          at + "conf/fifo is not a regular file",
		"conf/devzero":       at + "symlink conf/devzero -> /dev/zero points to an absolute path, which is not followed",
		"conf/shadow":        at + "symlink conf/shadow -> ../../../../../../../../etc/shadow leaves the build context",
		"conf/*":             at + "conf/* does not exist in the build context",
		"conf":               at + "conf is a directory (a source must be a file)",
	}
	if os.Geteuid() == 0 {
		must(syscall.Mknod(filepath.Join(ctxDir, "conf/zero"), syscall.S_IFCHR|0o666, 1<<8|5))
		cases["conf/zero"] = at + "conf/zero is not a regular file"
	} else {
		t.Log("not root: no device node in the context")
	}
	yml := filepath.Join(ctxDir, "x.yml")
	for source, want := range cases {
		must(os.WriteFile(yml, []byte(hostileYAML(source, false)), 0o644))
		vertices, _, err := buildStatus(t, env, cli.BuildOptions{File: yml, Context: ctxDir, Target: "kernel+initrd"})
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("source %s: error %v, want %q", source, err, want)
		}
		noImageLookedUp(t, "source "+source, err, vertices)
	}

	// Several bad sources are reported together.
	must(os.WriteFile(yml, []byte("kernel:\n  image: lkbuild/no-such-kernel:0\nfiles:\n  - path: a\n    source: /etc/shadow\n  - path: b\n    source: conf/app.conf\n  - path: c\n    source: conf/missing\n"), 0o644))
	vertices, _, err := buildStatus(t, env, cli.BuildOptions{File: yml, Context: ctxDir, Target: "kernel+initrd"})
	for _, want := range []string{"x.yml:5:13: files[0].source: /etc/shadow is outside", "x.yml:9:13: files[2].source: conf/missing does not exist"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("two bad sources: error %v, want %q", err, want)
		}
	}
	noImageLookedUp(t, "two bad sources", err, vertices)
}

// TestOptionalSourcesByName: an optional source is copied when the file of
// exactly that name is in the build context, whatever characters the name
// has (^, non-ASCII, glob characters, a leading !, a backslash), and
// skipped by name when it is not, never matched as a pattern. Optional
// sources outside the context (LinuxKit's ~/.ssh/id_rsa.pub) are skipped
// with a warning at their line, and the build goes on.
func TestOptionalSourcesByName(t *testing.T) {
	env := testenv.Integration(t)
	ctxDir := t.TempDir()
	files := map[string]string{
		"conf/^caret": "caret", "conf/é.conf": "accent", "conf/[a]b": "class", "conf/ab": "decoy ab",
		"conf/*": "star", "!bang": "bang", `conf/back\slash`: "backslash", "conf/q?": "question",
		"conf/qx": "decoy qx", "conf/x": "decoy x", "conf/[a]b-required": "required",
	}
	for name, content := range files {
		p := filepath.Join(ctxDir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	yml := filepath.Join(ctxDir, "optional.yml")
	if err := os.WriteFile(yml, []byte(`files:
  - path: etc/ssh/authorized_keys
    source: ~/.ssh/authorized_keys
    optional: true
  - path: etc/host-shadow
    source: /etc/shadow
    optional: true
  - path: etc/up
    source: ../up.txt
    optional: true
  - {path: etc/caret, source: 'conf/^caret', optional: true}
  - {path: etc/accent, source: 'conf/é.conf', optional: true}
  - {path: etc/class, source: 'conf/[a]b', optional: true}
  - {path: etc/bang, source: '!bang', optional: true}
  - {path: etc/backslash, source: 'conf/back\slash', optional: true}
  - {path: etc/question, source: 'conf/q?', optional: true}
  - {path: etc/glob-missing, source: 'conf/[x]', optional: true}
  - {path: etc/required, source: 'conf/[a]b-required'}
`), 0o644); err != nil {
		t.Fatal(err)
	}
	// The star is built apart: as a pattern it would bring in all of conf/.
	star := filepath.Join(ctxDir, "star.yml")
	if err := os.WriteFile(star, []byte(`files:
  - {path: etc/star, source: 'conf/*', optional: true}
  - {path: etc/star-missing, source: 'conf/q*', optional: true}
`), 0o644); err != nil {
		t.Fatal(err)
	}
	// Only an optional source outside the context, as LinuxKit's sshd.yml
	// has: the context is not read at all.
	outside := filepath.Join(ctxDir, "outside.yml")
	if err := os.WriteFile(outside, []byte(`files:
  - path: root/.ssh/authorized_keys
    source: ~/.ssh/id_rsa.pub
    mode: "0600"
    optional: true
  - {path: etc/motd, contents: hello}
`), 0o644); err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	var warnings []string
	for _, f := range []string{yml, star, outside} {
		tarFile := filepath.Join(t.TempDir(), "rootfs.tar")
		_, w, err := buildStatus(t, env, cli.BuildOptions{File: f, Context: ctxDir, Target: "tar", Output: "type=tar,dest=" + tarFile})
		if err != nil {
			t.Fatalf("%s: %v", filepath.Base(f), err)
		}
		warnings = append(warnings, w...)
		eachTarEntry(t, tarFile, func(h *tar.Header, r io.Reader) {
			p := strings.TrimSuffix(strings.TrimPrefix(h.Name, "./"), "/")
			if h.Typeflag == tar.TypeReg {
				b, _ := io.ReadAll(r)
				got[p] = string(b)
			} else {
				got[p] = "type " + string(h.Typeflag)
			}
		})
	}
	for p, want := range map[string]string{
		"etc/caret": "caret", "etc/accent": "accent", "etc/class": "class", "etc/star": "star", "etc/bang": "bang",
		"etc/backslash": "backslash", "etc/question": "question", "etc/required": "required",
	} {
		if got[p] != want {
			t.Errorf("%s = %q, want %q (the file named by the source)", p, got[p], want)
		}
	}
	if got["etc/motd"] != "hello" {
		t.Errorf("outside.yml: etc/motd = %q", got["etc/motd"])
	}
	for _, p := range []string{"etc/ssh", "etc/ssh/authorized_keys", "etc/host-shadow", "etc/up", "etc/glob-missing", "etc/star-missing", "root/.ssh"} {
		if v, ok := got[p]; ok {
			t.Errorf("%s was made (%q): the optional source is missing or outside the context", p, v)
		}
	}
	joined := strings.Join(warnings, "\n")
	for _, want := range []string{
		"optional.yml:3:13: files[0].source: ~/.ssh/authorized_keys is outside the build context (sources are read from the context only; ~ is not expanded): skipped (optional: true)",
		"optional.yml:6:13: files[1].source: /etc/shadow is outside the build context (sources are read from the context only): skipped (optional: true)",
		"optional.yml:9:13: files[2].source: ../up.txt is outside the build context (sources are read from the context only): skipped (optional: true)",
		"outside.yml:3:13: files[0].source: ~/.ssh/id_rsa.pub is outside the build context (sources are read from the context only; ~ is not expanded): skipped (optional: true)",
	} {
		if !strings.Contains(joined, want) {
			t.Errorf("no warning %q in:\n%s", want, joined)
		}
	}
}

// TestHostileBuildArgs: NAME, SOURCE_DATE_EPOCH, SIZE and MERGE values no
// output can represent fail with the build-arg and the valid range before
// any image is looked up (NAME=../x used to write the artifacts outside
// the output and report success with an empty result; a negative epoch was
// dropped).
func TestHostileBuildArgs(t *testing.T) {
	env := testenv.Integration(t)
	dir := t.TempDir()
	yml := filepath.Join(dir, "x.yml")
	if err := os.WriteFile(yml, []byte("kernel:\n  image: lkbuild/no-such-kernel:0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		target string
		args   []string
		merge  []string
		want   string
	}{
		{"kernel+initrd", []string{"NAME=../x"}, nil, `build-arg NAME: "../x" contains '/', a path separator: the base name of the artifacts must be one plain file name`},
		{"kernel+initrd", []string{"NAME=a/b"}, nil, `build-arg NAME: "a/b" contains '/'`},
		{"uki", []string{"NAME=.."}, nil, `build-arg NAME: ".." is a directory name`},
		{"kernel+initrd", []string{"SOURCE_DATE_EPOCH=-1"}, nil, `build-arg SOURCE_DATE_EPOCH: "-1" is not a valid timestamp: want a whole number of seconds from 0 to 4294967295`},
		{"kernel+initrd", []string{"SOURCE_DATE_EPOCH=4294967296"}, nil, `build-arg SOURCE_DATE_EPOCH: "4294967296" is not a valid timestamp`},
		{"raw-bios", []string{"SIZE=3T"}, nil, `build-arg SIZE: size "3T" is larger than 2T`},
		{"vhd", []string{"SIZE=2040G"}, nil, `build-arg SIZE: 2190433320960 bytes is too large for vhd: a VHD holds at most 2040 GiB, so SIZE must be at most 2088959M`},
		{"kernel+initrd", []string{"MERGE=../outside.yml"}, nil, `build-arg MERGE: "../outside.yml" leaves the directory the YAML files are read from`},
		{"kernel+initrd", []string{"MERGE=/etc/passwd"}, nil, `build-arg MERGE: "/etc/passwd" is an absolute path`},
	} {
		vertices, _, err := buildStatus(t, env, cli.BuildOptions{File: yml, Context: dir, Target: c.target, BuildArgs: c.args})
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s %v: error %v, want %q", c.target, c.args, err, c.want)
		}
		noImageLookedUp(t, strings.Join(c.args, " "), err, vertices)
	}
}

// TestMergeAcrossDirectories: lkbuild build -f a/b/base.yml -f a/c/extra.yml
// merges files from different directories (the MERGE names are relative to
// the main YAML, as buildx reads them).
func TestMergeAcrossDirectories(t *testing.T) {
	env := testenv.Integration(t)
	root := t.TempDir()
	base, extra := filepath.Join(root, "a/b/base.yml"), filepath.Join(root, "a/c/extra.yml")
	for f, y := range map[string]string{base: "files:\n  - {path: etc/base, contents: base}\n", extra: "files:\n  - {path: etc/extra, contents: extra}\n"} {
		if err := os.MkdirAll(filepath.Dir(f), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(f, []byte(y), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	tarFile := filepath.Join(t.TempDir(), "rootfs.tar")
	build(t, env, cli.BuildOptions{File: base, Merge: []string{extra}, Context: root, Target: "tar", Output: "type=tar,dest=" + tarFile})
	got := map[string]string{}
	eachTarEntry(t, tarFile, func(h *tar.Header, r io.Reader) {
		if h.Typeflag == tar.TypeReg {
			b, _ := io.ReadAll(r)
			got[strings.TrimPrefix(h.Name, "./")] = string(b)
		}
	})
	if got["etc/base"] != "base" || got["etc/extra"] != "extra" {
		t.Errorf("merged rootfs has etc/base %q, etc/extra %q", got["etc/base"], got["etc/extra"])
	}
}
