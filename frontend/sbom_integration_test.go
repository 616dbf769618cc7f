package frontend_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/lkbuild/lkbuild/internal/cli"
	"github.com/lkbuild/lkbuild/internal/testenv"
	spdxjson "github.com/spdx/tools-golang/json"
	"github.com/spdx/tools-golang/spdx"
	"github.com/spdx/tools-golang/spdxlib"
)

// readSBOM parses an SPDX JSON document with the SPDX library and checks
// its relationships.
func readSBOM(t *testing.T, dt []byte) *spdx.Document {
	t.Helper()
	doc, err := spdxjson.Read(bytes.NewReader(dt))
	if err != nil {
		t.Fatalf("the SPDX library cannot read the SBOM: %v\n%s", err, dt)
	}
	if err := spdxlib.ValidateDocument(doc); err != nil {
		t.Errorf("invalid SBOM: %v", err)
	}
	if doc.SPDXVersion != "SPDX-2.3" || !strings.HasPrefix(doc.DocumentNamespace, "https://github.com/lkbuild/lkbuild/sbom/") {
		t.Errorf("SBOM header: %s %s", doc.SPDXVersion, doc.DocumentNamespace)
	}
	return doc
}

// registryDigest is the digest the local registry gives the tag of repo.
func registryDigest(t *testing.T, env testenv.Env, repo, tag string) string {
	t.Helper()
	req, _ := http.NewRequest(http.MethodHead, "http://"+env.Registry+"/v2/"+repo+"/manifests/"+tag, nil)
	req.Header.Set("Accept", "application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("HEAD %s:%s: %s", repo, tag, resp.Status)
	}
	return resp.Header.Get("Docker-Content-Digest")
}

// TestSBOMMinimal builds the minimal example's root filesystem twice (the
// second without the cache) and reads /sbom.spdx.json with the SPDX
// library: every image of the YAML is listed with the digest the registry
// has for it and its place in the tree, the two documents are
// byte-identical, and the file is LinuxKit's (0644, root, the created
// time). SBOM=false leaves it out.
func TestSBOMMinimal(t *testing.T) {
	env := testenv.Integration(t)
	o := cli.BuildOptions{File: filepath.Join(env.Root, "examples/minimal.yml"), Target: "tar"}
	out := build(t, env, o)
	dt, err := os.ReadFile(filepath.Join(out, "sbom.spdx.json"))
	if err != nil {
		t.Fatalf("no /sbom.spdx.json in the root filesystem: %v", err)
	}
	fi, _ := os.Stat(filepath.Join(out, "sbom.spdx.json"))
	if fi.Mode().Perm() != 0o644 || fi.ModTime().Unix() != 1492533000 {
		t.Errorf("sbom.spdx.json mode %v time %v, want 0644 and LinuxKit's time", fi.Mode(), fi.ModTime())
	}
	doc := readSBOM(t, dt)
	if doc.DocumentName != "minimal" || doc.CreationInfo.Created != "2017-04-18T16:30:00Z" {
		t.Errorf("name %q created %q", doc.DocumentName, doc.CreationInfo.Created)
	}
	type use struct{ repo, tag, place string }
	want := map[string]use{
		"kernel.image":      {"linuxkit/kernel", "6.12.59", "/"},
		"init[0]":           {"linuxkit/init", "b5506cc74a6812dc40982cacfd2f4328f8a4b12a", "/"},
		"init[1]":           {"linuxkit/runc", "9442aa234715e751a16144f1d4ae3fd1a00fd492", "/"},
		"onboot[0].image":   {"library/busybox", "1.36", "/containers/onboot/000-hello/lower"},
		"services[0].image": {"library/busybox", "1.36", "/containers/onboot/000-hello/lower"},
	}
	found := 0
	for _, p := range doc.Packages {
		if p.PrimaryPackagePurpose != "CONTAINER" {
			continue
		}
		field, _, _ := strings.Cut(p.PackageComment, ":")
		field, _, _ = strings.Cut(field, " (")
		w, ok := want[field]
		if !ok {
			t.Errorf("unexpected image package %s (%s)", p.PackageName, p.PackageComment)
			continue
		}
		found++
		if d := registryDigest(t, env, w.repo, w.tag); p.PackageVersion != d {
			t.Errorf("%s: version %q, want the registry's digest %s", field, p.PackageVersion, d)
		}
		if p.PackageFileName != w.place || !strings.Contains(p.PackageComment, "linux/amd64") {
			t.Errorf("%s: place %q, comment %q", field, p.PackageFileName, p.PackageComment)
		}
	}
	if found != len(want) {
		t.Errorf("%d image packages, want %d", found, len(want))
	}
	if !strings.Contains(string(dt), "mounted at boot on /containers/services/httpd/rootfs") {
		t.Error("the httpd service does not say it mounts hello's copy of busybox")
	}

	o.NoCache = true
	again, err := os.ReadFile(filepath.Join(build(t, env, o), "sbom.spdx.json"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(dt, again) {
		t.Errorf("two builds give different SBOMs:\n%s\n---\n%s", dt, again)
	}

	o.NoCache = false
	o.BuildArgs = []string{"SBOM=false"}
	off := build(t, env, o)
	if _, err := os.Lstat(filepath.Join(off, "sbom.spdx.json")); !os.IsNotExist(err) {
		t.Errorf("SBOM=false: sbom.spdx.json present (%v)", err)
	}
}

// TestSBOMPackages builds a system whose containers come from directories
// (named build contexts) holding an apk database, a dpkg status file and
// status.d directory, and an SPDX document: every installed package is
// listed once, contained by each image that uses it.
func TestSBOMPackages(t *testing.T) {
	env := testenv.Integration(t)
	dir := t.TempDir()
	write := func(p, s string) {
		t.Helper()
		full := filepath.Join(dir, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("alpine/etc/os-release", "ID=alpine\n")
	write("alpine/lib/apk/db/installed", "P:musl\nV:1.2.5-r0\nA:x86_64\nL:MIT\n\nP:busybox\nV:1.36.1-r29\nA:x86_64\nL:GPL-2.0-only\no:busybox\n")
	write("debian/etc/os-release", "ID=debian\n")
	write("debian/var/lib/dpkg/status", "Package: libc6\nStatus: install ok installed\nVersion: 2.36-9+deb12u4\nArchitecture: amd64\nSource: glibc\n\n"+
		"Package: gone\nStatus: deinstall ok config-files\nVersion: 1\nArchitecture: amd64\n")
	write("debian/var/lib/dpkg/status.d/tzdata", "Package: tzdata\nVersion: 2024a-0+deb12u1\nArchitecture: all\n")
	write("debian/sbom.spdx.json", `{"spdxVersion":"SPDX-2.3","dataLicense":"CC0-1.0","SPDXID":"SPDXRef-DOCUMENT","name":"app",
"documentNamespace":"https://example.com/app","creationInfo":{"creators":["Tool: x"],"created":"2024-01-01T00:00:00Z"},
"packages":[{"name":"app","SPDXID":"SPDXRef-app","versionInfo":"2.0","downloadLocation":"NOASSERTION"}]}`)
	write("sbom.yml", `init:
  - linuxkit/init:b5506cc74a6812dc40982cacfd2f4328f8a4b12a
onboot:
  - name: setup
    image: example.com/lkbuild/sbom-alpine:1
services:
  - name: one
    image: example.com/lkbuild/sbom-debian:1
    readonly: true
  - name: two
    image: example.com/lkbuild/sbom-debian:1
    readonly: true
`)
	out := build(t, env, cli.BuildOptions{File: filepath.Join(dir, "sbom.yml"), Context: dir, Target: "tar",
		Contexts: []string{
			"example.com/lkbuild/sbom-alpine:1=" + filepath.Join(dir, "alpine"),
			"example.com/lkbuild/sbom-debian:1=" + filepath.Join(dir, "debian"),
		}})
	dt, err := os.ReadFile(filepath.Join(out, "sbom.spdx.json"))
	if err != nil {
		t.Fatal(err)
	}
	doc := readSBOM(t, dt)
	ids := map[string]string{} // SPDXID -> "name version"
	var pkgs []string
	for _, p := range doc.Packages {
		nv := p.PackageName + " " + p.PackageVersion
		ids[string(p.PackageSPDXIdentifier)] = nv
		if p.PrimaryPackagePurpose != "CONTAINER" && p.PrimaryPackagePurpose != "OPERATING-SYSTEM" {
			pkgs = append(pkgs, nv)
		}
	}
	slices.Sort(pkgs)
	if want := []string{"app 2.0", "busybox 1.36.1-r29", "libc6 2.36-9+deb12u4", "musl 1.2.5-r0", "tzdata 2024a-0+deb12u1"}; !slices.Equal(pkgs, want) {
		t.Errorf("packages %q, want %q", pkgs, want)
	}
	contains := map[string][]string{}
	for _, r := range doc.Relationships {
		if r.Relationship == "CONTAINS" {
			a := ids[string(r.RefA.ElementRefID)]
			contains[a] = append(contains[a], ids[string(r.RefB.ElementRefID)])
		}
	}
	// Two uses of the debian image: each contains its 3 packages.
	for img, n := range map[string]int{"example.com/lkbuild/sbom-alpine:1 ": 2, "example.com/lkbuild/sbom-debian:1 ": 6} {
		if got := len(contains[img]); got != n {
			t.Errorf("%s contains %q, want %d", img, contains[img], n)
		}
	}
	if got := len(contains["sbom "]); got != 4 {
		t.Errorf("the system contains %q, want its 4 image uses", contains["sbom "])
	}
	var b bytes.Buffer
	_ = json.Indent(&b, dt, "", "  ")
	if t.Failed() {
		t.Logf("SBOM:\n%s", b.String())
	}
}

// TestBuildxSBOMAttestation: docker buildx build --sbom=true gets lkbuild's
// document as the result's SPDX in-toto attestation (written next to the
// artifacts by the local exporter), not a scan by BuildKit's default
// scanner image (which this machine does not have: before, the build
// failed resolving docker/buildkit-syft-scanner). The SBOM build-arg only
// concerns the root filesystem.
func TestBuildxSBOMAttestation(t *testing.T) {
	env := testenv.Integration(t)
	requireBuildx(t)
	out := t.TempDir()
	b, err := buildxMinimal(t, env, "--sbom=true", "--build-arg", "SBOM=false", "--target", "kernel+initrd", "-o", "type=local,dest="+out)
	if err != nil {
		t.Fatalf("docker buildx build --sbom=true: %v\n%s", err, b)
	}
	if bytes.Contains(b, []byte("buildkit-syft-scanner")) {
		t.Errorf("BuildKit ran its own scanner:\n%s", b)
	}
	wantFiles(t, out, "minimal-kernel", "minimal-initrd.img", "minimal-cmdline", "sbom.spdx.json")
	dt, err := os.ReadFile(filepath.Join(out, "sbom.spdx.json"))
	if err != nil {
		t.Fatal(err)
	}
	var stmt struct {
		Type          string `json:"_type"`
		PredicateType string `json:"predicateType"`
		Subject       []struct {
			Name string `json:"name"`
		} `json:"subject"`
		Predicate json.RawMessage `json:"predicate"`
	}
	if err := json.Unmarshal(dt, &stmt); err != nil {
		t.Fatal(err)
	}
	var subjects []string
	for _, s := range stmt.Subject {
		subjects = append(subjects, s.Name)
	}
	if stmt.PredicateType != "https://spdx.dev/Document" || strings.Join(subjects, " ") != "minimal-cmdline minimal-initrd.img minimal-kernel" {
		t.Errorf("statement %s, predicate %s, subjects %q", stmt.Type, stmt.PredicateType, subjects)
	}
	doc := readSBOM(t, stmt.Predicate)
	rootfs, err := os.ReadFile(filepath.Join(build(t, env, cli.BuildOptions{File: filepath.Join(env.Root, "examples/minimal.yml"), Target: "tar"}), "sbom.spdx.json"))
	if err != nil {
		t.Fatal(err)
	}
	if want := readSBOM(t, rootfs); doc.DocumentNamespace != want.DocumentNamespace {
		t.Errorf("the attestation's document %s is not the root filesystem's %s", doc.DocumentNamespace, want.DocumentNamespace)
	}
}

// TestBuildxSBOMAttestationImage: with the docker target exported as an
// image (an OCI layout here), the SBOM is an attestation manifest next to
// the image, whose SPDX statement holds lkbuild's document.
func TestBuildxSBOMAttestationImage(t *testing.T) {
	env := testenv.Integration(t)
	requireBuildx(t)
	dir := filepath.Join(t.TempDir(), "layout")
	if b, err := buildxMinimal(t, env, "--sbom=true", "--target", "docker", "-o", "type=oci,tar=false,dest="+dir); err != nil {
		t.Fatalf("docker buildx build --sbom=true: %v\n%s", err, b)
	}
	type desc struct {
		MediaType   string            `json:"mediaType"`
		Digest      string            `json:"digest"`
		Annotations map[string]string `json:"annotations"`
	}
	var index struct {
		Manifests []desc `json:"manifests"`
		Layers    []desc `json:"layers"`
	}
	readBlob := func(d string, v any) []byte {
		t.Helper()
		dt, err := os.ReadFile(filepath.Join(dir, "blobs", "sha256", strings.TrimPrefix(d, "sha256:")))
		if err != nil {
			t.Fatal(err)
		}
		if v != nil {
			if err := json.Unmarshal(dt, v); err != nil {
				t.Fatal(err)
			}
		}
		return dt
	}
	dt, err := os.ReadFile(filepath.Join(dir, "index.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(dt, &index); err != nil || len(index.Manifests) != 1 {
		t.Fatalf("index.json: %v %s", err, dt)
	}
	readBlob(index.Manifests[0].Digest, &index)
	var att *desc
	for i, m := range index.Manifests {
		if m.Annotations["vnd.docker.reference.type"] == "attestation-manifest" {
			att = &index.Manifests[i]
		}
	}
	if att == nil {
		t.Fatalf("no attestation manifest in %+v", index.Manifests)
	}
	var man struct{ Layers []desc }
	readBlob(att.Digest, &man)
	var found bool
	for _, l := range man.Layers {
		if l.Annotations["in-toto.io/predicate-type"] != "https://spdx.dev/Document" {
			continue
		}
		found = true
		var stmt struct {
			Predicate json.RawMessage `json:"predicate"`
		}
		readBlob(l.Digest, &stmt)
		if doc := readSBOM(t, stmt.Predicate); doc.DocumentName != "minimal" {
			t.Errorf("attested document %q", doc.DocumentName)
		}
	}
	if !found {
		t.Errorf("the attestation manifest has no SPDX statement: %+v", man.Layers)
	}
}
