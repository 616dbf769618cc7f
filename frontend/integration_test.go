package frontend_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lkbuild/lkbuild/exporter/cpio"
	"github.com/lkbuild/lkbuild/internal/cli"
	"github.com/lkbuild/lkbuild/internal/testenv"
	"github.com/moby/buildkit/client"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func build(t *testing.T, env testenv.Env, o cli.BuildOptions) string {
	t.Helper()
	if o.Output == "" {
		o.Output = filepath.Join(t.TempDir(), "out")
	}
	o.Addr, o.Helper, o.Progress = env.Addr, env.Helper, "plain"
	if o.Context == "" {
		o.Context = env.Root
	}
	if o.NoCache {
		defer testenv.NoCacheBuild(t)()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	if err := cli.Build(ctx, o); err != nil {
		t.Fatalf("build %s: %v", o.File, err)
	}
	return o.Output
}

// readInitrd returns the entries of a gzip cpio initrd by name, and the
// contents of its .json files and of the paths in also.
func readInitrd(t *testing.T, name string, also ...string) (map[string]*cpio.Header, map[string][]byte) {
	t.Helper()
	f, err := os.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	// A segmented initrd is several archives: a later entry replaces an
	// earlier one of the same name, as when the kernel unpacks it.
	r := cpio.NewConcatReader(zr)
	hdrs, data := map[string]*cpio.Header{}, map[string][]byte{}
	for {
		h, err := r.Next()
		if err == io.EOF {
			return hdrs, data
		}
		if err != nil {
			t.Fatal(err)
		}
		hdrs[h.Name] = h
		if strings.HasSuffix(h.Name, ".json") || slices.Contains(also, h.Name) {
			data[h.Name], _ = io.ReadAll(r)
		}
	}
}

func TestMinimalKernelInitrd(t *testing.T) {
	env := testenv.Integration(t)
	out := build(t, env, cli.BuildOptions{File: filepath.Join(env.Root, "examples/minimal.yml"), Target: "kernel+initrd"})

	kernel, err := os.ReadFile(filepath.Join(out, "minimal-kernel"))
	if err != nil {
		t.Fatal(err)
	}
	if len(kernel) < 0x206 || string(kernel[0x202:0x206]) != "HdrS" {
		t.Error("minimal-kernel is not an x86 bzImage")
	}
	cmdline, _ := os.ReadFile(filepath.Join(out, "minimal-cmdline"))
	if string(cmdline) != "console=ttyS0 console=tty0" {
		t.Errorf("cmdline = %q", cmdline)
	}
	hdrs, data := readInitrd(t, filepath.Join(out, "minimal-initrd.img"))
	for _, p := range []string{
		"init", "usr/bin/runc", "bin/busybox",
		"containers/onboot/000-hello/config.json", "containers/onboot/000-hello/runtime.json",
		"containers/onboot/000-hello/lower/bin/busybox", "containers/onboot/000-hello/tmp", "containers/onboot/000-hello/rootfs",
		"containers/services/httpd/config.json", "containers/services/httpd/rootfs",
	} {
		if hdrs[p] == nil {
			t.Errorf("initrd lacks %s", p)
		}
	}
	// httpd uses hello's image: it is extracted once, and httpd's
	// runtime.json mounts hello's lower/ on its rootfs/.
	for _, p := range []string{"boot", "boot/kernel", "containers/onboot/000-hello/rootfs/.dockerenv",
		"containers/services/httpd/rootfs/bin", "containers/services/httpd/lower"} {
		if hdrs[p] != nil {
			t.Errorf("initrd must not hold %s", p)
		}
	}
	if h := hdrs["etc/mtab"]; h == nil || h.Linkname != "/proc/mounts" {
		t.Errorf("etc/mtab = %+v, want a symlink to /proc/mounts", h)
	}
	if h := hdrs["etc/resolv.conf"]; h == nil || h.Linkname != "/run/resolvconf/resolv.conf" {
		t.Errorf("init image etc/resolv.conf = %+v, want a symlink into /run", h)
	}
	if rt := string(data["containers/services/httpd/runtime.json"]); !strings.Contains(rt, `"source": "/containers/onboot/000-hello/lower"`) {
		t.Errorf("httpd runtime.json does not mount hello's image:\n%s", rt)
	}
	var cfg specs.Spec
	if err := json.Unmarshal(data["containers/onboot/000-hello/config.json"], &cfg); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(cfg.Process.Args, " "); got != "/bin/echo lkbuild-demo: hello from onboot" {
		t.Errorf("onboot hello args = %q", got)
	}
}

func TestSecondBuildIsCached(t *testing.T) {
	env := testenv.Integration(t)
	testenv.CacheSensitive(t)
	o := cli.BuildOptions{File: filepath.Join(env.Root, "examples/minimal.yml")}
	build(t, env, o)
	var mu sync.Mutex
	mkimage := map[string]bool{}
	o.OnStatus = func(st *client.SolveStatus) {
		mu.Lock()
		defer mu.Unlock()
		for _, v := range st.Vertexes {
			if strings.Contains(v.Name, "lkbuild mkimage") && v.Completed != nil {
				mkimage[v.Digest.String()] = v.Cached
			}
		}
	}
	start := time.Now()
	build(t, env, o)
	t.Logf("second identical build took %s", time.Since(start))
	if len(mkimage) == 0 {
		t.Fatal("no mkimage step reported")
	}
	for d, cached := range mkimage {
		if !cached {
			t.Errorf("mkimage step %s ran again instead of coming from the cache", d)
		}
	}
}

func TestTarTarget(t *testing.T) {
	env := testenv.Integration(t)
	out := build(t, env, cli.BuildOptions{File: filepath.Join(env.Root, "examples/minimal.yml"), Target: "tar"})
	for p, mode := range map[string]os.FileMode{
		"boot/kernel":                            0o644,
		"boot/cmdline":                           0o644,
		"containers/services/httpd/config.json":  0o644,
		"containers/services/httpd/runtime.json": 0o644,
	} {
		fi, err := os.Lstat(filepath.Join(out, p))
		if err != nil {
			t.Errorf("rootfs lacks %s: %v", p, err)
			continue
		}
		if fi.Mode().Perm() != mode {
			t.Errorf("%s mode %v, want %v", p, fi.Mode().Perm(), mode)
		}
	}
	if target, err := os.Readlink(filepath.Join(out, "containers/onboot/000-hello/lower/etc/mtab")); err != nil || target != "/proc/mounts" {
		t.Errorf("bundle etc/mtab -> %q (%v)", target, err)
	}
	hosts, _ := os.ReadFile(filepath.Join(out, "containers/onboot/000-hello/lower/etc/hosts"))
	if !bytes.HasPrefix(hosts, []byte("127.0.0.1       localhost")) {
		t.Errorf("bundle etc/hosts = %q", hosts)
	}
}

func TestYAMLErrorNamesLine(t *testing.T) {
	env := testenv.Integration(t)
	dir := t.TempDir()
	bad := "kernel:\n  image: linuxkit/kernel:6.12.59\n  cmdlin: \"console=ttyS0\"\n"
	if err := os.WriteFile(filepath.Join(dir, "bad.yml"), []byte(bad), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out")
	err := cli.Build(context.Background(), cli.BuildOptions{File: filepath.Join(dir, "bad.yml"), Context: dir, Output: out,
		Addr: env.Addr, Helper: env.Helper, Progress: "quiet"})
	if err == nil {
		t.Fatal("a YAML with an unknown key built")
	}
	if !strings.Contains(err.Error(), "bad.yml:3:3") || !strings.Contains(err.Error(), "cmdlin") {
		t.Errorf("error %q does not name bad.yml:3:3 and the key", err)
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Errorf("a failed build left %s behind", out)
	}
}

// TestBuildxSyntaxLine drives the real user path: docker buildx with the
// `# syntax=` line of the example resolving the frontend image pushed to the
// local registry.
func TestBuildxSyntaxLine(t *testing.T) {
	env := testenv.Integration(t)
	requireBuildx(t)
	out := t.TempDir()
	cmd := exec.Command("docker", "buildx", "build", "--builder", "lkbuild", "--progress", "plain",
		"-f", "examples/minimal.yml", "--target", "kernel+initrd", "-o", "type=local,dest="+out, ".")
	cmd.Dir = env.Root
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("docker buildx build: %v\n%s", err, b)
	}
	for _, f := range []string{"minimal-kernel", "minimal-initrd.img", "minimal-cmdline"} {
		if _, err := os.Stat(filepath.Join(out, f)); err != nil {
			t.Errorf("buildx output lacks %s", f)
		}
	}
}

func TestReproducible(t *testing.T) {
	env := testenv.Integration(t)
	var sums []string
	for i := 0; i < 2; i++ {
		out := build(t, env, cli.BuildOptions{File: filepath.Join(env.Root, "examples/minimal.yml"), NoCache: true,
			BuildArgs: []string{"SOURCE_DATE_EPOCH=1700000000"}})
		dt, err := os.ReadFile(filepath.Join(out, "minimal-initrd.img"))
		if err != nil {
			t.Fatal(err)
		}
		sums = append(sums, fmt.Sprintf("%x", sha256.Sum256(dt)))
	}
	if sums[0] != sums[1] {
		t.Errorf("two uncached builds with the same SOURCE_DATE_EPOCH differ: %s %s", sums[0], sums[1])
	}
}

// TestFilesAndName builds a YAML whose files come from the build context,
// exports LinuxKit's tar format and checks the entries (owners survive only
// in the tar, not in a local directory export), then checks the NAME
// build-arg.
func TestFilesAndName(t *testing.T) {
	env := testenv.Integration(t)
	dir := filepath.Join(env.Root, "frontend/testdata")
	tarFile := filepath.Join(t.TempDir(), "files.tar")
	build(t, env, cli.BuildOptions{File: filepath.Join(dir, "files.yml"), Context: dir, Target: "tar", Output: "type=tar,dest=" + tarFile})
	hdrs, data := map[string]*tar.Header{}, map[string]string{}
	eachTarEntry(t, tarFile, func(h *tar.Header, r io.Reader) {
		name := strings.TrimSuffix(h.Name, "/")
		hdrs[name] = h
		if h.Typeflag == tar.TypeReg && h.Size < 1024 {
			b, _ := io.ReadAll(r)
			data[name] = string(b)
		}
	})
	check := func(p string, mode int64, uid, gid int, content string) {
		t.Helper()
		h := hdrs[p]
		if h == nil {
			t.Errorf("rootfs lacks %s", p)
			return
		}
		if h.Mode&0o7777 != mode || h.Uid != uid || h.Gid != gid {
			t.Errorf("%s: mode %o owner %d:%d, want %o %d:%d", p, h.Mode, h.Uid, h.Gid, mode, uid, gid)
		}
		if content != "" && data[p] != content {
			t.Errorf("%s = %q, want %q", p, data[p], content)
		}
	}
	check("etc/motd", 0o644, 0, 0, "welcome to lkbuild\n")
	check("etc/app.conf", 0o640, 0, 100, "key = value\n")
	check("var/lib/app", 0o700, 1000, 0, "")
	check("etc", 0o755, 0, 0, "")
	if h := hdrs["etc/localtime"]; h == nil || h.Linkname != "/usr/share/zoneinfo/UTC" {
		t.Errorf("etc/localtime = %+v", h)
	}
	if hdrs["etc/missing.conf"] != nil {
		t.Error("an optional missing source was created")
	}

	kout := build(t, env, cli.BuildOptions{File: filepath.Join(dir, "files.yml"), Context: dir, BuildArgs: []string{"NAME=custom"}})
	for _, f := range []string{"custom-kernel", "custom-initrd.img", "custom-cmdline"} {
		if _, err := os.Stat(filepath.Join(kout, f)); err != nil {
			t.Errorf("NAME=custom: no %s", f)
		}
	}
}

// TestBuildxMerge: docker buildx merges the MERGE files after the -f file
// (like linuxkit build a.yml b.yml), and an error in a merged file shows
// that file's line.
func TestBuildxMerge(t *testing.T) {
	env := testenv.Integration(t)
	requireBuildx(t)
	buildx := func(merge, dest string) ([]byte, error) {
		cmd := exec.Command("docker", "buildx", "build", "--builder", "lkbuild", "--progress", "plain",
			"--build-arg", "BUILDKIT_SYNTAX="+env.Helper, "--build-arg", "MERGE="+merge,
			"-f", "frontend/testdata/rootfs.yml", "--target", "tar", "-o", "type=tar,dest="+dest, "frontend/testdata")
		cmd.Dir = env.Root
		return cmd.CombinedOutput()
	}
	tarFile := filepath.Join(t.TempDir(), "rootfs.tar")
	if b, err := buildx("rootfs-extra.yml", tarFile); err != nil {
		t.Fatalf("docker buildx build: %v\n%s", err, b)
	}
	found := map[string]string{}
	eachTarEntry(t, tarFile, func(h *tar.Header, r io.Reader) {
		if n := strings.TrimPrefix(h.Name, "./"); n == "boot/cmdline" || n == "etc/issue" || n == "containers/services/debug/config.json" {
			b, _ := io.ReadAll(r)
			found[n] = string(b)
		}
	})
	if found["boot/cmdline"] != "console=ttyS0 quiet" || found["etc/issue"] != "lkbuild\n" || found["containers/services/debug/config.json"] == "" {
		t.Errorf("merged file not applied: %q", found)
	}

	b, err := buildx("bad-extra.yml", filepath.Join(t.TempDir(), "bad.tar"))
	if err == nil {
		t.Fatal("a bad merged file built")
	}
	for _, want := range []string{"bad-extra.yml:4:15: services[0].readonly", "readonly: maybe"} {
		if !bytes.Contains(b, []byte(want)) {
			t.Errorf("buildx output lacks %q:\n%s", want, b)
		}
	}
}

func TestTarKernelInitrdAndDockerTargets(t *testing.T) {
	env := testenv.Integration(t)
	out := build(t, env, cli.BuildOptions{File: filepath.Join(env.Root, "examples/minimal.yml"), Target: "tar-kernel-initrd"})
	var names []string
	eachTarEntry(t, filepath.Join(out, "minimal-initrd.tar"), func(h *tar.Header, _ io.Reader) {
		names = append(names, h.Name)
	})
	if got := strings.Join(names, " "); got != "kernel initrd.img cmdline" {
		t.Errorf("minimal-initrd.tar holds %s", got)
	}
	dout := build(t, env, cli.BuildOptions{File: filepath.Join(env.Root, "examples/minimal.yml"), Target: "docker"})
	if b, err := os.ReadFile(filepath.Join(dout, "Dockerfile")); err != nil || !bytes.Contains(b, []byte("/bin/rc.init")) {
		t.Errorf("docker target Dockerfile = %q (%v)", b, err)
	}
	if _, err := os.Stat(filepath.Join(dout, "containers/services/httpd/config.json")); err != nil {
		t.Errorf("docker target lacks the bundles: %v", err)
	}
}

// requireBuildx skips (or, with LKBUILD_INTEGRATION=1, fails) when the
// buildx builder of make env is missing.
func requireBuildx(t *testing.T) {
	t.Helper()
	if err := exec.Command("docker", "buildx", "inspect", "lkbuild").Run(); err != nil {
		if testenv.Required() {
			t.Fatalf("docker buildx builder lkbuild missing: %v", err)
		}
		t.Skip("docker buildx builder lkbuild missing (make env)")
	}
}

// eachTarEntry calls fn for every entry of the tar file, with the entry's
// contents as r.
func eachTarEntry(t *testing.T, file string, fn func(h *tar.Header, r io.Reader)) {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		fn(h, tr)
	}
}
