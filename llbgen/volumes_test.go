package llbgen

import (
	"context"
	"sort"
	"strings"
	"testing"
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
			if c := a.GetCopy(); c != nil && c.GetSrc() == "/" {
				copies = append(copies, c.GetDest())
			}
			if d := a.GetMkdir(); d != nil && strings.HasPrefix(d.GetPath(), "/containers/") {
				dirs = append(dirs, d.GetPath())
			}
		}
	}
	sort.Strings(copies)
	if got := strings.Join(copies, " "); got != "/containers/onboot/000-one/lower /containers/volumes/data/lower" {
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
