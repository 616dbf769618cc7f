package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/containerd/containerd/v2/core/content"
	"github.com/containerd/containerd/v2/plugins/content/local"
	digest "github.com/opencontainers/go-digest"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/tonistiigi/fsutil"
)

// namedContexts are the --build-context flags as the frontend receives
// them, with the local directories and OCI layouts they send.
type namedContexts struct {
	attrs  map[string]string // context:NAME -> value
	locals map[string]fsutil.FS
	stores map[string]content.Store
}

// parseContexts reads --build-context NAME=VALUE flags, as buildx does:
// VALUE is docker-image://REF, oci-layout://DIR[:TAG][@sha256:DIGEST]
// (without a digest, the image of DIR's index.json that has TAG, or its
// only image), input:NAME, a git or http(s) URL, or a local directory.
func parseContexts(flags []string) (*namedContexts, error) {
	nc := &namedContexts{attrs: map[string]string{}, locals: map[string]fsutil.FS{}, stores: map[string]content.Store{}}
	for i, f := range flags {
		name, v, ok := strings.Cut(f, "=")
		if !ok || name == "" || v == "" {
			return nil, fmt.Errorf("--build-context %q: want NAME=VALUE", f)
		}
		if _, dup := nc.attrs["context:"+name]; dup {
			return nil, fmt.Errorf("--build-context %s given twice", name)
		}
		id := fmt.Sprintf("lkbuild-context-%d", i)
		switch {
		case strings.HasPrefix(v, "oci-layout://"):
			dir, dgst, err := ociLayoutImage(strings.TrimPrefix(v, "oci-layout://"))
			if err != nil {
				return nil, fmt.Errorf("--build-context %s: %w", name, err)
			}
			abs, err := filepath.Abs(dir)
			if err != nil {
				return nil, fmt.Errorf("--build-context %s: %w", name, err)
			}
			store, err := local.NewStore(abs)
			if err != nil {
				return nil, fmt.Errorf("--build-context %s: %w", name, err)
			}
			nc.stores[id] = store
			v = "oci-layout://" + id + "@" + dgst.String()
		case strings.HasPrefix(v, "docker-image://"), strings.HasPrefix(v, "input:"),
			strings.HasPrefix(v, "git@"), strings.HasPrefix(v, "git://"),
			strings.HasPrefix(v, "http://"), strings.HasPrefix(v, "https://"):
		default:
			st, err := os.Stat(v)
			if err != nil {
				return nil, fmt.Errorf("--build-context %s: %w (want a directory, docker-image://, oci-layout://, input: or a URL)", name, err)
			}
			if !st.IsDir() {
				return nil, fmt.Errorf("--build-context %s: %s is not a directory", name, v)
			}
			fs, err := fsutil.NewFS(v)
			if err != nil {
				return nil, fmt.Errorf("--build-context %s: %w", name, err)
			}
			nc.locals[id] = fs
			v = "local:" + id
		}
		nc.attrs["context:"+name] = v
	}
	return nc, nil
}

// ociLayoutImage splits DIR[:TAG][@DIGEST] and, without a digest, finds
// the image in DIR's index.json: the one whose ref name is TAG, or the
// only one.
func ociLayoutImage(s string) (string, digest.Digest, error) {
	dir, d, hasDigest := strings.Cut(s, "@")
	tag := ""
	if _, err := os.Stat(dir); err != nil {
		if i := strings.LastIndex(dir, ":"); i > strings.LastIndex(dir, string(filepath.Separator)) {
			dir, tag = dir[:i], dir[i+1:]
		}
	}
	if hasDigest {
		dgst, err := digest.Parse(d)
		if err != nil {
			return "", "", fmt.Errorf("oci-layout: %w", err)
		}
		return dir, dgst, nil
	}
	dt, err := os.ReadFile(filepath.Join(dir, ocispecs.ImageIndexFile))
	if err != nil {
		return "", "", fmt.Errorf("oci-layout: %w", err)
	}
	var idx ocispecs.Index
	if err := json.Unmarshal(dt, &idx); err != nil {
		return "", "", fmt.Errorf("oci-layout: %s: %w", filepath.Join(dir, ocispecs.ImageIndexFile), err)
	}
	var found []digest.Digest
	for _, m := range idx.Manifests {
		if tag == "" || m.Annotations[ocispecs.AnnotationRefName] == tag {
			found = append(found, m.Digest)
		}
	}
	switch {
	case len(found) == 1:
		return dir, found[0], nil
	case len(found) == 0 && tag != "":
		return "", "", fmt.Errorf("oci-layout: %s has no image tagged %q", dir, tag)
	case len(found) == 0:
		return "", "", fmt.Errorf("oci-layout: %s has no image", dir)
	default:
		return "", "", errors.New("oci-layout: " + dir + " has several images: name one with :TAG or @sha256:DIGEST")
	}
}
