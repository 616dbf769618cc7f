package spec

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"gopkg.in/yaml.v3"
)

// ID is a user or group id written as a number or as a name (of another
// container, resolved to the id allocated to it, or "root").
type ID struct {
	Name   string
	Number uint32
	IsName bool
}

func (id ID) String() string {
	if id.IsName {
		return id.Name
	}
	return strconv.FormatUint(uint64(id.Number), 10)
}

// MarshalJSON writes the id as LinuxKit's metadata does: a number or a string.
func (id ID) MarshalJSON() ([]byte, error) {
	if id.IsName {
		return json.Marshal(id.Name)
	}
	return json.Marshal(id.Number)
}

// MarshalYAML writes the id as a number or a string.
func (id ID) MarshalYAML() (any, error) {
	if id.IsName {
		return id.Name, nil
	}
	return id.Number, nil
}

// decoder turns a yaml.Node tree into the model strictly: unknown keys,
// duplicate keys and wrong types are errors at their line and column.
// Aliases and merge keys are expanded as LinuxKit's YAML library does
// (anchors.go).
type decoder struct {
	file string
	errs *errorList

	// via holds the aliases being expanded, outermost first: the value
	// being decoded is written inside the anchor of the last one.
	via []*yaml.Node
	// selfRef holds the aliases inside their own anchor, never expanded.
	selfRef map[*yaml.Node]bool
	// checked holds the mappings already checked for duplicate keys.
	checked map[*yaml.Node]bool
	// reported holds the errors found inside anchors, by position and
	// message, so that an anchor used many times reports a problem once.
	reported map[string]bool
	// budget, when not negative, is how many more values aliases may
	// expand to (see aliasBudget); stopped is set once it is exhausted.
	budget  int
	stopped bool
	// table records where each value is written (positions.go).
	table *posTable
}

func newDecoder(file string, errs *errorList) *decoder {
	return &decoder{file: file, errs: errs, selfRef: map[*yaml.Node]bool{}, checked: map[*yaml.Node]bool{},
		reported: map[string]bool{}, budget: -1, table: newPosTable()}
}

// record notes where the value n of field is written.
func (d *decoder) record(n *yaml.Node, field string) {
	if !d.table.room(field) {
		return
	}
	via := ""
	if len(d.via) > 0 {
		via = d.viaNote()
	}
	d.table.set(field, d.pos(n), via)
}

func (d *decoder) pos(n *yaml.Node) Pos { return Pos{File: d.file, Line: n.Line, Col: n.Column} }

// errorf reports a problem with the value n of field. Inside an anchor,
// the error says where the anchor is used, and is reported once.
func (d *decoder) errorf(n *yaml.Node, field, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if len(d.via) > 0 {
		key := fmt.Sprintf("%d:%d:%s", n.Line, n.Column, msg)
		if d.reported[key] {
			return
		}
		d.reported[key] = true
		msg += d.viaNote()
	}
	d.errs.add(d.pos(n), field, "%s", msg)
}

// spend counts one value expanded from an alias against the budget.
func (d *decoder) spend(field string) bool {
	if d.stopped {
		return false
	}
	if d.budget < 0 || len(d.via) == 0 {
		return true
	}
	if d.budget--; d.budget < 0 {
		d.stopped = true
		d.errs.add(d.pos(d.via[0]), field, "the document contains excessive aliasing: *%s expands to more than %d YAML values", d.via[0].Value, aliasBudget)
		return false
	}
	return true
}

var (
	posType = reflect.TypeOf(Pos{})
	locType = reflect.TypeOf(Loc{})
	idType  = reflect.TypeOf(ID{})
)

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		switch n.Tag {
		case "!!str":
			return fmt.Sprintf("the string %q", n.Value)
		case "!!null":
			return "null"
		default:
			return fmt.Sprintf("%s %s", strings.TrimPrefix(n.Tag, "!!"), n.Value)
		}
	}
	return "an unsupported node"
}

// fieldName is a struct field's YAML key: its yaml tag, else its json tag,
// else its name in lower case (what LinuxKit's YAML library does for the
// OCI types, which only carry json tags).
func fieldName(f reflect.StructField) (name string, inline, skip bool) {
	tag, ok := f.Tag.Lookup("yaml")
	if !ok {
		tag, ok = f.Tag.Lookup("json")
	}
	if tag == "-" {
		return "", false, true
	}
	parts := strings.Split(tag, ",")
	for _, p := range parts[1:] {
		if p == "inline" {
			return "", true, false
		}
	}
	if ok && parts[0] != "" {
		return parts[0], false, false
	}
	if f.Anonymous && f.Type.Kind() == reflect.Struct {
		return "", true, false
	}
	return strings.ToLower(f.Name), false, false
}

// schemaKeys are the keys LinuxKit's schema allows in the OCI runtime-spec
// types it embeds (a subset of their fields), by Go field name. Mount's
// id mappings are spelled in lower case there; elsewhere the keys are the
// OCI JSON names.
var schemaKeys = map[reflect.Type]map[string]string{
	reflect.TypeOf(specs.Mount{}): {"destination": "Destination", "type": "Type", "source": "Source",
		"options": "Options", "uidmappings": "UIDMappings", "gidmappings": "GIDMappings"},
	reflect.TypeOf(specs.LinuxIDMapping{}):      {"hostID": "HostID", "containerID": "ContainerID", "size": "Size"},
	reflect.TypeOf(specs.LinuxDeviceCgroup{}):   {"allow": "Allow", "type": "Type", "major": "Major", "minor": "Minor", "access": "Access"},
	reflect.TypeOf(specs.LinuxMemory{}):         {"limit": "Limit", "reservation": "Reservation", "swap": "Swap", "kernel": "Kernel", "kernelTCP": "KernelTCP", "swappiness": "Swappiness", "disableOOMKiller": "DisableOOMKiller"},
	reflect.TypeOf(specs.LinuxCPU{}):            {"shares": "Shares", "quota": "Quota", "period": "Period", "realtimeRuntime": "RealtimeRuntime", "realtimePeriod": "RealtimePeriod", "cpus": "Cpus", "mems": "Mems"},
	reflect.TypeOf(specs.LinuxPids{}):           {"limit": "Limit"},
	reflect.TypeOf(specs.LinuxWeightDevice{}):   {"major": "Major", "minor": "Minor", "weight": "Weight", "leafWeight": "LeafWeight"},
	reflect.TypeOf(specs.LinuxThrottleDevice{}): {"major": "Major", "minor": "Minor", "rate": "Rate"},
	reflect.TypeOf(specs.LinuxBlockIO{}): {"weight": "Weight", "leafWeight": "LeafWeight", "weightDevice": "WeightDevice",
		"throttleReadBpsDevice": "ThrottleReadBpsDevice", "throttleWriteBpsDevice": "ThrottleWriteBpsDevice",
		"throttleReadIOPSDevice": "ThrottleReadIOPSDevice", "throttleWriteIOPSDevice": "ThrottleWriteIOPSDevice"},
	reflect.TypeOf(specs.LinuxHugepageLimit{}):     {"pageSize": "Pagesize", "limit": "Limit"},
	reflect.TypeOf(specs.LinuxInterfacePriority{}): {"name": "Name", "priority": "Priority"},
	reflect.TypeOf(specs.LinuxNetwork{}):           {"classID": "ClassID", "priorities": "Priorities"},
	reflect.TypeOf(specs.LinuxResources{}): {"devices": "Devices", "memory": "Memory", "cpu": "CPU", "pids": "Pids",
		"blockio": "BlockIO", "hugepageLimits": "HugepageLimits", "network": "Network"},
}

// fields maps YAML keys to field indexes, following inline structs.
func fields(t reflect.Type) map[string][]int {
	m := map[string][]int{}
	if keys, ok := schemaKeys[t]; ok {
		for k, name := range keys {
			f, found := t.FieldByName(name)
			if !found {
				panic("spec: no field " + name + " in " + t.String())
			}
			m[k] = f.Index
		}
		return m
	}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, inline, skip := fieldName(f)
		switch {
		case skip:
		case inline:
			for k, idx := range fields(f.Type) {
				m[k] = append([]int{i}, idx...)
			}
		default:
			m[name] = []int{i}
		}
	}
	return m
}

func (d *decoder) decode(n *yaml.Node, v reflect.Value, field string) {
	if !d.spend(field) {
		return
	}
	if n.Kind == yaml.AliasNode {
		d.decodeAlias(n, v, field)
		return
	}
	if n.Kind == yaml.DocumentNode {
		if len(n.Content) == 0 {
			return
		}
		n = n.Content[0]
	}
	if field != "" {
		d.record(n, field)
	}
	t := v.Type()
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == labelKeyType {
		d.decodeLabelKey(n, v, field)
		return
	}
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		// LinuxKit's schema has no nullable field: "key:" with no value
		// is rejected rather than read as unset.
		what := want(t.Kind())
		if t == idType {
			what = "a number or a name"
		}
		d.errorf(n, field, "expected %s, got null (no value)", what)
		return
	}
	if v.Kind() == reflect.Pointer {
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
		}
		d.decode(n, v.Elem(), field)
		return
	}
	if v.Type() == idType {
		d.decodeID(n, v, field)
		return
	}
	switch v.Kind() {
	case reflect.Struct:
		d.decodeStruct(n, v, field)
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			d.errorf(n, field, "expected a list, got %s", kindName(n))
			return
		}
		s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
		for i, item := range n.Content {
			d.decode(item, s.Index(i), fmt.Sprintf("%s[%d]", field, i))
		}
		v.Set(s)
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			d.errorf(n, field, "expected a mapping, got %s", kindName(n))
			return
		}
		m := reflect.MakeMap(v.Type())
		for _, e := range d.entries(n, field) {
			d.within(e, func() {
				ev := reflect.New(v.Type().Elem()).Elem()
				d.decode(e.val, ev, join(field, e.name))
				m.SetMapIndex(reflect.ValueOf(e.name).Convert(v.Type().Key()), ev)
			})
		}
		v.Set(m)
	default:
		d.decodeScalar(n, v, field)
	}
}

// decodeAlias decodes the anchor's value of the alias a. A struct with a
// position (an entry, the kernel) is placed where the alias is.
func (d *decoder) decodeAlias(a *yaml.Node, v reflect.Value, field string) {
	if a.Alias == nil {
		d.errorf(a, field, "unknown anchor &%s", a.Value)
		return
	}
	if !d.enter(a) {
		return
	}
	d.decode(a.Alias, v, field)
	d.leave()
	for v.Kind() == reflect.Pointer && !v.IsNil() {
		v = v.Elem()
	}
	if v.Kind() == reflect.Struct {
		if f := v.FieldByName("Pos"); f.IsValid() && f.Type() == posType {
			f.Set(reflect.ValueOf(d.pos(a)))
		}
	}
}

func (d *decoder) decodeStruct(n *yaml.Node, v reflect.Value, field string) {
	if f := v.FieldByName("Loc"); f.IsValid() && f.Type() == locType {
		f.Set(reflect.ValueOf(Loc{Pos: d.pos(n), Field: field, table: d.table}))
	}
	if n.Kind != yaml.MappingNode {
		d.errorf(n, field, "expected a mapping, got %s", kindName(n))
		return
	}
	idx := fields(v.Type())
	for _, e := range d.entries(n, field) {
		name := join(field, e.name)
		d.within(e, func() {
			fi, ok := idx[e.name]
			switch {
			case ok:
				d.decode(e.val, v.FieldByIndex(fi), name)
			case closest(e.name, idx) != "":
				d.errorf(e.key, name, "unknown field, did you mean %q?", closest(e.name, idx))
			default:
				d.errorf(e.key, name, "unknown field (known: %s)", knownKeys(idx))
			}
		})
	}
}

func knownKeys(idx map[string][]int) string {
	keys := make([]string, 0, len(idx))
	for k := range idx {
		keys = append(keys, k)
	}
	sortStrings(keys)
	return strings.Join(keys, ", ")
}

func (d *decoder) decodeScalar(n *yaml.Node, v reflect.Value, field string) {
	if n.Kind != yaml.ScalarNode {
		d.errorf(n, field, "expected %s, got %s", want(v.Kind()), kindName(n))
		return
	}
	var err error
	switch v.Kind() {
	case reflect.String:
		if n.Tag != "!!str" {
			d.errorf(n, field, "expected a string, got %s (quote it)", kindName(n))
			return
		}
		v.SetString(n.Value)
		return
	case reflect.Bool:
		if n.Tag != "!!bool" {
			d.errorf(n, field, "expected true or false, got %s", kindName(n))
			return
		}
		var b bool
		err = n.Decode(&b)
		v.SetBool(b)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		var i int64
		if n.Tag == "!!int" {
			err = n.Decode(&i)
		} else {
			err = fmt.Errorf("not an integer")
		}
		if err == nil && v.OverflowInt(i) {
			err = fmt.Errorf("out of range")
		}
		if err == nil {
			v.SetInt(i)
		}
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		var u uint64
		if n.Tag == "!!int" {
			err = n.Decode(&u)
		} else {
			err = fmt.Errorf("not an integer")
		}
		if err == nil && v.OverflowUint(u) {
			err = fmt.Errorf("out of range")
		}
		if err == nil {
			v.SetUint(u)
		}
	case reflect.Float32, reflect.Float64:
		var f float64
		err = n.Decode(&f)
		v.SetFloat(f)
	default:
		err = fmt.Errorf("unsupported type %s", v.Type())
	}
	if err != nil {
		d.errorf(n, field, "expected %s, got %s", want(v.Kind()), kindName(n))
	}
}

func (d *decoder) decodeID(n *yaml.Node, v reflect.Value, field string) {
	if n.Kind == yaml.ScalarNode {
		switch n.Tag {
		case "!!int":
			var u uint32
			if err := n.Decode(&u); err == nil {
				v.Set(reflect.ValueOf(ID{Number: u}))
				return
			}
		case "!!str":
			v.Set(reflect.ValueOf(ID{Name: n.Value, IsName: true}))
			return
		}
	}
	d.errorf(n, field, "expected a user/group id (a number or a name), got %s", kindName(n))
}

func want(k reflect.Kind) string {
	switch k {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return "an integer"
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a non-negative integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Slice:
		return "a list"
	}
	return "a mapping"
}

func join(field, key string) string {
	if field == "" {
		return key
	}
	return field + "." + key
}

// closest returns the known key nearest to key when it is a likely typo
// (edit distance at most 2), else "".
func closest(key string, idx map[string][]int) string {
	best, bestDist := "", 3
	for k := range idx {
		if d := editDistance(key, k); d < bestDist || (d == bestDist && k < best) {
			best, bestDist = k, d
		}
	}
	return best
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}
