package cli

import "strings"

// buildArgAttrs turns --build-arg flags into the frontend's build-arg:KEY
// attributes, as buildx does: KEY=VALUE sets KEY, a bare KEY takes the
// value of the environment variable KEY (lookup, os.LookupEnv for lkbuild
// build) and is left out when that is unset. A later flag for the same KEY
// wins.
func buildArgAttrs(args []string, lookup func(string) (string, bool)) map[string]string {
	attrs := map[string]string{}
	for _, a := range args {
		k, v, ok := strings.Cut(a, "=")
		if !ok {
			v, ok = lookup(k)
		}
		if ok {
			attrs["build-arg:"+k] = v
		}
	}
	return attrs
}
