package formats

import (
	"errors"
	"fmt"
	"strings"
)

// Parse parses --target: one target name or several separated by commas,
// built from one root filesystem into one result. Empty means Default. It
// returns every problem at once: unknown names, a name given twice, a tree
// target (tar, docker) with any other target (a tree is the whole result,
// so it cannot share it), and two targets writing the same file name.
func Parse(list string) ([]Target, error) {
	if strings.TrimSpace(list) == "" {
		list = Default
	}
	var out []Target
	var problems []string
	seen := map[string]bool{}
	for _, name := range strings.Split(list, ",") {
		name = strings.TrimSpace(name)
		t, ok := Lookup(name)
		switch {
		case name == "":
			problems = append(problems, fmt.Sprintf("empty target name in %q", list))
		case !ok:
			problems = append(problems, fmt.Sprintf("unknown target %q (the targets: lkbuild build --help, or docker buildx build --call targets)", name))
		case seen[name]:
			problems = append(problems, fmt.Sprintf("target %s given twice", name))
		default:
			out = append(out, t)
		}
		seen[name] = true
	}
	if len(out) > 1 {
		problems = append(problems, combine(out)...)
	}
	if len(problems) > 0 {
		return nil, errors.New(strings.Join(problems, "; "))
	}
	return out, nil
}

// combine returns why the targets ts cannot be built together: a tree
// target among them, or two writing the same file.
func combine(ts []Target) []string {
	var problems []string
	for _, t := range ts {
		if t.Tree {
			problems = append(problems, fmt.Sprintf("target %s is the root filesystem tree itself and cannot be combined with other targets (build it on its own)", t.Name))
		}
	}
	byArtifact := map[string]string{}
	for _, t := range ts {
		for _, a := range t.Own() {
			if o, ok := byArtifact[a]; ok {
				problems = append(problems, fmt.Sprintf("targets %s and %s both write <name>%s, so they cannot be built together", o, t.Name, a))
				continue
			}
			byArtifact[a] = t.Name
		}
	}
	return problems
}
