package parity

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"fmt"
	"path"
	"sort"
	"strings"
	"time"

	digest "github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/specs-go"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
)

// ImageTime is the modification time of every file of a stand-in image:
// neither the Unix epoch nor LinuxKit's time for created files
// (2017-04-18 16:30 UTC), so the manifests show which one a path got.
var ImageTime = time.Date(2024, time.March, 1, 12, 0, 0, 0, time.UTC)

// Image is a stand-in image: an OCI index of a linux/amd64 and a
// linux/arm64 image (same layers), and every blob it names.
type Image struct {
	Ref   string // Namespace + repository path [+ ":" tag]
	Index []byte // the OCI image index
	Blobs map[digest.Digest][]byte
	// layers are the layers' entries, bottom first; label is the
	// org.mobyproject.config label ("" if none).
	layers [][]file
	label  string
}

// Digest is the digest of the image index.
func (img *Image) Digest() digest.Digest { return digest.FromBytes(img.Index) }

// file is one entry of a stand-in layer.
type file struct {
	name     string
	typ      byte
	mode     int64
	uid, gid int
	body     string
	link     string
	major    int64
	minor    int64
	xattrs   map[string]string
}

func dir(name string, mode int64) file { return file{name: name, typ: tar.TypeDir, mode: mode} }
func reg(name string, mode int64, body string) file {
	return file{name: name, typ: tar.TypeReg, mode: mode, body: body}
}
func symlink(name, target string) file {
	return file{name: name, typ: tar.TypeSymlink, mode: 0o777, link: target}
}
func hardlink(name, target string) file {
	return file{name: name, typ: tar.TypeLink, mode: 0o755, link: target}
}

// family is the kind of image a reference names; it decides the layout.
type family int

const (
	familyKernel   family = iota // linuxkit/kernel: kernel, kernel.tar, ...
	familyHub                    // Docker Hub images: an Alpine mini root filesystem, two layers
	familyLinuxKit               // linuxkit/* packages: FROM scratch, one layer
	familyTest                   // linuxkit/test-*: built with docker, so .dockerenv and friends
)

func familyOf(repo string, roles map[Role]bool) family {
	switch {
	case roles[RoleKernel]:
		return familyKernel
	case strings.HasPrefix(repo, "linuxkit/test-"):
		return familyTest
	case strings.HasPrefix(repo, "linuxkit/"):
		return familyLinuxKit
	}
	return familyHub
}

// StandIn makes the stand-in image of a rewritten reference used in the
// given roles. The same reference and roles always give the same bytes.
func StandIn(ref string, roles map[Role]bool) (*Image, error) {
	name, tag := splitRef(strings.TrimPrefix(ref, Namespace))
	if !strings.HasPrefix(ref, Namespace) {
		return nil, fmt.Errorf("stand-in: %s is not in %s", ref, Namespace)
	}
	prog := path.Base(name)
	fam := familyOf(name, roles)
	var layers [][]file
	cfg := ocispecs.ImageConfig{}
	switch fam {
	case familyKernel:
		layers = [][]file{kernelFiles(tag)}
	case familyHub:
		layers = [][]file{alpineBase(prog, tag), hubTop(prog)}
		if prog == "docker" {
			// A third layer with no entries for the directories it
			// adds to (tools that append layers write such).
			layers = append(layers, []file{reg("usr/local/bin/dockerd-entrypoint.sh", 0o755, "#!/bin/sh\nexec dockerd \"$@\"\n")})
		}
		cfg.Cmd = []string{"/bin/sh"}
		cfg.Env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
	default:
		layers = [][]file{linuxkitFiles(name, prog, tag, fam, roles[RoleInit])}
		cfg.Cmd = []string{"/usr/bin/" + prog}
		cfg.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "STANDIN=" + prog}
		if l, ok := labels[name]; ok {
			cfg.Labels = map[string]string{"org.mobyproject.config": l}
		}
		if prog == "metadata" || prog == "dhcpcd" {
			cfg.WorkingDir = "/var/lib/" + prog
		}
	}
	return buildImage(ref, cfg, layers)
}

// labels are the org.mobyproject.config labels of a few stand-ins, in the
// spirit of the real images' (JSON, and YAML for sshd).
var labels = map[string]string{
	"linuxkit/dhcpcd":   `{"net":"host","capabilities":["CAP_NET_ADMIN","CAP_NET_BIND_SERVICE","CAP_NET_RAW","CAP_SYS_ADMIN"],"binds":["/var/run:/run","/etc/resolv.conf:/etc/resolv.conf"],"runtime":{"mkdir":["/var/run/dhcpcd"]}}`,
	"linuxkit/getty":    `{"pid":"host","net":"host","capabilities":["all"],"binds":["/dev:/dev","/etc/getty.shadow:/etc/shadow"],"tmpfs":["/tmp"],"rootfsPropagation":"shared"}`,
	"linuxkit/sysctl":   `{"net":"host","pid":"host","ipc":"host","readonly":true,"capabilities":["CAP_SYS_ADMIN"],"binds":["/etc/sysctl.d:/etc/sysctl.d"]}`,
	"linuxkit/rngd":     `{"capabilities":["CAP_SYS_ADMIN"],"devices":[{"path":"/dev/random","type":"c","major":1,"minor":8,"mode":"0666"}],"readonly":true}`,
	"linuxkit/mount":    `{"binds":["/dev:/dev","/var:/var:rshared,rbind"],"capabilities":["CAP_SYS_ADMIN"],"rootfsPropagation":"shared"}`,
	"linuxkit/format":   `{"binds":["/dev:/dev"],"capabilities":["CAP_SYS_ADMIN","CAP_MKNOD"],"net":"none"}`,
	"linuxkit/sshd":     "pid: host\nnet: host\nbinds:\n  - /root/.ssh:/root/.ssh\n  - /etc/resolv.conf:/etc/resolv.conf\ncapabilities:\n  - all\n",
	"linuxkit/metadata": `{"binds":["/dev:/dev","/var:/var","/run:/run","/etc/resolv.conf:/etc/resolv.conf"],"tmpfs":["/tmp"],"readonly":true,"net":"host","capabilities":["CAP_SYS_ADMIN","CAP_NET_ADMIN"],"runtime":{"mkdir":["/var/config"]}}`,
}

// kernelVersion derives the modules directory name from a kernel tag:
// 6.12.59 and 6.12.59-<hash> give 6.12.59-linuxkit, 6.6.71-rt 6.6.71-linuxkit-rt.
func kernelVersion(tag string) string {
	v, rest, _ := strings.Cut(tag, "-")
	if v == "" {
		v = "0.0.0"
	}
	v += "-linuxkit"
	if rest == "rt" {
		v += "-rt"
	}
	return v
}

// kernelFiles is a kernel image as LinuxKit's kernel builds lay it out:
// the kernel (also as bzImage, the older name), System.map, the modules
// tarball (written by `tar cf kernel.tar .`, so its names start with ./),
// a headers tarball and the microcode archive.
func kernelFiles(tag string) []file {
	ver := kernelVersion(tag)
	bz := make([]byte, 0x400)
	copy(bz[0x202:], "HdrS")
	copy(bz[0x300:], "stand-in kernel "+ver)
	ktar := tarBytes([]file{
		dir("./", 0o755),
		dir("./lib/", 0o755),
		dir("./lib/modules/", 0o755),
		dir("./lib/modules/"+ver+"/", 0o755),
		symlink("./lib/modules/"+ver+"/build", "/usr/src/linux-headers-"+ver),
		dir("./lib/modules/"+ver+"/kernel/", 0o755),
		dir("./lib/modules/"+ver+"/kernel/drivers/", 0o755),
		reg("./lib/modules/"+ver+"/kernel/drivers/dummy.ko", 0o644, "dummy module "+ver+"\n"),
		reg("./lib/modules/"+ver+"/kernel/drivers/wireguard.ko", 0o600, "wireguard module "+ver+"\n"),
		reg("./lib/modules/"+ver+"/modules.dep", 0o644, "kernel/drivers/dummy.ko:\nkernel/drivers/wireguard.ko:\n"),
		reg("./lib/modules/"+ver+"/modules.order", 0o644, "kernel/drivers/dummy.ko\nkernel/drivers/wireguard.ko\n"),
	})
	htar := tarBytes([]file{dir("usr/", 0o755), dir("usr/include/", 0o755), reg("usr/include/linux.h", 0o644, "/* "+ver+" */\n")})
	return []file{
		reg("System.map", 0o644, "ffffffff81000000 T _text "+ver+"\n"),
		reg("bzImage", 0o644, string(bz)),
		reg("intel-ucode-license.txt", 0o644, "stand-in microcode licence\n"),
		reg("intel-ucode.cpio", 0o644, "070701 stand-in microcode "+ver+"\n"),
		reg("kernel", 0o644, string(bz)),
		reg("kernel-headers.tar", 0o644, string(htar)),
		reg("kernel.tar", 0o644, string(ktar)),
		reg("kernel-source-info", 0o644, "KERNEL_SOURCE=stand-in "+ver+"\n"),
	}
}

// alpineBase is the first layer of a Docker Hub image: an Alpine-like mini
// root filesystem with proc/ and sys/ at 0555, etc/mtab -> ../proc/mounts,
// an empty dev/, a setuid helper and a file with a file capability.
func alpineBase(prog, tag string) []file {
	busybox := "busybox stand-in\n"
	ping := reg("bin/ping", 0o755, "ping stand-in\n")
	ping.xattrs = map[string]string{"security.capability": "\x01\x00\x00\x02\x00\x20\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"}
	return []file{
		dir("bin", 0o755),
		reg("bin/bbsuid", 0o4111, "bbsuid stand-in\n"),
		reg("bin/busybox", 0o755, busybox),
		hardlink("bin/ls", "bin/busybox"),
		ping,
		symlink("bin/sh", "/bin/busybox"),
		dir("dev", 0o755),
		dir("etc", 0o755),
		reg("etc/alpine-release", 0o644, "3.20.0\n"),
		reg("etc/group", 0o644, "root:x:0:root\ntty:x:5:\nnobody:x:65534:\n"),
		reg("etc/hostname", 0o644, "localhost\n"),
		reg("etc/hosts", 0o644, "127.0.0.1\tlocalhost localhost.localdomain\n"),
		reg("etc/motd", 0o644, "Welcome to Alpine!\n"),
		symlink("etc/mtab", "../proc/mounts"),
		reg("etc/passwd", 0o644, "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/sbin/nologin\n"),
		dir("etc/profile.d", 0o755),
		reg("etc/shadow", 0o640, "root:*::0:::::\n"),
		dir("home", 0o755),
		dir("lib", 0o755),
		reg("lib/ld-musl-x86_64.so.1", 0o755, "musl stand-in\n"),
		symlink("lib/libc.musl-x86_64.so.1", "ld-musl-x86_64.so.1"),
		dir("proc", 0o555),
		dir("root", 0o700),
		dir("run", 0o755),
		dir("sys", 0o555),
		dir("tmp", 0o1777),
		dir("usr", 0o755),
		dir("usr/bin", 0o755),
		file{name: "usr/bin/wall", typ: tar.TypeReg, mode: 0o2755, gid: 5, body: "wall stand-in\n"},
		dir("var", 0o755),
		dir("var/cache", 0o755),
		dir("var/cache/apk", 0o755),
		reg("var/cache/apk/APKINDEX.tar.gz", 0o644, "index\n"),
		dir("var/empty", 0o555),
	}
}

// hubTop is the image's own layer on top of the base, with entries for
// the directories it changes as docker and BuildKit write them: its
// program, a user's home, a whiteout of etc/motd and an opaque
// var/cache/apk.
func hubTop(prog string) []file {
	return []file{
		dir("etc", 0o755),
		reg("etc/.wh.motd", 0o644, ""),
		dir("home", 0o755),
		{name: "home/user", typ: tar.TypeDir, mode: 0o750, uid: 1000, gid: 1000},
		{name: "home/user/.profile", typ: tar.TypeReg, mode: 0o644, uid: 1000, gid: 1000, body: "export PS1='$ '\n"},
		dir("usr", 0o755),
		dir("usr/local", 0o755),
		dir("usr/local/bin", 0o755),
		reg("usr/local/bin/"+prog, 0o755, "#!/bin/sh\n# "+prog+" stand-in\n"),
		dir("var", 0o755),
		dir("var/cache", 0o755),
		dir("var/cache/apk", 0o755),
		reg("var/cache/apk/.wh..wh..opq", 0o644, ""),
	}
}

// linuxkitFiles is a LinuxKit package image (FROM scratch, one layer).
// Init images carry lib/apk/db/installed; linuxkit/firmware has a merged
// /usr (lib -> usr/lib); test images come from `docker export` and so have
// .dockerenv, Dockerfile, dev/console and etc/hostname.
func linuxkitFiles(name, prog, tag string, fam family, init bool) []file {
	owner := file{name: "etc/" + prog + "/owned", typ: tar.TypeReg, mode: 0o640, uid: 100, gid: 101, body: "owned by 100:101\n"}
	fs := []file{
		dir("bin", 0o755),
		reg("bin/busybox", 0o755, "busybox stand-in\n"),
		hardlink("bin/cat", "bin/busybox"),
		symlink("bin/sh", "/bin/busybox"),
		dir("etc", 0o755),
		reg("etc/hosts", 0o600, "127.0.0.1 "+prog+"\n"),
		dir("etc/"+prog, 0o750),
		reg("etc/"+prog+"/"+prog+".conf", 0o600, "# "+name+":"+tag+"\n"),
		owner,
		reg("etc/resolv.conf", 0o644, "nameserver 192.0.2.53\n"),
		dir("usr", 0o755),
		dir("usr/bin", 0o755),
		reg("usr/bin/"+prog, 0o755, "#!/bin/sh\n# "+name+":"+tag+"\n"),
		reg("usr/bin/passwd", 0o4755, "passwd stand-in\n"),
		dir("var", 0o755),
		dir("var/lib", 0o755),
		dir("var/lib/"+prog, 0o700),
	}
	if prog == "firmware" {
		fs = append(fs, symlink("lib", "usr/lib"), dir("usr/lib", 0o755), dir("usr/lib/firmware", 0o755),
			reg("usr/lib/firmware/standin.bin", 0o644, "firmware\n"))
	} else {
		fs = append(fs, dir("lib", 0o755), reg("lib/ld-musl-x86_64.so.1", 0o755, "musl stand-in\n"))
	}
	if init {
		fs = append(fs, dir("lib/apk", 0o755), dir("lib/apk/db", 0o755),
			reg("lib/apk/db/installed", 0o644, fmt.Sprintf("C:Q1%s=\nP:%s\nV:1.0-r0\nA:x86_64\nF:usr/bin\nR:%s\n\nC:Q1musl=\nP:musl\nV:1.2.5-r0\nA:x86_64\nF:lib\nR:ld-musl-x86_64.so.1\n", prog, prog, prog)))
		if prog == "firmware" {
			// lib is a symlink here: the database lives under usr/lib.
			for i := range fs {
				if strings.HasPrefix(fs[i].name, "lib/apk") {
					fs[i].name = "usr/" + fs[i].name
				}
			}
		}
	}
	if fam == familyTest {
		fs = append(fs, reg(".dockerenv", 0o755, ""), reg("Dockerfile", 0o644, "FROM scratch\n"),
			dir("dev", 0o755), file{name: "dev/console", typ: tar.TypeChar, mode: 0o600, major: 5, minor: 1},
			dir("dev/shm", 0o1777), reg("dev/shm/.keep", 0o644, ""),
			reg("etc/hostname", 0o644, "builder\n"), dir("proc", 0o555), dir("sys", 0o555))
	}
	sort.SliceStable(fs, func(i, j int) bool { return fs[i].name < fs[j].name })
	return fs
}

// tarBytes writes the files as a tar archive with fixed times.
func tarBytes(fs []file) []byte {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range fs {
		h := &tar.Header{Name: f.name, Typeflag: f.typ, Mode: f.mode, Uid: f.uid, Gid: f.gid, Linkname: f.link,
			Devmajor: f.major, Devminor: f.minor, ModTime: ImageTime, Format: tar.FormatPAX}
		if f.typ == tar.TypeReg {
			h.Size = int64(len(f.body))
		}
		if len(f.xattrs) > 0 {
			h.PAXRecords = map[string]string{}
			for k, v := range f.xattrs {
				h.PAXRecords["SCHILY.xattr."+k] = v
			}
		}
		if err := tw.WriteHeader(h); err != nil {
			panic(fmt.Sprintf("stand-in %s: %v", f.name, err))
		}
		if f.typ == tar.TypeReg {
			_, _ = tw.Write([]byte(f.body))
		}
	}
	_ = tw.Close()
	return buf.Bytes()
}

// buildImage assembles uncompressed layers (so the digests do not depend
// on a compressor's version), the config, the manifest and the index.
func buildImage(ref string, cfg ocispecs.ImageConfig, layers [][]file) (*Image, error) {
	img := &Image{Ref: ref, Blobs: map[digest.Digest][]byte{}, layers: layers, label: cfg.Labels["org.mobyproject.config"]}
	add := func(mt string, dt []byte) ocispecs.Descriptor {
		d := digest.FromBytes(dt)
		img.Blobs[d] = dt
		return ocispecs.Descriptor{MediaType: mt, Digest: d, Size: int64(len(dt))}
	}
	var descs []ocispecs.Descriptor
	var diffIDs []digest.Digest
	for _, l := range layers {
		d := add(ocispecs.MediaTypeImageLayer, tarBytes(l))
		descs = append(descs, d)
		diffIDs = append(diffIDs, d.Digest)
	}
	created := ImageTime
	var manifests []ocispecs.Descriptor
	// Two platforms with the same layers, as multi-arch images are: an
	// oci volume may ask for both.
	for _, arch := range []string{"amd64", "arm64"} {
		config, err := json.Marshal(ocispecs.Image{
			Created:  &created,
			Platform: ocispecs.Platform{Architecture: arch, OS: "linux"},
			Config:   cfg,
			RootFS:   ocispecs.RootFS{Type: "layers", DiffIDs: diffIDs},
		})
		if err != nil {
			return nil, err
		}
		manifest, err := json.Marshal(ocispecs.Manifest{
			Versioned: specs.Versioned{SchemaVersion: 2},
			MediaType: ocispecs.MediaTypeImageManifest,
			Config:    add(ocispecs.MediaTypeImageConfig, config),
			Layers:    descs,
		})
		if err != nil {
			return nil, err
		}
		md := add(ocispecs.MediaTypeImageManifest, manifest)
		md.Platform = &ocispecs.Platform{Architecture: arch, OS: "linux"}
		manifests = append(manifests, md)
	}
	var err error
	img.Index, err = json.Marshal(ocispecs.Index{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: ocispecs.MediaTypeImageIndex,
		Manifests: manifests,
	})
	return img, err
}

// StandIns makes the stand-in of every image the inputs use.
func StandIns(inputs []Input) ([]*Image, error) {
	uses, err := Images(inputs)
	if err != nil {
		return nil, err
	}
	var imgs []*Image
	for _, u := range uses {
		img, err := StandIn(u.Ref, u.Roles)
		if err != nil {
			return nil, err
		}
		imgs = append(imgs, img)
	}
	return imgs, nil
}

// whiteoutPrefix marks a whiteout in a layer; whiteoutOpaque, as a
// directory's entry, hides every lower layer's entry below it.
const (
	whiteoutPrefix = ".wh."
	whiteoutOpaque = ".wh..wh..opq"
)

// flatten applies the image's layers in order and returns the paths of
// the result. With opaque false the opaque markers are ignored, as
// go-containerregistry's mutate.Extract (LinuxKit's flattening) ignores
// them; with opaque true they hide the lower layers' entries below their
// directory, as the OCI image spec's layer rules (and BuildKit) do.
func (img *Image) flatten(opaque bool) map[string]bool {
	tree := map[string]bool{}
	remove := func(p string, self bool) {
		for q := range tree {
			if (self && q == p) || strings.HasPrefix(q, p+"/") {
				delete(tree, q)
			}
		}
	}
	for _, l := range img.layers {
		// Whiteouts apply to the lower layers only: first remove, then add.
		for _, f := range l {
			name := path.Clean(f.name)
			dir, base := path.Dir(name), path.Base(name)
			switch {
			case base == whiteoutOpaque:
				if opaque {
					remove(dir, false)
				}
			case strings.HasPrefix(base, whiteoutPrefix):
				remove(path.Join(dir, strings.TrimPrefix(base, whiteoutPrefix)), true)
			}
		}
		for _, f := range l {
			name := path.Clean(f.name)
			if strings.HasPrefix(path.Base(name), whiteoutPrefix) {
				continue
			}
			if f.typ != tar.TypeDir {
				remove(name, false) // a non-directory replaces a directory
			}
			tree[name] = true
		}
	}
	return tree
}

// OpaqueHidden returns the paths of the image that LinuxKit's flattening
// keeps although a later layer made a directory above them opaque.
func (img *Image) OpaqueHidden() map[string]bool {
	oci := img.flatten(true)
	out := map[string]bool{}
	for p := range img.flatten(false) {
		if !oci[p] {
			out[p] = true
		}
	}
	return out
}

// ImpliedDirs returns the directories of the image whose last change is a
// layer that adds something below them without an entry for the directory
// itself, when an earlier layer has an entry for it. Extracting such a
// layer (containerd's applier, which BuildKit uses) creates the directory
// in the layer's snapshot with the lower entry's mode, owner and time, then
// creating its children gives it the time of the extraction; LinuxKit's
// flattening keeps the earlier layer's entry.
func (img *Image) ImpliedDirs() map[string]bool {
	last := map[string]bool{} // directory -> its last change is implied
	entry := map[string]bool{}
	for _, l := range img.layers {
		own := map[string]bool{}
		for _, f := range l {
			own[path.Clean(f.name)] = true
		}
		for _, f := range l {
			name := path.Clean(f.name)
			if f.typ == tar.TypeDir {
				last[name] = false
				entry[name] = true
			}
			for d := path.Dir(name); d != "." && d != "/"; d = path.Dir(d) {
				if !own[d] && entry[d] {
					last[d] = true
				}
			}
		}
	}
	out := map[string]bool{}
	for d, implied := range last {
		if implied {
			out[d] = true
		}
	}
	return out
}

// FileBody returns the contents of the regular file at p (no symlinks
// followed) as the image's last layer holding it has them.
func (img *Image) FileBody(p string) (string, bool) {
	body, ok := "", false
	for _, l := range img.layers {
		for _, f := range l {
			if path.Clean(f.name) == p {
				body, ok = f.body, f.typ == tar.TypeReg
			}
		}
	}
	return body, ok
}
