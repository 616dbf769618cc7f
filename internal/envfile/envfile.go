// Package envfile reads .lkbuild/env, the shell file `make env` writes with
// the local environment's settings (BUILDKIT_HOST, LKBUILD_FRONTEND, ...).
package envfile

import (
	"bufio"
	"os"
	"path/filepath"
	"strings"
)

// Read parses `export KEY=VALUE` lines of a file; a missing file gives an
// empty map.
func Read(name string) map[string]string {
	m := map[string]string{}
	f, err := os.Open(name)
	if err != nil {
		return m
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimPrefix(strings.TrimSpace(sc.Text()), "export ")
		if k, v, ok := strings.Cut(line, "="); ok && k != "" && !strings.HasPrefix(k, "#") {
			m[k] = strings.Trim(v, `"'`)
		}
	}
	return m
}

// Find reads .lkbuild/env from dir or the nearest parent that has one.
func Find(dir string) map[string]string {
	_, m := FindFile(dir)
	return m
}

// FindFile is Find that also returns the file's name ("" when there is
// none).
func FindFile(dir string) (string, map[string]string) {
	for {
		name := filepath.Join(dir, ".lkbuild", "env")
		if _, err := os.Stat(name); err == nil {
			return name, Read(name)
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", map[string]string{}
		}
		dir = parent
	}
}
