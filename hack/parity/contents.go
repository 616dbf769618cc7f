package parity

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"os"
)

// MaxKept is the size up to which the recording keeps a file's contents.
const MaxKept = 64 << 10

// KeepGenerated selects the files a build wrote itself (not copied from a
// stand-in image, whose files all have ImageTime) of at most MaxKept
// bytes: bundle configs, files entries, replaced etc/hosts, the apk
// database. Their contents are recorded so that a difference can be shown
// line by line (JSON member by member).
func KeepGenerated(h *tar.Header) bool {
	return !h.ModTime.Equal(ImageTime) && h.Size <= MaxKept && cleanName(h.Name) != "sbom.spdx.json"
}

// KeepSmall selects every file of at most MaxKept bytes.
func KeepSmall(h *tar.Header) bool { return h.Size <= MaxKept }

// SaveContents writes contents (hash -> bytes) as gzip-compressed JSON,
// keys sorted, no gzip time, so equal contents give equal files.
func SaveContents(name string, contents map[string][]byte) error {
	dt, err := json.MarshalIndent(contents, "", " ")
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if err != nil {
		return err
	}
	if _, err := zw.Write(dt); err != nil {
		return err
	}
	if err := zw.Close(); err != nil {
		return err
	}
	return os.WriteFile(name, buf.Bytes(), 0o644)
}

// LoadContents reads a file SaveContents wrote.
func LoadContents(name string) (map[string][]byte, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	dt, err := io.ReadAll(zr)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	out := map[string][]byte{}
	if err := json.Unmarshal(dt, &out); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return out, nil
}
