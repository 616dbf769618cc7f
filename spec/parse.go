package spec

import (
	"fmt"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/containerd/platforms"
	"github.com/distribution/reference"
	"gopkg.in/yaml.v3"
)

// Parse parses one LinuxKit YAML file strictly and validates it. The
// returned error is an Errors listing every problem with its position.
func Parse(filename string, data []byte) (*Config, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, yamlSyntaxError(filename, data, err)
	}
	errs := &errorList{}
	d := newDecoder(filename, errs)
	cfg := &Config{}
	if len(doc.Content) == 0 {
		return nil, Errors{{File: filename, Line: 1, Col: 1, Msg: "the file is empty"}}
	}
	d.decodeDocument(&doc, reflect.ValueOf(cfg).Elem())
	if errs.err() == nil {
		cfg.InitPos = initPositions(d, doc.Content[0])
	}
	if errs.err() == nil {
		validate(cfg, errs)
	}
	if err := errs.err(); err != nil {
		return nil, err
	}
	cfg.Kernel.applyDefaults()
	return cfg, nil
}

// initPositions returns where each entry of init is written (for an alias,
// where the alias is), once root decoded without error.
func initPositions(d *decoder, root *yaml.Node) []Pos {
	if root.Kind != yaml.MappingNode {
		return nil
	}
	for _, e := range d.entries(root, "") {
		list := e.val
		if list.Kind == yaml.AliasNode {
			list = list.Alias
		}
		if e.name != "init" || list.Kind != yaml.SequenceNode {
			continue
		}
		ps := make([]Pos, len(list.Content))
		for i, item := range list.Content {
			ps[i] = d.pos(item)
		}
		return ps
	}
	return nil
}

// decodeDocument decodes doc strictly into v, accepting what LinuxKit's
// decoding accepts: first the check LinuxKit's YAML library makes on the
// whole document (excessive aliasing), then the decoder's own checks;
// whatever else that library refuses is reported last.
func (d *decoder) decodeDocument(doc *yaml.Node, v reflect.Value) {
	excessive, other := checkAliasing(d.file, doc)
	if excessive != nil {
		d.errs.errs = append(d.errs.errs, excessive)
		return
	}
	var selfErrs Errors
	d.selfRef, selfErrs = selfAliases(d.file, doc)
	d.errs.errs = append(d.errs.errs, selfErrs...)
	if other != nil {
		d.budget = aliasBudget
	}
	d.decode(doc, v, "")
	if other != nil && len(d.errs.errs) == 0 {
		d.errs.errs = append(d.errs.errs, yamlErrors(d.file, "YAML: ", other)...)
	}
}

var yamlLineRE = regexp.MustCompile(`^(?:yaml: )?line (\d+): (.*)$`)

var unknownAnchorRE = regexp.MustCompile(`^yaml: unknown anchor '(.*)' referenced$`)

// yamlSyntaxError places a parse error of data: at the line the YAML
// library names, or, for an alias of an undefined anchor (which it
// reports without a line), at the first such alias.
func yamlSyntaxError(filename string, data []byte, err error) error {
	if m := unknownAnchorRE.FindStringSubmatch(err.Error()); m != nil {
		for i, line := range strings.Split(string(data), "\n") {
			if col := aliasColumn(line, m[1]); col > 0 {
				return Errors{{File: filename, Line: i + 1, Col: col, Msg: fmt.Sprintf("YAML syntax: alias *%s names no anchor (&%s) written before it", m[1], m[1])}}
			}
		}
	}
	return yamlErrors(filename, "YAML syntax: ", err)
}

// aliasColumn is the column of the alias *name in line, or 0.
func aliasColumn(line, name string) int {
	for off := 0; ; {
		i := strings.Index(line[off:], "*"+name)
		if i < 0 {
			return 0
		}
		end := off + i + 1 + len(name)
		if end == len(line) || strings.ContainsRune(" \t,]}#", rune(line[end])) {
			return off + i + 1
		}
		off = end
	}
}

// yamlErrors turns an error of the YAML library into positioned errors:
// "yaml: line N: msg", or "yaml: unmarshal errors:" and a "line N: msg"
// per line.
func yamlErrors(filename, prefix string, err error) Errors {
	var out Errors
	for _, l := range strings.Split(err.Error(), "\n") {
		l = strings.TrimSpace(l)
		if m := yamlLineRE.FindStringSubmatch(l); m != nil {
			line, _ := strconv.Atoi(m[1])
			out = append(out, &Error{File: filename, Line: line, Col: 1, Msg: prefix + m[2]})
		}
	}
	if len(out) == 0 {
		out = Errors{{File: filename, Line: 1, Col: 1, Msg: prefix + strings.TrimPrefix(err.Error(), "yaml: ")}}
	}
	return out
}

func (k *Kernel) applyDefaults() {
	k.Tar, k.NoTar = "", false
	switch {
	case k.TarOpt == nil:
		k.Tar = "kernel.tar"
	case *k.TarOpt == "" || *k.TarOpt == "none":
		k.Tar, k.NoTar = "", true
	default:
		k.Tar = *k.TarOpt
	}
}

var volumeNameRE = regexp.MustCompile(`^[a-z0-9_-]*$`)

// validate checks what the schema and LinuxKit's loader check beyond types.
func validate(cfg *Config, errs *errorList) {
	checkRef := func(p Pos, field, ref string) {
		if ref == "" {
			errs.add(p, field, "image is required")
			return
		}
		if _, err := reference.ParseNormalizedNamed(ref); err != nil {
			errs.add(p, field, "invalid image reference %q: %v", ref, err)
		}
	}
	if cfg.Kernel.Image != "" {
		checkRef(cfg.Kernel.Pos, "kernel.image", cfg.Kernel.Image)
	}
	for i, ref := range cfg.Init {
		p := Pos{}
		if i < len(cfg.InitPos) {
			p = cfg.InitPos[i]
		}
		checkRef(p, fmt.Sprintf("init[%d]", i), ref)
	}
	sections := []struct {
		name   string
		images []*Image
	}{{"onboot", cfg.Onboot}, {"onshutdown", cfg.Onshutdown}, {"services", cfg.Services}}
	for _, s := range sections {
		for i, img := range s.images {
			field := fmt.Sprintf("%s[%d]", s.name, i)
			if img == nil {
				errs.add(Pos{}, field, "empty entry")
				continue
			}
			if img.Name == "" {
				errs.add(img.Pos, field+".name", "name is required")
			}
			checkRef(img.Pos, field+".image", img.Image)
			validateOverrides(img.Pos, field, &img.Overrides, errs)
		}
	}
	names := map[string]bool{}
	for i, img := range cfg.Services {
		if img != nil && img.Name != "" {
			if names[img.Name] {
				errs.add(img.Pos, fmt.Sprintf("services[%d].name", i), "duplicate service name %q", img.Name)
			}
			names[img.Name] = true
		}
	}
	vols := map[string]bool{}
	for i, v := range cfg.Volumes {
		field := fmt.Sprintf("volumes[%d]", i)
		if v == nil {
			continue
		}
		switch {
		case v.Name == "":
			errs.add(v.Pos, field+".name", "name is required")
		case !volumeNameRE.MatchString(v.Name):
			errs.add(v.Pos, field+".name", "invalid volume name %q (lower case letters, digits, _ and - only)", v.Name)
		case vols[v.Name]:
			errs.add(v.Pos, field+".name", "duplicate volume name %q", v.Name)
		}
		vols[v.Name] = true
		if v.Image != "" {
			checkRef(v.Pos, field+".image", v.Image)
		}
		if v.Format != "" && v.Format != "filesystem" && v.Format != "oci" {
			errs.add(v.Pos, field+".format", "unknown format %q (filesystem or oci)", v.Format)
		}
		for j, p := range v.Platforms {
			if _, err := platforms.Parse(p); err != nil {
				errs.add(v.Pos, fmt.Sprintf("%s.platforms[%d]", field, j), "invalid platform %q: %v", p, err)
			}
		}
		if v.Format == "oci" && v.Image == "" {
			errs.add(v.Pos, field+".image", "a volume of format oci needs an image")
		}
	}
	for i, f := range cfg.Files {
		if f != nil {
			validateFile(f, fmt.Sprintf("files[%d]", i), errs)
		}
	}
}

func validateFile(f *File, field string, errs *errorList) {
	if f.Path == "" {
		errs.add(f.Pos, field+".path", "path is required")
	}
	if f.Mode != "" {
		if _, err := strconv.ParseUint(f.Mode, 8, 32); err != nil {
			errs.add(f.Pos, field+".mode", "%q is not an octal mode", f.Mode)
		}
	}
	kinds := 0
	for _, set := range []bool{f.Directory, f.Symlink != "", f.Contents != nil, f.Source != "", f.Metadata != ""} {
		if set {
			kinds++
		}
	}
	switch {
	case f.Directory && f.Contents != nil:
		errs.add(f.Pos, field, "directory with contents not allowed")
	case f.Contents != nil && f.Source != "":
		errs.add(f.Pos, field, "specified contents and source")
	case f.Contents != nil && f.Metadata != "":
		errs.add(f.Pos, field, "specified contents and metadata")
	case f.Source != "" && f.Metadata != "":
		errs.add(f.Pos, field, "specified source and metadata")
	case kinds == 0:
		errs.add(f.Pos, field, "contents of file (%s) not specified: give contents, source, metadata, directory or symlink", f.Path)
	}
	if f.Metadata != "" && f.Metadata != "yaml" && f.Metadata != "json" {
		errs.add(f.Pos, field+".metadata", "unknown metadata format %q (yaml or json)", f.Metadata)
	}
}

// validateOverrides checks values whose syntax LinuxKit checks when it
// generates the OCI config, so errors in the YAML point at their line.
func validateOverrides(p Pos, field string, o *Overrides, errs *errorList) {
	checkCaps := func(name string, caps *[]string) {
		if caps == nil {
			return
		}
		for i, c := range *caps {
			if msg := capabilityProblem(c, len(*caps)); msg != "" {
				errs.add(p, fmt.Sprintf("%s.%s[%d]", field, name, i), "%s", msg)
			}
		}
	}
	checkCaps("capabilities", o.Capabilities)
	checkCaps("capabilities.add", o.CapabilitiesAdd)
	checkCaps("ambient", o.Ambient)
	if o.Rlimits != nil {
		for i, r := range *o.Rlimits {
			if _, err := parseRlimit(r); err != nil {
				errs.add(p, fmt.Sprintf("%s.rlimits[%d]", field, i), "%v", err)
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
			if n := strings.Count(b, ":"); n < 1 || n > 2 {
				errs.add(p, fmt.Sprintf("%s.%s[%d]", field, list.name, i), "bind %q is not src:dst[:options]", b)
			}
		}
	}
	if o.Tmpfs != nil {
		for i, t := range *o.Tmpfs {
			if strings.Count(t, ":") > 1 {
				errs.add(p, fmt.Sprintf("%s.tmpfs[%d]", field, i), "tmpfs %q has too many ':'", t)
			}
		}
	}
	if o.Devices != nil {
		for i, dev := range *o.Devices {
			if dev.Path == "all" {
				continue
			}
			if _, err := strconv.ParseInt(dev.Mode, 8, 32); err != nil {
				errs.add(p, fmt.Sprintf("%s.devices[%d].mode", field, i), "%q is not an octal mode", dev.Mode)
			}
		}
	}
}

// Merge appends b onto a as `linuxkit build a.yml b.yml` does: later
// non-empty kernel fields win, every list appends.
func Merge(a, b *Config) *Config {
	out := *a
	k := &out.Kernel
	if b.Kernel.Image != "" {
		k.Image, k.Pos = b.Kernel.Image, b.Kernel.Pos
	}
	if b.Kernel.Cmdline != "" {
		k.Cmdline = b.Kernel.Cmdline
	}
	if b.Kernel.Binary != "" {
		k.Binary = b.Kernel.Binary
	}
	if b.Kernel.TarOpt != nil {
		k.TarOpt, k.Tar, k.NoTar = b.Kernel.TarOpt, b.Kernel.Tar, b.Kernel.NoTar
	}
	if b.Kernel.UCode != nil {
		k.UCode = b.Kernel.UCode
	}
	k.applyDefaults()
	out.Init = append(append([]string(nil), a.Init...), b.Init...)
	out.InitPos = append(append([]Pos(nil), a.InitPos...), b.InitPos...)
	out.Onboot = append(append([]*Image(nil), a.Onboot...), b.Onboot...)
	out.Onshutdown = append(append([]*Image(nil), a.Onshutdown...), b.Onshutdown...)
	out.Services = append(append([]*Image(nil), a.Services...), b.Services...)
	out.Files = append(append([]*File(nil), a.Files...), b.Files...)
	out.Volumes = append(append([]*Volume(nil), a.Volumes...), b.Volumes...)
	return &out
}

// Images returns every distinct image ref of the configuration in
// first-use order: kernel, init, onboot, onshutdown, services, then
// filesystem volumes (an oci-format volume's image is fetched per platform
// of its own).
func (c *Config) Images() []string {
	var out []string
	seen := map[string]bool{}
	add := func(r string) {
		if r != "" && !seen[r] {
			seen[r] = true
			out = append(out, r)
		}
	}
	add(c.Kernel.Image)
	for _, r := range c.Init {
		add(r)
	}
	for _, list := range [][]*Image{c.Onboot, c.Onshutdown, c.Services} {
		for _, img := range list {
			add(img.Image)
		}
	}
	for _, v := range c.Volumes {
		if v.Format != "oci" {
			add(v.Image)
		}
	}
	return out
}

func sortStrings(s []string) { sort.Strings(s) }
