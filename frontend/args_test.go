package frontend

import (
	"slices"
	"strings"
	"testing"
)

// TestParseName: NAME is one plain file name; a path, a directory name or
// a name with separators, quotes or control characters is refused with the
// rule, and the default (the YAML file name) is checked the same way.
func TestParseName(t *testing.T) {
	for arg, want := range map[string]string{
		"":                       "linuxkit",
		"my-os":                  "my-os",
		"my os+1.2_é":            "my os+1.2_é",
		"-x":                     "-x",
		".hidden":                ".hidden",
		strings.Repeat("a", 240): strings.Repeat("a", 240),
	} {
		got, err := parseName(arg, "sub/linuxkit.yml")
		if err != nil || got != want {
			t.Errorf("parseName(%q) = %q, %v; want %q", arg, got, err, want)
		}
	}
	for arg, why := range map[string]string{
		"../x":                   `"../x" contains '/', a path separator`,
		"a/b":                    "a path separator",
		"/abs":                   "a path separator",
		`a\b`:                    `contains '\\', a path separator`,
		".":                      "is a directory name",
		"..":                     "is a directory name",
		"a\nb":                   "contains the control character U+000A",
		"a\x00b":                 "U+0000",
		"a\x7fb":                 "U+007F",
		`a"b`:                    `contains '"'`,
		"a\xffb":                 "is not valid UTF-8",
		strings.Repeat("a", 241): "is 241 bytes long",
	} {
		_, err := parseName(arg, "linuxkit.yml")
		if err == nil || !strings.HasPrefix(err.Error(), "build-arg NAME: ") || !strings.Contains(err.Error(), why) ||
			!strings.Contains(err.Error(), "must be one plain file name") {
			t.Errorf("parseName(%q): error %v, want build-arg NAME: ... %s ... and the rule", arg, err, why)
		}
	}
	if _, err := parseName("", "dir/a\nb.yml"); err == nil || !strings.Contains(err.Error(), "set the NAME build-arg") {
		t.Errorf("a YAML file name that is no plain name: %v", err)
	}
}

// TestParseEpoch: SOURCE_DATE_EPOCH is read by buildarg.Epoch (whose test
// covers the range); its error names the build-arg.
func TestParseEpoch(t *testing.T) {
	if e, err := parseEpoch(""); e != nil || err != nil {
		t.Errorf("empty: %v %v", e, err)
	}
	if e, err := parseEpoch("1700000000"); err != nil || e.Unix() != 1700000000 {
		t.Errorf("parseEpoch(1700000000) = %v, %v", e, err)
	}
	for _, v := range []string{"yesterday", "-1", "4294967296"} {
		_, err := parseEpoch(v)
		if err == nil || !strings.HasPrefix(err.Error(), "build-arg SOURCE_DATE_EPOCH: \""+v+"\" is not a valid timestamp") ||
			!strings.Contains(err.Error(), "from 0 to 4294967295 (1970-01-01 00:00:00 to 2106-02-07 06:28:15 UTC)") {
			t.Errorf("parseEpoch(%q): error %v, want the build-arg, the value and the range", v, err)
		}
	}
}

// TestParseSize: SIZE (or "size") as LinuxKit's --size, up to 2 TiB (an
// MBR partition and FAT32 end there); the VHD targets stop at 2040 GiB.
// buildarg.TestSize covers the syntax.
func TestParseSize(t *testing.T) {
	for _, c := range []struct {
		args    map[string]string
		targets string
		want    int64
		err     string // a part of the error, "" for none
	}{
		{nil, "raw-bios", 0, ""},
		{map[string]string{"SIZE": "1G"}, "raw-bios", 1 << 30, ""},
		{map[string]string{"size": "512K"}, "raw-bios", 512 << 10, ""},
		{map[string]string{"SIZE": "2G", "size": "1G"}, "raw-bios", 2 << 30, ""},
		{map[string]string{"SIZE": "", "size": "3M"}, "raw-bios", 3 << 20, ""},
		{map[string]string{"SIZE": "2T"}, "raw-bios", 2 << 40, ""},
		{map[string]string{"SIZE": "2088959M"}, "vhd", 2040<<30 - 1<<20, ""},
		{map[string]string{"SIZE": "2088960M"}, "raw-bios,vhd", 0, "at most 2088959M"},
		{map[string]string{"SIZE": "2040G"}, "kernel+initrd, dynamic-vhd", 0, "too large for dynamic-vhd"},
		{map[string]string{"SIZE": "0"}, "raw-bios", 0, `build-arg SIZE: invalid size "0": want a positive number`},
		{map[string]string{"size": "1.5G"}, "raw-bios", 0, `build-arg SIZE: invalid size "1.5G"`},
		{map[string]string{"SIZE": "3T"}, "raw-bios", 0, `build-arg SIZE: size "3T" is larger than 2T`},
	} {
		got, err := parseSize(c.args, c.targets)
		switch {
		case c.err == "" && (err != nil || got != c.want):
			t.Errorf("parseSize(%v, %q) = %d, %v; want %d", c.args, c.targets, got, err, c.want)
		case c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)):
			t.Errorf("parseSize(%v, %q): error %v, want %q", c.args, c.targets, err, c.err)
		}
	}
}

// TestParseArgs: the target defaults to kernel+initrd; the target list,
// NAME, SOURCE_DATE_EPOCH and SIZE are checked in this order, and the
// first problem is the error.
func TestParseArgs(t *testing.T) {
	got, err := parseArgs("", map[string]string{"SOURCE_DATE_EPOCH": "7", "SIZE": "1M"}, "dir/os.yml")
	if err != nil || got.target != "kernel+initrd" || got.name != "os" || got.epoch == nil || got.epoch.Unix() != 7 || got.size != 1<<20 {
		t.Errorf("parseArgs = %+v, %v; want kernel+initrd, os, 7, 1 MiB", got, err)
	}
	got, err = parseArgs("iso-bios,raw-bios", map[string]string{"NAME": "x"}, "os.yml")
	if err != nil || got.target != "iso-bios,raw-bios" || got.name != "x" || got.epoch != nil || got.size != 0 {
		t.Errorf("parseArgs = %+v, %v; want iso-bios,raw-bios, x, no epoch, no size", got, err)
	}
	bad := map[string]string{"NAME": "a/b", "SOURCE_DATE_EPOCH": "-1", "SIZE": "0"}
	for _, c := range []struct {
		target string
		drop   []string // build-args left out of bad
		err    string
	}{
		{"no-such-target", nil, "no-such-target"},
		{"", nil, "build-arg NAME: "},
		{"", []string{"NAME"}, "build-arg SOURCE_DATE_EPOCH: "},
		{"", []string{"NAME", "SOURCE_DATE_EPOCH"}, "build-arg SIZE: "},
	} {
		args := map[string]string{}
		for k, v := range bad {
			if !slices.Contains(c.drop, k) {
				args[k] = v
			}
		}
		if _, err := parseArgs(c.target, args, "os.yml"); err == nil || !strings.Contains(err.Error(), c.err) {
			t.Errorf("parseArgs(%q, %v): error %v, want %q", c.target, args, err, c.err)
		}
	}
}

// TestMergePaths: MERGE names are relative to the main YAML's directory
// and stay in the local source of the YAML files.
func TestMergePaths(t *testing.T) {
	for _, c := range []struct {
		dir   string
		names []string
		want  string
	}{
		{".", []string{"b.yml", " c.yml", "", "sub/d.yml"}, "b.yml c.yml sub/d.yml"},
		{".", []string{"..b.yml", "a..yml"}, "..b.yml a..yml"},
		{"b", []string{"../c/extra.yml", "d.yml"}, "c/extra.yml b/d.yml"},
	} {
		got, err := mergePaths(c.dir, c.names)
		if err != nil || strings.Join(got, " ") != c.want {
			t.Errorf("mergePaths(%q, %q) = %q, %v; want %q", c.dir, c.names, got, err, c.want)
		}
	}
	for _, c := range []struct {
		dir, name, why string
	}{
		{".", "../x.yml", "leaves the directory"},
		{"b", "../../x.yml", "leaves the directory"},
		{".", "a/../../x.yml", "leaves the directory"},
		{".", "/etc/x.yml", "absolute"},
		{".", ".", "names a directory"},
		{"b", "c/..", "names a directory"},
	} {
		if _, err := mergePaths(c.dir, []string{c.name}); err == nil || !strings.HasPrefix(err.Error(), "build-arg MERGE: ") || !strings.Contains(err.Error(), c.why) {
			t.Errorf("mergePaths(%q, %q): error %v, want %q", c.dir, c.name, err, c.why)
		}
	}
}

func TestFollowPatterns(t *testing.T) {
	got := followPatterns([]string{"conf/a.conf", "conf/[a]b", "*", `a\b`, "!x", "a/!x", "x?"})
	want := []string{"conf/a.conf", `conf/\[a\]b`, `\*`, `a\\b`, `\!x`, "a/!x", `x\?`}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("followPatterns = %q, want %q", got, want)
	}
}
