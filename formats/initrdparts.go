package formats

import (
	"encoding/json"
	"fmt"
)

// The initrd in parts: `lkbuild build` keeps the parts of the initrds it
// built (the segments of a segmented initrd, see segments.go) in a cache
// of its own and asks the frontend for kernel+initrd "in parts". The
// build then exports, instead of <name>-initrd.img, a manifest listing
// the initrd's parts in order, and the client gets only the parts it
// lacks (lkbuild build receives them through the gateway's file reads);
// the client writes <name>-initrd.img as the concatenation of the parts,
// checking each one. For a segmented initrd the frontend composes the
// manifest: mkimage writes the manifest of its own parts (the microcode)
// into its parts directory, and the frontend adds the segments, each
// with the SHA-256 of its SegmentDigestFile. An unchanged part is thus
// neither concatenated in the build nor sent again. docs/formats.md ("The
// initrd in parts") says more; buildx users get the whole file as before.
const (
	// InitrdPartsTarget is the target whose initrd can be sent in parts:
	// the one whose initrd is an artifact of its own.
	InitrdPartsTarget = "kernel+initrd"
	// InitrdPartsDir is the directory of the output, next to the target's
	// other artifacts, holding InitrdPartsManifest and the parts exported
	// (none for lkbuild build, which receives them), each named by the
	// hex SHA-256 of its content.
	InitrdPartsDir = ".lkbuild-initrd-parts"
	// InitrdPartsManifest is the manifest's file name in InitrdPartsDir.
	InitrdPartsManifest = "manifest.json"
	// SegmentDigestFile is written by every segment format next to
	// SegmentFile: the hex SHA-256 of SegmentFile, then a newline.
	SegmentDigestFile = SegmentFile + ".sha256"
	// MaxInitrdParts bounds a manifest's parts (a segmented initrd has one
	// per bundle and volume plus a few).
	MaxInitrdParts = 100000
)

// InitrdParts is the manifest of an initrd sent in parts.
type InitrdParts struct {
	// Initrd is the artifact's file name, <name>-initrd.img.
	Initrd string `json:"initrd"`
	// Parts are the initrd's parts, in order: their concatenation is
	// the initrd.
	Parts []InitrdPart `json:"parts"`
}

// InitrdPart is one part of an initrd sent in parts.
type InitrdPart struct {
	// SHA256 is the hex SHA-256 of the part's bytes (64 lower-case
	// hex digits): its name in InitrdPartsDir and in the client's cache.
	SHA256 string `json:"sha256"`
	// Size is the part's length in bytes.
	Size int64 `json:"size"`
	// Segment is the index of the initrd segment the part is (in the
	// order of mkimage's --initrd-segment), or -1 for a part mkimage
	// wrote itself (the microcode, or a whole initrd that is not
	// segmented).
	Segment int `json:"segment"`
}

// Marshal returns the manifest's file: indented JSON and a newline. The
// client (frontend.PartsSink) recognises an initrd it wrote ahead by
// these bytes, so every writer of a manifest uses this.
func (m InitrdParts) Marshal() ([]byte, error) {
	if m.Parts == nil {
		m.Parts = []InitrdPart{}
	}
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// ParseInitrdParts reads and checks a manifest: a file name without
// "/", at most MaxInitrdParts parts, each with a valid SHA-256, a
// size >= 0 and a segment >= -1.
func ParseInitrdParts(data []byte) (InitrdParts, error) {
	var m InitrdParts
	if err := json.Unmarshal(data, &m); err != nil {
		return m, fmt.Errorf("initrd parts manifest: %w", err)
	}
	if m.Initrd == "" || m.Initrd == "." || m.Initrd == ".." || containsSlash(m.Initrd) {
		return m, fmt.Errorf("initrd parts manifest: bad initrd name %q", m.Initrd)
	}
	if len(m.Parts) > MaxInitrdParts {
		return m, fmt.Errorf("initrd parts manifest: %d parts, more than %d", len(m.Parts), MaxInitrdParts)
	}
	for i, p := range m.Parts {
		if !ValidSHA256(p.SHA256) || p.Size < 0 || p.Segment < -1 {
			return m, fmt.Errorf("initrd parts manifest: part %d: bad sha256 %q, size %d or segment %d", i, p.SHA256, p.Size, p.Segment)
		}
	}
	return m, nil
}

// ValidSHA256 reports whether s is 64 lower-case hex digits.
func ValidSHA256(s string) bool {
	if len(s) != 64 {
		return false
	}
	for _, c := range []byte(s) {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

func containsSlash(s string) bool {
	for _, c := range []byte(s) {
		if c == '/' || c == '\\' {
			return true
		}
	}
	return false
}
