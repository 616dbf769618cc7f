package frontend_test

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lkbuild/lkbuild/exporter/initrd"
	"github.com/lkbuild/lkbuild/hack/parity"
	"github.com/lkbuild/lkbuild/internal/cli"
	"github.com/lkbuild/lkbuild/internal/initramfs"
	"github.com/lkbuild/lkbuild/internal/testenv"
	"github.com/moby/buildkit/client"
	digest "github.com/opencontainers/go-digest"
)

// segmentInput is one configuration the segmented initrd is checked on.
type segmentInput struct {
	name    string
	files   []string // YAML files, merged in order
	context string
	whole   bool // the initrd is written whole, not in segments
}

// segmentInputs are examples/minimal.yml and some of the LinuxKit corpus
// that hack/parity builds (its images rewritten to the parity stand-ins):
// LKBUILD_SEGMENT_CORPUS=all takes the whole corpus, a comma-separated
// list of keys takes those.
func segmentInputs(t *testing.T, env testenv.Env) []segmentInput {
	ins := []segmentInput{{name: "minimal", files: []string{filepath.Join(env.Root, "examples/minimal.yml")}, context: env.Root}}
	// A files entry in a bundle: the initrd is written whole.
	orig, err := os.ReadFile(filepath.Join(env.Root, "examples/minimal.yml"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	whole := filepath.Join(dir, "whole.yml")
	extra := "files:\n  - path: containers/onboot/000-hello/lower/etc/motd\n    contents: hi\n    mode: \"0640\"\n"
	if err := os.WriteFile(whole, append(orig, extra...), 0o644); err != nil {
		t.Fatal(err)
	}
	ins = append(ins, segmentInput{name: "files-in-a-bundle", files: []string{whole}, context: dir, whole: true})
	corpus, err := parity.Corpus(env.Root)
	if err != nil {
		t.Fatal(err)
	}
	pick := os.Getenv("LKBUILD_SEGMENT_CORPUS")
	if pick == "" {
		pick = "examples__sshd.yml,examples__volumes.yml,examples__getty.yml,examples__redis-os.yml,extra__files.yml,extra__merged-usr.yml"
	}
	want := map[string]bool{}
	for _, k := range strings.Split(pick, ",") {
		want[k] = true
	}
	for _, in := range corpus {
		if pick != "all" && !want[in.Key] {
			continue
		}
		p, err := parity.Prepare(in, t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		ins = append(ins, segmentInput{name: in.Key, files: p.Files, context: p.Context})
	}
	return ins
}

// unpackInitrd applies the initrd to an empty initramfs with the kernel's
// rules. A microcode prefix that is not a cpio archive (a stand-in
// kernel's) is left out: it is not part of the tree.
func unpackInitrd(t *testing.T, name string) *initramfs.FS {
	t.Helper()
	dt, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	fs, err := initramfs.Unpack(bytes.NewReader(dt))
	if i := bytes.Index(dt, []byte{0x1f, 0x8b, 0x08}); err != nil && i > 0 {
		t.Logf("%s: %v: unpacking from the first gzip member, at %d", name, err, i)
		fs, err = initramfs.Unpack(bytes.NewReader(dt[i:]))
	}
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	if len(fs.Errors) > 0 {
		t.Errorf("the kernel would fail on entries of %s: %q", name, fs.Errors)
	}
	return fs
}

// TestSegmentedInitrdMatchesTree builds each input as kernel+initrd and as
// the tar target (the tree, as a tar stream), unpacks the initrd with the
// kernel's rules and compares it with the tree entry by entry: path, type,
// mode, owner, time (clamped to segmentEpoch), size, contents, symlink
// target and hard-link groups. The root's own entry, which the tar stream
// does not carry, must be what the merged tree's root is (0755, root, the
// time of created entries).
func TestSegmentedInitrdMatchesTree(t *testing.T) {
	env := testenv.Integration(t)
	for _, in := range segmentInputs(t, env) {
		t.Run(in.name, func(t *testing.T) {
			if len(in.files) > 1 {
				t.Skip("several YAML files: the tar output is built with buildx, from one")
			}
			want, err := tarTree(t, env, in)
			if err != nil {
				t.Skipf("the tree does not build: %v", err)
			}
			o := cli.BuildOptions{File: in.files[0], Context: in.context, Target: "kernel+initrd"}
			var log bytes.Buffer
			o.Log = &log
			out := build(t, env, o)
			if w := strings.Contains(log.String(), "written whole"); w != in.whole {
				t.Errorf("written whole: %v, want %v (log: %s)", w, in.whole, log.String())
			}
			ents, _ := filepath.Glob(filepath.Join(out, "*-initrd.img"))
			if len(ents) != 1 {
				t.Fatalf("initrd: %v", ents)
			}
			got := unpackInitrd(t, ents[0])
			clampTimes(got)
			root := got.Nodes[""]
			delete(got.Nodes, "")
			delete(want.Nodes, "")
			if d := initramfs.Diff(want, got); len(d) > 0 {
				if len(d) > 40 {
					d = append(d[:40], fmt.Sprintf("... %d more", len(d)-40))
				}
				t.Errorf("the initrd unpacks to another tree than the tar target's:\n%s", strings.Join(d, "\n"))
			}
			wantRoot := fmt.Sprintf("mode 040755 uid 0 gid 0 mtime %d", time.Date(2017, 4, 18, 16, 30, 0, 0, time.UTC).Unix())
			if root.Describe() != wantRoot {
				t.Errorf("root %s, want %s", root.Describe(), wantRoot)
			}
			t.Logf("%d entries compared", len(want.Nodes))
		})
	}
}

// tarTree builds the input's tar target as LinuxKit's tar output (-o
// type=tar, which keeps owners, unlike a directory) with buildx and the
// frontend image, and reads it without boot/.
func tarTree(t *testing.T, env testenv.Env, in segmentInput) (*initramfs.FS, error) {
	t.Helper()
	dest := filepath.Join(t.TempDir(), "rootfs.tar")
	cmd := exec.Command("docker", "buildx", "build", "--builder", "lkbuild", "--progress", "quiet",
		"--build-arg", "BUILDKIT_SYNTAX="+env.Helper, "-f", in.files[0], "--target", "tar",
		"-o", "type=tar,dest="+dest, in.context)
	if out, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("%v: %s", err, out)
	}
	f, err := os.Open(dest)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fs, err := initramfs.FromTar(f, func(rel string) bool { return initrd.SkipBoot(rel, true) })
	if err != nil {
		return nil, err
	}
	clampTimes(fs)
	return fs, nil
}

// clampTimes clamps every time of fs to segmentEpoch.
func clampTimes(fs *initramfs.FS) {
	for _, n := range fs.Nodes {
		n.Mtime = min(n.Mtime, segmentEpoch)
	}
}

// segmentEpoch (2026-09-21) is where TestSegmentedInitrdMatchesTree clamps
// the times of both trees: after the images' own times and before any time
// the build machine gives. A directory that an image's layer only implies
// gets the time it is extracted at (see docs/compat.md), which a segment
// (from the layer's extraction) and the tree (from the merge) may have
// from different builds, cached at different times; clamped, those
// compare, and all other times exactly.
const segmentEpoch = 1790000000

// TestSegmentedInitrdReproducible builds kernel+initrd twice, the second
// time without the cache: the initrd and kernel are the same bytes.
func TestSegmentedInitrdReproducible(t *testing.T) {
	env := testenv.Integration(t)
	o := cli.BuildOptions{File: filepath.Join(env.Root, "examples/minimal.yml"), Target: "kernel+initrd",
		BuildArgs: []string{"SOURCE_DATE_EPOCH=1700000000"}}
	a := build(t, env, o)
	o.NoCache = true
	b := build(t, env, o)
	for _, n := range []string{"minimal-initrd.img", "minimal-kernel", "minimal-cmdline"} {
		x, _ := os.ReadFile(filepath.Join(a, n))
		y, _ := os.ReadFile(filepath.Join(b, n))
		if len(x) == 0 || !bytes.Equal(x, y) {
			t.Errorf("%s differs between two builds (%d and %d bytes)", n, len(x), len(y))
		}
	}
}

// segmentSteps builds o and returns, for every initrd segment and mkimage
// step, whether it came from the cache (BuildKit reports Cached=false only
// for a step it ran), and the step's digest. Each step must run once, as
// one step: a report of an attempt that ended in an error (a step stopped
// when the request that started it ended, and run again for the final
// definition) or two steps of one name fail the test.
func segmentSteps(t *testing.T, env testenv.Env, o cli.BuildOptions) (map[string]bool, map[string]digest.Digest) {
	t.Helper()
	var mu sync.Mutex
	steps, digests := map[string]bool{}, map[string]digest.Digest{}
	var problems []string
	o.OnStatus = func(st *client.SolveStatus) {
		mu.Lock()
		defer mu.Unlock()
		for _, v := range st.Vertexes {
			if !strings.HasPrefix(v.Name, "[initrd] segment") && !strings.Contains(v.Name, "lkbuild mkimage") || v.Completed == nil {
				continue
			}
			if d, ok := digests[v.Name]; ok && d != v.Digest {
				problems = append(problems, fmt.Sprintf("two steps %q: %s and %s", v.Name, d, v.Digest))
			}
			digests[v.Name] = v.Digest
			if v.Error != "" {
				problems = append(problems, fmt.Sprintf("%q was stopped (%s) and run again", v.Name, v.Error))
				continue
			}
			steps[v.Name] = v.Cached
		}
	}
	build(t, env, o)
	for _, p := range problems {
		t.Error(p)
	}
	return steps, digests
}

// checkSameSteps checks that the steps want says come from the cache are
// the steps of the build before (same digest) and the others are new
// ones: unlike the cache, which BuildKit's GC may empty between two
// builds, this depends on lkbuild alone.
func checkSameSteps(t *testing.T, what string, before, after map[string]digest.Digest, want map[string]bool) {
	t.Helper()
	for name, cached := range want {
		if same := before[name] == after[name]; same != cached {
			t.Errorf("%s: %q is the step of the build before: %v, want %v (%s, then %s)", what, name, same, cached, before[name], after[name])
		}
	}
}

// TestSegmentedInitrdIncremental: after a change to one service, only
// that service's segment and the artifact are written again; after a
// change to a files entry, only the files' segment and the artifact (the
// base's, without the files, stays); the kernel's modules' segment stays
// through all of them and a change to the command line. The unchanged
// segments are the same steps as in the build before, and every step runs
// at most once (a container's segment, started early by the frontend, is
// not stopped and run again).
func TestSegmentedInitrdIncremental(t *testing.T) {
	env := testenv.Integration(t)
	testenv.CacheSensitive(t)
	orig, err := os.ReadFile(filepath.Join(env.Root, "examples/minimal.yml"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	yml := filepath.Join(dir, "minimal.yml")
	mark := time.Now().UnixNano()
	write := func(s string) {
		if err := os.WriteFile(yml, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	o := cli.BuildOptions{File: yml, Context: dir, Target: "kernel+initrd"}
	files := fmt.Sprintf("files:\n  - path: etc/lkbuild-mark\n    contents: \"%d\"\n", mark)
	write(string(orig) + files)
	_, first := segmentSteps(t, env, o)

	service := strings.Replace(string(orig), "    readonly: true\n", fmt.Sprintf("    readonly: true\n    env:\n      - MARK=%d\n", mark), 1)
	write(service + files)
	steps, second := segmentSteps(t, env, o)
	want := map[string]bool{
		"[initrd] segment of onboot 000-hello (busybox:1.36)": true,
		"[initrd] segment of services httpd (busybox:1.36)":   false,
		"[initrd] segment of the kernel's modules":            true,
		"[initrd] segment of the base (init)":                 true,
		"[initrd] segment of the files":                       true,
		"[kernel+initrd] lkbuild mkimage":                     false,
	}
	checkSteps(t, "one service changed", steps, want)
	checkSameSteps(t, "one service changed", first, second, want)

	files2 := strings.Replace(files, fmt.Sprint(mark), fmt.Sprint(mark+1), 1)
	write(service + files2)
	steps, third := segmentSteps(t, env, o)
	want["[initrd] segment of services httpd (busybox:1.36)"] = true
	want["[initrd] segment of the files"] = false
	checkSteps(t, "one files entry changed", steps, want)
	checkSameSteps(t, "one files entry changed", second, third, want)

	cmdline := strings.Replace(service, "cmdline: \"", fmt.Sprintf("cmdline: \"lkbuild.mark=%d ", mark), 1)
	if cmdline == service {
		t.Fatal("no kernel command line to change in minimal.yml")
	}
	write(cmdline + files2)
	steps, _ = segmentSteps(t, env, o)
	checkSteps(t, "the command line changed", steps, map[string]bool{
		"[initrd] segment of the kernel's modules": true,
		"[kernel+initrd] lkbuild mkimage":          false,
	})
}

func checkSteps(t *testing.T, what string, got, want map[string]bool) {
	t.Helper()
	for name, cached := range want {
		c, ok := got[name]
		switch {
		case !ok:
			t.Errorf("%s: no step %q (steps: %v)", what, name, got)
		case c != cached:
			t.Errorf("%s: %q cached=%v, want %v", what, name, c, cached)
		}
	}
}
