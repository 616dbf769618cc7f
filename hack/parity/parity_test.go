package parity

import (
	"archive/tar"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/lkbuild/lkbuild/spec"
)

type tarEntry struct {
	name   string
	typ    byte
	mode   int64
	uid    int
	mtime  int64
	body   string
	link   string
	xattrs map[string]string
}

func makeTar(t *testing.T, es []tarEntry) *bytes.Buffer {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range es {
		h := &tar.Header{Name: e.name, Typeflag: e.typ, Mode: e.mode, Uid: e.uid, Linkname: e.link,
			ModTime: time.Unix(e.mtime, 0), Size: int64(len(e.body)), Format: tar.FormatPAX}
		for k, v := range e.xattrs {
			if h.PAXRecords == nil {
				h.PAXRecords = map[string]string{}
			}
			h.PAXRecords["SCHILY.xattr."+k] = v
		}
		if e.typ != tar.TypeReg {
			h.Size = 0
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if e.typ == tar.TypeReg {
			tw.Write([]byte(e.body))
		}
	}
	tw.Close()
	return &buf
}

// TestReadExtractsInOrder checks the extraction rules on a stream that
// writes paths several times, as LinuxKit's does.
func TestReadExtractsInOrder(t *testing.T) {
	buf := makeTar(t, []tarEntry{
		{name: "./", typ: tar.TypeDir, mode: 0o700, mtime: 5},
		{name: "etc/hosts", typ: tar.TypeReg, mode: 0o600, mtime: 1, body: "image\n"}, // etc is implicit
		{name: "etc/hosts", typ: tar.TypeReg, mode: 0o644, mtime: 2, body: "replaced\n"},
		{name: "proc", typ: tar.TypeDir, mode: 0o555, mtime: 1},
		{name: "proc/x", typ: tar.TypeReg, mode: 0o644, mtime: 1},
		{name: "proc", typ: tar.TypeDir, mode: 0o755, mtime: 2}, // updates, keeps proc/x
		{name: "lib/modules/", typ: tar.TypeDir, mode: 0o755, mtime: 1},
		{name: "lib/modules/m.ko", typ: tar.TypeReg, mode: 0o644, mtime: 1, body: "ko"},
		{name: "lib", typ: tar.TypeSymlink, link: "usr/lib", mtime: 3}, // over a full directory: dropped
		{name: "usr/lib", typ: tar.TypeDir, mode: 0o755, mtime: 3},
		{name: "run", typ: tar.TypeSymlink, link: "/usr/lib", mtime: 3},
		{name: "run/via-link", typ: tar.TypeReg, mode: 0o600, mtime: 3, body: "x"}, // lands in usr/lib
		{name: "bin/busybox", typ: tar.TypeReg, mode: 0o755, mtime: 4, body: "bb", xattrs: map[string]string{"user.a": "1"}},
		{name: "bin/ls", typ: tar.TypeLink, link: "bin/busybox", mode: 0o600, mtime: 9},
		{name: "bin/ghost", typ: tar.TypeLink, link: "bin/none"},
		{name: "empty", typ: tar.TypeDir, mode: 0o755},
		{name: "empty", typ: tar.TypeReg, mode: 0o644, body: "now a file"}, // an empty directory is replaced
	})
	m, err := Read(buf, func(h *tar.Header) bool { return h.Name == "etc/hosts" })
	if err != nil {
		t.Fatal(err)
	}
	want := `. dir 0700 0:0 5
bin dir 0755 0:0 0 implicit
bin/busybox file 0755 0:0 4 2 3b64db95cb55c763 hardlink=bin/busybox xattr=user.a=6b86b273ff34fce1
bin/ls file 0755 0:0 4 2 3b64db95cb55c763 hardlink=bin/busybox xattr=user.a=6b86b273ff34fce1
empty file 0644 0:0 0 10 92af885f330ed4b1
etc dir 0755 0:0 0 implicit
etc/hosts file 0644 0:0 2 9 e2208f01e42b2cab
lib dir 0755 0:0 0 implicit
lib/modules dir 0755 0:0 1
lib/modules/m.ko file 0644 0:0 1 2 1fdbc74ccfd68d07
proc dir 0755 0:0 2
proc/x file 0644 0:0 1 0 e3b0c44298fc1c14
run symlink - 0:0 3 -> /usr/lib
usr dir 0755 0:0 0 implicit
usr/lib dir 0755 0:0 3
usr/lib/via-link file 0600 0:0 3 1 2d711642b726b044
`
	got := string(m.Format())
	wantDropped := "# dropped: lib: symlink over a directory that is not empty\n# dropped: bin/ghost: hardlink to bin/none: no such file\n"
	if got != wantDropped+want {
		t.Errorf("manifest:\n%s\nwant:\n%s%s", got, wantDropped, want)
	}
	if string(m.Contents["e2208f01e42b2cab"]) != "replaced\n" || len(m.Contents) != 2 {
		t.Errorf("kept contents %q", m.Contents)
	}
}

func TestFormatParseRoundTrip(t *testing.T) {
	m := &Manifest{Entries: map[string]*Entry{}, Dropped: []string{"x: dropped"}}
	for _, e := range []*Entry{
		{Path: ".", Type: "dir", Mode: 0o755},
		{Path: "a b/c\"d", Type: "file", Mode: 0o4755, UID: 1, GID: 2, MTime: 3, Size: 4, SHA256: "0123456789abcdef", Hardlink: "a b/c\"d", Xattrs: []string{"security.capability=00"}},
		{Path: "l", Type: "symlink", Target: "/x y", MTime: 1},
		{Path: "dev/null", Type: "char", Mode: 0o666, Dev: "1,3"},
		{Path: "d", Type: "dir", Mode: 0o1777, Implicit: true},
	} {
		m.Entries[e.Path] = e
	}
	rec, err := Parse(m.Format("input: x.yml", "linuxkit: abc"))
	if err != nil {
		t.Fatal(err)
	}
	if rec.Header["input"] != "x.yml" || !reflect.DeepEqual(rec.Dropped, m.Dropped) {
		t.Errorf("header %v dropped %v", rec.Header, rec.Dropped)
	}
	if !reflect.DeepEqual(rec.Manifest.Entries, m.Entries) {
		for p, e := range m.Entries {
			if !reflect.DeepEqual(rec.Manifest.Entries[p], e) {
				t.Errorf("%s: parsed %+v, want %+v", p, rec.Manifest.Entries[p], e)
			}
		}
	}
	rec, err = Parse([]byte("# input: bad.yml\n# error: invalid config\n"))
	if err != nil || rec.Error != "invalid config" || rec.Manifest != nil {
		t.Errorf("error manifest: %+v, %v", rec, err)
	}
}

func TestRewrite(t *testing.T) {
	for ref, want := range map[string]string{
		"busybox":                       Namespace + "library/busybox",
		"busybox:1.36":                  Namespace + "library/busybox:1.36",
		"linuxkit/init:abc":             Namespace + "linuxkit/init:abc",
		"docker.io/library/alpine:3.20": Namespace + "library/alpine:3.20",
		"quay.io/x/y:1":                 Namespace + "quay.io/x/y:1",
		"localhost:5000/x:1":            Namespace + "localhost:5000/x:1",
		"Not An Image":                  "Not An Image",
	} {
		if got := Rewrite(ref); got != want {
			t.Errorf("Rewrite(%q) = %q, want %q", ref, got, want)
		}
	}
}

// TestPrepare checks that only image references change in the YAML and
// that relative sources get stand-ins.
func TestPrepare(t *testing.T) {
	corpus := t.TempDir()
	yml := "kernel:\n  image: linuxkit/kernel:6.12.59 # the kernel\ninit:\n  - \"linuxkit/init:abc\"\nonboot:\n  - name: a\n    image: 'busybox'\nfiles:\n  - path: etc/x\n    source: ./sub/check.sh\n  - path: etc/y\n    source: ~/.ssh/id.pub\n    optional: true\n  - path: etc/z\n    source: conf.toml\n"
	if err := os.WriteFile(filepath.Join(corpus, "a.yml"), []byte(yml), 0o644); err != nil {
		t.Fatal(err)
	}
	p, err := Prepare(NewInput(corpus, "a.yml"), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(p.Files[0])
	want := strings.NewReplacer("linuxkit/kernel:", Namespace+"linuxkit/kernel:", "linuxkit/init:", Namespace+"linuxkit/init:",
		"'busybox'", "'"+Namespace+"library/busybox'").Replace(yml)
	if string(got) != want {
		t.Errorf("rewritten:\n%s\nwant:\n%s", got, want)
	}
	if fi, err := os.Stat(filepath.Join(p.Context, "sub/check.sh")); err != nil || fi.Mode().Perm() != 0o755 {
		t.Errorf("sub/check.sh: %v %v", fi, err)
	}
	if target, err := os.Readlink(filepath.Join(p.Context, "conf.toml")); err != nil || target != "conf.toml.real" {
		t.Errorf("conf.toml -> %q, %v", target, err)
	}
	if _, err := os.Lstat(filepath.Join(p.Context, "~")); err == nil {
		t.Error("a ~/ source got a stand-in")
	}
	cfg, err := spec.Load(spec.Source{Filename: "a.yml", Data: got})
	if err != nil || cfg.Kernel.Image != Namespace+"linuxkit/kernel:6.12.59" {
		t.Errorf("rewritten YAML: %v %v", cfg, err)
	}
}

// TestPrepareYAMLPositions: the references are found at yaml.v3's
// positions, which count a lone CR, NEL, LS and PS as line breaks and
// columns in characters.
func TestPrepareYAMLPositions(t *testing.T) {
	for _, br := range []string{"\r", "\r\n", "\u0085", "\u2028"} {
		corpus := t.TempDir()
		yml := strings.ReplaceAll("kernel:\n  image: linuxkit/kernel:6.12.59\nonboot:\n  - {name: \"é日本\", image: busybox:1.36, command: [/bin/true]}\n", "\n", br)
		if err := os.WriteFile(filepath.Join(corpus, "a.yml"), []byte(yml), 0o644); err != nil {
			t.Fatal(err)
		}
		p, err := Prepare(NewInput(corpus, "a.yml"), t.TempDir())
		if err != nil {
			t.Errorf("break %q: %v", br, err)
			continue
		}
		got, _ := os.ReadFile(p.Files[0])
		want := strings.NewReplacer("linuxkit/kernel:", Namespace+"linuxkit/kernel:", "image: busybox", "image: "+Namespace+"library/busybox").Replace(yml)
		if string(got) != want {
			t.Errorf("break %q: rewritten:\n%q\nwant:\n%q", br, got, want)
		}
	}
}

// TestPrepareMergeKeys checks that an image reference reached through a
// merge key or an alias is rewritten, once, at its anchor.
func TestPrepareMergeKeys(t *testing.T) {
	corpus := t.TempDir()
	yml := "kernel:\n  <<: {image: linuxkit/kernel:6.12.59, cmdline: \"c\"}\n" +
		"init:\n  - &init linuxkit/init:abc\n  - *init\n" +
		"onboot:\n  - &base\n    name: a\n    image: &bb busybox:1.36\n" +
		"  - <<: [{name: x}, {image: alpine:3.20}]\n    name: b\n" +
		"  - <<: *base\n    name: c\n" +
		"services:\n  - name: d\n    <<: {image: linuxkit/getty:abc}\n    image: *bb\n"
	if err := os.WriteFile(filepath.Join(corpus, "a.yml"), []byte(yml), 0o644); err != nil {
		t.Fatal(err)
	}
	p, err := Prepare(NewInput(corpus, "a.yml"), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(p.Files[0])
	want := strings.NewReplacer("linuxkit/kernel:", Namespace+"linuxkit/kernel:", "&init linuxkit/init:", "&init "+Namespace+"linuxkit/init:",
		"&bb busybox", "&bb "+Namespace+"library/busybox", "image: alpine", "image: "+Namespace+"library/alpine").Replace(yml)
	if string(got) != want {
		t.Errorf("rewritten:\n%s\nwant:\n%s", got, want)
	}
	// linuxkit/getty is hidden by the entry's own image key: not used.
	uses, err := Images([]Input{NewInput(corpus, "a.yml")})
	if err != nil {
		t.Fatal(err)
	}
	var refs []string
	for _, u := range uses {
		refs = append(refs, strings.TrimPrefix(u.Ref, Namespace))
	}
	if w := []string{"library/alpine:3.20", "library/busybox:1.36", "linuxkit/init:abc", "linuxkit/kernel:6.12.59"}; !reflect.DeepEqual(refs, w) {
		t.Errorf("images %v, want %v", refs, w)
	}
	cfg, err := spec.Load(spec.Source{Filename: "a.yml", Data: got})
	if err != nil || cfg.Kernel.Image != Namespace+"linuxkit/kernel:6.12.59" || cfg.Onboot[1].Image != Namespace+"library/alpine:3.20" {
		t.Fatalf("rewritten YAML: %v %v", cfg, err)
	}
	if f := ForeignImages(cfg); f != nil {
		t.Errorf("ForeignImages of the rewritten YAML: %v", f)
	}
	orig, err := spec.Load(spec.Source{Filename: "a.yml", Data: []byte(yml)})
	if err != nil {
		t.Fatal(err)
	}
	if f, w := ForeignImages(orig), []string{"linuxkit/kernel:6.12.59", "linuxkit/init:abc", "linuxkit/init:abc", "busybox:1.36", "alpine:3.20", "busybox:1.36", "busybox:1.36"}; !reflect.DeepEqual(f, w) {
		t.Errorf("ForeignImages of the original YAML: %v, want %v", f, w)
	}
}

func TestStandInsDeterministic(t *testing.T) {
	roles := map[Role]bool{RoleContainer: true}
	a, err := StandIn(Namespace+"linuxkit/getty:abc", roles)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := StandIn(Namespace+"linuxkit/getty:abc", roles)
	if a.Digest() != b.Digest() || !reflect.DeepEqual(a.Blobs, b.Blobs) {
		t.Error("the same reference gave different images")
	}
	if c, _ := StandIn(Namespace+"linuxkit/getty:def", roles); c.Digest() == a.Digest() {
		t.Error("different tags gave the same image")
	}
	k, err := StandIn(Namespace+"linuxkit/kernel:6.12.59", map[Role]bool{RoleKernel: true})
	if err != nil {
		t.Fatal(err)
	}
	var kernelTar []byte
	for _, dt := range k.Blobs {
		tr := tar.NewReader(bytes.NewReader(dt))
		for {
			h, err := tr.Next()
			if err != nil {
				break
			}
			if h.Name == "kernel.tar" {
				kernelTar = make([]byte, h.Size)
				tr.Read(kernelTar)
			}
		}
	}
	if !bytes.Contains(kernelTar, []byte("./lib/modules/6.12.59-linuxkit/modules.dep")) {
		t.Error("kernel stand-in: kernel.tar lacks ./lib/modules/6.12.59-linuxkit/modules.dep")
	}
	if _, err := StandIn("docker.io/library/busybox", roles); err == nil {
		t.Error("a reference outside the namespace got a stand-in")
	}
}

func TestCompareRules(t *testing.T) {
	parse := func(lines ...string) *Manifest {
		rec, err := Parse([]byte(strings.Join(lines, "\n") + "\n"))
		if err != nil {
			t.Fatal(err)
		}
		return rec.Manifest
	}
	want := parse(
		"etc dir 4700 0:0 1492533000",
		"etc/motd file 4600 0:0 1 3 aaaa",
		"containers/onboot/000-a/config.json file 0644 0:0 1 10 c1",
		"containers/volumes/v/lower/blobs/sha256/"+strings.Repeat("a", 64)+" file 0644 0:0 1 10 b1",
		"containers/onboot/000-a/rootfs/etc/mtab symlink - 0:0 1 -> ../proc/mounts",
		"only/here dir 0755 0:0 1",
	)
	got := parse(
		"etc dir 0755 0:0 1709294400",
		"etc/motd file 0600 0:0 1 3 aaaa",
		"containers/onboot/000-a/config.json file 0644 0:0 1 10 c2",
		"containers/volumes/v/lower/blobs/sha256/"+strings.Repeat("b", 64)+" file 0644 0:0 1 10 b2",
		"containers/onboot/000-a/rootfs/etc/mtab symlink - 0:0 1 -> /proc/mounts",
	)
	diffs := Compare(want, got,
		map[string][]byte{"c1": []byte(`{"ociVersion":"1.2.1","mounts":[{"source":"v"}]}`)},
		map[string][]byte{"c2": []byte(`{"ociVersion":"1.3.0","mounts":[{"source":"/containers/volumes/v/merged"}]}`)})
	cfg, err := spec.Load(spec.Source{Filename: "x.yml", Data: []byte(
		"files:\n  - path: /etc/motd\n    contents: hi\n    mode: \"4600\"\nvolumes:\n  - name: v\n    image: busybox\n    format: oci\n")})
	if err != nil {
		t.Fatal(err)
	}
	ApplyRules(&RuleInput{Config: cfg, Want: want, Got: got}, diffs)
	var got2 []string
	for _, d := range diffs {
		for _, f := range d.Findings {
			got2 = append(got2, fmt.Sprintf("%s: %s %s (%s) = %s", d.Path, f.Field, f.Detail, f.Rule, d.Kind(f)))
		}
	}
	blobA, blobB := "containers/volumes/v/lower/blobs/sha256/"+strings.Repeat("a", 64), "containers/volumes/v/lower/blobs/sha256/"+strings.Repeat("b", 64)
	// The config.json's mount source is a listed difference, its
	// ociVersion is not; etc's time is LinuxKit's for created entries.
	wantDiffs := []string{
		`containers/onboot/000-a/config.json: content /mounts/0/source: "v" vs "/containers/volumes/v/merged" (bind-mounts-of-volumes-resolved) = content containers/onboot/<bundle>/config.json [/mounts/*/source]`,
		`containers/onboot/000-a/config.json: content /ociVersion: "1.2.1" vs "1.3.0" () = content containers/onboot/<bundle>/config.json [/ociVersion]`,
		"containers/onboot/000-a/rootfs/etc/mtab: target  (image-filtering-path-based) = target containers/onboot/<bundle>/rootfs/etc/mtab",
		blobA + ": only-linuxkit  (oci-volume-repacked) = only-linuxkit containers/volumes/<volume>/lower/blobs/sha256/<digest>",
		blobB + ": only-lkbuild  (oci-volume-repacked) = only-lkbuild containers/volumes/<volume>/lower/blobs/sha256/<digest>",
		"etc: mode  (files-parents-keep-mode) = mode etc",
		"etc: mtime  () = mtime root etc: linuxkit 2017-04-18, lkbuild image time (dir)",
		"etc/motd: mode  () = mode etc/motd",
		"only/here: only-linuxkit  () = only-linuxkit only/here",
	}
	if !reflect.DeepEqual(got2, wantDiffs) {
		t.Errorf("findings:\n%s\nwant:\n%s", strings.Join(got2, "\n"), strings.Join(wantDiffs, "\n"))
	}
}

// TestRecordedManifests checks that every input of the corpus has a
// recorded manifest that parses, and that no manifest is stale.
func TestRecordedManifests(t *testing.T) {
	inputs, err := Corpus("../..")
	if err != nil {
		t.Fatal(err)
	}
	keys := map[string]bool{}
	for _, in := range inputs {
		keys[in.Key] = true
		dt, err := os.ReadFile(filepath.Join("testdata/trees", in.Key+".manifest"))
		if err != nil {
			t.Errorf("%s: %v (hack/parity/record.sh records it)", in.Key, err)
			continue
		}
		rec, err := Parse(dt)
		if err != nil {
			t.Errorf("%s: %v", in.Key, err)
			continue
		}
		if rec.Header["input"] != strings.Join(in.Files, " ") {
			t.Errorf("%s: recorded for %q", in.Key, rec.Header["input"])
		}
	}
	ents, _ := os.ReadDir("testdata/trees")
	for _, e := range ents {
		if !keys[strings.TrimSuffix(e.Name(), ".manifest")] {
			t.Errorf("testdata/trees/%s is no input of the corpus", e.Name())
		}
	}
	if _, err := LoadContents("testdata/contents.json.gz"); err != nil {
		t.Error(err)
	}
}

// TestStandInLayers checks what the stand-ins' layers give the rules: the
// paths only LinuxKit's flattening keeps below an opaque directory, and
// the directories a later layer only implies.
func TestStandInLayers(t *testing.T) {
	keys := func(m map[string]bool) []string {
		var out []string
		for k := range m {
			out = append(out, k)
		}
		sort.Strings(out)
		return out
	}
	roles := map[Role]bool{RoleContainer: true}
	for _, tc := range []struct {
		ref            string
		hidden, implic []string
	}{
		{"library/alpine:3.20", []string{"var/cache/apk/APKINDEX.tar.gz"}, nil},
		{"library/docker:27", []string{"var/cache/apk/APKINDEX.tar.gz"}, []string{"usr", "usr/local", "usr/local/bin"}},
		{"linuxkit/sysctl:abc", nil, nil},
	} {
		img, err := StandIn(Namespace+tc.ref, roles)
		if err != nil {
			t.Fatal(err)
		}
		if got := keys(img.OpaqueHidden()); !reflect.DeepEqual(got, tc.hidden) {
			t.Errorf("%s: OpaqueHidden %v, want %v", tc.ref, got, tc.hidden)
		}
		if got := keys(img.ImpliedDirs()); !reflect.DeepEqual(got, tc.implic) {
			t.Errorf("%s: ImpliedDirs %v, want %v", tc.ref, got, tc.implic)
		}
	}
}

// TestRulesOfTheTree checks the rules for the differences of whole trees:
// each allows what its docs/compat.md item says and no neighbour of it.
func TestRulesOfTheTree(t *testing.T) {
	ns := Namespace
	cfg, err := spec.Load(spec.Source{Filename: "x.yml", Data: []byte(
		"kernel:\n  image: " + ns + "linuxkit/kernel:6.12.59\n" +
			"init:\n  - " + ns + "linuxkit/init:abc\n  - " + ns + "linuxkit/firmware:abc\n" +
			"onboot:\n  - name: sysctl\n    image: " + ns + "linuxkit/sysctl:abc\n    capabilities.add: [CAP_SYS_ADMIN, CAP_NET_ADMIN]\n" +
			"  - name: dedupe\n    image: " + ns + "linuxkit/sysctl:abc\n    capabilities.add: [CAP_SYS_ADMIN, CAP_NET_ADMIN]\n" +
			"services:\n  - name: docker\n    image: " + ns + "library/docker:27\n    capabilities: [CAP_SYS_ADMIN]\n" +
			"    capabilities.add: [CAP_MKNOD]\n    binds: [\"/a:/a\"]\n    binds.add: [\"/run:/run\"]\n" +
			"volumes:\n  - name: v\n    image: " + ns + "library/alpine:3.20\n    format: oci\n")})
	if err != nil {
		t.Fatal(err)
	}
	images := map[string]*Image{}
	for _, u := range []struct {
		ref  string
		role Role
	}{{"linuxkit/init:abc", RoleInit}, {"linuxkit/firmware:abc", RoleInit}, {"linuxkit/sysctl:abc", RoleContainer},
		{"library/docker:27", RoleContainer}, {"library/alpine:3.20", RoleVolume}} {
		img, err := StandIn(ns+u.ref, map[Role]bool{u.role: true})
		if err != nil {
			t.Fatal(err)
		}
		images[img.Ref] = img
	}
	parse := func(lines ...string) *Manifest {
		rec, err := Parse([]byte(strings.Join(lines, "\n") + "\n"))
		if err != nil {
			t.Fatal(err)
		}
		return rec.Manifest
	}
	const (
		d  = "containers/services/docker/lower/"
		vl = "containers/volumes/v/lower/"
	)
	want := parse(
		". dir 0755 0:0 1709294400",
		"sbom.spdx.json file 0644 0:0 1492533000 327 varies",
		"etc/sbom.spdx.json file 0644 0:0 1492533000 327 varies",
		d+"var/cache/apk/APKINDEX.tar.gz file 0644 0:0 1709294400 6 f816b480f87144ec",
		d+"var/cache/apk/other file 0644 0:0 1709294400 6 f816b480f87144ec",
		d+"etc/motd file 0644 0:0 1709294400 6 f816b480f87144ec",
		d+"usr/local dir 0755 0:0 1709294400",
		d+"var dir 0755 0:0 1709294400",
		"lib dir 0755 0:0 1709294400",
		"lib/modules/m.ko file 0644 0:0 1709294400 3 aaaa",
		"lib/y file 0644 0:0 1709294400 3 bbbb",
		"lib/apk/db/installed file 0644 0:0 0 9 dddd",
		"usr dir 0755 0:0 1709294400",
		"usr/lib dir 0755 0:0 1709294400",
		"usr/lib/apk/db/installed file 0644 0:0 1709294400 4 eeee",
		"containers/onboot/000-sysctl/config.json file 0644 0:0 1492533000 10 w1",
		"containers/onboot/001-dedupe/config.json file 0644 0:0 1492533000 10 w1",
		"containers/services/docker/config.json file 0644 0:0 1492533000 10 w2",
		vl+"blobs dir 0755 0:0 0",
		vl+"oci-layout file 0644 0:0 0 36 l1",
		vl+"index.json file 0644 0:0 0 36 i1",
	)
	got := parse(
		". dir 0755 0:0 0 implicit",
		d+"usr/local dir 0755 0:0 1796061320",
		d+"var dir 0755 0:0 1796061320",
		"lib symlink - 0:0 1709294400 -> usr/lib",
		"usr dir 0755 0:0 1709294400",
		"usr/lib dir 0755 0:0 1709294400",
		"usr/lib/modules/m.ko file 0644 0:0 1709294400 3 aaaa",
		"usr/lib/y file 0600 0:0 1709294400 3 bbbb",
		"usr/lib/apk/db/installed file 0644 0:0 0 9 dddd",
		"containers/onboot/000-sysctl/config.json file 0644 0:0 1492533000 10 g1",
		"containers/onboot/001-dedupe/config.json file 0644 0:0 1492533000 10 g1x",
		"containers/services/docker/config.json file 0644 0:0 1492533000 10 g2",
		vl+"blobs dir 0755 0:0 1492533000",
		vl+"oci-layout file 0644 0:0 1492533000 30 l2",
		vl+"index.json file 0644 0:0 1 36 i1",
		"sbom.spdx.json file 0600 0:0 1492533000 900 s1",
	)
	caps := func(eff ...string) string {
		b := append([]string(nil), eff...)
		sort.Strings(b)
		q := func(l []string) string { return `["` + strings.Join(l, `","`) + `"]` }
		uniq := b[:0]
		for i, c := range b {
			if i == 0 || c != b[i-1] {
				uniq = append(uniq, c)
			}
		}
		return `"capabilities":{"bounding":` + q(uniq) + `,"effective":` + q(eff) + `,"inheritable":` + q(uniq) + `,"permitted":` + q(uniq) + `}`
	}
	bind := func(dst string) string {
		return `{"destination":"` + dst + `","type":"bind","source":"` + dst + `","options":["rw","rbind","rshared"]}`
	}
	wantContents := map[string][]byte{
		"w1": []byte(`{"process":{` + caps("CAP_SYS_ADMIN", "CAP_SYS_ADMIN", "CAP_NET_ADMIN") + `},"mounts":[]}`),
		"w2": []byte(`{"process":{` + caps("CAP_SYS_ADMIN") + `},"mounts":[` + bind("/a") + `,` + bind("/sys") + `]}`),
		"l1": []byte("{\n\t\t\"imageLayoutVersion\": \"1.0.0\"\n\t}"),
	}
	gotContents := map[string][]byte{
		"g1":  []byte(`{"process":{` + caps("CAP_SYS_ADMIN", "CAP_NET_ADMIN") + `},"mounts":[]}`),
		"g1x": []byte(`{"process":{` + caps("CAP_NET_ADMIN", "CAP_SYS_ADMIN") + `},"mounts":[]}`), // order changed
		"g2":  []byte(`{"process":{` + caps("CAP_SYS_ADMIN", "CAP_MKNOD") + `},"mounts":[` + bind("/a") + `,` + bind("/run") + `,` + bind("/sys") + `]}`),
		"l2":  []byte(`{"imageLayoutVersion":"1.0.0"}`),
	}
	diffs := Compare(want, got, wantContents, gotContents)
	ApplyRules(&RuleInput{Config: cfg, Want: want, Got: got, WantContents: wantContents, GotContents: gotContents, Images: images}, diffs)
	var lines []string
	for _, d := range diffs {
		for _, f := range d.Findings {
			lines = append(lines, fmt.Sprintf("%s: %s %s (%s)", d.Path, f.Field, f.Detail, f.Rule))
		}
	}
	wantLines := []string{
		".: mtime  (no-root-entry)",
		"containers/onboot/000-sysctl/config.json: content /process/capabilities/effective/1: \"CAP_SYS_ADMIN\" vs \"CAP_NET_ADMIN\" (add-once)",
		"containers/onboot/000-sysctl/config.json: content /process/capabilities/effective/2: \"CAP_NET_ADMIN\" vs (none) (add-once)",
		"containers/onboot/001-dedupe/config.json: content /process/capabilities/effective/0: \"CAP_SYS_ADMIN\" vs \"CAP_NET_ADMIN\" ()",
		"containers/onboot/001-dedupe/config.json: content /process/capabilities/effective/2: \"CAP_NET_ADMIN\" vs (none) ()",
		"containers/services/docker/config.json: content /mounts/1/destination: \"/sys\" vs \"/run\" (add-next-to-list)",
		"containers/services/docker/config.json: content /mounts/1/source: \"/sys\" vs \"/run\" (add-next-to-list)",
		"containers/services/docker/config.json: content /mounts/2: (none) vs {\"destination\":\"/sys\",\"options\":[\"rw\",\"rbind\",\"rshared\"],\"source\":\"/sys\",\"type\":\"bind\"} (add-next-to-list)",
		"containers/services/docker/config.json: content /process/capabilities/bounding/0: \"CAP_SYS_ADMIN\" vs \"CAP_MKNOD\" (add-next-to-list)",
		"containers/services/docker/config.json: content /process/capabilities/bounding/1: (none) vs \"CAP_SYS_ADMIN\" (add-next-to-list)",
		"containers/services/docker/config.json: content /process/capabilities/effective/1: (none) vs \"CAP_MKNOD\" (add-next-to-list)",
		"containers/services/docker/config.json: content /process/capabilities/inheritable/0: \"CAP_SYS_ADMIN\" vs \"CAP_MKNOD\" (add-next-to-list)",
		"containers/services/docker/config.json: content /process/capabilities/inheritable/1: (none) vs \"CAP_SYS_ADMIN\" (add-next-to-list)",
		"containers/services/docker/config.json: content /process/capabilities/permitted/0: \"CAP_SYS_ADMIN\" vs \"CAP_MKNOD\" (add-next-to-list)",
		"containers/services/docker/config.json: content /process/capabilities/permitted/1: (none) vs \"CAP_SYS_ADMIN\" (add-next-to-list)",
		d + "etc/motd: only-linuxkit  ()",
		d + "usr/local: mtime  (implied-directories-time)",
		d + "var: mtime  ()",
		d + "var/cache/apk/APKINDEX.tar.gz: only-linuxkit  (opaque-whiteouts)",
		d + "var/cache/apk/other: only-linuxkit  ()",
		vl + "blobs: mtime  (oci-volume-repacked)",
		vl + "index.json: mtime  ()",
		vl + "oci-layout: mtime  (oci-volume-repacked)",
		vl + "oci-layout: content " + sameJSON + " (oci-volume-repacked)",
		"etc/sbom.spdx.json: only-linuxkit  ()",
		"lib: type  (symlink-keeps-directories)",
		"lib/apk/db/installed: only-linuxkit  (symlink-keeps-directories)",
		"lib/modules/m.ko: only-linuxkit  (symlink-keeps-directories)",
		"lib/y: only-linuxkit  ()",
		"sbom.spdx.json: mode  ()",
		"sbom.spdx.json: content  (sbom-contents)",
		"usr/lib/apk/db/installed: mtime  (symlink-keeps-directories)",
		"usr/lib/apk/db/installed: content  (symlink-keeps-directories)",
		"usr/lib/modules/m.ko: only-lkbuild  (symlink-keeps-directories)",
		"usr/lib/y: only-lkbuild  ()",
	}
	if !reflect.DeepEqual(lines, wantLines) {
		t.Errorf("findings:\n%s\nwant:\n%s", strings.Join(lines, "\n"), strings.Join(wantLines, "\n"))
	}
}

// TestFailureRules checks the inputs LinuxKit fails on that lkbuild may
// build.
func TestFailureRules(t *testing.T) {
	getty := Namespace + "linuxkit/getty:abc"
	img, err := StandIn(getty, map[Role]bool{RoleContainer: true})
	if err != nil {
		t.Fatal(err)
	}
	in := func(entry string) *RuleInput {
		cfg, err := spec.Load(spec.Source{Filename: "x.yml", Data: []byte("services:\n  - name: getty\n    image: " + getty + "\n" + entry)})
		if err != nil {
			t.Fatal(err)
		}
		return &RuleInput{Config: cfg, Images: map[string]*Image{getty: img}}
	}
	msg := "failed to create OCI spec for " + getty + ": unknown capability: all"
	for _, tc := range []struct {
		entry, msg, rule string
	}{
		{"    capabilities.add: [CAP_SYS_TIME]\n", msg, "add-once"},
		{"    capabilities.add: [CAP_SYS_TIME]\n", strings.Replace(msg, "getty:abc", "getty:def", 1), ""},
		{"    capabilities: [CAP_SYS_ADMIN]\n    capabilities.add: [CAP_SYS_TIME]\n", msg, ""},
		{"", msg, ""},
		{"    capabilities.add: [CAP_SYS_TIME]\n", strings.Replace(msg, ": all", ": none", 1), ""},
	} {
		if got := FailureAllowed(in(tc.entry), tc.msg); got != tc.rule {
			t.Errorf("%q, %q: rule %q, want %q", tc.entry, tc.msg, got, tc.rule)
		}
	}
}

// TestRulesCiteCompat checks that every rule names an item of
// docs/compat.md by its bold title.
func TestRulesCiteCompat(t *testing.T) {
	dt, err := os.ReadFile("../../docs/compat.md")
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	check := func(name, compat string) {
		if !bytes.Contains(dt, []byte("- **"+compat+"**")) {
			t.Errorf("rule %s: docs/compat.md has no item **%s**", name, compat)
		}
	}
	for _, r := range Rules {
		if names[r.Name] {
			t.Errorf("two rules named %s", r.Name)
		}
		names[r.Name] = true
		check(r.Name, r.Compat)
	}
	for _, r := range FailureRules {
		check(r.Name, r.Compat)
	}
}
