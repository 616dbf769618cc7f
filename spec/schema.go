package spec

import (
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"strings"
)

// The JSON schema of the YAML, for editors (yaml-language-server):
// generated from the model by the same field table the decoder uses
// (fields, schemaKeys), so it names exactly the keys and types lkbuild
// accepts. docs/linuxkit.schema.json is its output (`lkbuild schema`);
// a test keeps the two equal.

// SchemaID is the schema's $id: where the file is published.
const SchemaID = "https://raw.githubusercontent.com/lkbuild/lkbuild/main/docs/linuxkit.schema.json"

// schemaDescriptions describe keys in editors, by Go type and YAML key
// ("" for the type itself). A test checks that each names a key the
// schema has.
var schemaDescriptions = map[reflect.Type]map[string]string{
	reflect.TypeOf(Config{}): {
		"":           "A LinuxKit operating system, as lkbuild builds it (https://github.com/lkbuild/lkbuild/blob/main/docs/yaml-reference.md).",
		"kernel":     "The kernel: an image holding the kernel binary and its modules tarball.",
		"init":       "Images whose contents are the base of the root filesystem (init, runc, containerd, ...), in order.",
		"onboot":     "Containers run once, in order, at boot.",
		"onshutdown": "Containers run once, in order, at shutdown.",
		"services":   "Containers run by containerd for the life of the system.",
		"files":      "Files, directories and symlinks added to the root filesystem, in order.",
		"volumes":    "Volumes containers can bind (made from an image, or empty).",
		"trust":      "Accepted for compatibility and ignored (LinuxKit's former content trust).",
	},
	reflect.TypeOf(Kernel{}): {
		"image":   "The kernel image (its kernel binary, modules tarball and microcode).",
		"cmdline": "The kernel command line.",
		"binary":  "The kernel's path in the image (default kernel).",
		"tar":     "The modules tarball's path in the image (default kernel.tar; \"none\" for none).",
		"ucode":   "The path of a microcode cpio in the image, put before the initrd.",
	},
	reflect.TypeOf(Image{}): {
		"name":         "The container's name: lower case letters, digits, _ and -.",
		"image":        "The container's image.",
		"command":      "The command run (replaces the image's Entrypoint and Cmd).",
		"capabilities": "The container's capabilities (CAP_...), or [all] or [none].",
		"binds":        "Bind mounts src:dst[:options]; src may name a volume.",
		"net":          "The network namespace: host, new, none or a path.",
	},
	reflect.TypeOf(File{}): {
		"path":      "The path in the root filesystem.",
		"directory": "Make a directory.",
		"symlink":   "Make a symlink to this target.",
		"contents":  "The file's contents.",
		"source":    "A file of the build context to copy.",
		"metadata":  "Write the configuration as yaml or json.",
		"optional":  "A missing source makes nothing instead of failing.",
		"mode":      "The octal mode, e.g. \"0644\" or \"4755\" (setuid, setgid and sticky bits included).",
		"uid":       "The owner: a number or the name of a container (or root).",
		"gid":       "The group: a number or the name of a container (or root).",
	},
	reflect.TypeOf(Volume{}): {
		"name":      "The volume's name, as binds name it.",
		"image":     "An image whose contents fill the volume.",
		"readonly":  "The volume can only be bound read-only.",
		"format":    "filesystem (the image's files) or oci (an OCI layout of the image).",
		"platforms": "With format oci, the platforms of the image in the layout.",
	},
}

// requiredKeys are the keys an entry must have (a missing one is an error
// of the loader as well).
var requiredKeys = map[reflect.Type][]string{
	reflect.TypeOf(Image{}):  {"name", "image"},
	reflect.TypeOf(File{}):   {"path"},
	reflect.TypeOf(Volume{}): {"name"},
}

// Schema returns the JSON schema (draft-07) of a LinuxKit YAML file as
// lkbuild reads it, indented, with a final newline.
func Schema() []byte {
	g := &schemaGen{defs: map[string]any{}, names: map[reflect.Type]string{}}
	root := g.object(reflect.TypeOf(Config{}))
	root["$schema"] = "http://json-schema.org/draft-07/schema#"
	root["$id"] = SchemaID
	root["title"] = "LinuxKit YAML (lkbuild)"
	root["definitions"] = g.defs
	b, err := json.MarshalIndent(root, "", "  ")
	if err != nil {
		panic("spec: schema: " + err.Error())
	}
	return append(b, '\n')
}

type schemaGen struct {
	defs  map[string]any
	names map[reflect.Type]string
}

// of is the schema of a value of type t.
func (g *schemaGen) of(t reflect.Type) map[string]any {
	for t.Kind() == reflect.Pointer {
		t = t.Elem() // null is refused: a pointer is "set or not"
	}
	switch {
	case t == idType:
		return map[string]any{"type": []string{"integer", "string"}, "minimum": 0, "maximum": math.MaxUint32,
			"description": "A number, or the name of a container (its allocated id) or root."}
	case t == labelKeyType:
		panic("spec: schema: label keys are not in the YAML")
	}
	switch t.Kind() {
	case reflect.String:
		return map[string]any{"type": "string"}
	case reflect.Bool:
		return map[string]any{"type": "boolean"}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		bits := t.Bits()
		return map[string]any{"type": "integer", "minimum": -(int64(1) << (bits - 1)), "maximum": int64(uint64(1)<<(bits-1) - 1)}
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		s := map[string]any{"type": "integer", "minimum": 0}
		if t.Bits() < 64 {
			s["maximum"] = uint64(1)<<t.Bits() - 1
		} else {
			s["maximum"] = uint64(math.MaxUint64)
		}
		return s
	case reflect.Float32, reflect.Float64:
		return map[string]any{"type": "number"}
	case reflect.Slice:
		return map[string]any{"type": "array", "items": g.of(t.Elem())}
	case reflect.Map:
		if t.Key().Kind() != reflect.String {
			panic("spec: schema: map key " + t.Key().String())
		}
		return map[string]any{"type": "object", "additionalProperties": g.of(t.Elem())}
	case reflect.Struct:
		return map[string]any{"$ref": "#/definitions/" + g.define(t)}
	}
	panic("spec: schema: unsupported type " + t.String())
}

// define adds the object schema of the struct t to the definitions once,
// and returns its name.
func (g *schemaGen) define(t reflect.Type) string {
	if name, ok := g.names[t]; ok {
		return name
	}
	name := t.Name()
	if strings.HasPrefix(t.PkgPath(), "github.com/opencontainers/") {
		name = "oci." + name
	}
	for _, n := range g.names {
		if n == name {
			panic(fmt.Sprintf("spec: schema: two types named %s", name))
		}
	}
	g.names[t] = name
	g.defs[name] = g.object(t)
	return name
}

// object is the schema of the struct t: exactly the keys the decoder
// takes (fields), none other.
func (g *schemaGen) object(t reflect.Type) map[string]any {
	props := map[string]any{}
	desc := schemaDescriptions[t]
	for key, idx := range fields(t) {
		p := g.of(t.FieldByIndex(idx).Type)
		if d := desc[key]; d != "" {
			if _, isRef := p["$ref"]; isRef {
				// draft-07 ignores the siblings of $ref
				p = map[string]any{"allOf": []any{p}}
			}
			p["description"] = d
		}
		props[key] = p
	}
	if t == reflect.TypeOf(Image{}) || t == reflect.TypeOf(Volume{}) {
		props["name"].(map[string]any)["pattern"] = nameRE.String()
		props["name"].(map[string]any)["maxLength"] = maxNameLen
	}
	s := map[string]any{"type": "object", "properties": props, "additionalProperties": false}
	if r := requiredKeys[t]; r != nil {
		s["required"] = r
	}
	if d := desc[""]; d != "" {
		s["description"] = d
	}
	return s
}
