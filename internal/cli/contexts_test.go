package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestParseContexts: each kind of --build-context value becomes what the
// frontend reads (context:NAME), with the directory or OCI layout it sends
// under a name of its own; an OCI layout without a digest names the image
// of its index.json; wrong values are refused with the flag's name.
func TestParseContexts(t *testing.T) {
	dir := t.TempDir()
	layout := filepath.Join(dir, "layout")
	if err := os.MkdirAll(layout, 0o755); err != nil {
		t.Fatal(err)
	}
	const d1 = "sha256:1111111111111111111111111111111111111111111111111111111111111111"
	const d2 = "sha256:2222222222222222222222222222222222222222222222222222222222222222"
	index := `{"schemaVersion":2,"manifests":[` +
		`{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"` + d1 + `","size":1,"annotations":{"org.opencontainers.image.ref.name":"one"}},` +
		`{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"` + d2 + `","size":1,"annotations":{"org.opencontainers.image.ref.name":"two"}}]}`
	if err := os.WriteFile(filepath.Join(layout, "index.json"), []byte(index), 0o644); err != nil {
		t.Fatal(err)
	}
	nc, err := parseContexts([]string{
		"linuxkit/init:abc=oci-layout://" + layout + ":two",
		"docker.io/linuxkit/runc:abc=" + dir,
		"busybox=docker-image://example.com/busybox:1",
		"k=oci-layout://" + layout + "@" + d1,
	})
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range map[string]string{
		"context:linuxkit/init:abc":           "oci-layout://lkbuild-context-0@" + d2,
		"context:docker.io/linuxkit/runc:abc": "local:lkbuild-context-1",
		"context:busybox":                     "docker-image://example.com/busybox:1",
		"context:k":                           "oci-layout://lkbuild-context-3@" + d1,
	} {
		if nc.attrs[k] != v {
			t.Errorf("%s = %q, want %q", k, nc.attrs[k], v)
		}
	}
	if nc.locals["lkbuild-context-1"] == nil || nc.stores["lkbuild-context-0"] == nil || nc.stores["lkbuild-context-3"] == nil {
		t.Errorf("locals %v, stores %v: want the directory and both layouts sent", nc.locals, nc.stores)
	}
	for _, bad := range []struct{ flag, want string }{
		{"noequals", "want NAME=VALUE"},
		{"x=" + filepath.Join(dir, "missing"), "--build-context x:"},
		{"x=" + filepath.Join(layout, "index.json"), "is not a directory"},
		{"x=oci-layout://" + layout, "several images"},
		{"x=oci-layout://" + layout + ":three", `no image tagged "three"`},
	} {
		if _, err := parseContexts([]string{bad.flag}); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("%s: err = %v, want %q", bad.flag, err, bad.want)
		}
	}
}
