package spec

import (
	"bytes"
	"encoding/json"
	"fmt"
	"github.com/lkbuild/lkbuild/internal/golden"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"gopkg.in/yaml.v3"
)

const schemaFile = "../docs/linuxkit.schema.json"

// TestSchemaFile: the committed schema is the one the model generates
// (go test ./spec -run TestSchemaFile -update rewrites it).
func TestSchemaFile(t *testing.T) {
	got := Schema()
	if golden.Update() {
		if err := os.WriteFile(schemaFile, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(schemaFile)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("docs/linuxkit.schema.json differs from the schema of the model: run go test ./spec -run TestSchemaFile -update")
	}
	if !bytes.Equal(Schema(), got) {
		t.Error("two schemas differ")
	}
}

// TestSchemaDescriptions: every described key is a key of the model.
func TestSchemaDescriptions(t *testing.T) {
	for typ, keys := range schemaDescriptions {
		idx := fields(typ)
		for k := range keys {
			if _, ok := idx[k]; k != "" && !ok {
				t.Errorf("schemaDescriptions[%s] describes %q, which is not a key", typ, k)
			}
		}
	}
	for typ, keys := range requiredKeys {
		idx := fields(typ)
		for _, k := range keys {
			if _, ok := idx[k]; !ok {
				t.Errorf("requiredKeys[%s] names %q, which is not a key", typ, k)
			}
		}
	}
}

func compileSchema(t *testing.T) *jsonschema.Schema {
	t.Helper()
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(Schema()))
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource(SchemaID, doc); err != nil {
		t.Fatal(err)
	}
	s, err := c.Compile(SchemaID)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// yamlInstance is the first document of a YAML file as the JSON value an
// editor's yaml-language-server checks (aliases and merge keys expanded).
func yamlInstance(data []byte) (any, error) {
	var v any
	if err := yaml.Unmarshal(data, &v); err != nil {
		return nil, err
	}
	dt, err := json.Marshal(jsonValue(v))
	if err != nil {
		return nil, err
	}
	return jsonschema.UnmarshalJSON(bytes.NewReader(dt))
}

// jsonValue turns mappings with keys of any type into JSON objects.
func jsonValue(v any) any {
	switch v := v.(type) {
	case map[string]any:
		for k, e := range v {
			v[k] = jsonValue(e)
		}
		return v
	case map[any]any:
		m := map[string]any{}
		for k, e := range v {
			m[fmt.Sprint(k)] = jsonValue(e)
		}
		return m
	case []any:
		for i, e := range v {
			v[i] = jsonValue(e)
		}
		return v
	}
	return v
}

// corpus lists every LinuxKit YAML of the repository: examples and the
// test data of every package.
func corpus(t *testing.T) []string {
	t.Helper()
	var files []string
	for _, dir := range []string{"../examples", "testdata", "../llbgen/testdata", "../frontend/testdata",
		"../hack/boottest/testdata", "../hack/parity/testdata"} {
		err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				if os.IsNotExist(err) && p == dir {
					return nil
				}
				return err
			}
			if !d.IsDir() && (strings.HasSuffix(p, ".yml") || strings.HasSuffix(p, ".yaml")) {
				files = append(files, p)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return files
}

// TestSchemaAcceptsCorpus: every YAML of the repository that lkbuild
// accepts (anchors, merge keys, ids as names or numbers, the OCI
// types) is valid under the schema. A YAML the decoder refuses for an
// unknown key or a wrong type is invalid under it too.
func TestSchemaAcceptsCorpus(t *testing.T) {
	s := compileSchema(t)
	accepted, rejected := 0, 0
	for _, f := range corpus(t) {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		_, derr := Parse(f, data)
		inst, err := yamlInstance(data)
		if err != nil {
			if derr == nil {
				t.Errorf("%s: lkbuild reads it, but it is no JSON value: %v", f, err)
			}
			continue
		}
		verr := s.Validate(inst)
		switch {
		case derr == nil && verr != nil:
			t.Errorf("%s: lkbuild reads it, the schema refuses it: %v", f, verr)
		case derr == nil:
			accepted++
		case schemaLevel(derr) && verr == nil:
			t.Errorf("%s: lkbuild refuses it (%v), the schema accepts it", f, derr)
		case schemaLevel(derr):
			rejected++
		}
	}
	t.Logf("%d YAML files valid under the schema, %d refused by both", accepted, rejected)
	if accepted < 100 {
		t.Errorf("only %d YAML files checked", accepted)
	}
}

// schemaLevel tells whether every error of err is one the schema
// describes: an unknown key or a value of the wrong type.
func schemaLevel(err error) bool {
	errs, ok := err.(Errors)
	if !ok || len(errs) == 0 {
		return false
	}
	for _, e := range errs {
		if !strings.HasPrefix(e.Msg, "unknown field") && !strings.HasPrefix(e.Msg, "expected ") {
			return false
		}
		if strings.Contains(e.Msg, "got null") || strings.Contains(e.Msg, "got !!") || strings.Contains(e.Msg, "excessive") {
			return false
		}
	}
	return true
}

// TestSchemaRefuses: a broken YAML is invalid under the schema.
func TestSchemaRefuses(t *testing.T) {
	s := compileSchema(t)
	const ok = "kernel:\n  image: linuxkit/kernel:6.12.59\ninit:\n  - linuxkit/init:v1\nonboot:\n  - name: a\n    image: busybox:1.36\n"
	if inst, err := yamlInstance([]byte(ok)); err != nil || s.Validate(inst) != nil {
		t.Fatalf("the valid YAML: %v %v", err, s.Validate(inst))
	}
	// anchors, aliases, merge keys, ids as names, OCI types
	const forms = `onboot:
  - &base
    name: a
    image: busybox:1.36
    capabilities: [CAP_NET_ADMIN]
    uid: root
    resources: {memory: {limit: 1000}}
  - <<: *base
    name: b
    gid: a
    mounts: [{type: tmpfs, destination: /t, options: [size=1m]}]
files:
  - path: etc/x
    contents: x
    uid: 0
    gid: a
    mode: "0600"
`
	inst, err := yamlInstance([]byte(forms))
	if err != nil {
		t.Fatal(err)
	}
	if _, perr := Parse("a.yml", []byte(forms)); perr != nil || s.Validate(inst) != nil {
		t.Fatalf("YAML with anchors and merge keys: lkbuild %v, schema %v", perr, s.Validate(inst))
	}
	for _, tt := range []struct{ name, yaml string }{
		{"unknown top-level key", ok + "servces: []\n"},
		{"unknown key in an entry", ok + "    comand: [x]\n"},
		{"unknown kernel key", "kernel:\n  image: k:1\n  cmdlin: x\n"},
		{"wrong type", ok + "    readonly: maybe\n"},
		{"string for a list", ok + "    command: /bin/sh\n"},
		{"number for a string", "kernel:\n  image: k:1\n  cmdline: 1\n"},
		{"null value", ok + "    net:\n"},
		{"entry without image", "onboot:\n  - name: a\n"},
		{"bad name", "services:\n  - name: A_B\n    image: x:1\n"},
		{"negative uid", ok + "    uid: -1\n"},
		{"unknown resources key", ok + "    resources:\n      memory:\n        limt: 1\n"},
		{"unknown mount key", ok + "    mounts:\n      - destination: /x\n        typ: tmpfs\n"},
		{"files mode as a number", "files:\n  - path: a\n    contents: x\n    mode: 0644\n"},
	} {
		inst, err := yamlInstance([]byte(tt.yaml))
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if s.Validate(inst) == nil {
			t.Errorf("%s: the schema accepts\n%s", tt.name, tt.yaml)
		}
		// and lkbuild refuses it as well
		if _, err := Parse("a.yml", []byte(tt.yaml)); err == nil {
			t.Errorf("%s: lkbuild accepts\n%s", tt.name, tt.yaml)
		}
	}
}
