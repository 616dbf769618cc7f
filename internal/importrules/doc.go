// Package importrules holds no code: its test enforces the import rules
// that the packages' doc comments state (spec and the exporter writers
// import nothing of BuildKit, llbgen neither the gateway client nor the
// frontend nor the writers, formats only the standard library, ...), with
// `go list -deps` over the module cache, so a change that breaks a rule
// fails in review rather than in the next refactoring.
package importrules
