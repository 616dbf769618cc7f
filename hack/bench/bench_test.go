package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strings"
	"testing"
	"time"

	"github.com/lkbuild/lkbuild/hack/parity"
	digest "github.com/opencontainers/go-digest"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
	"gopkg.in/yaml.v3"
)

// The test binary doubles as a fake `lkbuild mkimage` for
// TestWatchMkimage: started through a link named lkbuild with
// BENCH_FAKE_MKIMAGE set, it touches that many MiB and sleeps.
func TestMain(m *testing.M) {
	if v := os.Getenv("BENCH_FAKE_MKIMAGE"); v != "" {
		var mib int
		fmt.Sscan(v, &mib)
		b := make([]byte, mib<<20)
		for i := range b {
			b[i] = byte(i)
		}
		time.Sleep(400 * time.Millisecond)
		os.Exit(int(b[len(b)-1]) & 0)
	}
	os.Exit(m.Run())
}

func gzipRatio(t *testing.T, b []byte) float64 {
	t.Helper()
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.DefaultCompression)
	if _, err := zw.Write(b); err != nil {
		t.Fatal(err)
	}
	zw.Close()
	return float64(buf.Len()) / float64(len(b))
}

func TestPadding(t *testing.T) {
	a := newPadGen("linuxkit/rngd").fill(4 << 20)
	if b := newPadGen("linuxkit/rngd").fill(4 << 20); !bytes.Equal(a, b) {
		t.Fatal("the same seed gave different padding")
	}
	if c := newPadGen("linuxkit/getty").fill(4 << 20); bytes.Equal(a[:1<<20], c[:1<<20]) {
		t.Fatal("two seeds gave the same padding")
	}
	// Like binaries: gzip shrinks it to about half, neither to nothing
	// (zeros, text) nor not at all (random).
	if r := gzipRatio(t, a); r < 0.35 || r > 0.55 {
		t.Errorf("gzip ratio %.3f, want 0.35..0.55", r)
	}
	// The images' digests come from these bytes: a generator change must
	// come with a new padVersion, so new images get new names.
	sum := sha256.Sum256(a)
	const want = "b931d1403af85bbf"
	if got := hex.EncodeToString(sum[:8]); got != want || padVersion != "pad1" {
		t.Errorf("padding %s changed (sha256 prefix %s, want %s): bump padVersion and update this test", padVersion, got, want)
	}
}

func TestSizeName(t *testing.T) {
	for n, want := range map[int]string{48 << 20: "48m", 0: "0m", 512 << 10: "512k", 1000: "1000b"} {
		if got := sizeName(n); got != want {
			t.Errorf("sizeName(%d) = %s, want %s", n, got, want)
		}
	}
	if got := (padding{Image: 48 << 20, Kernel: 192 << 20}).key(); got != "pad1-48m-192m" {
		t.Errorf("key = %s", got)
	}
}

// layerFiles reads an uncompressed layer into name -> contents (regular
// files) and name -> type.
func layerFiles(t *testing.T, layer []byte) (map[string][]byte, map[string]byte) {
	t.Helper()
	files, types := map[string][]byte{}, map[string]byte{}
	tr := tar.NewReader(bytes.NewReader(layer))
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return files, types
		}
		if err != nil {
			t.Fatal(err)
		}
		types[h.Name] = h.Typeflag
		if h.Typeflag == tar.TypeReg {
			files[h.Name], _ = io.ReadAll(tr)
		}
	}
}

// imageLayers checks that every manifest of img is complete and consistent
// (config diff ids = layer digests, all blobs present) and returns the
// layers of the first.
func imageLayers(t *testing.T, img *parity.Image) [][]byte {
	t.Helper()
	var index ocispecs.Index
	if err := json.Unmarshal(img.Index, &index); err != nil {
		t.Fatal(err)
	}
	if len(index.Manifests) != 2 {
		t.Fatalf("%d manifests, want 2", len(index.Manifests))
	}
	var first [][]byte
	for i, md := range index.Manifests {
		if md.Platform == nil || digest.FromBytes(img.Blobs[md.Digest]) != md.Digest {
			t.Fatalf("manifest %d: missing blob or platform", i)
		}
		var m ocispecs.Manifest
		var cfg ocispecs.Image
		json.Unmarshal(img.Blobs[md.Digest], &m)
		if err := json.Unmarshal(img.Blobs[m.Config.Digest], &cfg); err != nil {
			t.Fatalf("manifest %d: config: %v", i, err)
		}
		if len(cfg.RootFS.DiffIDs) != len(m.Layers) {
			t.Fatalf("manifest %d: %d diff ids for %d layers", i, len(cfg.RootFS.DiffIDs), len(m.Layers))
		}
		for j, l := range m.Layers {
			dt, ok := img.Blobs[l.Digest]
			if !ok || cfg.RootFS.DiffIDs[j] != l.Digest || int64(len(dt)) != l.Size {
				t.Fatalf("manifest %d layer %d: blob, diff id or size wrong", i, j)
			}
			if i == 0 {
				first = append(first, dt)
			}
		}
	}
	return first
}

func TestPadImage(t *testing.T) {
	pad := padding{Image: 3 << 20, Kernel: 5 << 20}
	ref := parity.Namespace + "linuxkit/rngd:abc"
	base, err := parity.StandIn(ref, map[parity.Role]bool{parity.RoleContainer: true})
	if err != nil {
		t.Fatal(err)
	}
	baseLayers := imageLayers(t, base)
	img, err := padImage(base, "127.0.0.1:5000/bench/x/linuxkit/rngd:abc", false, pad, "seed")
	if err != nil {
		t.Fatal(err)
	}
	layers := imageLayers(t, img)
	if len(layers) != len(baseLayers)+1 || !bytes.Equal(layers[0], baseLayers[0]) {
		t.Fatalf("padded image has %d layers (base %d), want the base's plus one", len(layers), len(baseLayers))
	}
	files, _ := layerFiles(t, layers[len(layers)-1])
	total := 0
	for name, body := range files {
		if !strings.HasPrefix(name, "usr/libexec/rngd-bench/rngd-") {
			t.Errorf("padding file %s", name)
		}
		total += len(body)
	}
	if total != pad.Image || len(files) != len(imageParts) {
		t.Errorf("padding: %d bytes in %d files, want %d in %d", total, len(files), pad.Image, len(imageParts))
	}
	again, _ := padImage(base, img.Ref, false, pad, "seed")
	other, _ := padImage(base, img.Ref, false, pad, "seed-v1")
	if again.Digest() != img.Digest() || other.Digest() == img.Digest() {
		t.Error("the same seed must give the same image, another seed another")
	}

	kref := parity.Namespace + "linuxkit/kernel:6.12.59"
	kbase, err := parity.StandIn(kref, map[parity.Role]bool{parity.RoleKernel: true})
	if err != nil {
		t.Fatal(err)
	}
	kimg, err := padImage(kbase, "127.0.0.1:5000/bench/x/linuxkit/kernel:6.12.59", true, pad, "k")
	if err != nil {
		t.Fatal(err)
	}
	klayers := imageLayers(t, kimg)
	if len(klayers) != 1 {
		t.Fatalf("padded kernel has %d layers, want 1", len(klayers))
	}
	oldFiles, _ := layerFiles(t, imageLayers(t, kbase)[0])
	newFiles, _ := layerFiles(t, klayers[0])
	if len(newFiles) != len(oldFiles) || !bytes.Equal(newFiles["kernel"], oldFiles["kernel"]) {
		t.Fatal("padding the kernel changed more than kernel.tar")
	}
	mods, types := layerFiles(t, newFiles["kernel.tar"])
	oldMods, _ := layerFiles(t, oldFiles["kernel.tar"])
	padded := 0
	for name, body := range mods {
		if strings.HasPrefix(name, "./lib/modules/6.12.59-linuxkit/kernel/bench/") && strings.HasSuffix(name, ".ko") {
			padded += len(body)
		} else if !bytes.Equal(body, oldMods[name]) {
			t.Errorf("kernel.tar %s changed", name)
		}
	}
	if padded != pad.Kernel {
		t.Errorf("kernel.tar holds %d bytes of padding modules, want %d", padded, pad.Kernel)
	}
	if types["./lib/modules/6.12.59-linuxkit/build"] != tar.TypeSymlink {
		t.Error("kernel.tar lost its build symlink")
	}
}

func TestRewriteYAML(t *testing.T) {
	mapped := map[string]bool{}
	out, err := rewriteYAML(linuxkitYML, func(ref string) (string, error) {
		mapped[ref] = true
		return "host:1/bench/" + ref, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var cfg struct {
		Kernel struct{ Image, Cmdline string }
		Init   []string
		Onboot []struct {
			Name, Image string
			Command     []string
		}
		Onshutdown, Services []struct{ Name, Image string }
		Files                []map[string]string
	}
	if err := yaml.Unmarshal(out, &cfg); err != nil {
		t.Fatal(err)
	}
	all := append([]string{cfg.Kernel.Image}, cfg.Init...)
	for _, s := range cfg.Onboot {
		all = append(all, s.Image)
	}
	for _, s := range append(cfg.Onshutdown, cfg.Services...) {
		all = append(all, s.Image)
	}
	if len(all) != 11 || len(mapped) != 11 {
		t.Fatalf("%d images in the YAML, %d mapped; want 11: %v", len(all), len(mapped), all)
	}
	for _, img := range all {
		if !strings.HasPrefix(img, "host:1/bench/") {
			t.Errorf("image %s not rewritten", img)
		}
	}
	if cfg.Kernel.Cmdline != "console=tty0 console=ttyS0 console=ttyAMA0" || len(cfg.Onboot[1].Command) != 5 {
		t.Error("rewriting changed more than the images")
	}
	last := cfg.Files[len(cfg.Files)-1]
	if len(cfg.Files) != 2 || last["path"] != stampPath || last["source"] != stampSource || last["mode"] != "0644" {
		t.Errorf("files = %v, want linuxkit.yml's and the stamp", cfg.Files)
	}
	if _, err := rewriteYAML(linuxkitYML, func(string) (string, error) { return "", errors.New("no") }); err == nil {
		t.Error("a mapping error was not returned")
	}
}

func TestImageSetNames(t *testing.T) {
	s := &imageSet{pad: padding{Image: 1 << 20, Kernel: 4 << 20}}
	for _, c := range []struct {
		ref  string
		k    int
		want string
	}{
		{parity.Namespace + "linuxkit/rngd:abc", 0, "h:1/bench/pad1-1m-4m/linuxkit/rngd:abc"},
		{parity.Namespace + "linuxkit/rngd:abc", 2, "h:1/bench/pad1-1m-4m/linuxkit/rngd:abc-v2"},
		{parity.Namespace + "library/busybox", 1, "h:1/bench/pad1-1m-4m/library/busybox:latest-v1"},
	} {
		if got := s.name("h:1", c.ref, c.k); got != c.want {
			t.Errorf("name(%s, %d) = %s, want %s", c.ref, c.k, got, c.want)
		}
	}
	if got, err := serviceImage(linuxkitYML, "rngd"); err != nil || !strings.HasPrefix(got, "linuxkit/rngd:") {
		t.Errorf("serviceImage(rngd) = %s, %v", got, err)
	}
	if _, err := serviceImage(linuxkitYML, "nosuch"); err == nil {
		t.Error("serviceImage of a missing service did not fail")
	}
	if got := viaHost("127.0.0.1:5000/lkbuild/lkbuild:v0.1", "127.0.0.1:5000", "127.0.0.1:9"); got != "127.0.0.1:9/lkbuild/lkbuild:v0.1" {
		t.Errorf("viaHost = %s", got)
	}
	if got := viaHost("docker.io/x/y:1", "127.0.0.1:5000", "127.0.0.1:9"); got != "docker.io/x/y:1" {
		t.Errorf("viaHost of another registry = %s", got)
	}
	cfg := daemonConfig("base\n", "127.0.0.1:9")
	if !strings.HasPrefix(cfg, "base\n") || !strings.Contains(cfg, "[registry.\"127.0.0.1:9\"]\n  http = true\n") {
		t.Errorf("daemonConfig = %q", cfg)
	}
}

func TestProxyDelays(t *testing.T) {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "got %s", r.URL.Path)
	}))
	defer backend.Close()
	p, err := startProxy(backend.URL, 60*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	for i := 1; i <= 2; i++ {
		start := time.Now()
		resp, err := http.Get("http://" + p.Host + "/v2/x/manifests/y")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if d := time.Since(start); d < 60*time.Millisecond {
			t.Errorf("request %d took %s, want at least the 60ms delay", i, d)
		}
		if string(body) != "got /v2/x/manifests/y" {
			t.Errorf("body %q", body)
		}
		if p.Requests() != int64(i) {
			t.Errorf("requests = %d, want %d", p.Requests(), i)
		}
	}
}

func TestTable(t *testing.T) {
	rs := func(ds ...float64) []result {
		var out []result
		for _, d := range ds {
			out = append(out, result{Wall: time.Duration(d * float64(time.Second)), PeakRSS: int64(d * (1 << 20)), Mkimage: -1})
		}
		return out
	}
	if m := median(rs(3, 1, 2)); m != 2*time.Second {
		t.Errorf("median of 3 = %s", m)
	}
	if m := median(rs(4, 1, 2, 3)); m != 2500*time.Millisecond {
		t.Errorf("median of 4 = %s", m)
	}
	rows := []row{
		{Scenario: "cold", Runs: map[string][]result{"lkbuild": rs(2), "linuxkit": rs(8)}},
		{Scenario: "no change", Runs: map[string][]result{"lkbuild": rs(1, 3, 2), "linuxkit": rs(8, 8, 9)}},
	}
	var b strings.Builder
	writeTable(&b, rows, true)
	want := "| scenario | runs | lkbuild | lkbuild client peak | mkimage peak | linuxkit | linuxkit peak | lkbuild/linuxkit |\n" +
		"|---|---|---|---|---|---|---|---|\n" +
		"| cold | 1 | 2.00 s | 2 MiB | - | 8.00 s | 8 MiB | 0.25 |\n" +
		"| no change | 3 | 2.00 s (1.00-3.00) | 3 MiB | - | 8.00 s (8.00-9.00) | 9 MiB | 0.25 |\n"
	if b.String() != want {
		t.Errorf("table:\n%s\nwant:\n%s", b.String(), want)
	}
}

func TestWatchMkimage(t *testing.T) {
	if _, err := os.Stat(fmt.Sprintf("/proc/%d/task/%d/children", os.Getpid(), os.Getpid())); err != nil {
		t.Skipf("no /proc/<pid>/task/<tid>/children here (the bench then prints no mkimage peak): %v", err)
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(t.TempDir(), "lkbuild")
	if err := os.Symlink(self, link); err != nil {
		t.Fatal(err)
	}
	w := watchMkimage(os.Getpid(), 20*time.Millisecond)
	// A child that is not mkimage (96 MiB) is ignored; the fake mkimage
	// touches 64 MiB.
	other := exec.Command(self, "-test.run", "^$")
	other.Env = append(os.Environ(), "BENCH_FAKE_MKIMAGE=96")
	fake := exec.Command(link, "mkimage", "--format", "kernel+initrd")
	fake.Env = append(os.Environ(), "BENCH_FAKE_MKIMAGE=64")
	if err := other.Start(); err != nil {
		t.Fatal(err)
	}
	if err := fake.Run(); err != nil {
		t.Fatal(err)
	}
	other.Wait()
	got := w()
	if got < 64<<20 || got > 90<<20 {
		t.Errorf("mkimage peak %d MiB, want 64..90 (the fake's, not the other child's)", got>>20)
	}
	if w := watchMkimage(os.Getpid(), 20*time.Millisecond); w() != -1 {
		t.Error("no mkimage running, but a peak was reported")
	}
}

// A child's peak memory is its own, not the bench's: the bench's images
// make its own peak large, and the kernel's ru_maxrss of a child started
// with vfork starts from the parent's peak.
func TestRunPeakIsTheChilds(t *testing.T) {
	big := make([]byte, 256<<20)
	for i := 0; i < len(big); i += 4096 {
		big[i] = 1
	}
	if hwm := vmHWM(os.Getpid()); hwm < 256<<20 {
		t.Fatalf("the test's own peak is %d MiB, want at least 256", hwm>>20)
	}
	big = nil
	debug.FreeOSMemory()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(self, "-test.run", "^$")
	cmd.Env = append(os.Environ(), "BENCH_FAKE_MKIMAGE=48")
	r, err := runPeak(cmd)
	if err != nil {
		t.Fatal(err)
	}
	if r.PeakRSS < 48<<20 || r.PeakRSS > 160<<20 {
		t.Errorf("child peak %d MiB, want 48..160 (the child touched 48 MiB; the test process had 256)", r.PeakRSS>>20)
	}
	if r.Wall < 400*time.Millisecond {
		t.Errorf("wall time %s, want at least the child's 400ms", r.Wall)
	}
}
