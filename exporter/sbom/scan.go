package sbom

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"syscall"

	spdxjson "github.com/spdx/tools-golang/json"
	"github.com/spdx/tools-golang/spdx"
)

// Places where images keep SPDX documents of their own contents, read
// besides the package databases: the SBOM LinuxKit and lkbuild write at
// the top of a system (an image made from one, e.g. with the docker
// target), and the directory of per-package SPDX documents of apko-built
// (Wolfi, Chainguard) images.
const (
	EmbeddedSBOM    = "sbom.spdx.json"
	EmbeddedSBOMDir = "var/lib/db/sbom"
)

// maxDatabase bounds the size of a package database or SPDX document read
// from an image.
const maxDatabase = 256 << 20

// Tree is what the scan of one image's root filesystem found.
type Tree struct {
	// Distro is the ID of the image's os-release ("alpine", "debian"),
	// used as the namespace of package URLs; empty when it has none.
	Distro string
	// Packages are the packages of the image's databases, sorted.
	Packages []Package
	// Embedded are the SPDX documents the image carries, by path.
	Embedded []Embedded
	// Notes are problems that did not stop the scan (an embedded document
	// that does not parse), for the build's log.
	Notes []string
}

// Embedded is an SPDX document found in an image.
type Embedded struct {
	Path string
	Doc  *spdx.Document
}

// ScanTree reads the package databases and SPDX documents of the image
// tree at root. Symbolic links are followed inside the tree (an absolute
// target is taken relative to root, as in the running container), so a
// usr-merged image's lib/apk/db is found through lib -> usr/lib. Missing
// databases are not errors; unreadable or malformed ones are.
func ScanTree(root string) (*Tree, error) {
	r := &tree{root: root}
	t := &Tree{}
	if dt, ok, err := r.read("etc/os-release"); err != nil {
		return nil, err
	} else if !ok {
		if dt, ok, err = r.read("usr/lib/os-release"); err != nil {
			return nil, err
		} else if ok {
			t.Distro = osReleaseID(dt)
		}
	} else {
		t.Distro = osReleaseID(dt)
	}
	if dt, ok, err := r.read(APKInstalled); err != nil {
		return nil, err
	} else if ok {
		ps, err := ParseAPK(dt, APKInstalled)
		if err != nil {
			return nil, err
		}
		t.Packages = append(t.Packages, ps...)
	}
	if dt, ok, err := r.read(DpkgStatus); err != nil {
		return nil, err
	} else if ok {
		ps, err := ParseDpkg(dt, DpkgStatus)
		if err != nil {
			return nil, err
		}
		t.Packages = append(t.Packages, ps...)
	}
	names, err := r.list(DpkgStatusDDir)
	if err != nil {
		return nil, err
	}
	for _, n := range names {
		// distroless keeps <package> and <package>.md5sums files here.
		if strings.HasSuffix(n, ".md5sums") {
			continue
		}
		p := path.Join(DpkgStatusDDir, n)
		dt, ok, err := r.read(p)
		if err != nil {
			return nil, err
		}
		if !ok {
			continue
		}
		ps, err := ParseDpkg(dt, p)
		if err != nil {
			return nil, err
		}
		t.Packages = append(t.Packages, ps...)
	}
	t.Packages = sortPackages(t.Packages)

	docs := []string{EmbeddedSBOM}
	more, err := r.list(EmbeddedSBOMDir)
	if err != nil {
		return nil, err
	}
	for _, n := range more {
		if strings.HasSuffix(n, ".spdx.json") {
			docs = append(docs, path.Join(EmbeddedSBOMDir, n))
		}
	}
	for _, p := range docs {
		dt, ok, err := r.read(p)
		if err != nil {
			return nil, err
		}
		if !ok {
			continue
		}
		doc, err := spdxjson.Read(bytes.NewReader(dt))
		if err != nil {
			t.Notes = append(t.Notes, fmt.Sprintf("/%s is not an SPDX JSON document, its packages are not listed: %v", p, err))
			continue
		}
		t.Embedded = append(t.Embedded, Embedded{Path: p, Doc: doc})
	}
	return t, nil
}

// osReleaseID returns the ID field of an os-release file.
func osReleaseID(dt []byte) string {
	sc := bufio.NewScanner(bytes.NewReader(dt))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(strings.TrimSpace(sc.Text()), "ID="); ok {
			return strings.ToLower(strings.Trim(v, `"'`))
		}
	}
	return ""
}

// tree reads files of an image's root filesystem, resolving symbolic links
// as the image's own root would.
type tree struct{ root string }

// maxLinks bounds the symbolic links followed for one path (Linux's
// MAXSYMLINKS).
const maxLinks = 40

// resolve returns the path inside the tree that p (relative to the root)
// leads to once its symbolic links are followed, its last component
// included; ok is false when a component does not exist.
func (r *tree) resolve(p string) (string, bool, error) {
	rest := strings.Split(path.Clean("/" + p)[1:], "/")
	cur := ""
	links := 0
	for len(rest) > 0 {
		c := rest[0]
		rest = rest[1:]
		switch c {
		case "", ".":
			continue
		case "..":
			cur = path.Dir("/" + cur)[1:]
			continue
		}
		next := path.Join(cur, c)
		fi, err := os.Lstat(filepath.Join(r.root, filepath.FromSlash(next)))
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
			return "", false, nil
		}
		if err != nil {
			return "", false, fmt.Errorf("reading the image tree: %w", err)
		}
		if fi.Mode()&fs.ModeSymlink == 0 {
			cur = next
			continue
		}
		if links++; links > maxLinks {
			return "", false, fmt.Errorf("reading the image tree: /%s: too many levels of symbolic links", p)
		}
		target, err := os.Readlink(filepath.Join(r.root, filepath.FromSlash(next)))
		if err != nil {
			return "", false, fmt.Errorf("reading the image tree: %w", err)
		}
		if strings.HasPrefix(target, "/") {
			cur = ""
		}
		rest = append(strings.Split(target, "/"), rest...)
	}
	return cur, true, nil
}

// read returns the contents of the regular file p; ok is false when p
// does not exist or is not a regular file.
func (r *tree) read(p string) ([]byte, bool, error) {
	real, ok, err := r.resolve(p)
	if err != nil || !ok {
		return nil, false, err
	}
	full := filepath.Join(r.root, filepath.FromSlash(real))
	fi, err := os.Stat(full)
	if err != nil {
		return nil, false, fmt.Errorf("reading the image tree: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, false, nil
	}
	if fi.Size() > maxDatabase {
		return nil, false, fmt.Errorf("/%s is %d bytes, more than the %d read of a package database", p, fi.Size(), maxDatabase)
	}
	dt, err := os.ReadFile(full)
	if err != nil {
		return nil, false, fmt.Errorf("reading the image tree: %w", err)
	}
	return dt, true, nil
}

// list returns the sorted names in directory p (none when it does not
// exist or is not a directory).
func (r *tree) list(p string) ([]string, error) {
	real, ok, err := r.resolve(p)
	if err != nil || !ok {
		return nil, err
	}
	ents, err := os.ReadDir(filepath.Join(r.root, filepath.FromSlash(real)))
	if errors.Is(err, syscall.ENOTDIR) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading the image tree: %w", err)
	}
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	sort.Strings(out)
	return out, nil
}
