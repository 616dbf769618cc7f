package parity

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"sort"
	"strings"

	"github.com/lkbuild/lkbuild/spec"
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

// contentDiff explains how two contents differ: member by member for JSON
// objects, else the first line that differs.
func contentDiff(want, got []byte) []string {
	var wj, gj any
	if json.Unmarshal(want, &wj) == nil && json.Unmarshal(got, &gj) == nil {
		var out []string
		jsonDiff("", wj, gj, &out)
		if len(out) == 0 {
			out = append(out, "same JSON, different bytes (formatting)")
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

// Rule allows one deliberate difference listed in docs/compat.md.
type Rule struct {
	Name   string
	Compat string // the compat.md item (its bold title)
	// Allow reports whether the rule covers finding f of diff d, for an
	// input whose merged configuration is cfg.
	Allow func(cfg *spec.Config, d *Diff, f *Finding) bool
}

// treeRE splits a path inside an image tree (a bundle's rootfs/ or lower/,
// a volume's lower/) into the tree and the path inside it.
var treeRE = regexp.MustCompile(`^(containers/(?:onboot|onshutdown|services)/[^/]+/(?:rootfs|lower)|containers/volumes/[^/]+/lower)/(.*)$`)

// inImage returns the path inside the image tree holding p (for init
// images the tree is the root), and whether p is in a bundle or volume.
func inImage(p string) (string, bool) {
	if m := treeRE.FindStringSubmatch(p); m != nil {
		return m[2], true
	}
	return p, false
}

// filePaths returns the files entries' paths (without leading /).
func filePaths(cfg *spec.Config) map[string]*spec.File {
	out := map[string]*spec.File{}
	for _, f := range cfg.Files {
		out[strings.TrimPrefix(f.Path, "/")] = f
	}
	return out
}

var (
	mountSourceRE = regexp.MustCompile(`^/mounts/\d+/source: (".*") vs (".*")$`)
	ociSubRE      = regexp.MustCompile(`^/linux/(resources|uidMappings|gidMappings)/[^:]*: (\(none\)|0|false) vs `)
	metaSubRE     = regexp.MustCompile(`^/(onboot|onshutdown|services)/\d+/(resources|uidMappings|gidMappings)/[^:]*: (\(none\)|0|false) vs `)
	mountIDMapRE  = regexp.MustCompile(`^/mounts/\d+/(uidMappings|gidMappings)[^:]*: \(none\) vs `)
	configRE      = regexp.MustCompile(`^containers/(onboot|onshutdown|services)/[^/]+/config\.json$`)
)

// Rules are the differences docs/compat.md lists, each as narrow as the
// item describes it. Nothing else is allowed.
var Rules = []Rule{
	{
		Name:   "files-parents-keep-mode",
		Compat: "`files` parents keep their mode.",
		// LinuxKit re-writes each parent of a files entry with the
		// entry's derived mode and owner; lkbuild leaves an existing
		// parent's. (Its time is not covered: the item does not list it.)
		Allow: func(cfg *spec.Config, d *Diff, f *Finding) bool {
			if d.Want == nil || d.Got == nil || d.Want.Type != "dir" || d.Got.Type != "dir" || (f.Field != "mode" && f.Field != "owner") {
				return false
			}
			for p, fe := range filePaths(cfg) {
				if strings.HasPrefix(p, d.Path+"/") && d.Want.Mode == parentMode(fe) {
					return true
				}
			}
			return false
		},
	},
	{
		Name:   "no-setuid-on-files",
		Compat: "No setuid, setgid or sticky bits on `files` entries.",
		Allow: func(cfg *spec.Config, d *Diff, f *Finding) bool {
			return f.Field == "mode" && filePaths(cfg)[d.Path] != nil &&
				d.Want.Mode&0o7000 != 0 && d.Got.Mode == d.Want.Mode&^0o7000
		},
	},
	{
		Name:   "image-filtering-path-based",
		Compat: "Image filtering is path based.",
		Allow: func(cfg *spec.Config, d *Diff, f *Finding) bool {
			rel, _ := inImage(d.Path)
			if f.Field == "only-linuxkit" {
				for _, ex := range []string{".dockerenv", "Dockerfile", "dev/console", "dev/pts", "dev/shm", "etc/hostname"} {
					if strings.HasPrefix(rel, ex+"/") {
						return true // LinuxKit drops only the path itself
					}
				}
			}
			switch rel {
			case "etc/mtab":
				// LinuxKit keeps an image's own etc/mtab.
				return d.Want != nil && d.Got != nil && d.Got.Type == "symlink" && d.Got.Target == "/proc/mounts" &&
					!(d.Want.Type == "symlink" && d.Want.Target == "/proc/mounts") && f.Field != "mtime"
			case "etc/hosts":
				// LinuxKit keeps the mode of an image's etc/hosts;
				// lkbuild writes 0644.
				return f.Field == "mode" && d.Got.Mode == 0o644
			}
			return false
		},
	},
	{
		Name:   "oci-volume-repacked",
		Compat: "Volumes with `format: oci` hold a re-packed image.",
		Allow: func(cfg *spec.Config, d *Diff, f *Finding) bool {
			for _, v := range cfg.Volumes {
				if v.Format != "oci" {
					continue
				}
				rest, ok := strings.CutPrefix(d.Path, "containers/volumes/"+v.Name+"/lower/")
				if !ok {
					continue
				}
				if strings.HasPrefix(rest, "blobs/sha256/") {
					return f.Field == "only-linuxkit" || f.Field == "only-lkbuild"
				}
				return rest == "index.json" && f.Field == "content"
			}
			return false
		},
	},
	{
		Name:   "bind-mounts-of-volumes-resolved",
		Compat: "Bind mounts of volumes are resolved.",
		Allow: func(cfg *spec.Config, d *Diff, f *Finding) bool {
			m := mountSourceRE.FindStringSubmatch(f.Detail)
			if f.Field != "content" || !configRE.MatchString(d.Path) || m == nil {
				return false
			}
			for _, v := range cfg.Volumes {
				if m[1] == fmt.Sprintf("%q", v.Name) && m[2] == fmt.Sprintf("%q", "/containers/volumes/"+v.Name+"/merged") {
					return true
				}
			}
			return false
		},
	},
	{
		Name:   "oci-subobjects-values-kept",
		Compat: "OCI sub-objects use LinuxKit's schema names, and their values are kept.",
		// In config.json, and in a metadata: json file (the whole
		// configuration).
		Allow: func(cfg *spec.Config, d *Diff, f *Finding) bool {
			if f.Field != "content" {
				return false
			}
			if configRE.MatchString(d.Path) {
				return ociSubRE.MatchString(f.Detail)
			}
			fe := filePaths(cfg)[d.Path]
			return fe != nil && fe.Metadata == "json" && metaSubRE.MatchString(f.Detail)
		},
	},
	{
		Name:   "mount-id-mappings",
		Compat: "Mount id mappings reach config.json.",
		Allow: func(cfg *spec.Config, d *Diff, f *Finding) bool {
			return f.Field == "content" && configRE.MatchString(d.Path) && mountIDMapRE.MatchString(f.Detail)
		},
	},
}

// parentMode is the mode LinuxKit gives the parents of a files entry: the
// entry's mode (default 0600, 0700 for directories) plus x where r or w
// is set.
func parentMode(f *spec.File) int64 {
	mode := int64(0o600)
	if f.Directory {
		mode = 0o700
	}
	if f.Mode != "" {
		fmt.Sscanf(f.Mode, "%o", &mode)
	}
	for _, bits := range []int64{0o700, 0o070, 0o007} {
		if mode&bits != 0 {
			mode |= bits & 0o111
		}
	}
	return mode
}

// ApplyRules sets each finding's Rule to the first rule allowing it.
func ApplyRules(cfg *spec.Config, diffs []*Diff) {
	for _, d := range diffs {
		for _, f := range d.Findings {
			for _, r := range Rules {
				if r.Allow(cfg, d, f) {
					f.Rule = r.Name
					break
				}
			}
		}
	}
}

// Line is the entry's manifest line, or "(none)".
func Line(e *Entry) string {
	if e == nil {
		return "(none)"
	}
	return e.String()
}
