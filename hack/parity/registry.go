package parity

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"

	digest "github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/specs-go"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
)

// Push uploads the image to its registry (plain HTTP, the local registry)
// under its tag: blobs the repository already has are skipped, and the
// index is only put when the tag does not already name these bytes, so
// pushing again changes nothing.
func Push(ctx context.Context, img *Image) error {
	host, repo, tag := splitPushRef(img.Ref)
	base := "http://" + host + "/v2/" + repo
	if d, err := headDigest(ctx, base+"/manifests/"+tag, ocispecs.MediaTypeImageIndex); err == nil && d == img.Digest() {
		return nil
	}
	var ds []digest.Digest
	for d := range img.Blobs {
		ds = append(ds, d)
	}
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	var manifests []digest.Digest
	for _, d := range ds {
		if isManifest(img.Blobs[d]) {
			manifests = append(manifests, d)
			continue
		}
		if err := pushBlob(ctx, base, d, img.Blobs[d]); err != nil {
			return fmt.Errorf("push %s: %w", img.Ref, err)
		}
	}
	for _, d := range manifests {
		if err := putManifest(ctx, base+"/manifests/"+d.String(), ocispecs.MediaTypeImageManifest, img.Blobs[d]); err != nil {
			return fmt.Errorf("push %s: %w", img.Ref, err)
		}
	}
	if err := putManifest(ctx, base+"/manifests/"+tag, ocispecs.MediaTypeImageIndex, img.Index); err != nil {
		return fmt.Errorf("push %s: %w", img.Ref, err)
	}
	return nil
}

// splitPushRef splits host/repo[:tag] (no tag means latest).
func splitPushRef(ref string) (host, repo, tag string) {
	host, rest, _ := strings.Cut(ref, "/")
	repo, tag = splitRef(rest)
	if tag == "" {
		tag = "latest"
	}
	return host, repo, tag
}

func isManifest(dt []byte) bool {
	var m struct {
		MediaType string `json:"mediaType"`
	}
	return json.Unmarshal(dt, &m) == nil && m.MediaType == ocispecs.MediaTypeImageManifest
}

func headDigest(ctx context.Context, u, accept string) (digest.Digest, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodHead, u, nil)
	if err != nil {
		return "", err
	}
	req.Header.Set("Accept", accept)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("HEAD %s: %s", u, resp.Status)
	}
	return digest.Parse(resp.Header.Get("Docker-Content-Digest"))
}

func pushBlob(ctx context.Context, base string, d digest.Digest, dt []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodHead, base+"/blobs/"+d.String(), nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode == http.StatusOK {
		return nil
	}
	req, err = http.NewRequestWithContext(ctx, http.MethodPost, base+"/blobs/uploads/", nil)
	if err != nil {
		return err
	}
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		return fmt.Errorf("start upload of %s: %s", d, resp.Status)
	}
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil {
		return err
	}
	loc = resp.Request.URL.ResolveReference(loc)
	q := loc.Query()
	q.Set("digest", d.String())
	loc.RawQuery = q.Encode()
	req, err = http.NewRequestWithContext(ctx, http.MethodPut, loc.String(), bytes.NewReader(dt))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/octet-stream")
	req.ContentLength = int64(len(dt))
	return do(req, http.StatusCreated)
}

func putManifest(ctx context.Context, u, mt string, dt []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, u, bytes.NewReader(dt))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", mt)
	return do(req, http.StatusCreated)
}

func do(req *http.Request, want int) error {
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != want {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("%s %s: %s %s", req.Method, req.URL.Path, resp.Status, strings.TrimSpace(string(body)))
	}
	return nil
}

// WriteCache writes the images into a LinuxKit image cache (an OCI image
// layout whose index.json names each root by its reference, in the
// org.opencontainers.image.ref.name annotation, as `linuxkit cache` does),
// so `linuxkit build --cache dir` finds them without the network. Existing
// entries of the same names are replaced.
func WriteCache(dir string, imgs []*Image) error {
	if err := os.MkdirAll(filepath.Join(dir, "blobs", "sha256"), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "oci-layout"), []byte(`{"imageLayoutVersion":"1.0.0"}`), 0o644); err != nil {
		return err
	}
	index := ocispecs.Index{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispecs.MediaTypeImageIndex}
	if dt, err := os.ReadFile(filepath.Join(dir, "index.json")); err == nil {
		if err := json.Unmarshal(dt, &index); err != nil {
			return fmt.Errorf("%s/index.json: %w", dir, err)
		}
	}
	names := map[string]bool{}
	for _, img := range imgs {
		names[img.Ref] = true
	}
	var kept []ocispecs.Descriptor
	for _, m := range index.Manifests {
		if !names[m.Annotations[ocispecs.AnnotationRefName]] {
			kept = append(kept, m)
		}
	}
	index.Manifests = kept
	for _, img := range imgs {
		blobs := map[digest.Digest][]byte{img.Digest(): img.Index}
		for d, dt := range img.Blobs {
			blobs[d] = dt
		}
		for d, dt := range blobs {
			if err := os.WriteFile(filepath.Join(dir, "blobs", "sha256", d.Encoded()), dt, 0o644); err != nil {
				return err
			}
		}
		index.Manifests = append(index.Manifests, ocispecs.Descriptor{
			MediaType:   ocispecs.MediaTypeImageIndex,
			Digest:      img.Digest(),
			Size:        int64(len(img.Index)),
			Annotations: map[string]string{ocispecs.AnnotationRefName: img.Ref},
		})
	}
	dt, err := json.MarshalIndent(index, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "index.json"), dt, 0o644)
}
