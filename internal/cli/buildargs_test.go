package cli

import (
	"maps"
	"testing"
)

// TestBuildArgAttrs: --build-arg KEY=VALUE as given, a bare KEY from the
// environment (left out when unset), the last flag for a KEY wins.
func TestBuildArgAttrs(t *testing.T) {
	env := map[string]string{"SOURCE_DATE_EPOCH": "1700000000", "EMPTY": ""}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	for _, c := range []struct {
		name string
		args []string
		want map[string]string
	}{
		{"none", nil, map[string]string{}},
		{"value", []string{"NAME=my-os"}, map[string]string{"build-arg:NAME": "my-os"}},
		{"value with =", []string{"A=b=c"}, map[string]string{"build-arg:A": "b=c"}},
		{"empty value", []string{"SIZE="}, map[string]string{"build-arg:SIZE": ""}},
		{"from the environment", []string{"SOURCE_DATE_EPOCH"}, map[string]string{"build-arg:SOURCE_DATE_EPOCH": "1700000000"}},
		{"empty in the environment", []string{"EMPTY"}, map[string]string{"build-arg:EMPTY": ""}},
		{"unset in the environment", []string{"UNSET"}, map[string]string{}},
		{"last wins", []string{"NAME=a", "NAME=b"}, map[string]string{"build-arg:NAME": "b"}},
		{"environment after value", []string{"SOURCE_DATE_EPOCH=1", "SOURCE_DATE_EPOCH"}, map[string]string{"build-arg:SOURCE_DATE_EPOCH": "1700000000"}},
		{"unset keeps the earlier value", []string{"UNSET=1", "UNSET"}, map[string]string{"build-arg:UNSET": "1"}},
	} {
		if got := buildArgAttrs(c.args, lookup); !maps.Equal(got, c.want) {
			t.Errorf("%s: buildArgAttrs(%q) = %v, want %v", c.name, c.args, got, c.want)
		}
	}
}
