package spec

import (
	"errors"
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
	"time"
)

// The expected values of these tests were checked by running LinuxKit's
// own config code (moby.NewConfig, which decodes with gopkg.in/yaml.v3 and
// validates against its JSON schema) on the same inputs.

func mustParse(t *testing.T, y string) *Config {
	t.Helper()
	cfg, err := Parse("t.yml", []byte(y))
	if err != nil {
		t.Fatalf("%v\n%s", err, y)
	}
	return cfg
}

func strs(p *[]string) string {
	if p == nil {
		return "<unset>"
	}
	return strings.Join(*p, ",")
}

// TestMergeKeys: `<<` merges mappings as yaml.v3 does for LinuxKit: the
// mapping's own keys win, then the merged mappings in order (in a list,
// an earlier one wins over a later one), and a merged mapping's own
// merges come after its keys. Merging is shallow: a key's value is taken
// whole.
func TestMergeKeys(t *testing.T) {
	cfg := mustParse(t, `onboot:
  - &a
    name: a
    image: x:1
    env: [A=1]
    cwd: /a
    runtime: {mkdir: [/a], namespace: na}
  - &b
    name: b
    image: x:2
    env: [B=1]
    hostname: hb
    <<: {cwd: /inner, uid: 7}
services:
  - name: s1
    <<: [*a, *b]
  - name: s2
    <<: [*b, *a]
  - <<: *a
    name: s3
    env: [C=1]
    runtime: {mkdir: [/s3]}
`)
	for _, tc := range []struct {
		img                       *Image
		name, image, env, cwd, hn string
		uid                       string
	}{
		{cfg.Onboot[1], "b", "x:2", "B=1", "/inner", "hb", "7"},
		{cfg.Services[0], "s1", "x:1", "A=1", "/a", "hb", "7"},
		{cfg.Services[1], "s2", "x:2", "B=1", "/inner", "hb", "7"},
		{cfg.Services[2], "s3", "x:1", "C=1", "/a", "", "<unset>"},
	} {
		i := tc.img
		uid := "<unset>"
		if i.UID != nil {
			uid = i.UID.String()
		}
		if i.Name != tc.name || i.Image != tc.image || strs(i.Env) != tc.env || i.Cwd != tc.cwd || i.Hostname != tc.hn || uid != tc.uid {
			t.Errorf("%s: got name %s image %s env %s cwd %s hostname %q uid %s, want %+v", tc.name, i.Name, i.Image, strs(i.Env), i.Cwd, i.Hostname, uid, tc)
		}
	}
	// Shallow: s3's runtime replaces a's whole runtime.
	if rt := cfg.Services[2].Runtime; strs(rt.Mkdir) != "/s3" || rt.Namespace != nil {
		t.Errorf("s3 runtime = mkdir %s namespace %v, want a's runtime replaced", strs(rt.Mkdir), rt.Namespace)
	}
	// The entry's position is the merging mapping, not the anchor.
	if p := cfg.Services[0].Pos; p.Line != 15 || p.Col != 5 {
		t.Errorf("s1 at %v, want t.yml:15:5", p)
	}
}

// TestAliases: an alias stands for its anchor's value anywhere: a scalar,
// a list, a list item, a whole entry, a mapping key's value inside OCI
// sub-objects.
func TestAliases(t *testing.T) {
	cfg := mustParse(t, `kernel:
  <<: {image: linuxkit/kernel:6.6, cmdline: a}
  cmdline: &cl console=ttyS0
init:
  - &init linuxkit/init:1
  - linuxkit/runc:1
  - *init
onboot:
  - &one
    name: one
    image: &img busybox:1
    command: &cmd [/bin/sh, -c, *cl]
    resources:
      memory: &mem {limit: 100}
    sysctl: &sysctl {a: "1"}
services:
  - *one
  - name: two
    image: *img
    env: *cmd
    resources:
      memory: {<<: *mem, reservation: 5}
    annotations: {<<: *sysctl, b: "2"}
`)
	if k := cfg.Kernel; k.Image != "linuxkit/kernel:6.6" || k.Cmdline != "console=ttyS0" {
		t.Errorf("kernel = %+v", k)
	}
	if strings.Join(cfg.Init, " ") != "linuxkit/init:1 linuxkit/runc:1 linuxkit/init:1" {
		t.Errorf("init = %v", cfg.Init)
	}
	if len(cfg.InitPos) != 3 || cfg.InitPos[2].Line != 7 {
		t.Errorf("init positions = %v, want the third at line 7 (where the alias is)", cfg.InitPos)
	}
	s1, s2 := cfg.Services[0], cfg.Services[1]
	if s1.Name != "one" || strs(s1.Command) != "/bin/sh,-c,console=ttyS0" || s1.Pos.Line != 17 {
		t.Errorf("services[0] = %s %s at %v, want onboot[0]'s entry placed at line 17", s1.Name, strs(s1.Command), s1.Pos)
	}
	if s2.Image != "busybox:1" || strs(s2.Env) != "/bin/sh,-c,console=ttyS0" {
		t.Errorf("services[1] image %s env %s", s2.Image, strs(s2.Env))
	}
	if m := s2.Resources.Memory; m == nil || *m.Limit != 100 || *m.Reservation != 5 {
		t.Errorf("merged memory = %+v", m)
	}
	if a := *s2.Annotations; len(a) != 2 || a["a"] != "1" || a["b"] != "2" {
		t.Errorf("merged annotations = %v", a)
	}
}

func firstError(t *testing.T, err error) *Error {
	t.Helper()
	var errs Errors
	if !errors.As(err, &errs) || len(errs) == 0 {
		t.Fatalf("err = %v, want spec.Errors", err)
	}
	return errs[0]
}

// TestMergeKeyErrors: merged content is checked as strictly as written
// content, and errors in it point at where the anchor's field is written,
// saying where the anchor is used.
func TestMergeKeyErrors(t *testing.T) {
	const base = "onboot:\n  - &a\n    name: a\n    image: x:1\n"
	for _, tc := range []struct{ name, yaml, want string }{
		{"unknown key in a merged mapping", "onboot:\n  - name: a\n    image: x:1\n    sysctl: &s {foo: bar}\nservices:\n  - <<: *s\n    name: b\n    image: x:2\n",
			`t.yml:4:17: services[0].foo: unknown field (known: `},
		{"error from the anchor says where it is used", "onboot:\n  - name: a\n    image: x:1\n    annotations: &s\n      readonly: maybe\nservices:\n  - name: b\n    image: x:2\n    <<: *s\n",
			`t.yml:5:17: services[0].readonly: expected true or false, got the string "maybe" (anchor &s, used at 9:9)`},
		{"merge of a list", base + "    command: &c [a]\nservices:\n  - name: b\n    image: x:2\n    <<: *c\n",
			"t.yml:9:9: services[0].<<: a merge (<<) takes a mapping, an alias of a mapping or a list of those, got an alias of a list"},
		{"merge of a scalar in a list", base + "services:\n  - name: b\n    <<: [*a, x]\n",
			"t.yml:7:14: services[0].<<[1]: a merge (<<) takes a mapping, an alias of a mapping or a list of those, got the string \"x\""},
		{"two merge keys", base + "services:\n  - <<: *a\n    <<: *a\n", "t.yml:7:5: services[0].<<: duplicate key"},
		{"a quoted << is a key", base + "services:\n  - \"<<\": *a\n", `t.yml:6:5: services[0].<<: unknown field`},
		{"null overrides nothing", base + "services:\n  - <<: *a\n    env: null\n", "t.yml:7:10: services[0].env: expected a list, got null"},
		{"anchor inside itself", "onboot:\n  - name: a\n    image: x:1\n    env: &e [a, *e]\n", "t.yml:4:17: onboot[0].env[1]: alias *e is inside its own anchor &e (at 4:10)"},
		{"merge of itself", "onboot:\n  - &a\n    name: a\n    image: x:1\n    runtime: {<<: *a}\n", "t.yml:5:19: onboot[0].runtime.<<: alias *a is inside its own anchor &a"},
		{"unknown anchor", "onboot:\n  - name: &nope a\n    image: x\n    env: [*nope, *nop]\n", `t.yml:4:18: YAML syntax: alias *nop names no anchor (&nop) written before it`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			done := make(chan error, 1)
			go func() {
				// An old decoder recurses forever on an anchor inside
				// itself: fail on a small stack instead of 1 GB.
				debug.SetMaxStack(64 << 20)
				_, err := Parse("t.yml", []byte(tc.yaml))
				done <- err
			}()
			var err error
			select {
			case err = <-done:
			case <-time.After(20 * time.Second):
				t.Fatal("Parse did not return")
			}
			if got := firstError(t, err).Error(); !strings.HasPrefix(got, tc.want) {
				t.Errorf("error\n got %s\nwant %s", got, tc.want)
			}
		})
	}
}

// TestAliasBomb: aliases that expand to a huge document (billion laughs)
// are refused as LinuxKit's YAML library refuses them, quickly and
// without allocating the expansion; heavy but reasonable aliasing that
// LinuxKit accepts is accepted.
func TestAliasBomb(t *testing.T) {
	bomb := func(width int) string {
		var b strings.Builder
		fmt.Fprintf(&b, "onboot:\n  - &s\n    name: a\n    image: x:1\n    mounts:\n")
		fmt.Fprintf(&b, "      - &m {type: bind, source: /x, destination: /x, options: [%s]}\n", strings.TrimSuffix(strings.Repeat("o, ", width), ", "))
		for i := 1; i < width; i++ {
			b.WriteString("      - *m\n")
		}
		b.WriteString("services:\n")
		for i := 0; i < width; i++ {
			fmt.Fprintf(&b, "  - *s\n")
		}
		return b.String()
	}
	start := time.Now()
	_, err := Parse("t.yml", []byte(bomb(100))) // 10^6 values from 2 KB
	e := firstError(t, err)
	if !strings.Contains(e.Msg, "excessive aliasing") || e.Line != 107 || e.Col != 5 {
		t.Errorf("error = %v, want excessive aliasing at the first services entry (t.yml:107:5)", e)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("took %v", d)
	}
	// When LinuxKit's library stops at another error first, the decoder
	// still stops expanding.
	start = time.Now()
	_, err = Parse("t.yml", []byte("onshutdown:\n  - {<<: x}\n"+bomb(200))) // 8*10^6 values
	var errs Errors
	if !errors.As(err, &errs) || len(errs) < 2 || !strings.Contains(errs[0].Msg, "a merge (<<) takes a mapping") || !strings.Contains(errs.Error(), "excessive aliasing: *s expands to more than") {
		t.Errorf("error = %v, want the bad merge and excessive aliasing", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("took %v", d)
	}
	// 30 services from one 21-line anchor: 97% of the values come from
	// aliases, which LinuxKit accepts.
	var b strings.Builder
	b.WriteString("onboot:\n  - &s\n    name: a\n    image: x:1\n    env: [")
	b.WriteString(strings.TrimSuffix(strings.Repeat("A=1, ", 20), ", "))
	b.WriteString("]\nservices:\n")
	for i := 0; i < 30; i++ {
		fmt.Fprintf(&b, "  - {<<: *s, name: s%d}\n", i)
	}
	if cfg, err := Parse("t.yml", []byte(b.String())); err != nil || len(*cfg.Services[29].Env) != 20 {
		t.Errorf("heavy aliasing within LinuxKit's limit: %v", err)
	}
}

// TestLabelReadOnce: a label whose aliases expand it a hundredfold (within
// LinuxKit's limit) is read once for all the entries that use its image,
// not once per entry: for 20 entries that allocated 837 MB, now 118 MB
// (with 100 entries, 10.8 GB in 2m18s, now 164 MB in 1.6 s).
func TestLabelReadOnce(t *testing.T) {
	var l strings.Builder
	l.WriteString("{maskedPaths: &a [")
	l.WriteString(strings.TrimSuffix(strings.Repeat("/x, ", 4200), ", "))
	l.WriteString("], mounts: [")
	l.WriteString(strings.TrimSuffix(strings.Repeat("{type: tmpfs, destination: /m, options: *a}, ", 85), ", "))
	l.WriteString("]}")
	var y strings.Builder
	y.WriteString("services:\n")
	for i := 0; i < 20; i++ {
		fmt.Fprintf(&y, "  - {name: s%d, image: x:1}\n", i)
	}
	cfg := mustParse(t, y.String())
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	start := time.Now()
	bs, err := Bundles(cfg, map[string]ImageConfig{"x:1": {Labels: map[string]string{LabelConfig: l.String()}}})
	d := time.Since(start)
	runtime.ReadMemStats(&after)
	if err != nil || len(bs) != 20 {
		t.Fatalf("%d bundles, err %v", len(bs), err)
	}
	if d > 10*time.Second {
		t.Errorf("20 bundles took %v", d)
	}
	if mb := (after.TotalAlloc - before.TotalAlloc) >> 20; mb > 500 {
		t.Errorf("20 bundles allocated %d MB", mb)
	}
}
