package boottest

import (
	"strings"
	"testing"
	"time"
)

func TestWaitForInOrder(t *testing.T) {
	c := &Console{cond: make(chan struct{}), done: make(chan struct{}),
		lines: []string{"a start", "noise", "b: a", "c", "a exit 0"}}
	close(c.done)
	for _, tc := range []struct {
		markers []string
		missing string // "" when all are found in order
	}{
		{[]string{"a start", "b:", "a exit"}, ""},
		{[]string{"a", "a", "a"}, ""}, // "a start", "b: a", "a exit 0"
		{[]string{"c", "a start"}, `["a start"]`},
		{[]string{"b:", "b:"}, `["b:"]`},
		{[]string{"a start", "zzz", "c"}, `["zzz" "c"]`},
		{nil, ""},
	} {
		err := c.WaitForInOrder(time.Second, tc.markers...)
		switch {
		case tc.missing == "" && err != nil:
			t.Errorf("%q: %v", tc.markers, err)
		case tc.missing != "" && (err == nil || !strings.Contains(err.Error(), tc.missing)):
			t.Errorf("%q: err = %v, want missing %s", tc.markers, err, tc.missing)
		}
	}
}
