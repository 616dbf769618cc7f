package spec

import (
	"errors"
	"fmt"
	"reflect"
	"strings"

	"gopkg.in/yaml.v3"
)

// LabelConfig is the image label that carries an image's default overrides.
const LabelConfig = "org.mobyproject.config"

// labelConfig is what the org.mobyproject.config label may hold: the
// overrides of an entry, and name and image only when empty or null
// (LinuxKit checks the label as an entry with a name and an image of its
// own, then refuses a non-empty name or image).
type labelConfig struct {
	Name      labelKey `yaml:"name"`
	Image     labelKey `yaml:"image"`
	Overrides `yaml:",inline"`
}

// labelKey is the name or image key of a label.
type labelKey struct{}

var labelKeyType = reflect.TypeOf(labelKey{})

func (d *decoder) decodeLabelKey(n *yaml.Node, v reflect.Value, field string) {
	if n.Kind == yaml.ScalarNode && (n.Tag == "!!null" || n.Tag == "!!str" && n.Value == "") {
		return
	}
	d.errorf(n, field, "an image's label cannot set the %s (the YAML entry gives it), got %s", field, kindName(n))
}

// parseLabel reads the org.mobyproject.config label (YAML or JSON) and
// checks it as a YAML entry is checked. It returns the label's overrides
// and where their values are written in the label.
func parseLabel(label string) (*Overrides, Loc, error) {
	var lc labelConfig
	d, root, err := decodeYAML("", []byte(label), reflect.ValueOf(&lc).Elem())
	if err != nil {
		return nil, Loc{}, labelError(err)
	}
	l := Loc{Pos: d.pos(root), table: d.table}
	errs := &errorList{}
	validateOverrides(l, &lc.Overrides, errs)
	if err := errs.err(); err != nil {
		return nil, Loc{}, labelError(err)
	}
	return &lc.Overrides, l, nil
}

// labelError is err, errors in a label's text, as one error that gives
// each position within the label.
func labelError(err error) error {
	var errs Errors
	if !errors.As(err, &errs) {
		return fmt.Errorf("bad %s label: %w", LabelConfig, err)
	}
	var msgs []string
	for _, e := range errs {
		if e.Msg == errEmpty {
			msgs = append(msgs, "no value")
			continue
		}
		msgs = append(msgs, fmt.Sprintf("%d:%d: %s", e.Line, e.Col, strings.TrimPrefix(e.Field+": "+e.Msg, ": ")))
	}
	return fmt.Errorf("bad %s label: %s", LabelConfig, strings.Join(msgs, "; "))
}

// labelCache holds the labels already read, by text: an image used by
// many entries has its label read once (a label can be large: its
// aliases may expand it a hundredfold).
type labelCache map[string]parsedLabel

type parsedLabel struct {
	o   *Overrides
	loc Loc
	err error
}

func (c labelCache) parse(s string) (*Overrides, Loc, error) {
	if p, ok := c[s]; ok {
		return p.o, p.loc, p.err
	}
	o, loc, err := parseLabel(s)
	if c != nil {
		c[s] = parsedLabel{o, loc, err}
	}
	return o, loc, err
}

// overrides returns the overrides of the image config's label, empty when
// it has none, and where their values are written in the label.
func (c labelCache) overrides(ic ImageConfig) (*Overrides, Loc, error) {
	s := ic.Labels[LabelConfig]
	if s == "" {
		return &Overrides{}, Loc{}, nil
	}
	return c.parse(s)
}
