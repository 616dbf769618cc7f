// Package spec is lkbuild's model of a LinuxKit YAML file: a strict parser
// that reports every error with file, line, column and field path,
// LinuxKit's validation and multi-file merge, the org.mobyproject.config
// label merge, and the generation of each runc bundle's config.json and
// runtime.json with LinuxKit's semantics.
//
// It is pure data transformation and must not import BuildKit.
package spec
