// Package sbominput holds the input of the SBOM helper (lkbuild sbom):
// what llbgen knows of the system and its images when it writes the LLB,
// passed to the helper as JSON. It is apart from exporter/sbom, which
// writes the document, so that llbgen does not import the writers
// (internal/importrules). Standard library only.
package sbominput

import "time"

// Input is what the frontend knows of the system when it writes the LLB:
// its name, platform and time, and every use of an image. The helper reads
// it as JSON.
type Input struct {
	// Name is the system's name (the NAME build-arg), the document's and
	// the root package's name.
	Name string `json:"name"`
	// Platform is the target platform, e.g. linux/amd64.
	Platform string `json:"platform"`
	// Created is the document's creation time: SOURCE_DATE_EPOCH, else
	// LinuxKit's fixed time.
	Created time.Time `json:"created"`
	// Images lists every use of an image in YAML order.
	Images []Image `json:"images"`
}

// Image is one use of an image in the YAML.
type Image struct {
	// Field is the YAML field naming it: kernel.image, init[1],
	// onboot[0].image, volumes[2].platforms[0] ...
	Field string `json:"field"`
	// Entry is the name of the onboot, onshutdown, services or volumes
	// entry; empty for the kernel and init images.
	Entry string `json:"entry,omitempty"`
	// Ref is the reference as the YAML writes it.
	Ref string `json:"ref"`
	// Pinned is the normalized reference with the digest it resolved to
	// (name@sha256:...); empty when a named build context provides the
	// image.
	Pinned string `json:"pinned,omitempty"`
	// Platform is the platform of the image used.
	Platform string `json:"platform"`
	// Path is where the image's files are in the root filesystem ("/" for
	// the kernel and init images).
	Path string `json:"path"`
	// MountedAt is set for a container that uses the tree of an earlier
	// entry with the same image (LinuxKit extracts an image once): the
	// directory it is mounted on at boot.
	MountedAt string `json:"mountedAt,omitempty"`
	// Layout is set for a volume of format oci: the image is stored as an
	// OCI image layout at Path, not as a tree.
	Layout bool `json:"layout,omitempty"`
	// Tree is the directory where the helper finds the image's root
	// filesystem (mounted read-only); uses of one image share it.
	Tree string `json:"tree"`
}
