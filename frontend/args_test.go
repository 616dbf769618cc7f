package frontend

import (
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

// TestParseEpoch: SOURCE_DATE_EPOCH is a whole number of seconds that
// every format can store (0 to 2^32-1); anything else is refused with the
// range, never dropped or wrapped.
func TestParseEpoch(t *testing.T) {
	if e, err := parseEpoch(""); e != nil || err != nil {
		t.Errorf("empty: %v %v", e, err)
	}
	for v, want := range map[string]int64{"1700000000": 1700000000, "0": 0, "4294967295": 1<<32 - 1, "007": 7} {
		if e, err := parseEpoch(v); err != nil || e.Unix() != want {
			t.Errorf("parseEpoch(%q) = %v, %v; want %d", v, e, err, want)
		}
	}
	for _, v := range []string{"yesterday", "-1", "-9223372036854775808", "4294967296", "99999999999999", "18446744073709551616", "+5", " 5", "5 ", "1.5", "0x10", "1_000"} {
		_, err := parseEpoch(v)
		if err == nil || !strings.Contains(err.Error(), "build-arg SOURCE_DATE_EPOCH: ") ||
			!strings.Contains(err.Error(), "from 0 to 4294967295 (1970-01-01 00:00:00 to 2106-02-07 06:28:15 UTC)") {
			t.Errorf("parseEpoch(%q): error %v, want the build-arg and the range", v, err)
		}
	}
}

// TestParseSize: sizes as LinuxKit's --size, up to 2 TiB (an MBR partition
// and FAT32 end there); the VHD targets stop at 2040 GiB.
func TestParseSize(t *testing.T) {
	for in, want := range map[string]int64{
		"": 0, "1": 1 << 20, "512K": 512 << 10, "2048M": 2 << 30, "1G": 1 << 30, "1GiB": 1 << 30, "2gb": 2 << 30,
		"2T": 2 << 40, "2097152M": 2 << 40, "2147483648K": 2 << 40,
	} {
		got, err := ParseSize(in)
		if err != nil || got != want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for in, why := range map[string]string{
		"0": "positive", "-1G": "positive", "1.5G": "positive", "G": "positive", "1X": "positive",
		"3T": "larger than 2T", "2049G": "larger than 2T", "2097153M": "larger than 2T", "8388608T": "larger than 2T",
		"9223372036854775807": "larger than 2T", "99999999999999999999": "positive",
	} {
		if _, err := ParseSize(in); err == nil || !strings.Contains(err.Error(), why) {
			t.Errorf("ParseSize(%q): error %v, want %q", in, err, why)
		}
	}
	if err := checkSize("vhd", 2040<<30-1<<20); err != nil {
		t.Errorf("vhd at its limit: %v", err)
	}
	for _, target := range []string{"vhd", "dynamic-vhd"} {
		if err := checkSize(target, 2040<<30); err == nil || !strings.Contains(err.Error(), "at most 2088959M") {
			t.Errorf("%s of 2040 GiB: %v", target, err)
		}
	}
	if err := checkSize("raw-bios", 2<<40); err != nil {
		t.Errorf("raw-bios of 2 TiB: %v", err)
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
