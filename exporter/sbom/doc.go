// Package sbom writes the SPDX 2.3 software bill of materials of an
// assembled LinuxKit system, /sbom.spdx.json: one package for the system,
// one per use of an image in the YAML (reference, digest, platform, its
// place in the tree) and one per package the images' package databases
// record (apk, dpkg) or an SPDX document they carry lists.
//
// `lkbuild sbom` runs it inside the build with every image's root
// filesystem mounted read-only; the frontend passes what it resolved
// (references, digests, platforms, places) as a JSON Input. The document is
// byte-reproducible: identifiers and the namespace derive from its
// contents, its time is the build's epoch.
//
// Like the other exporters it knows nothing of BuildKit: it must not
// import github.com/moby/buildkit.
package sbom
