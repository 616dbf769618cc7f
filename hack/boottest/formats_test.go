package boottest

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lkbuild/lkbuild/formats"
	"github.com/lkbuild/lkbuild/internal/cli"
	"github.com/lkbuild/lkbuild/internal/qemu"
	"github.com/lkbuild/lkbuild/internal/testenv"
)

// bootFormat says what a target's artifact is, as qemu.Detect must find it.
type bootFormat struct {
	target string
	file   string // the artifact, after the base name
	kind   qemu.Kind
	fw     qemu.Firmware
	driver string // qemu's format driver, for disks
	// builtin selects the stand-in kernel with its drivers built in, for
	// formats whose root filesystem is the medium itself.
	builtin bool
}

// detected is what qemu.Detect must find in the artifact of each target
// that TestBootFormats boots: the bootable targets whose medium carries
// everything, command line included, each booted as the machine's only
// drive. The artifact's name, the firmware and whether the root is the
// medium come from the table of package formats.
var detected = map[string]struct {
	kind   qemu.Kind
	driver string
}{
	"uki":            {qemu.UKI, ""},
	"raw-efi":        {qemu.Disk, "raw"},
	"qcow2-efi":      {qemu.Disk, "qcow2"},
	"raw-bios":       {qemu.Disk, "raw"},
	"qcow2-bios":     {qemu.Disk, "qcow2"},
	"vhd":            {qemu.Disk, "vpc"},
	"dynamic-vhd":    {qemu.Disk, "vpc"},
	"vmdk":           {qemu.Disk, "vmdk"},
	"gcp":            {qemu.Disk, "raw"},
	"aws":            {qemu.Disk, "raw"},
	"iso-efi-initrd": {qemu.ISO, ""},
	"iso-bios":       {qemu.ISO, ""},
	"iso-efi":        {qemu.ISO, ""},
}

// bootedElsewhere are the targets booted by a test of their own instead.
var bootedElsewhere = map[string]string{
	"kernel+initrd": "TestBootMinimalKernelInitrd",
}

// bootFormats are the targets TestBootFormats boots, sorted by name.
func bootFormats() []bootFormat {
	var out []bootFormat
	for _, tg := range formats.All() {
		if d, ok := detected[tg.Name]; ok {
			bf := formatOf(tg)
			bf.kind, bf.driver = d.kind, d.driver
			out = append(out, bf)
		}
	}
	return out
}

// formatOf is what the table says of the target's artifact.
func formatOf(tg formats.Target) bootFormat {
	bf := bootFormat{target: tg.Name, builtin: tg.Boot == formats.BootMedium}
	if own := tg.Own(); len(own) > 0 {
		bf.file = own[0]
	}
	if tg.Firmware == formats.EFI {
		bf.fw = qemu.EFI
	}
	return bf
}

// TestEveryTargetBooted: every target of the table is booted by a test
// here, or the table says why not; and every target booted here is one of
// the table's. It needs no daemon.
func TestEveryTargetBooted(t *testing.T) {
	for _, tg := range formats.All() {
		_, here := detected[tg.Name]
		_, elsewhere := bootedElsewhere[tg.Name]
		switch {
		case tg.NoBootTest != "" && (here || elsewhere):
			t.Errorf("%s is booted, but the table says it has no boot test: %s", tg.Name, tg.NoBootTest)
		case tg.NoBootTest == "" && !here && !elsewhere:
			t.Errorf("%s: no boot test (add it to TestBootFormats, or give the reason in the table's NoBootTest)", tg.Name)
		case here && (tg.Boot == formats.BootNone || tg.Firmware == formats.AnyLoader):
			t.Errorf("%s: TestBootFormats boots what firmware boots, the table says %s does not", tg.Name, tg.Name)
		}
	}
	for name := range detected {
		if _, ok := formats.Lookup(name); !ok {
			t.Errorf("TestBootFormats boots %s, which is no target", name)
		}
	}
	for name := range bootedElsewhere {
		if _, ok := formats.Lookup(name); !ok {
			t.Errorf("%s boots %s, which is no target", bootedElsewhere[name], name)
		}
	}
}

// The systems booted: both are examples/minimal.yml with the serial
// console last; the second runs on the stand-in kernel with built-in
// drivers.
const (
	formatsYAML = "hack/boottest/testdata/minimal-serial.yml"
	builtinYAML = "hack/boottest/testdata/minimal-builtin.yml"
)

func (bf bootFormat) yaml() string {
	if bf.builtin {
		return builtinYAML
	}
	return formatsYAML
}

func (bf bootFormat) artifact(out string) string {
	name := strings.TrimSuffix(filepath.Base(bf.yaml()), ".yml")
	return filepath.Join(out, name+bf.file)
}

// TestBootFormats builds every bootable format of the minimal system and
// boots each with `lkbuild run` (cli.Run: TCG; OVMF for EFI) to the
// service marker, after checking that qemu.Detect recognises the artifact
// (kind, firmware, qemu driver) from its contents. It then
// builds the format again without the cache and checks the bytes are the
// same (same SOURCE_DATE_EPOCH).
func TestBootFormats(t *testing.T) {
	env := testenv.Integration(t)
	requireQEMU(t)
	for _, bf := range bootFormats() {
		t.Run(bf.target, func(t *testing.T) {
			t.Parallel()
			art := bf.artifact(buildFormat(t, env, bf, false))
			boot := art
			if bf.target == "gcp" {
				boot = untarDisk(t, art)
			}
			a, err := qemu.Detect(boot)
			if err != nil {
				t.Fatal(err)
			}
			if a.Kind != bf.kind || a.Firmware != bf.fw || a.Format != bf.driver {
				t.Fatalf("detected %v, %v, driver %q; want %v, %v, driver %q", a.Kind, a.Firmware, a.Format, bf.kind, bf.fw, bf.driver)
			}
			// by content alone: the same under a name without lkbuild's suffixes
			anon := filepath.Join(t.TempDir(), "artifact")
			if err := os.Symlink(boot, anon); err != nil {
				t.Fatal(err)
			}
			if b, err := qemu.Detect(anon); err != nil || b.Kind != a.Kind || b.Firmware != a.Firmware || b.Format != a.Format {
				t.Errorf("without its name: detected %+v, %v; with it %+v", b, err, a)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			defer cancel()
			var log bytes.Buffer
			start := time.Now()
			con, err := Run(ctx, cli.RunOptions{Path: boot}, &log)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(con.Close)
			if err := con.WaitFor(4*time.Minute, minimalMarkers...); err != nil {
				t.Fatalf("%v\n--- serial console ---\n%s", err, con.Output())
			}
			t.Logf("%s booted to the service marker in %s", bf.target, time.Since(start).Round(time.Second))
			cancel()

			again := bf.artifact(buildFormat(t, env, bf, true))
			if a, b := sum(t, art), sum(t, again); a != b {
				t.Errorf("two builds with the same SOURCE_DATE_EPOCH differ: %s, then %s without the cache", a, b)
			}
		})
	}
}

func requireQEMU(t *testing.T) {
	t.Helper()
	for _, f := range []string{"/usr/bin/qemu-system-x86_64", qemu.OVMFCode, qemu.OVMFVars} {
		if _, err := os.Stat(f); err != nil {
			if testenv.Required() {
				t.Fatalf("%s missing (make env installs qemu-system-x86 and ovmf)", f)
			}
			t.Skipf("%s missing", f)
		}
	}
}

func buildFormat(t *testing.T, env testenv.Env, bf bootFormat, noCache bool) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "out")
	if noCache {
		defer testenv.NoCacheBuild(t)()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	if err := cli.Build(ctx, cli.BuildOptions{File: filepath.Join(env.Root, bf.yaml()), Context: env.Root,
		Target: bf.target, Output: out, Addr: env.Addr, Helper: env.Helper, Progress: "quiet", NoCache: noCache,
		BuildArgs: []string{"SOURCE_DATE_EPOCH=1700000000"}}); err != nil {
		t.Fatalf("building %s: %v", bf.target, err)
	}
	return out
}

// untarDisk extracts disk.raw from a gcp image.
func untarDisk(t *testing.T, tgz string) string {
	t.Helper()
	f, err := os.Open(tgz)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(zr)
	hdr, err := tr.Next()
	if err != nil || hdr.Name != "disk.raw" {
		t.Fatalf("first entry %v (%v), want disk.raw", hdr, err)
	}
	dst := filepath.Join(t.TempDir(), "disk.raw")
	out, err := os.Create(dst)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	if _, err := io.Copy(out, tr); err != nil {
		t.Fatal(err)
	}
	if _, err := tr.Next(); err != io.EOF {
		t.Errorf("more than disk.raw in the gcp tar (%v)", err)
	}
	return dst
}

func sum(t *testing.T, p string) string {
	t.Helper()
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// TestBootISOBIOSFromDisk attaches the iso-bios image as a hard disk (a USB
// stick written with dd) instead of a CD: its isohybrid MBR must start
// ISOLINUX, which loads the kernel. The root filesystem stays root=/dev/sr0,
// as in LinuxKit, so the test stops at the kernel's command line.
func TestBootISOBIOSFromDisk(t *testing.T) {
	env := testenv.Integration(t)
	requireQEMU(t)
	tg, _ := formats.Lookup("iso-bios")
	bf := formatOf(tg)
	iso := bf.artifact(buildFormat(t, env, bf, false))
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var log bytes.Buffer
	a, err := qemu.Detect(iso)
	if err != nil {
		t.Fatal(err)
	}
	a.Kind, a.Format, a.Firmware = qemu.Disk, "raw", qemu.BIOS
	con, err := Boot(ctx, a, qemu.Config{Arch: "amd64", Scratch: t.TempDir()}, &log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(con.Close)
	if err := con.WaitForInOrder(2*time.Minute, "Booting from Hard Disk", "ISOLINUX", "Command line: BOOT_IMAGE=/boot/kernel"); err != nil {
		t.Fatalf("%v\n--- serial console ---\n%s", err, con.Output())
	}
}
