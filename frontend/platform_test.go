package frontend_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lkbuild/lkbuild/internal/cli"
	"github.com/lkbuild/lkbuild/internal/testenv"
	"github.com/moby/buildkit/client"
	digest "github.com/opencontainers/go-digest"
	imagespec "github.com/opencontainers/image-spec/specs-go"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/tonistiigi/fsutil"
)

// TestForeignPlatformImage: images that hold linux/amd64 only, used in a
// linux/arm64 build, fail the build through the real daemon before
// anything but image metadata is loaded, with the YAML position, the entry,
// the image and both platforms. BuildKit itself takes a single-manifest
// image for any platform, and reports an index without the platform as
// "no match for platform in manifest", naming nothing.
func TestForeignPlatformImage(t *testing.T) {
	env := testenv.Integration(t)
	single := testImage(t, env, "test-amd64-only", false)
	index := testImage(t, env, "test-amd64-index", true)
	for _, tc := range []struct {
		name, ref, platform, want string
	}{
		{"single manifest", single, "linux/arm64",
			`platform.yml:12:5: onboot[1].image: image ` + single + ` of "foreign" is for linux/amd64, not for linux/arm64, the platform of this build`},
		{"single manifest, two platforms", single, "linux/amd64,linux/arm64",
			`platform.yml:12:5: onboot[1].image: image ` + single + ` of "foreign" is for linux/amd64, not for linux/arm64`},
		{"index", index, "linux/arm64",
			`platform.yml:12:5: onboot[1].image: image ` + index + ` of "foreign" has no manifest in its index for linux/arm64`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			yml := fmt.Sprintf(`# an image for amd64 only, in onboot and services
kernel:
  image: linuxkit/kernel:6.12.59
  cmdline: "console=ttyS0"
init:
  - linuxkit/init:b5506cc74a6812dc40982cacfd2f4328f8a4b12a
  - linuxkit/runc:9442aa234715e751a16144f1d4ae3fd1a00fd492
onboot:
  - name: hello
    image: busybox:1.36
    command: ["/bin/echo", "hello"]
  - name: foreign
    image: %[1]s
    command: ["/hello"]
services:
  - name: foreign-svc
    image: %[1]s
`, tc.ref)
			if err := os.WriteFile(filepath.Join(dir, "platform.yml"), []byte(yml), 0o644); err != nil {
				t.Fatal(err)
			}
			var mu sync.Mutex
			var fetched []string
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			defer cancel()
			err := cli.Build(ctx, cli.BuildOptions{File: filepath.Join(dir, "platform.yml"), Context: dir, Target: "tar",
				Platform: tc.platform, Output: filepath.Join(dir, "out"), Addr: env.Addr, Helper: env.Helper, Progress: "quiet",
				OnStatus: func(st *client.SolveStatus) {
					mu.Lock()
					defer mu.Unlock()
					// image metadata and the YAML are loaded by [internal] steps;
					// any other step, or a layer's download or extraction,
					// means the build went on
					for _, v := range st.Vertexes {
						if !strings.HasPrefix(v.Name, "[internal] ") {
							fetched = append(fetched, v.Name)
						}
					}
					for _, s := range st.Statuses {
						if strings.HasPrefix(s.ID, "sha256:") || strings.HasPrefix(s.ID, "extracting") {
							fetched = append(fetched, s.ID)
						}
					}
				}})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v\nwant one containing %s", err, tc.want)
			}
			// the service using the same image is named too
			if !strings.Contains(err.Error(), `services[0].image: image `+tc.ref+` of "foreign-svc"`) {
				t.Errorf("error %v does not name services[0]", err)
			}
			if len(fetched) > 0 {
				t.Errorf("the build went on before failing: %v", fetched)
			}
		})
	}
}

// testImage returns the ref of a small linux/amd64-only image in the
// local registry (a file /hello and a file /kernel): a single manifest, or
// an index of that one manifest. It is built and pushed as hack/images.sh
// builds its stand-ins (BuildKit's dockerfile.v0 frontend, FROM scratch)
// when missing; an existing image of that name is never replaced.
func testImage(t *testing.T, env testenv.Env, name string, index bool) string {
	t.Helper()
	registry := env.Registry
	if registry == "" {
		registry = "127.0.0.1:5000"
	}
	repo, tag := "lkbuild/"+name, "1"
	ref := registry + "/" + repo + ":" + tag
	mediaType, err := manifestType(registry, repo, tag)
	if err != nil {
		t.Fatal(err)
	}
	if mediaType == "" {
		buildTestImage(t, env, ref, index)
		if mediaType, err = manifestType(registry, repo, tag); err != nil {
			t.Fatal(err)
		}
	}
	isIndex := mediaType == ocispecs.MediaTypeImageIndex || mediaType == "application/vnd.docker.distribution.manifest.list.v2+json"
	if mediaType == "" || isIndex != index {
		t.Fatalf("%s is %q in the registry, want a single manifest (index=%v); it is not replaced", ref, mediaType, index)
	}
	return ref
}

// manifestType returns the media type of repo:tag in the registry, or ""
// when it has none.
func manifestType(registry, repo, tag string) (string, error) {
	req, err := http.NewRequest(http.MethodHead, "http://"+registry+"/v2/"+repo+"/manifests/"+tag, nil)
	if err != nil {
		return "", err
	}
	req.Header.Set("Accept", strings.Join([]string{ocispecs.MediaTypeImageIndex, ocispecs.MediaTypeImageManifest,
		"application/vnd.docker.distribution.manifest.list.v2+json", "application/vnd.docker.distribution.manifest.v2+json"}, ", "))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", fmt.Errorf("asking the registry for %s:%s: %w", repo, tag, err)
	}
	resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK:
		return resp.Header.Get("Content-Type"), nil
	case http.StatusNotFound:
		return "", nil
	}
	return "", fmt.Errorf("registry: %s:%s: %s", repo, tag, resp.Status)
}

func buildTestImage(t *testing.T, env testenv.Env, ref string, index bool) {
	t.Helper()
	dir := t.TempDir()
	for name, data := range map[string]string{
		"Dockerfile": "FROM scratch\nCOPY hello kernel /\n",
		"hello":      "an amd64-only test image\n",
		"kernel":     "not a kernel\n",
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	fs, err := fsutil.NewFS(dir)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	c, err := client.New(ctx, env.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	attrs := map[string]string{"platform": "linux/amd64", "build-arg:SOURCE_DATE_EPOCH": "0"}
	if index {
		attrs["multi-platform"] = "true"
	}
	_, err = c.Solve(ctx, nil, client.SolveOpt{
		Frontend:      "dockerfile.v0",
		FrontendAttrs: attrs,
		LocalMounts:   map[string]fsutil.FS{"context": fs, "dockerfile": fs},
		Exports: []client.ExportEntry{{Type: client.ExporterImage, Attrs: map[string]string{
			"name": ref, "push": "true", "registry.insecure": "true", "rewrite-timestamp": "true"}}},
	}, nil)
	if err != nil {
		t.Fatalf("building %s: %v", ref, err)
	}
}

// TestNoPlatformImageWarning: an image whose config names no os or
// architecture is built in, with a warning at its YAML line shown by
// BuildKit.
func TestNoPlatformImageWarning(t *testing.T) {
	env := testenv.Integration(t)
	ref := noPlatformImage(t, env)
	dir := t.TempDir()
	yml := "# an image whose config names no platform\nonboot:\n  - name: bare\n    image: " + ref + "\n"
	if err := os.WriteFile(filepath.Join(dir, "bare.yml"), []byte(yml), 0o644); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var warnings []*client.VertexWarning
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	// lkbuild build prints the warnings at the end, on stderr
	stderr := os.Stderr
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	os.Stderr = w
	printed := make(chan []byte)
	go func() {
		b, _ := io.ReadAll(r)
		printed <- b
	}()
	err = cli.Build(ctx, cli.BuildOptions{File: filepath.Join(dir, "bare.yml"), Context: dir, Target: "tar",
		Platform: "linux/arm64", Output: filepath.Join(dir, "out"), Addr: env.Addr, Helper: env.Helper, Progress: "plain",
		OnStatus: func(st *client.SolveStatus) {
			mu.Lock()
			defer mu.Unlock()
			warnings = append(warnings, st.Warnings...)
		}})
	os.Stderr = stderr
	w.Close()
	out := <-printed
	r.Close()
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	want := `bare.yml:3:5: onboot[0].image: image ` + ref + ` of "bare": its config names no os or architecture; using it as linux/arm64`
	if !bytes.Contains(out, []byte("\nWARNING: "+want)) {
		t.Errorf("lkbuild build did not print the warning:\n%s", out)
	}
	for _, w := range warnings {
		if strings.Contains(string(w.Short), want) && len(w.Range) == 1 && w.Range[0].Start.Line == 3 &&
			w.SourceInfo != nil && w.SourceInfo.Filename == "bare.yml" {
			return
		}
	}
	var got []string
	for _, w := range warnings {
		got = append(got, string(w.Short))
	}
	t.Errorf("warnings %q, want one at bare.yml line 3 containing %s", got, want)
}

// noPlatformImage returns lkbuild/test-no-platform:1 in the local
// registry: one layer holding /hello, and a config without os and
// architecture (no builder writes such a config, so it is pushed through
// the registry API). An existing image of that name is used as it is.
func noPlatformImage(t *testing.T, env testenv.Env) string {
	t.Helper()
	registry := env.Registry
	if registry == "" {
		registry = "127.0.0.1:5000"
	}
	repo, tag := "lkbuild/test-no-platform", "1"
	ref := registry + "/" + repo + ":" + tag
	if mt, err := manifestType(registry, repo, tag); err != nil || mt != "" {
		if err != nil {
			t.Fatal(err)
		}
		return ref
	}
	var tarball bytes.Buffer
	tw := tar.NewWriter(&tarball)
	data := []byte("an image without a platform\n")
	if err := tw.WriteHeader(&tar.Header{Name: "hello", Mode: 0o644, Size: int64(len(data)), ModTime: time.Unix(0, 0)}); err != nil {
		t.Fatal(err)
	}
	tw.Write(data)
	tw.Close()
	var layer bytes.Buffer
	zw := gzip.NewWriter(&layer)
	zw.Write(tarball.Bytes())
	zw.Close()
	config, _ := json.Marshal(map[string]any{
		"config": map[string]any{},
		"rootfs": map[string]any{"type": "layers", "diff_ids": []string{digest.FromBytes(tarball.Bytes()).String()}},
	})
	push := func(b []byte) ocispecs.Descriptor {
		d := digest.FromBytes(b)
		resp, err := http.Post("http://"+registry+"/v2/"+repo+"/blobs/uploads/", "", nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		loc := resp.Header.Get("Location")
		if resp.StatusCode != http.StatusAccepted || loc == "" {
			t.Fatalf("starting a blob upload: %s", resp.Status)
		}
		if !strings.HasPrefix(loc, "http") {
			loc = "http://" + registry + loc
		}
		sep := "?"
		if strings.Contains(loc, "?") {
			sep = "&"
		}
		req, _ := http.NewRequest(http.MethodPut, loc+sep+"digest="+d.String(), bytes.NewReader(b))
		req.Header.Set("Content-Type", "application/octet-stream")
		if resp, err = http.DefaultClient.Do(req); err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusCreated {
			t.Fatalf("uploading blob %s: %s", d, resp.Status)
		}
		return ocispecs.Descriptor{Digest: d, Size: int64(len(b))}
	}
	cd, ld := push(config), push(layer.Bytes())
	cd.MediaType, ld.MediaType = ocispecs.MediaTypeImageConfig, ocispecs.MediaTypeImageLayerGzip
	manifest, _ := json.Marshal(ocispecs.Manifest{Versioned: imagespec.Versioned{SchemaVersion: 2}, MediaType: ocispecs.MediaTypeImageManifest,
		Config: cd, Layers: []ocispecs.Descriptor{ld}})
	req, _ := http.NewRequest(http.MethodPut, "http://"+registry+"/v2/"+repo+"/manifests/"+tag, bytes.NewReader(manifest))
	req.Header.Set("Content-Type", ocispecs.MediaTypeImageManifest)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("pushing the manifest of %s: %s", ref, resp.Status)
	}
	return ref
}
