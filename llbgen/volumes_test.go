package llbgen

import (
	"context"
	"sort"
	"strings"
	"testing"

	"github.com/moby/buildkit/solver/pb"
)

// TestSharedImagesAndVolumes: busybox is extracted once for three bundles
// (the later ones only get config.json, runtime.json and mount points), and
// volumes are laid out under containers/volumes.
func TestSharedImagesAndVolumes(t *testing.T) {
	o := options(&fakeResolver{})
	o.Target = "tar"
	res, err := Build(context.Background(), parseFile(t, "testdata/volumes.yml"), o)
	if err != nil {
		t.Fatal(err)
	}
	var copies, dirs []string
	for _, op := range ops(t, res.Output) {
		for _, a := range op.GetFile().GetActions() {
			if c := a.GetCopy(); c != nil && c.GetSrc() == "/" && !c.GetAlwaysReplaceExistingDestPaths() {
				copies = append(copies, c.GetDest())
			}
			if d := a.GetMkdir(); d != nil && strings.HasPrefix(d.GetPath(), "/containers/") {
				dirs = append(dirs, d.GetPath())
			}
		}
	}
	sort.Strings(copies)
	if got := strings.Join(copies, " "); got != "/containers/onboot/000-one/lower /containers/volumes/data/lower /containers/volumes/images/lower" {
		t.Errorf("image extractions: %s", got)
	}
	have := map[string]bool{}
	for _, d := range dirs {
		have[d] = true
	}
	for _, d := range []string{
		"/containers/onboot/000-one/tmp", "/containers/onboot/000-one/rootfs",
		"/containers/onboot/001-two/rootfs", "/containers/services/three/tmp", "/containers/services/three/rootfs",
		"/containers/volumes/data/tmp", "/containers/volumes/data/merged",
		"/containers/volumes/empty/lower", "/containers/volumes/empty/tmp", "/containers/volumes/empty/merged",
	} {
		if !have[d] {
			t.Errorf("missing directory %s (have %v)", d, dirs)
		}
	}
	if have["/containers/onboot/001-two/lower"] || have["/containers/services/three/lower"] {
		t.Error("a bundle sharing an image must not get its own lower/")
	}
}

// TestOCIVolume: an oci-format volume's image is resolved and fetched for
// each of its platforms and packed by the helper, without network.
func TestOCIVolume(t *testing.T) {
	r := &fakeResolver{}
	o := options(r)
	o.Target = "tar"
	res, err := Build(context.Background(), parseFile(t, "testdata/volumes.yml"), o)
	if err != nil {
		t.Fatal(err)
	}
	var args string
	var imgPlatforms []string
	for _, op := range ops(t, res.Output) {
		if e := op.GetExec(); e != nil && strings.Contains(strings.Join(e.GetMeta().GetArgs(), " "), "ocilayout") {
			args = strings.Join(e.GetMeta().GetArgs(), " ")
			if e.GetNetwork() != pb.NetMode_NONE {
				t.Error("ocilayout must run without network")
			}
		}
		if s := op.GetSource(); s != nil && strings.HasPrefix(s.GetIdentifier(), "docker-image://docker.io/library/alpine:3.20") {
			imgPlatforms = append(imgPlatforms, op.GetPlatform().GetArchitecture())
		}
	}
	want := "/lkbuild ocilayout --ref docker.io/library/alpine:3.20 --output /out --image /in/0:/meta/0.json --image /in/1:/meta/1.json"
	if args != want {
		t.Errorf("helper args\n got %s\nwant %s", args, want)
	}
	// amd64 comes from the filesystem volume's resolution; only arm64 is new
	if n := r.asked["docker.io/library/alpine:3.20"]; n != 2 {
		t.Errorf("alpine resolved %d times, want 2 (amd64 once, arm64 once)", n)
	}
	sort.Strings(imgPlatforms)
	// the filesystem volume "data" and the oci volume for amd64 share one source op
	if got := strings.Join(imgPlatforms, " "); got != "amd64 arm64" {
		t.Errorf("alpine fetched for %s", got)
	}
}
