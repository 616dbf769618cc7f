// Package frontend is lkbuild's BuildKit gateway frontend: it reads the
// LinuxKit YAML through dockerui (the same options as the Dockerfile
// frontend: filename, target, platform, build-args, cache imports), answers
// subrequests (--call targets, outline, check and lkbuild.schema; see
// subrequests.go and check.go), converts the configuration
// with llbgen once per target platform and returns the result.
//
// It is the only package that talks to the gateway client.
package frontend
