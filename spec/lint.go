package spec

import (
	"fmt"
	"reflect"
	"strings"

	"github.com/distribution/reference"
	"gopkg.in/yaml.v3"
)

// The check rules that need nothing but the YAML: `--call check` reports
// what they find as warnings with their positions. A rule that needs the
// images' configs is in the frontend (frontend/check.go). Every rule has
// an entry in docs/check.md under its name.

// LintRule is one check: a name (what buildx prints after WARNING) and
// what it looks for.
type LintRule struct {
	Name        string
	Description string
}

// The rules Lint applies, in the order it applies them.
var (
	RuleMovingImageTag = &LintRule{"MovingImageTag",
		"An image is referenced by a tag that moves (latest, or no tag): the same YAML builds a different system when the tag is pushed again. Pin a version tag or a digest."}
	RuleTrustIgnored = &LintRule{"TrustIgnored",
		"The trust section (LinuxKit's former content trust) is accepted and ignored: no signature is checked."}
	RuleDuplicateCapability = &LintRule{"DuplicateCapability",
		"A capability is listed twice in an entry's capabilities, capabilities.add or ambient (or in both capabilities and capabilities.add)."}
	RuleHostNetworkAllCaps = &LintRule{"HostNetworkAllCapabilities",
		"A service runs in the host's network namespace (net: host) with every capability (capabilities: [all]): it can reconfigure the host's network and much more."}
)

// LintRules are the rules Lint applies.
var LintRules = []*LintRule{RuleMovingImageTag, RuleTrustIgnored, RuleDuplicateCapability, RuleHostNetworkAllCaps}

// Warning is a problem a check rule found: not an error (the YAML
// builds), but likely not what was meant.
type Warning struct {
	Rule  *LintRule
	Pos   Pos
	Field string
	Msg   string
}

func (w Warning) String() string {
	if w.Field == "" {
		return fmt.Sprintf("%s: %s", w.Pos, w.Msg)
	}
	return fmt.Sprintf("%s: %s: %s", w.Pos, w.Field, w.Msg)
}

// Lint checks the files (as Load reads them) with the rules of LintRules.
// When the files do not load, it returns Load's error (Errors) and no
// warnings. Warnings are in file order, then in the order of the rules
// and of the YAML.
func Lint(files ...Source) ([]Warning, error) {
	if _, err := Load(files...); err != nil {
		return nil, err
	}
	var out []Warning
	for _, f := range files {
		cfg := &Config{}
		d, root, err := decodeYAML(f.Filename, f.Data, reflect.ValueOf(cfg).Elem())
		if err != nil {
			return nil, err // Load has read it: not reached
		}
		cfg.InitPos = initPositions(d, root)
		l := &linter{cfg: cfg}
		l.movingTags()
		l.trust(d, root)
		l.capabilities()
		l.hostNetwork()
		out = append(out, l.warnings...)
	}
	return out, nil
}

// linter runs the rules over one file.
type linter struct {
	cfg      *Config
	warnings []Warning
}

func (l *linter) add(r *LintRule, loc Loc, rel, format string, args ...any) {
	p, via := loc.at(rel)
	l.warnings = append(l.warnings, Warning{Rule: r, Pos: p, Field: loc.sub(rel), Msg: fmt.Sprintf(format, args...) + via})
}

// MovingTag says why ref names an image by a tag that moves, or "": no
// tag (which means latest) or the tag latest, and no digest.
func MovingTag(ref string) string {
	n, err := reference.ParseNormalizedNamed(ref)
	if err != nil {
		return ""
	}
	if _, ok := n.(reference.Digested); ok {
		return ""
	}
	t, ok := n.(reference.Tagged)
	switch {
	case !ok:
		return fmt.Sprintf("image %s has no tag, which means latest: a tag that moves (pin a version tag or a digest)", quoteShort(ref))
	case t.Tag() == "latest":
		return fmt.Sprintf("image %s uses the tag latest, which moves (pin a version tag or a digest)", quoteShort(ref))
	}
	return ""
}

func (l *linter) movingTags() {
	c := l.cfg
	if c.Kernel.Image != "" {
		if msg := MovingTag(c.Kernel.Image); msg != "" {
			l.add(RuleMovingImageTag, c.Kernel.Loc, "image", "%s", msg)
		}
	}
	for i, ref := range c.Init {
		loc := Loc{Field: fmt.Sprintf("init[%d]", i)}
		if i < len(c.InitPos) {
			loc.Pos = c.InitPos[i]
		}
		if msg := MovingTag(ref); msg != "" {
			l.add(RuleMovingImageTag, loc, "", "%s", msg)
		}
	}
	for _, s := range c.sections() {
		for _, img := range s.images {
			if msg := MovingTag(img.Image); msg != "" {
				l.add(RuleMovingImageTag, img.Loc, "image", "%s", msg)
			}
		}
	}
	for _, v := range c.Volumes {
		if msg := MovingTag(v.Image); v.Image != "" && msg != "" {
			l.add(RuleMovingImageTag, v.Loc, "image", "%s", msg)
		}
	}
}

// trust warns at the trust key of the file's top-level mapping.
func (l *linter) trust(d *decoder, root *yaml.Node) {
	if l.cfg.Trust == nil {
		return
	}
	loc := Loc{Pos: d.pos(root), Field: "trust", table: d.table}
	if root.Kind == yaml.MappingNode {
		for _, e := range d.entries(root, "") {
			if e.name == "trust" {
				loc.Pos = d.pos(e.key)
			}
		}
	}
	l.warnings = append(l.warnings, Warning{Rule: RuleTrustIgnored, Pos: loc.Pos, Field: "trust",
		Msg: "the trust section is ignored (as by LinuxKit since content trust was removed): no image signature is checked; remove it, and pin images by digest to be sure of their contents"})
}

func (l *linter) capabilities() {
	for _, s := range l.cfg.sections() {
		for _, img := range s.images {
			o := &img.Overrides
			// Each list on its own, then capabilities.add against
			// capabilities.
			first := map[string]string{}
			if o.Capabilities != nil {
				first = l.duplicates(img.Loc, "capabilities", *o.Capabilities)
			}
			if o.Ambient != nil {
				l.duplicates(img.Loc, "ambient", *o.Ambient)
			}
			if o.CapabilitiesAdd == nil {
				continue
			}
			add := l.duplicates(img.Loc, "capabilities.add", *o.CapabilitiesAdd)
			for i, c := range *o.CapabilitiesAdd {
				rel := fmt.Sprintf("capabilities.add[%d]", i)
				if at, ok := first[c]; ok && add[c] == rel && !isAllOrNone(c) {
					l.add(RuleDuplicateCapability, img.Loc, rel, "%s is already in capabilities (%s at %s)", c, img.sub(at), img.At(at))
				}
			}
		}
	}
}

// duplicates warns at each repetition of a name in the list at key, and
// returns where each name is first written.
func (l *linter) duplicates(loc Loc, key string, list []string) map[string]string {
	first := map[string]string{}
	for i, c := range list {
		rel := fmt.Sprintf("%s[%d]", key, i)
		if at, ok := first[c]; ok {
			l.add(RuleDuplicateCapability, loc, rel, "%s is listed twice in %s (first at %s)", c, key, loc.At(at))
			continue
		}
		first[c] = rel
	}
	return first
}

func isAllOrNone(c string) bool {
	c = strings.ToLower(c)
	return c == "all" || c == "none"
}

func (l *linter) hostNetwork() {
	for _, img := range l.cfg.Services {
		o := &img.Overrides
		if o.Net != "host" || o.Capabilities == nil || len(*o.Capabilities) != 1 || !strings.EqualFold((*o.Capabilities)[0], "all") {
			continue
		}
		l.add(RuleHostNetworkAllCaps, img.Loc, "net", "service %s runs in the host's network namespace with every capability (capabilities: [%s] at %s): it can reconfigure the host's network, load kernel modules and more; list only the capabilities it needs",
			img.Name, (*o.Capabilities)[0], img.At("capabilities[0]"))
	}
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}
