package spec

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// allCapabilities lists the Linux capabilities in kernel order, as
// LinuxKit's `all` expands them.
var allCapabilities = []string{
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL",
	"CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE",
	"CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK", "CAP_IPC_OWNER", "CAP_SYS_MODULE",
	"CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE", "CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT",
	"CAP_SYS_NICE", "CAP_SYS_RESOURCE", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE",
	"CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL", "CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN",
	"CAP_SYSLOG", "CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF",
	"CAP_CHECKPOINT_RESTORE",
}

func knownCapability(c string) bool {
	for _, k := range allCapabilities {
		if c == k {
			return true
		}
	}
	return false
}

// capabilityProblem says what is wrong with c as an entry of a capability
// list of n entries, or "". Names are LinuxKit's: upper case with the CAP_
// prefix; the words all and none (any case) only as the single entry.
func capabilityProblem(c string, n int) string {
	switch strings.ToLower(c) {
	case "all", "none":
		if n == 1 {
			return ""
		}
		return fmt.Sprintf("%q must be the only entry of its list (all is every capability, none is no capability)", c)
	}
	if knownCapability(c) {
		return ""
	}
	if k := "CAP_" + strings.TrimPrefix(strings.ToUpper(c), "CAP_"); knownCapability(k) {
		return fmt.Sprintf("unknown capability %q (write %s)", c, k)
	}
	return fmt.Sprintf("unknown capability %q", c)
}

// expandCaps turns one capability list into names: all is every
// capability in kernel order, none is no capability.
func expandCaps(caps []string) ([]string, error) {
	for _, c := range caps {
		if p := capabilityProblem(c, len(caps)); p != "" {
			return nil, errors.New(p)
		}
	}
	if len(caps) == 1 {
		switch strings.ToLower(caps[0]) {
		case "none":
			return nil, nil
		case "all":
			return allCapabilities, nil
		}
	}
	return caps, nil
}

// capabilitySet is the union of the expanded lists, each name once, in
// first-seen order. A list is empty when lists is.
func capabilitySet(lists ...[]string) ([]string, error) {
	out := []string{}
	seen := map[string]bool{}
	for _, l := range lists {
		caps, err := expandCaps(l)
		if err != nil {
			return nil, err
		}
		for _, c := range caps {
			if !seen[c] {
				seen[c] = true
				out = append(out, c)
			}
		}
	}
	return out, nil
}

var rlimitTypes = map[string]bool{
	"RLIMIT_CPU": true, "RLIMIT_FSIZE": true, "RLIMIT_DATA": true, "RLIMIT_STACK": true, "RLIMIT_CORE": true,
	"RLIMIT_RSS": true, "RLIMIT_NPROC": true, "RLIMIT_NOFILE": true, "RLIMIT_MEMLOCK": true, "RLIMIT_AS": true,
	"RLIMIT_LOCKS": true, "RLIMIT_SIGPENDING": true, "RLIMIT_MSGQUEUE": true, "RLIMIT_NICE": true,
	"RLIMIT_RTPRIO": true, "RLIMIT_RTTIME": true,
}

// parseRlimit parses "name,soft,hard"; the name may omit RLIMIT_ and the
// limits may be "unlimited". The soft limit cannot be above the hard one.
func parseRlimit(s string) (specs.POSIXRlimit, error) {
	parts := strings.SplitN(s, ",", 3)
	if len(parts) != 3 {
		return specs.POSIXRlimit{}, fmt.Errorf("rlimit %q is not name,soft,hard", s)
	}
	name := strings.ToUpper(strings.TrimSpace(parts[0]))
	if !strings.HasPrefix(name, "RLIMIT_") {
		name = "RLIMIT_" + name
	}
	if !rlimitTypes[name] {
		return specs.POSIXRlimit{}, fmt.Errorf("unknown rlimit %q", strings.TrimSpace(parts[0]))
	}
	limit := func(v string) (uint64, error) {
		v = strings.TrimSpace(v)
		if strings.EqualFold(v, "unlimited") {
			return ^uint64(0), nil
		}
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("rlimit %q: %q is not a number or unlimited", s, v)
		}
		return n, nil
	}
	soft, err := limit(parts[1])
	if err != nil {
		return specs.POSIXRlimit{}, err
	}
	hard, err := limit(parts[2])
	if err != nil {
		return specs.POSIXRlimit{}, err
	}
	if soft > hard {
		// setrlimit(2) refuses it: the container would not start.
		return specs.POSIXRlimit{}, fmt.Errorf("rlimit %q: the soft limit %s is above the hard limit %s", s, strings.TrimSpace(parts[1]), strings.TrimSpace(parts[2]))
	}
	return specs.POSIXRlimit{Type: name, Soft: soft, Hard: hard}, nil
}
