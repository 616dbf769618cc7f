package sbom

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	spdxjson "github.com/spdx/tools-golang/json"
	"github.com/spdx/tools-golang/spdx"
	"github.com/spdx/tools-golang/spdx/v2/common"
	"github.com/spdx/tools-golang/spdxlib"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// writeTree creates files (path -> contents; a value starting with "->"
// makes a symbolic link) under a new directory.
func writeTree(t *testing.T, files map[string]string) string {
	t.Helper()
	root := t.TempDir()
	for p, c := range files {
		full := filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if target, ok := strings.CutPrefix(c, "->"); ok {
			if err := os.Symlink(target, full); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.WriteFile(full, []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

const embeddedDoc = `{
  "spdxVersion": "SPDX-2.3",
  "dataLicense": "CC0-1.0",
  "SPDXID": "SPDXRef-DOCUMENT",
  "name": "app",
  "documentNamespace": "https://example.com/app-1",
  "creationInfo": {"creators": ["Tool: example"], "created": "2024-01-01T00:00:00Z"},
  "packages": [
    {"name": "app", "SPDXID": "SPDXRef-app", "versionInfo": "2.0", "downloadLocation": "https://example.com/app.tgz",
     "licenseDeclared": "Apache-2.0", "filesAnalyzed": false}
  ]
}`

// testTrees are an Alpine-like init image whose database is reached
// through an absolute lib -> /usr/lib symlink, a Debian-like image with a
// status file and a status.d directory, and an image carrying an SPDX
// document and a broken one.
func testTrees(t *testing.T) (initTree, debTree, appTree string) {
	initTree = writeTree(t, map[string]string{
		"etc/os-release":           "NAME=\"Alpine Linux\"\nID=alpine\nVERSION_ID=3.20.0\n",
		"lib":                      "->/usr/lib",
		"usr/lib/apk/db/installed": apkDB,
	})
	debTree = writeTree(t, map[string]string{
		"etc/os-release":                       "->../usr/lib/os-release",
		"usr/lib/os-release":                   "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nID=debian\n",
		"var/lib/dpkg/status":                  dpkgStatus,
		"var/lib/dpkg/status.d/tzdata":         "Package: tzdata\nVersion: 1:2024a-0+deb12u1\nArchitecture: all\nSource: tzdata-src\n",
		"var/lib/dpkg/status.d/tzdata.md5sums": "0123 usr/share/zoneinfo/UTC\n",
	})
	appTree = writeTree(t, map[string]string{
		"sbom.spdx.json":                   embeddedDoc,
		"var/lib/db/sbom/broken.spdx.json": "{not json",
	})
	return
}

func TestScanTree(t *testing.T) {
	initTree, debTree, appTree := testTrees(t)
	it, err := ScanTree(initTree)
	if err != nil {
		t.Fatal(err)
	}
	if it.Distro != "alpine" || len(it.Packages) != 3 || it.Packages[0].Name != "busybox" {
		t.Errorf("init tree: distro %q, packages %+v", it.Distro, it.Packages)
	}
	dt, err := ScanTree(debTree)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, p := range dt.Packages {
		names = append(names, p.Name+"@"+p.Database)
	}
	if dt.Distro != "debian" || strings.Join(names, " ") != "base-files@var/lib/dpkg/status libc6@var/lib/dpkg/status tzdata@var/lib/dpkg/status.d/tzdata" {
		t.Errorf("deb tree: distro %q, packages %s", dt.Distro, names)
	}
	at, err := ScanTree(appTree)
	if err != nil {
		t.Fatal(err)
	}
	if len(at.Embedded) != 1 || at.Embedded[0].Path != EmbeddedSBOM || len(at.Embedded[0].Doc.Packages) != 1 {
		t.Errorf("app tree embedded %+v", at.Embedded)
	}
	if len(at.Notes) != 1 || !strings.Contains(at.Notes[0], "broken.spdx.json") {
		t.Errorf("app tree notes %q, want one about the broken document", at.Notes)
	}
	empty, err := ScanTree(t.TempDir())
	if err != nil || len(empty.Packages) != 0 || empty.Distro != "" {
		t.Errorf("empty tree: %+v, %v", empty, err)
	}
}

func TestScanTreeLinkLoop(t *testing.T) {
	root := writeTree(t, map[string]string{"lib": "->lib2", "lib2": "->/lib"})
	if _, err := ScanTree(root); err == nil || !strings.Contains(err.Error(), "symbolic links") {
		t.Errorf("err = %v, want too many symbolic links", err)
	}
}

func TestScanTreeStaysInside(t *testing.T) {
	// ../../.. from the root stays at the root, as in the container.
	outside := writeTree(t, map[string]string{"lib/apk/db/installed": "P:evil\nV:1\n"})
	root := writeTree(t, map[string]string{"lib": "->../../../../../../../.." + outside + "/lib"})
	tr, err := ScanTree(root)
	if err != nil {
		t.Fatal(err)
	}
	if len(tr.Packages) != 0 {
		t.Errorf("a symlink led out of the tree: %+v", tr.Packages)
	}
}

func testInput(initTree, debTree, appTree string) Input {
	const busybox = "docker.io/library/busybox@sha256:0000000000000000000000000000000000000000000000000000000000000001"
	return Input{
		Name:     "minimal",
		Platform: "linux/amd64",
		Created:  time.Date(2017, 4, 18, 16, 30, 0, 0, time.UTC),
		Images: []Image{
			{Field: "kernel.image", Ref: "linuxkit/kernel:6.12.59", Pinned: "docker.io/linuxkit/kernel@sha256:00000000000000000000000000000000000000000000000000000000000000aa", Platform: "linux/amd64", Path: "/", Tree: appTree + "/nothing"},
			{Field: "init[0]", Ref: "linuxkit/init:abc", Pinned: "docker.io/linuxkit/init@sha256:00000000000000000000000000000000000000000000000000000000000000bb", Platform: "linux/amd64", Path: "/", Tree: initTree},
			{Field: "onboot[0].image", Entry: "hello", Ref: "debian:12", Pinned: "docker.io/library/debian@sha256:00000000000000000000000000000000000000000000000000000000000000cc", Platform: "linux/amd64", Path: "containers/onboot/000-hello/lower", Tree: debTree},
			{Field: "services[0].image", Entry: "app", Ref: "busybox:1.36", Pinned: busybox, Platform: "linux/amd64", Path: "containers/services/app/rootfs", Tree: appTree},
			{Field: "services[1].image", Entry: "app2", Ref: "busybox:1.36", Pinned: busybox, Platform: "linux/amd64", Path: "containers/services/app/rootfs", MountedAt: "containers/services/app2/rootfs", Tree: appTree},
			{Field: "volumes[0].image", Entry: "local", Ref: "local/thing:1", Platform: "linux/amd64", Path: "containers/volumes/local/lower", Tree: appTree + "/nothing"},
		},
	}
}

// TestDocument builds the document of a system of the test trees, checks
// it against the golden file (-update rewrites it), reads it back with
// the SPDX library and checks its contents and relationships.
func TestDocument(t *testing.T) {
	initTree, debTree, appTree := testTrees(t)
	in := testInput(initTree, debTree, appTree)
	var log bytes.Buffer
	dt, err := Build(in, &log)
	if err != nil {
		t.Fatal(err)
	}
	golden := filepath.Join("testdata", "minimal.spdx.json")
	if *update {
		if err := os.WriteFile(golden, dt, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(dt, want) {
		t.Errorf("document differs from %s (go test -update to accept):\n%s", golden, dt)
	}
	if !strings.Contains(log.String(), "broken.spdx.json") {
		t.Errorf("log %q does not report the broken embedded document", log.String())
	}

	doc := readValid(t, dt)
	byName := map[string]*spdx.Package{}
	for _, p := range doc.Packages {
		byName[p.PackageName+" "+p.PackageVersion] = p
	}
	for _, want := range []string{
		"minimal ", // the system
		"linuxkit/kernel:6.12.59 sha256:00000000000000000000000000000000000000000000000000000000000000aa",
		"linuxkit/init:abc sha256:00000000000000000000000000000000000000000000000000000000000000bb",
		"debian:12 sha256:00000000000000000000000000000000000000000000000000000000000000cc",
		"busybox:1.36 sha256:0000000000000000000000000000000000000000000000000000000000000001",
		"local/thing:1 ",
		"musl 1.2.5-r0", "busybox 1.36.1-r29", "ssl_client 1.36.1-r29",
		"base-files 12.4+deb12u5", "libc6 2.36-9+deb12u4", "tzdata 1:2024a-0+deb12u1",
		"app 2.0",
	} {
		if byName[want] == nil {
			t.Errorf("no package %q", want)
		}
	}
	if n := len(doc.Packages); n != 14 {
		t.Errorf("%d packages, want 14 (system, 6 image uses, 7 packages listed once)", n)
	}
	if p := byName["tzdata 1:2024a-0+deb12u1"]; p != nil {
		if got := p.PackageExternalReferences[0].Locator; got != "pkg:deb/debian/tzdata@1%3A2024a-0%2Bdeb12u1?arch=all&upstream=tzdata-src" {
			t.Errorf("tzdata purl %s", got)
		}
	}
	if p := byName["ssl_client 1.36.1-r29"]; p != nil && (p.PackageLicenseDeclared != "NOASSERTION" || !strings.Contains(p.PackageLicenseComments, "weird-license")) {
		t.Errorf("an invalid license expression must not be declared: %q / %q", p.PackageLicenseDeclared, p.PackageLicenseComments)
	}
	if p := byName["musl 1.2.5-r0"]; p != nil && p.PackageLicenseDeclared != "MIT" {
		t.Errorf("musl license %q", p.PackageLicenseDeclared)
	}
	// Both uses of busybox contain the embedded package, listed once.
	var app common.ElementID
	for _, p := range doc.Packages {
		if p.PackageName == "app" {
			app = p.PackageSPDXIdentifier
		}
	}
	containers := 0
	for _, r := range doc.Relationships {
		if r.Relationship == "CONTAINS" && r.RefB.ElementRefID == app {
			containers++
		}
	}
	if containers != 2 {
		t.Errorf("the embedded package is contained by %d images, want 2", containers)
	}
	if doc.CreationInfo.Created != "2017-04-18T16:30:00Z" {
		t.Errorf("created %s", doc.CreationInfo.Created)
	}
}

// readValid parses dt with the SPDX library and checks what SPDX 2.3
// requires of it beyond what the library's reader checks.
func readValid(t *testing.T, dt []byte) *spdx.Document {
	t.Helper()
	doc, err := spdxjson.Read(bytes.NewReader(dt))
	if err != nil {
		t.Fatalf("the SPDX library cannot read the document: %v", err)
	}
	if err := spdxlib.ValidateDocument(doc); err != nil {
		t.Errorf("invalid document: %v", err)
	}
	if doc.SPDXVersion != "SPDX-2.3" || doc.DataLicense != "CC0-1.0" || doc.SPDXIdentifier != "DOCUMENT" {
		t.Errorf("header %q %q %q", doc.SPDXVersion, doc.DataLicense, doc.SPDXIdentifier)
	}
	if !regexp.MustCompile(`^https://github\.com/lkbuild/lkbuild/sbom/[^#\s]+-[0-9a-f]{64}$`).MatchString(doc.DocumentNamespace) {
		t.Errorf("namespace %q", doc.DocumentNamespace)
	}
	if _, err := time.Parse("2006-01-02T15:04:05Z", doc.CreationInfo.Created); err != nil {
		t.Errorf("created: %v", err)
	}
	idRE := regexp.MustCompile(`^[A-Za-z0-9.-]+$`)
	seen := map[common.ElementID]bool{}
	for _, p := range doc.Packages {
		id := p.PackageSPDXIdentifier
		if !idRE.MatchString(string(id)) || seen[id] {
			t.Errorf("package %s: SPDXID %q invalid or repeated", p.PackageName, id)
		}
		seen[id] = true
		if p.PackageName == "" || p.PackageDownloadLocation == "" {
			t.Errorf("package %s lacks name or downloadLocation", id)
		}
	}
	describes := 0
	for _, r := range doc.Relationships {
		if r.Relationship == "DESCRIBES" && r.RefA.ElementRefID == "DOCUMENT" {
			describes++
		}
	}
	if describes != 1 {
		t.Errorf("%d DESCRIBES relationships, want 1", describes)
	}
	return doc
}

// TestDocumentDeterministic: the same input gives the same bytes, and a
// different package gives a different namespace.
func TestDocumentDeterministic(t *testing.T) {
	initTree, debTree, appTree := testTrees(t)
	in := testInput(initTree, debTree, appTree)
	a, err := Build(in, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 5; i++ {
		b, err := Build(in, &bytes.Buffer{})
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(a, b) {
			t.Fatal("two documents of the same input differ")
		}
	}
	// The mount points of the trees do not matter, only the contents.
	in2 := in
	in2.Images = append([]Image(nil), in.Images...)
	copyTree := writeTree(t, map[string]string{"etc/os-release": "ID=alpine\n", "lib/apk/db/installed": apkDB})
	in2.Images[1].Tree = copyTree
	b, err := Build(in2, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a, b) {
		t.Error("the same packages under another mount point give another document")
	}
	if err := os.WriteFile(filepath.Join(copyTree, "lib/apk/db/installed"), []byte(apkDB+"\nP:zlib\nV:1.3.1-r1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := Build(in2, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	da, dc := readValid(t, a), readValid(t, c)
	if da.DocumentNamespace == dc.DocumentNamespace {
		t.Error("a document with one more package has the same namespace")
	}
}

func TestDocumentErrors(t *testing.T) {
	if _, err := Generate(Input{}, nil); err == nil {
		t.Error("no name: no error")
	}
	in := Input{Name: "x", Images: []Image{{Field: "init[0]", Ref: "a", Tree: "/nowhere"}}}
	if _, err := Generate(in, map[string]*Tree{}); err == nil || !strings.Contains(err.Error(), "init[0]") {
		t.Errorf("missing scan: %v", err)
	}
	bad := writeTree(t, map[string]string{"lib/apk/db/installed": "P:x\n"})
	in.Images[0].Tree = bad
	if _, err := Build(in, &bytes.Buffer{}); err == nil || !strings.Contains(err.Error(), "init[0] (a)") {
		t.Errorf("bad database: %v", err)
	}
}
