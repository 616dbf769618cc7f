package spec

import specs "github.com/opencontainers/runtime-spec/specs-go"

// Precedence of an entry's values: the image config < the
// org.mobyproject.config label < the YAML. In these helpers the YAML
// value (second) wins over the label's; a nil pointer is unset.

func ptr[T any](v T) *T { return &v }

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func pickPtr[T any](label, yaml *T) *T {
	if yaml != nil {
		return yaml
	}
	return label
}

func pick(label, yaml *[]string) []string {
	if v := pickPtr(label, yaml); v != nil {
		return *v
	}
	return []string{}
}

func pickSlice[T any](label, yaml *[]T) []T {
	if v := pickPtr(label, yaml); v != nil {
		return *v
	}
	return []T{}
}

func pickMounts(label, yaml *[]specs.Mount) []specs.Mount { return pickSlice(label, yaml) }

func pick3(image []string, label, yaml *[]string) []string {
	if v := pickPtr(label, yaml); v != nil {
		return *v
	}
	return image
}

func pickBool(label, yaml *bool) bool {
	if v := pickPtr(label, yaml); v != nil {
		return *v
	}
	return false
}

func pickID(label, yaml *ID) *ID { return pickPtr(label, yaml) }

func pickMap(label, yaml *map[string]string) map[string]string {
	if v := pickPtr(label, yaml); v != nil {
		return *v
	}
	return map[string]string{}
}

// firstSet returns the last non-empty value, else def.
func firstSet(def string, vals ...string) string {
	out := def
	for _, v := range vals {
		if v != "" {
			out = v
		}
	}
	return out
}

// listLayers returns the lists that make up a field with an `.add`
// companion (capabilities, binds): in each layer, the label's then the
// YAML's, the field replaces what the layers below gave and `.add`
// extends the result. (LinuxKit ignores an `.add` beside its field in the
// same layer.)
func listLayers(labelSet, labelAdd, yamlSet, yamlAdd *[]string) [][]string {
	var lists [][]string
	for _, layer := range [][2]*[]string{{labelSet, labelAdd}, {yamlSet, yamlAdd}} {
		if set := layer[0]; set != nil {
			lists = [][]string{*set}
		}
		if add := layer[1]; add != nil {
			lists = append(lists, *add)
		}
	}
	return lists
}
