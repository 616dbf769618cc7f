package sbom

import (
	"bufio"
	"bytes"
	"fmt"
	"sort"
	"strings"
)

// Package is one package a package database of an image records.
type Package struct {
	// Type is the package manager: "apk" or "deb" (purl types).
	Type    string
	Name    string
	Version string
	Arch    string
	// Source is the source package (apk origin, dpkg Source without its
	// version); empty when the database names none.
	Source     string
	License    string // as the database writes it (apk only)
	Maintainer string
	Homepage   string
	Summary    string // one line
	// Database is the path, in the image, of the record it came from.
	Database string
}

// Paths of the package databases read in an image's tree.
const (
	APKInstalled   = "lib/apk/db/installed"
	DpkgStatus     = "var/lib/dpkg/status"
	DpkgStatusDDir = "var/lib/dpkg/status.d"
)

// stanzas splits a database of "key: value" records separated by blank
// lines, calling fn with each record's lines. Lines are at most 1 MiB.
func stanzas(dt []byte, fn func(lines []string) error) error {
	sc := bufio.NewScanner(bytes.NewReader(dt))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	var cur []string
	flush := func() error {
		if len(cur) == 0 {
			return nil
		}
		err := fn(cur)
		cur = nil
		return err
	}
	for sc.Scan() {
		line := strings.TrimSuffix(sc.Text(), "\r")
		if strings.TrimSpace(line) == "" {
			if err := flush(); err != nil {
				return err
			}
			continue
		}
		cur = append(cur, line)
	}
	if err := sc.Err(); err != nil {
		return err
	}
	return flush()
}

// ParseAPK reads an apk database (lib/apk/db/installed): records of
// one-letter fields ("P:" name, "V:" version, "A:" architecture, "L:"
// license, "o:" origin, "m:" maintainer, "U:" URL, "T:" description), one
// per package, separated by blank lines. Records without a
// name and version are errors. The packages are returned in the
// database's order.
func ParseAPK(dt []byte, database string) ([]Package, error) {
	var out []Package
	n := 0
	err := stanzas(dt, func(lines []string) error {
		n++
		p := Package{Type: "apk", Database: database}
		for _, l := range lines {
			if len(l) < 2 || l[1] != ':' {
				continue // fields apk adds (file lists use F:, R:, a:, Z: ...)
			}
			v := l[2:]
			switch l[0] {
			case 'P':
				p.Name = v
			case 'V':
				p.Version = v
			case 'A':
				p.Arch = v
			case 'L':
				p.License = v
			case 'o':
				p.Source = v
			case 'm':
				p.Maintainer = v
			case 'U':
				p.Homepage = v
			case 'T':
				p.Summary = v
			}
		}
		if p.Name == "" || p.Version == "" {
			return fmt.Errorf("%s: record %d has no package name (P:) or version (V:)", database, n)
		}
		out = append(out, p)
		return nil
	})
	return out, err
}

// ParseDpkg reads a dpkg status file (var/lib/dpkg/status) or one file of
// var/lib/dpkg/status.d (as distroless images keep them): RFC 822 records
// with continuation lines. A record with a Status field counts only when
// its package is installed ("install ok installed" and the like, the last
// word being "installed"); status.d records have none and all count.
// Records without Package or Version are errors, except records dpkg keeps
// for packages removed but not purged (a Status not ending in installed).
func ParseDpkg(dt []byte, database string) ([]Package, error) {
	var out []Package
	n := 0
	err := stanzas(dt, func(lines []string) error {
		n++
		fields := map[string]string{}
		last := ""
		for _, l := range lines {
			if l[0] == ' ' || l[0] == '\t' {
				if last != "" && last != "description" {
					fields[last] += "\n" + strings.TrimSpace(l)
				}
				continue
			}
			k, v, ok := strings.Cut(l, ":")
			if !ok {
				return fmt.Errorf("%s: record %d: line %q is not a field", database, n, l)
			}
			last = strings.ToLower(strings.TrimSpace(k))
			fields[last] = strings.TrimSpace(v)
		}
		if st, ok := fields["status"]; ok {
			w := strings.Fields(st)
			if len(w) == 0 || w[len(w)-1] != "installed" {
				return nil
			}
		}
		p := Package{
			Type:       "deb",
			Name:       fields["package"],
			Version:    fields["version"],
			Arch:       fields["architecture"],
			Maintainer: fields["maintainer"],
			Homepage:   fields["homepage"],
			Summary:    fields["description"],
			Database:   database,
		}
		if src := fields["source"]; src != "" {
			// "Source: name (version)" when the versions differ.
			p.Source, _, _ = strings.Cut(src, " ")
		}
		if p.Name == "" || p.Version == "" {
			return fmt.Errorf("%s: record %d has no Package or Version field", database, n)
		}
		out = append(out, p)
		return nil
	})
	return out, err
}

// sortPackages orders packages by type, name, version, architecture and
// database, and drops exact repeats (a package recorded twice).
func sortPackages(ps []Package) []Package {
	sort.SliceStable(ps, func(i, j int) bool {
		a, b := ps[i], ps[j]
		if a.Type != b.Type {
			return a.Type < b.Type
		}
		if a.Name != b.Name {
			return a.Name < b.Name
		}
		if a.Version != b.Version {
			return a.Version < b.Version
		}
		if a.Arch != b.Arch {
			return a.Arch < b.Arch
		}
		return a.Database < b.Database
	})
	out := ps[:0]
	for i, p := range ps {
		if i > 0 && p == ps[i-1] {
			continue
		}
		out = append(out, p)
	}
	return out
}
