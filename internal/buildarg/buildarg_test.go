package buildarg

import (
	"strings"
	"testing"
)

// TestEpoch: SOURCE_DATE_EPOCH is a whole number of seconds that every
// format can store (0 to 2^32-1); anything else is refused with the range,
// never dropped or wrapped.
func TestEpoch(t *testing.T) {
	if e, err := Epoch(""); e != nil || err != nil {
		t.Errorf("empty: %v %v", e, err)
	}
	for _, c := range []struct {
		in   string
		want int64
	}{
		{"1700000000", 1700000000}, {"0", 0}, {"4294967295", 1<<32 - 1}, {"007", 7},
	} {
		e, err := Epoch(c.in)
		if err != nil || e.Unix() != c.want || e.Location().String() != "UTC" {
			t.Errorf("Epoch(%q) = %v, %v; want %d UTC", c.in, e, err, c.want)
		}
	}
	for _, in := range []string{"yesterday", "-1", "-9223372036854775808", "4294967296", "99999999999999",
		"18446744073709551616", "+5", " 5", "5 ", "1.5", "0x10", "1_000"} {
		_, err := Epoch(in)
		if err == nil || !strings.HasPrefix(err.Error(), `"`+in+`" is not a valid timestamp`) ||
			!strings.Contains(err.Error(), "from 0 to 4294967295 (1970-01-01 00:00:00 to 2106-02-07 06:28:15 UTC)") {
			t.Errorf("Epoch(%q): error %v, want the value and the range", in, err)
		}
	}
}

// TestEpochAt: the --epoch flags' seconds become a UTC time; a negative
// value (their default, -1) is unset.
func TestEpochAt(t *testing.T) {
	for _, c := range []struct {
		in   int64
		want string // "" for nil
	}{
		{-1, ""}, {-1 << 62, ""}, {0, "1970-01-01T00:00:00Z"}, {1700000000, "2023-11-14T22:13:20Z"},
		{1<<32 - 1, "2106-02-07T06:28:15Z"},
	} {
		got := EpochAt(c.in)
		switch {
		case c.want == "" && got != nil:
			t.Errorf("EpochAt(%d) = %v, want nil", c.in, got)
		case c.want != "" && (got == nil || got.Format("2006-01-02T15:04:05Z07:00") != c.want):
			t.Errorf("EpochAt(%d) = %v, want %s", c.in, got, c.want)
		}
	}
}

// TestSize: sizes as LinuxKit's --size, up to 2 TiB (an MBR partition and
// FAT32 end there).
func TestSize(t *testing.T) {
	for _, c := range []struct {
		in   string
		want int64
	}{
		{"", 0}, {"1", 1 << 20}, {"512K", 512 << 10}, {"2048M", 2 << 30}, {"1G", 1 << 30}, {"1GiB", 1 << 30},
		{"2gb", 2 << 30}, {" 3M", 3 << 20}, {"1kib", 1 << 10}, {"2T", 2 << 40}, {"2097152M", 2 << 40},
		{"2147483648K", 2 << 40},
	} {
		got, err := Size(c.in)
		if err != nil || got != c.want {
			t.Errorf("Size(%q) = %d, %v; want %d", c.in, got, err, c.want)
		}
	}
	for _, c := range []struct{ in, why string }{
		{"0", "positive"}, {"-1G", "positive"}, {"1.5G", "positive"}, {"G", "positive"}, {"1X", "positive"},
		{"B", "positive"}, {"3T", "larger than 2T"}, {"2049G", "larger than 2T"}, {"2097153M", "larger than 2T"},
		{"8388608T", "larger than 2T"}, {"9223372036854775807", "larger than 2T"},
		{"99999999999999999999", "positive"},
	} {
		if _, err := Size(c.in); err == nil || !strings.Contains(err.Error(), c.why) || !strings.Contains(err.Error(), `"`+c.in+`"`) {
			t.Errorf("Size(%q): error %v, want %q and the value", c.in, err, c.why)
		}
	}
}

// TestBool: a boolean build-arg is exactly true, false, 1 or 0; every
// other spelling is refused with the accepted values, never guessed.
func TestBool(t *testing.T) {
	for v, want := range map[string]bool{"true": true, "1": true, "false": false, "0": false} {
		if got, err := Bool(v); err != nil || got != want {
			t.Errorf("Bool(%q) = %v, %v; want %v", v, got, err, want)
		}
	}
	for _, v := range []string{"", "True", "TRUE", "False", "FALSE", "t", "f", "yes", "no", "on", "off", "2", "-1", " 1", "0 "} {
		if _, err := Bool(v); err == nil || !strings.Contains(err.Error(), "want exactly true, false, 1 or 0") {
			t.Errorf("Bool(%q): err = %v, want one listing true, false, 1 or 0", v, err)
		}
	}
}
