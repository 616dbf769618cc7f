// Package llbgen compiles a parsed LinuxKit configuration (package spec) into
// BuildKit LLB: one image source per component, runc bundles under
// /containers, the files section as FileOps, the root filesystem assembled
// with MergeOp, and the output formats as a run of `lkbuild mkimage` on the
// build platform with the root filesystem mounted read-only.
//
// It is pure: everything it needs from a daemon (image configs, capabilities)
// comes in through Options, so it is unit-tested without one. It must not
// import the gateway client, the frontend or the artifact writers
// (exporter/...): it knows the targets from package formats and names
// their writer by the target's name on mkimage's command line.
package llbgen
