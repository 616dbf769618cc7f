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
	// Fields names what differs: only-linuxkit, only-lkbuild, type,
	// mode, owner, mtime, content, target, hardlink, xattr, dev, implicit.
	Fields []string
	// Content lists, for a file whose contents differ and are known on
	// both sides, what differs inside: JSON members ("/ociVersion:
	// "1.2.1" vs "1.3.0"") or the first differing line.
	Content []string
	// Rule names the rule that allows this difference ("" if none).
	Rule string
}

// Kind is the diff's group for summaries: the fields and the path with
// bundle, volume and kernel version names replaced by placeholders, plus
// the JSON members or line that differ.
func (d *Diff) Kind() string {
	k := strings.Join(d.Fields, ",") + " " + GeneralPath(d.Path)
	if len(d.Content) > 0 {
		var members []string
		for _, c := range d.Content {
			members = append(members, contentKind(c))
		}
		sort.Strings(members)
		members = compact(members)
		if len(members) > 4 {
			members = append(members[:4], "...")
		}
		k += " [" + strings.Join(members, " ") + "]"
	}
	return k
}

func compact(s []string) []string {
	var out []string
	for i, v := range s {
		if i == 0 || v != s[i-1] {
			out = append(out, v)
		}
	}
	return out
}

var indexRE = regexp.MustCompile(`/\d+(/|:|$)`)

// contentKind reduces a content detail to its JSON member path with array
// indices as *, or "line" for text.
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
			d.Fields = []string{"only-linuxkit"}
		case w == nil:
			d.Fields = []string{"only-lkbuild"}
		default:
			d.Fields = fields(w, g)
			if len(d.Fields) == 0 {
				continue
			}
			if w.Type == "file" && g.Type == "file" && w.SHA256 != g.SHA256 {
				wb, wok := wantContents[w.SHA256]
				gb, gok := gotContents[g.SHA256]
				if wok && gok {
					d.Content = contentDiff(wb, gb)
				}
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
	add(w.Implicit != g.Implicit, "implicit")
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
	// Allow reports whether the rule covers the diff of an input whose
	// merged configuration is cfg.
	Allow func(cfg *spec.Config, d *Diff) bool
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

func only(d *Diff, fs ...string) bool {
	for _, f := range d.Fields {
		found := false
		for _, a := range fs {
			found = found || f == a
		}
		if !found {
			return false
		}
	}
	return true
}

// Rules are the differences docs/compat.md lists, each as narrow as the
// item describes it. Nothing else is allowed.
var Rules = []Rule{
	{
		Name:   "files-parents-keep-mode",
		Compat: "`files` parents keep their mode.",
		Allow: func(cfg *spec.Config, d *Diff) bool {
			if d.Want == nil || d.Got == nil || d.Want.Type != "dir" || !only(d, "mode", "owner") {
				return false
			}
			for p, f := range filePaths(cfg) {
				if strings.HasPrefix(p, d.Path+"/") && d.Want.Mode == parentMode(f) {
					return true
				}
			}
			return false
		},
	},
	{
		Name:   "no-setuid-on-files",
		Compat: "No setuid, setgid or sticky bits on `files` entries.",
		Allow: func(cfg *spec.Config, d *Diff) bool {
			f := filePaths(cfg)[d.Path]
			return f != nil && d.Want != nil && d.Got != nil && only(d, "mode") &&
				d.Want.Mode&0o7000 != 0 && d.Got.Mode == d.Want.Mode&^0o7000
		},
	},
	{
		Name:   "image-filtering-path-based",
		Compat: "Image filtering is path based.",
		Allow: func(cfg *spec.Config, d *Diff) bool {
			rel, _ := inImage(d.Path)
			for _, ex := range []string{".dockerenv", "Dockerfile", "dev/console", "dev/pts", "dev/shm", "etc/hostname"} {
				if strings.HasPrefix(rel, ex+"/") && d.Got == nil {
					return true // below an excluded path: LinuxKit only drops the path itself
				}
			}
			switch rel {
			case "etc/mtab":
				// LinuxKit keeps an image's own etc/mtab.
				return d.Want != nil && d.Got != nil && d.Got.Type == "symlink" && d.Got.Target == "/proc/mounts" &&
					!(d.Want.Type == "symlink" && d.Want.Target == "/proc/mounts")
			case "etc/hosts":
				// LinuxKit keeps the mode of an image's etc/hosts.
				return d.Want != nil && d.Got != nil && only(d, "mode")
			}
			return false
		},
	},
	{
		Name:   "oci-volume-repacked",
		Compat: "Volumes with `format: oci` hold a re-packed image.",
		Allow: func(cfg *spec.Config, d *Diff) bool {
			for _, v := range cfg.Volumes {
				if v.Format != "oci" {
					continue
				}
				rest, ok := strings.CutPrefix(d.Path, "containers/volumes/"+v.Name+"/lower/")
				if !ok {
					continue
				}
				if strings.HasPrefix(rest, "blobs/sha256/") {
					return true
				}
				return rest == "index.json" && only(d, "content")
			}
			return false
		},
	},
	{
		Name:   "bind-mounts-of-volumes-resolved",
		Compat: "Bind mounts of volumes are resolved.",
		Allow: func(cfg *spec.Config, d *Diff) bool {
			return configMembers(d, func(c string) bool {
				var member, w, g string
				if _, err := fmt.Sscanf(strings.Replace(c, ": ", " ", 1), "%s %s vs %s", &member, &w, &g); err != nil {
					return false
				}
				if !regexp.MustCompile(`^/mounts/\d+/source$`).MatchString(member) {
					return false
				}
				for _, v := range cfg.Volumes {
					if w == fmt.Sprintf("%q", v.Name) && g == fmt.Sprintf("%q", "/containers/volumes/"+v.Name+"/merged") {
						return true
					}
				}
				return false
			})
		},
	},
	{
		Name:   "oci-subobjects-values-kept",
		Compat: "OCI sub-objects use LinuxKit's schema names, and their values are kept.",
		Allow: func(cfg *spec.Config, d *Diff) bool {
			return configMembers(d, func(c string) bool {
				member, vals, _ := strings.Cut(c, ": ")
				w, _, _ := strings.Cut(vals, " vs ")
				zero := w == "(none)" || w == "0" || w == "false"
				return zero && regexp.MustCompile(`^/linux/(resources|uidMappings|gidMappings)/`).MatchString(member)
			})
		},
	},
	{
		Name:   "mount-id-mappings",
		Compat: "Mount id mappings reach config.json.",
		Allow: func(cfg *spec.Config, d *Diff) bool {
			return configMembers(d, func(c string) bool {
				member, vals, _ := strings.Cut(c, ": ")
				return strings.HasPrefix(vals, "(none) vs ") && regexp.MustCompile(`^/mounts/\d+/(uidMappings|gidMappings)`).MatchString(member)
			})
		},
	},
}

var configRE = regexp.MustCompile(`^containers/(onboot|onshutdown|services)/[^/]+/config\.json$`)

// configMembers reports whether d is a content difference of a bundle's
// config.json whose every differing member satisfies ok.
func configMembers(d *Diff, ok func(string) bool) bool {
	if !configRE.MatchString(d.Path) || len(d.Content) == 0 || !only(d, "content") {
		return false
	}
	for _, c := range d.Content {
		if !ok(c) {
			return false
		}
	}
	return true
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

// ApplyRules sets each diff's Rule to the first rule allowing it.
func ApplyRules(cfg *spec.Config, diffs []*Diff) {
	for _, d := range diffs {
		for _, r := range Rules {
			if cfg != nil && r.Allow(cfg, d) {
				d.Rule = r.Name
				break
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
