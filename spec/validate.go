package spec

import (
	"fmt"
	"path"
	"regexp"
	"strconv"
	"strings"

	"github.com/containerd/platforms"
	"github.com/distribution/reference"
)

// Names of entries and volumes become directories of the root filesystem
// (containers/services/<name>, containers/onboot/000-<name>,
// containers/volumes/<name>) and runc or containerd container ids, so
// each must be one plain path component. lkbuild applies LinuxKit's rule
// for volume names (moby/config.go: lower case letters, digits, _ and -)
// to all of them, not empty and at most maxNameLen characters (a longer
// service name is refused by containerd when the service starts). A
// service is a containerd container, whose id also starts and ends with a
// letter or digit and has no two separators in a row.
var (
	nameRE          = regexp.MustCompile(`^[a-z0-9_-]+$`)
	containerdIDRE  = regexp.MustCompile(`^[a-z0-9]+(?:[_-][a-z0-9]+)*$`)
	nameRuleMessage = "a name is one path component of lower case letters, digits, _ and - only (LinuxKit's rule for volume names)"
)

// maxNameLen is the longest name: containerd's limit for container ids.
const maxNameLen = 76

// nameProblem says what is wrong with name as the name of an entry of
// section ("onboot", "onshutdown", "services" or "volumes"), or "".
func nameProblem(name, section string) string {
	switch {
	case name == "":
		return "name is required"
	case !nameRE.MatchString(name):
		return fmt.Sprintf("invalid name %s: %s", quoteShort(name), nameRuleMessage)
	case len(name) > maxNameLen:
		return fmt.Sprintf("name %s is %d characters long: at most %d (containerd's limit for container ids)", quoteShort(name), len(name), maxNameLen)
	case section == "services" && !containerdIDRE.MatchString(name):
		return fmt.Sprintf("invalid service name %q: a service runs as a containerd container, whose id starts and ends with a letter or digit and has no two of _ and - in a row", name)
	}
	return ""
}

// quoteShort quotes s, cut to its first 40 bytes when longer.
func quoteShort(s string) string {
	if len(s) <= 40 {
		return strconv.Quote(s)
	}
	return strconv.Quote(s[:40]) + "..."
}

// validate checks one file: what the schema and LinuxKit's loader check
// beyond types, and what would break the build or the image.
func validate(cfg *Config, errs *errorList) {
	k := &cfg.Kernel
	switch {
	case k.Image != "":
		checkRef(k.Loc, "image", k.Image, errs)
	case k.written("image"):
		k.errorf(errs, "image", "image is empty: name the kernel's image, or leave image out")
	}
	for i, ref := range cfg.Init {
		p := Pos{}
		if i < len(cfg.InitPos) {
			p = cfg.InitPos[i]
		}
		checkRef(Loc{Pos: p, Field: fmt.Sprintf("init[%d]", i)}, "", ref, errs)
	}
	for _, s := range cfg.sections() {
		for i, img := range s.images {
			if img == nil {
				errs.add(Pos{}, fmt.Sprintf("%s[%d]", s.name, i), "empty entry")
				continue
			}
			if p := nameProblem(img.Name, s.name); p != "" {
				img.errorf(errs, "name", "%s", p)
			}
			checkRef(img.Loc, "image", img.Image, errs)
			validateOverrides(img.Loc, &img.Overrides, errs)
		}
	}
	for _, v := range cfg.Volumes {
		if v != nil {
			validateVolume(v, errs)
		}
	}
	for _, f := range cfg.Files {
		if f != nil {
			validateFile(f, errs)
		}
	}
	checkUnique(cfg, errs)
	checkFilePaths(cfg, errs)
}

// checkRef checks the image reference at rel of l.
func checkRef(l Loc, rel, ref string, errs *errorList) {
	if ref == "" {
		l.errorf(errs, rel, "image is required")
		return
	}
	if _, err := reference.ParseNormalizedNamed(ref); err != nil {
		l.errorf(errs, rel, "invalid image reference %s: %v", quoteShort(ref), err)
	}
}

func validateVolume(v *Volume, errs *errorList) {
	if p := nameProblem(v.Name, "volumes"); p != "" {
		v.errorf(errs, "name", "%s", p)
	}
	if v.Image != "" {
		checkRef(v.Loc, "image", v.Image, errs)
	}
	if v.Format != "" && v.Format != "filesystem" && v.Format != "oci" {
		v.errorf(errs, "format", "unknown format %q (filesystem or oci)", v.Format)
	}
	for j, p := range v.Platforms {
		if _, err := platforms.Parse(p); err != nil {
			v.errorf(errs, fmt.Sprintf("platforms[%d]", j), "invalid platform %q: %v", p, err)
		}
	}
	if v.Format == "oci" && v.Image == "" {
		v.errorf(errs, "image", "a volume of format oci needs an image")
	}
}

// checkUnique reports a service or volume name defined twice, naming
// both places.
func checkUnique(cfg *Config, errs *errorList) {
	services := map[string]*Image{}
	for _, img := range cfg.Services {
		if img == nil || img.Name == "" {
			continue
		}
		if first, ok := services[img.Name]; ok {
			img.errorf(errs, "name", "duplicate service name %q: already defined at %s (%s)", img.Name, first.At("name"), first.sub("name"))
			continue
		}
		services[img.Name] = img
	}
	vols := map[string]*Volume{}
	for _, v := range cfg.Volumes {
		if v == nil || v.Name == "" {
			continue
		}
		if first, ok := vols[v.Name]; ok {
			v.errorf(errs, "name", "duplicate volume name %q: already defined at %s (%s)", v.Name, first.At("name"), first.sub("name"))
			continue
		}
		vols[v.Name] = v
	}
}

// filePath is the path of a files entry in the root filesystem: without
// leading slashes (LinuxKit strips one), cleaned; "" when it is not one
// (checked by validateFile).
func filePath(p string) string {
	p = path.Clean("/" + p)
	if p == "/" {
		return ""
	}
	return p[1:]
}

func validateFile(f *File, errs *errorList) {
	switch {
	case f.Path == "" && f.written("path"):
		f.errorf(errs, "path", "path is empty")
	case f.Path == "":
		f.errorf(errs, "path", "path is required")
	default:
		if p := filePathProblem(f.Path); p != "" {
			f.errorf(errs, "path", "%s", p)
		}
	}
	if f.Mode != "" {
		if m, err := strconv.ParseUint(f.Mode, 8, 32); err != nil {
			f.errorf(errs, "mode", "%q is not an octal mode", f.Mode)
		} else if m > 0o7777 {
			f.errorf(errs, "mode", "%q has bits above 07777: a mode is the permissions with the setuid (4000), setgid (2000) and sticky (1000) bits, nothing more", f.Mode)
		}
	}
	var kinds []string
	for _, k := range []struct {
		name string
		set  bool
	}{{"directory", f.Directory}, {"symlink", f.Symlink != ""}, {"contents", f.Contents != nil}, {"source", f.Source != ""}, {"metadata", f.Metadata != ""}} {
		if k.set {
			kinds = append(kinds, k.name)
		}
	}
	switch {
	case f.Directory && f.Contents != nil:
		f.errorf(errs, "contents", "directory with contents not allowed")
	case f.Contents != nil && f.Source != "":
		f.errorf(errs, "source", "specified contents and source")
	case f.Contents != nil && f.Metadata != "":
		f.errorf(errs, "metadata", "specified contents and metadata")
	case f.Source != "" && f.Metadata != "":
		f.errorf(errs, "metadata", "specified source and metadata")
	case len(kinds) > 1:
		// LinuxKit writes the directory or the symlink and drops the
		// rest, or fails naming other fields.
		f.errorf(errs, kinds[1], "%s with %s not allowed: an entry is one of directory, symlink, contents, source or metadata", kinds[0], kinds[1])
	case len(kinds) == 0:
		f.errorf(errs, "", "contents of file (%s) not specified: give contents, source, metadata, directory or symlink", f.Path)
	}
	if f.Metadata != "" && f.Metadata != "yaml" && f.Metadata != "json" {
		f.errorf(errs, "metadata", "unknown metadata format %q (yaml or json)", f.Metadata)
	}
}

// filePathProblem says what is wrong with p as the path of a files
// entry, or "".
func filePathProblem(p string) string {
	for _, r := range p {
		if r < 0x20 || r == 0x7f {
			return fmt.Sprintf("path %s contains the control character %q", quoteShort(p), r)
		}
	}
	for _, elem := range strings.Split(p, "/") {
		if elem == ".." {
			return fmt.Sprintf("path %s has a .. element: a files path stays inside the root filesystem", quoteShort(p))
		}
	}
	if filePath(p) == "" {
		return fmt.Sprintf("path %q is the root directory itself: name a file or directory below it", p)
	}
	return ""
}

// checkFilePaths reports a files entry whose path goes through the
// symlink of an earlier entry: where the symlink points is only known in
// the finished image.
func checkFilePaths(cfg *Config, errs *errorList) {
	links := map[string]*File{}
	for _, f := range cfg.Files {
		if f == nil || filePathProblem(f.Path) != "" {
			continue
		}
		p := filePath(f.Path)
		for dir := path.Dir(p); dir != "."; dir = path.Dir(dir) {
			if l, ok := links[dir]; ok {
				f.errorf(errs, "path", "path %s goes through the symlink %s written at %s (%s): write the path the symlink points to",
					quoteShort(f.Path), dir, l.At("symlink"), l.sub("symlink"))
				break
			}
		}
		if f.Symlink != "" {
			links[p] = f
		} else {
			delete(links, p)
		}
	}
}

// validateOverrides checks values whose syntax LinuxKit checks when it
// generates the OCI config, so errors in the YAML (or in an image's
// label) point at their line.
func validateOverrides(l Loc, o *Overrides, errs *errorList) {
	checkCaps := func(name string, caps *[]string) {
		if caps == nil {
			return
		}
		for i, c := range *caps {
			if msg := capabilityProblem(c, len(*caps)); msg != "" {
				l.errorf(errs, fmt.Sprintf("%s[%d]", name, i), "%s", msg)
			}
		}
	}
	checkCaps("capabilities", o.Capabilities)
	checkCaps("capabilities.add", o.CapabilitiesAdd)
	checkCaps("ambient", o.Ambient)
	if o.Rlimits != nil {
		for i, r := range *o.Rlimits {
			if _, err := parseRlimit(r); err != nil {
				l.errorf(errs, fmt.Sprintf("rlimits[%d]", i), "%v", err)
			}
		}
	}
	for _, list := range []struct {
		name  string
		binds *[]string
	}{{"binds", o.Binds}, {"binds.add", o.BindsAdd}} {
		if list.binds == nil {
			continue
		}
		for i, b := range *list.binds {
			if _, ok := ParseBind(b); !ok {
				l.errorf(errs, fmt.Sprintf("%s[%d]", list.name, i), "bind %q is not src:dst[:options]", b)
			}
		}
	}
	if o.Tmpfs != nil {
		for i, t := range *o.Tmpfs {
			if strings.Count(t, ":") > 1 {
				l.errorf(errs, fmt.Sprintf("tmpfs[%d]", i), "tmpfs %q has too many ':'", t)
			}
		}
	}
	if o.Devices != nil {
		for i, dev := range *o.Devices {
			if dev.Path == "all" {
				continue
			}
			if _, err := parseMode(dev.Mode); err != nil {
				l.errorf(errs, fmt.Sprintf("devices[%d].mode", i), "%q is not an octal mode", dev.Mode)
			}
		}
	}
	if o.Mounts != nil {
		for i, m := range *o.Mounts {
			if _, err := inferMount(m); err != nil {
				l.errorf(errs, fmt.Sprintf("mounts[%d]", i), "%v", err)
			}
		}
	}
}

// parseMode parses an octal file mode as LinuxKit's devices take it.
func parseMode(s string) (uint32, error) {
	m, err := strconv.ParseUint(s, 8, 32)
	return uint32(m), err
}
