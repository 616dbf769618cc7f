package parity

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"sort"
	"strings"
)

// Diff is one path whose entries differ between LinuxKit's tree (Want)
// and lkbuild's (Got); a nil side has no such path.
type Diff struct {
	Path      string
	Want, Got *Entry
	// Findings are the differences of the path one by one: a field
	// (only-linuxkit, only-lkbuild, type, mode, owner, mtime, content,
	// target, hardlink, xattr, dev) or, for a file whose contents are
	// known on both sides, each JSON member or the first line that differs.
	Findings []*Finding
}

// Finding is one difference of a path, and the rule allowing it.
type Finding struct {
	Field string
	// Detail, for content: "/ociVersion: "1.2.1" vs "1.3.0"" (a JSON
	// member), "line 3: ..." or "same JSON, different bytes (formatting)".
	Detail string
	Rule   string // the rule that allows it, "" if none
}

// Allowed reports whether every finding is allowed by a rule.
func (d *Diff) Allowed() bool {
	for _, f := range d.Findings {
		if f.Rule == "" {
			return false
		}
	}
	return true
}

// Fields lists the fields that differ.
func (d *Diff) Fields() []string {
	var out []string
	for _, f := range d.Findings {
		if len(out) == 0 || out[len(out)-1] != f.Field {
			out = append(out, f.Field)
		}
	}
	return out
}

// Times of the manifests: ImageTime for the stand-ins' files, and
// LinuxKit's time for the entries it creates.
var (
	linuxkitTime = int64(1492533000) // 2017-04-18 16:30 UTC
	imageTime    = ImageTime.Unix()
)

func timeClass(t int64) string {
	switch t {
	case 0:
		return "epoch"
	case linuxkitTime:
		return "2017-04-18"
	case imageTime:
		return "image time"
	}
	return "other (build time?)"
}

// Kind is the finding's group for summaries. A time difference is grouped
// by the two sides' kinds of time, the entry type and the area of the tree;
// any other by field and path with bundle, volume and kernel version names
// replaced by placeholders, plus the JSON member (array indices as *).
func (d *Diff) Kind(f *Finding) string {
	if f.Field == "mtime" {
		return fmt.Sprintf("mtime %s: linuxkit %s, lkbuild %s (%s)", area(d.Path), timeClass(d.Want.MTime), timeClass(d.Got.MTime), d.Want.Type)
	}
	k := f.Field + " " + GeneralPath(d.Path)
	if f.Detail != "" {
		k += " [" + contentKind(f.Detail) + "]"
	}
	return k
}

// area names the part of the tree a path is in, for grouping time
// differences.
func area(p string) string {
	if rel, ok := inImage(p); ok {
		if generated[rel] {
			return "image tree " + rel
		}
		return "image tree (image's files)"
	}
	switch {
	case p == ".":
		return "root"
	case p == "boot" || strings.HasPrefix(p, "boot/"):
		return "boot/"
	case p == "containers" || regexp.MustCompile(`^containers/[^/]+$`).MatchString(p):
		return "containers/<section>"
	case regexp.MustCompile(`^containers/(onboot|onshutdown|services)/[^/]+(/(config\.json|runtime\.json|tmp|rootfs|lower))?$`).MatchString(p):
		return GeneralPath(p)
	case regexp.MustCompile(`^containers/volumes/[^/]+(/(tmp|merged|lower))?$`).MatchString(p):
		return GeneralPath(p)
	case generated[p]:
		return "root " + p
	}
	return "root (image or files entries)"
}

// generated are the paths LinuxKit adds to or replaces in every image tree.
var generated = map[string]bool{"dev": true, "dev/pts": true, "dev/shm": true, "etc": true,
	"etc/hosts": true, "etc/resolv.conf": true, "etc/mtab": true, "proc": true, "sys": true}

var indexRE = regexp.MustCompile(`/\d+(/|:|$)`)

// contentKind reduces a content detail to its JSON member path with array
// indices as *, or "text" for a line.
func contentKind(c string) string {
	if strings.HasPrefix(c, "/") {
		member, _, _ := strings.Cut(c, ": ")
		for indexRE.MatchString(member) {
			member = indexRE.ReplaceAllString(member, "/*$1")
		}
		return member
	}
	if strings.HasPrefix(c, "line ") {
		return "text"
	}
	return c
}

var generalRE = []struct {
	re   *regexp.Regexp
	with string
}{
	{regexp.MustCompile(`^containers/(onboot|onshutdown)/\d{3}-[^/]+`), "containers/$1/<bundle>"},
	{regexp.MustCompile(`^containers/services/[^/]+`), "containers/services/<bundle>"},
	{regexp.MustCompile(`^containers/volumes/[^/]+`), "containers/volumes/<volume>"},
	{regexp.MustCompile(`lib/modules/[^/]+`), "lib/modules/<version>"},
	{regexp.MustCompile(`/blobs/sha256/[0-9a-f]{64}$`), "/blobs/sha256/<digest>"},
}

// GeneralPath replaces bundle and volume names, kernel versions and
// digests in p by placeholders.
func GeneralPath(p string) string {
	for _, g := range generalRE {
		p = g.re.ReplaceAllString(p, g.with)
	}
	return p
}

// Compare lists the paths whose entries differ, sorted by path. Contents
// (hash -> bytes) of either side, when known, explain content differences.
func Compare(want, got *Manifest, wantContents, gotContents map[string][]byte) []*Diff {
	paths := map[string]bool{}
	for p := range want.Entries {
		paths[p] = true
	}
	for p := range got.Entries {
		paths[p] = true
	}
	var sorted []string
	for p := range paths {
		sorted = append(sorted, p)
	}
	sort.Strings(sorted)
	var out []*Diff
	for _, p := range sorted {
		w, g := want.Entries[p], got.Entries[p]
		d := &Diff{Path: p, Want: w, Got: g}
		switch {
		case g == nil:
			d.Findings = []*Finding{{Field: "only-linuxkit"}}
		case w == nil:
			d.Findings = []*Finding{{Field: "only-lkbuild"}}
		default:
			for _, f := range fields(w, g) {
				if f != "content" {
					d.Findings = append(d.Findings, &Finding{Field: f})
					continue
				}
				wb, wok := wantContents[w.SHA256]
				gb, gok := gotContents[g.SHA256]
				if !wok || !gok {
					d.Findings = append(d.Findings, &Finding{Field: f})
					continue
				}
				for _, c := range contentDiff(wb, gb) {
					d.Findings = append(d.Findings, &Finding{Field: f, Detail: c})
				}
			}
			if len(d.Findings) == 0 {
				continue
			}
		}
		out = append(out, d)
	}
	return out
}

func fields(w, g *Entry) []string {
	var f []string
	add := func(cond bool, name string) {
		if cond {
			f = append(f, name)
		}
	}
	add(w.Type != g.Type, "type")
	if w.Type != g.Type {
		return f
	}
	add(w.Mode != g.Mode, "mode")
	add(w.UID != g.UID || w.GID != g.GID, "owner")
	add(w.MTime != g.MTime, "mtime")
	add(w.Size != g.Size || w.SHA256 != g.SHA256 && w.SHA256 != "varies", "content")
	add(w.Target != g.Target, "target")
	add(w.Hardlink != g.Hardlink, "hardlink")
	add(strings.Join(w.Xattrs, " ") != strings.Join(g.Xattrs, " "), "xattr")
	add(w.Dev != g.Dev, "dev")
	return f
}

// sameJSON is the content finding of two files that hold the same JSON
// written differently.
const sameJSON = "same JSON, different bytes (formatting)"

// contentDiff explains how two contents differ: member by member for JSON
// objects, else the first line that differs.
func contentDiff(want, got []byte) []string {
	var wj, gj any
	if json.Unmarshal(want, &wj) == nil && json.Unmarshal(got, &gj) == nil {
		var out []string
		jsonDiff("", wj, gj, &out)
		if len(out) == 0 {
			out = append(out, sameJSON)
		}
		return out
	}
	wl, gl := bytes.Split(want, []byte("\n")), bytes.Split(got, []byte("\n"))
	for i := 0; i < len(wl) || i < len(gl); i++ {
		var a, b []byte
		if i < len(wl) {
			a = wl[i]
		}
		if i < len(gl) {
			b = gl[i]
		}
		if !bytes.Equal(a, b) || i >= len(wl) || i >= len(gl) {
			return []string{fmt.Sprintf("line %d: %q vs %q (%d vs %d lines)", i+1, a, b, len(wl), len(gl))}
		}
	}
	return []string{"same lines, different bytes"}
}

func jsonDiff(p string, w, g any, out *[]string) {
	switch wv := w.(type) {
	case map[string]any:
		if gv, ok := g.(map[string]any); ok {
			keys := map[string]bool{}
			for k := range wv {
				keys[k] = true
			}
			for k := range gv {
				keys[k] = true
			}
			var ks []string
			for k := range keys {
				ks = append(ks, k)
			}
			sort.Strings(ks)
			for _, k := range ks {
				jsonDiff(p+"/"+k, wv[k], gv[k], out)
			}
			return
		}
	case []any:
		if gv, ok := g.([]any); ok {
			for i := 0; i < len(wv) || i < len(gv); i++ {
				var a, b any
				if i < len(wv) {
					a = wv[i]
				}
				if i < len(gv) {
					b = gv[i]
				}
				jsonDiff(fmt.Sprintf("%s/%d", p, i), a, b, out)
			}
			return
		}
	}
	wb, _ := json.Marshal(w)
	gb, _ := json.Marshal(g)
	if !bytes.Equal(wb, gb) {
		if p == "" {
			p = "/"
		}
		*out = append(*out, fmt.Sprintf("%s: %s vs %s", p, absent(wb), absent(gb)))
	}
}

func absent(b []byte) string {
	if string(b) == "null" {
		return "(none)"
	}
	return string(b)
}

// Line is the entry's manifest line, or "(none)".
func Line(e *Entry) string {
	if e == nil {
		return "(none)"
	}
	return e.String()
}
