package frontend

import (
	"fmt"
	"path"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/lkbuild/lkbuild/formats"
	"github.com/lkbuild/lkbuild/internal/buildarg"
)

// The build-args are checked before anything is fetched, each against the
// range every output format can represent, so that a value no format can
// hold fails the build at once instead of being dropped or truncated.
const (
	// MaxNameLen is the longest NAME in bytes: a file name holds 255 bytes
	// (NAME_MAX) and the longest suffix a target appends to NAME is
	// "-efi-initrd.iso" (15 bytes).
	MaxNameLen = 240
	// MaxEpoch is the largest SOURCE_DATE_EPOCH, 2106-02-07 06:28:15 UTC:
	// newc cpio and SquashFS store seconds since 1970 in 32 unsigned bits
	// (docs/formats.md lists every format's range).
	MaxEpoch = buildarg.MaxEpoch
	// MaxSize is the largest SIZE: the disk formats hold one MBR partition
	// or one FAT32 filesystem, both of which end at 2 TiB.
	MaxSize = buildarg.MaxSize
	// maxVHDSize is the largest SIZE for the VHD targets: a VHD holds
	// 2040 GiB, and its size is rounded up to a whole MiB.
	maxVHDSize = 2040<<30 - 1<<20
)

// buildArgs are a request's target and build-args, read and checked
// before the YAML's images or the build context are fetched.
type buildArgs struct {
	target string     // comma-separated targets (formats.Default when unset)
	name   string     // the artifacts' base name (NAME)
	epoch  *time.Time // SOURCE_DATE_EPOCH, nil when unset
	size   int64      // SIZE in bytes, 0 when unset
	sbom   bool       // SBOM: write the SBOM into the root filesystem
}

// parseArgs reads the target and the build-args of a request for the main
// YAML file yamlFile, in this order: the target list, NAME,
// SOURCE_DATE_EPOCH, SIZE (checked against each target), SBOM; the first
// problem is returned.
func parseArgs(target string, args map[string]string, yamlFile string) (buildArgs, error) {
	if target == "" {
		target = formats.Default
	}
	if _, err := formats.Parse(target); err != nil {
		return buildArgs{}, err
	}
	name, err := parseName(args[ArgName], yamlFile)
	if err != nil {
		return buildArgs{}, err
	}
	epoch, err := parseEpoch(args[ArgSourceDateEpoch])
	if err != nil {
		return buildArgs{}, err
	}
	size, err := parseSize(args, target)
	if err != nil {
		return buildArgs{}, err
	}
	sbom, err := parseSBOM(args[ArgSBOM])
	if err != nil {
		return buildArgs{}, err
	}
	return buildArgs{target: target, name: name, epoch: epoch, size: size, sbom: sbom}, nil
}

// nameRule says what NAME may be, for error messages.
const nameRule = `the base name of the artifacts must be one plain file name (NAME-kernel, NAME.iso, ... are written into the output directory): 1 to 240 bytes of UTF-8, not "." or "..", without "/", "\", '"' or control characters`

// parseName returns the artifacts' base name: the NAME build-arg, else the
// YAML file name without its extension (LinuxKit's default for -name).
// LinuxKit joins -name to the output directory as a path, so "../x" or
// "a/b" write elsewhere; lkbuild wants one plain file name.
func parseName(arg, yamlFile string) (string, error) {
	if arg != "" {
		if why := nameProblem(arg); why != "" {
			return "", fmt.Errorf("build-arg %s: %q %s: %s", ArgName, arg, why, nameRule)
		}
		return arg, nil
	}
	name := strings.TrimSuffix(path.Base(yamlFile), path.Ext(yamlFile))
	if why := nameProblem(name); why != "" {
		return "", fmt.Errorf("the YAML file name %q gives the artifacts' base name %q, which %s: set the %s build-arg (%s)", path.Base(yamlFile), name, why, ArgName, nameRule)
	}
	return name, nil
}

// nameProblem says what is wrong with name as a file name, or "".
func nameProblem(name string) string {
	switch {
	case name == "":
		return "is empty"
	case name == "." || name == "..":
		return "is a directory name"
	case len(name) > MaxNameLen:
		return fmt.Sprintf("is %d bytes long", len(name))
	case !utf8.ValidString(name):
		return "is not valid UTF-8"
	}
	for _, r := range name {
		switch {
		case r == '/' || r == '\\':
			return fmt.Sprintf("contains %q, a path separator", r)
		case r == '"':
			return `contains '"'`
		case unicode.IsControl(r):
			return fmt.Sprintf("contains the control character %U", r)
		}
	}
	return ""
}

// parseEpoch reads SOURCE_DATE_EPOCH: a whole number of seconds from 0 to
// MaxEpoch ("" is unset).
func parseEpoch(v string) (*time.Time, error) {
	t, err := buildarg.Epoch(v)
	if err != nil {
		return nil, fmt.Errorf("build-arg %s: %w", ArgSourceDateEpoch, err)
	}
	return t, nil
}

// parseSize reads SIZE (or its lower-case spelling "size") as LinuxKit's
// --size takes it (buildarg.Size), and checks it against the own limit of
// each target of the comma-separated list. Unset is 0.
func parseSize(args map[string]string, targets string) (int64, error) {
	v := args[ArgSize]
	if v == "" {
		v = args[strings.ToLower(ArgSize)]
	}
	size, err := buildarg.Size(v)
	if err != nil {
		return 0, fmt.Errorf("build-arg %s: %w", ArgSize, err)
	}
	if err := checkSize(targets, size); err != nil {
		return 0, err
	}
	return size, nil
}

// checkSize checks a disk size against the own limit of each target of
// the comma-separated list.
func checkSize(targets string, size int64) error {
	for _, target := range strings.Split(targets, ",") {
		target = strings.TrimSpace(target)
		if (target == "vhd" || target == "dynamic-vhd") && size > maxVHDSize {
			return fmt.Errorf("build-arg %s: %d bytes is too large for %s: a VHD holds at most 2040 GiB, so SIZE must be at most %dM", ArgSize, size, target, maxVHDSize>>20)
		}
	}
	return nil
}

// mergePaths returns the paths, in the local source of the YAML files, of
// the MERGE files: relative to dir, the directory of the main YAML in that
// source, and inside the source. Empty names are skipped.
func mergePaths(dir string, names []string) ([]string, error) {
	var out []string
	for _, n := range names {
		n = strings.TrimSpace(n)
		if n == "" {
			continue
		}
		p := path.Join(dir, n)
		switch {
		case path.IsAbs(n):
			return nil, fmt.Errorf("build-arg %s: %q is an absolute path: name the file relative to the directory of the main YAML", ArgMerge, n)
		case p == ".." || strings.HasPrefix(p, "../"):
			return nil, fmt.Errorf("build-arg %s: %q leaves the directory the YAML files are read from (the main YAML's directory with buildx): name a file in it, relative to the main YAML", ArgMerge, n)
		case p == "." || p == dir:
			return nil, fmt.Errorf("build-arg %s: %q names a directory, not a YAML file", ArgMerge, n)
		}
		out = append(out, p)
	}
	return out, nil
}

// followPatterns turns literal paths into patterns for llb.FollowPaths,
// whose paths are include patterns: a file named "[a]b", "*" or "!x" must
// transfer that file only.
func followPatterns(paths []string) []string {
	out := make([]string, len(paths))
	for i, p := range paths {
		var b strings.Builder
		for j := 0; j < len(p); j++ {
			c := p[j]
			if strings.IndexByte(`*?[]\`, c) >= 0 || (c == '!' && j == 0) {
				b.WriteByte('\\')
			}
			b.WriteByte(c)
		}
		out[i] = b.String()
	}
	return out
}
