// Package formats is the one table of lkbuild's targets, LinuxKit's output
// formats: for each, its name, description, artifacts, architectures, how
// it boots, whether it needs the kernel, the rule its kernel command line
// must follow, whether it is a disk (sized by SIZE) or the root filesystem
// tree itself, and why it has no boot test if it has none.
//
// Everything that knows a target reads it: llbgen (checks and the mkimage
// run), the frontend (--call targets), the CLI's help, the writers of
// exporter/mkimage (keyed by the table's names), the boot tests and the
// generated tables in README.md and docs/formats.md. Adding a format is one
// entry here and one writer in exporter/mkimage; the tests of those packages
// fail until both, a boot test (or a reasoned exemption) and the docs exist.
//
// It is a leaf: it imports only the standard library, nothing of BuildKit,
// of lkbuild's other packages or of the exporter writers.
package formats

//go:generate go test -run TestDocsTables -update
