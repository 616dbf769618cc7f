package spec

import (
	"bytes"
	"errors"
	"io"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// Parse parses one LinuxKit YAML file strictly and validates it. The
// returned error is an Errors listing every problem with its position.
func Parse(filename string, data []byte) (*Config, error) {
	cfg := &Config{}
	d, root, err := decodeYAML(filename, data, reflect.ValueOf(cfg).Elem())
	if err != nil {
		return nil, err
	}
	cfg.InitPos = initPositions(d, root)
	cfg.Pos = d.pos(root)
	errs := &errorList{}
	validate(cfg, errs)
	if err := errs.err(); err != nil {
		return nil, err
	}
	cfg.Kernel.applyDefaults()
	return cfg, nil
}

// errEmpty is the message for a file without a YAML value.
const errEmpty = "the file is empty"

// decodeYAML decodes the one YAML document of data strictly into v. It
// returns the decoder (with the positions of every value) and the
// document's root node, or Errors.
func decodeYAML(filename string, data []byte, v reflect.Value) (*decoder, *yaml.Node, error) {
	doc, err := readDocument(filename, data)
	if err != nil {
		return nil, nil, err
	}
	if doc == nil || len(doc.Content) == 0 {
		return nil, nil, Errors{{File: filename, Line: 1, Col: 1, Msg: errEmpty}}
	}
	errs := &errorList{}
	d := newDecoder(filename, errs)
	d.decodeDocument(doc, v)
	if err := errs.err(); err != nil {
		return nil, nil, err
	}
	return d, doc.Content[0], nil
}

// readDocument parses data as YAML: one document (nil when there is none).
// LinuxKit reads the first document of a file and ignores the rest, so a
// second one (after ---) would be silently dropped: it is an error,
// unless it holds nothing (a --- at the end).
func readDocument(filename string, data []byte) (*yaml.Node, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var first *yaml.Node
	for {
		var doc yaml.Node
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			return first, nil
		}
		if err != nil {
			return nil, Errors{syntaxError(filename, data, err)}
		}
		if first == nil {
			first = &doc
			continue
		}
		if len(doc.Content) == 1 && doc.Content[0].Kind == yaml.ScalarNode && doc.Content[0].Tag == "!!null" && doc.Content[0].Value == "" {
			continue
		}
		return nil, Errors{{File: filename, Line: doc.Line, Col: doc.Column,
			Msg: "a second YAML document: LinuxKit reads only the first one and would ignore everything from here (to combine files, give several)"}}
	}
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
