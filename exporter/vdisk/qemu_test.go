package vdisk

import (
	"bytes"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestQemuImg checks the images with qemu-img (Debian: qemu-utils): `check`
// where qemu supports it for the format, `info` for the virtual size, and
// `convert -O raw` back to the raw bytes.
func TestQemuImg(t *testing.T) {
	qemuImg := lookQemuImg(t)
	forEachCase(t, func(t *testing.T, f format, img *synthImage) {
		dir := t.TempDir()
		path := filepath.Join(dir, "disk."+f.name)
		out, err := os.Create(path)
		if err != nil {
			t.Fatal(err)
		}
		if err := f.write(out, img, img.size); err != nil {
			t.Fatal(err)
		}
		if err := out.Close(); err != nil {
			t.Fatal(err)
		}
		run := func(args ...string) ([]byte, error) {
			cmd := exec.Command(qemuImg, args...)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			stdout, err := cmd.Output()
			if err != nil {
				t.Logf("qemu-img %s: %v\n%s%s", strings.Join(args, " "), err, stdout, stderr.Bytes())
			}
			return append(stdout, stderr.Bytes()...), err
		}

		// check: qemu-img has no check for vpc.
		res, err := run("check", "-f", f.qemu, "--output=json", path)
		switch {
		case strings.Contains(string(res), "does not support checks"):
			t.Logf("qemu-img check: %s", strings.TrimSpace(string(res)))
		case err != nil:
			t.Errorf("qemu-img check failed")
		default:
			var c struct {
				CheckErrors int `json:"check-errors"`
				Corruptions int `json:"corruptions"`
				Leaks       int `json:"leaks"`
			}
			if err := json.Unmarshal(res, &c); err != nil {
				t.Fatalf("qemu-img check output: %v\n%s", err, res)
			}
			if c.CheckErrors != 0 || c.Corruptions != 0 || c.Leaks != 0 {
				t.Errorf("qemu-img check: %s", res)
			}
			t.Logf("qemu-img check: %s", bytes.Join(bytes.Fields(res), []byte(" ")))
		}

		res, err = run("info", "-f", f.qemu, "--output=json", path)
		if err != nil {
			t.Fatal("qemu-img info failed")
		}
		var info struct {
			VirtualSize int64  `json:"virtual-size"`
			Format      string `json:"format"`
		}
		if err := json.Unmarshal(res, &info); err != nil {
			t.Fatalf("qemu-img info output: %v\n%s", err, res)
		}
		if want := f.virtSize(img.size); info.VirtualSize != want {
			t.Errorf("qemu-img info: virtual size %d, want %d", info.VirtualSize, want)
		}
		t.Logf("qemu-img info: format %s, virtual size %d (raw %d)", info.Format, info.VirtualSize, img.size)

		rawPath := filepath.Join(dir, "back.raw")
		if _, err := run("convert", "-f", f.qemu, "-O", "raw", path, rawPath); err != nil {
			t.Fatal("qemu-img convert failed")
		}
		compareRaw(t, rawPath, img, f.virtSize(img.size))
	})
}

// compareRaw checks that the file at path is the raw image followed by zeros
// up to size.
func compareRaw(t *testing.T, path string, img *synthImage, size int64) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	if st.Size() != size {
		t.Errorf("converted raw image is %d bytes, want %d", st.Size(), size)
	}
	const chunk = 1 << 20
	want, got := make([]byte, chunk), make([]byte, chunk)
	for off := int64(0); off < st.Size(); off += chunk {
		n := min(chunk, st.Size()-off)
		if _, err := f.ReadAt(got[:n], off); err != nil && err != io.EOF {
			t.Fatal(err)
		}
		if err := readChunk(img, img.size, want[:n], off); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got[:n], want[:n]) {
			t.Fatalf("converted raw image differs in the MiB at offset %d", off)
		}
	}
	t.Logf("qemu-img convert -O raw: %d bytes, first %d equal to the raw image, rest zero", st.Size(), img.size)
}

// TestQemuImgHugeVHD checks that qemu sizes a dynamic VHD beyond the CHS
// limit (about 127 GiB) by the footer's size.
func TestQemuImgHugeVHD(t *testing.T) {
	if testing.Short() {
		t.Skip("scans a 130 GiB sparse image; skipped in -short mode")
	}
	qemuImg := lookQemuImg(t)
	img := &synthImage{size: 130<<30 + 512, regions: []region{{0, 4096}, {130<<30 - 100, 612}}}
	path := filepath.Join(t.TempDir(), "huge.vhd")
	out, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := WriteDynamicVHD(out, img, img.size, VHDOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
	res, err := exec.Command(qemuImg, "info", "-f", "vpc", "--output=json", path).CombinedOutput()
	if err != nil {
		t.Fatalf("qemu-img info: %v\n%s", err, res)
	}
	var info struct {
		VirtualSize int64 `json:"virtual-size"`
	}
	if err := json.Unmarshal(res, &info); err != nil {
		t.Fatalf("qemu-img info output: %v\n%s", err, res)
	}
	if want := VHDSize(img.size, false); info.VirtualSize != want || want != img.size {
		t.Errorf("qemu-img info: virtual size %d, want %d (raw %d)", info.VirtualSize, want, img.size)
	}
	t.Logf("qemu-img info: virtual size %d (raw %d)", info.VirtualSize, img.size)
}

// TestQemuImgDenseQCOW2 writes more data clusters than one refcount block
// covers (32768 clusters, 2 GiB), so the refcount table has several entries.
func TestQemuImgDenseQCOW2(t *testing.T) {
	if testing.Short() {
		t.Skip("writes a 2.3 GiB image; skipped in -short mode")
	}
	qemuImg := lookQemuImg(t)
	img := &synthImage{size: 2600 * mib, regions: []region{{0, 2300 * mib}, {2500 * mib, 1}}}
	dir := t.TempDir()
	path := filepath.Join(dir, "dense.qcow2")
	out, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := WriteQCOW2(out, img, img.size); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
	res, err := exec.Command(qemuImg, "check", "-f", "qcow2", path).CombinedOutput()
	t.Logf("qemu-img check:\n%s", res)
	if err != nil {
		t.Fatalf("qemu-img check: %v", err)
	}
	rawPath := filepath.Join(dir, "back.raw")
	if res, err := exec.Command(qemuImg, "convert", "-f", "qcow2", "-O", "raw", path, rawPath).CombinedOutput(); err != nil {
		t.Fatalf("qemu-img convert: %v\n%s", err, res)
	}
	compareRaw(t, rawPath, img, img.size)
}

// lookQemuImg returns the path of qemu-img, or skips the test.
func lookQemuImg(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("qemu-img")
	if err != nil {
		t.Skip("qemu-img not installed (apt-get install qemu-utils); skipping the qemu-img verification")
	}
	return p
}
