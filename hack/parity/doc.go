// Package parity compares whole root filesystem trees built by lkbuild with
// the ones `linuxkit build --format tar` builds from the same YAML: the
// corpus of spec's parity test with its image references rewritten into a
// namespace of deterministic stand-in images (pushed to the local registry
// for lkbuild, written into LinuxKit's image cache for the recording), and
// a normalised manifest of each tree (one line per path). The recording
// side is record.sh; the comparison is TestLinuxKitTrees. It imports no
// BuildKit package outside its tests.
package parity
