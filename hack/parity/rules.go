package parity

import (
	"encoding/json"
	"fmt"
	"path"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/lkbuild/lkbuild/spec"
	"gopkg.in/yaml.v3"
)

// RuleInput is what the rules know of one comparison: the input's merged
// configuration, both trees with the contents known of them, and the
// stand-in images by reference.
type RuleInput struct {
	Config                    *spec.Config
	Want, Got                 *Manifest
	WantContents, GotContents map[string][]byte
	Images                    map[string]*Image

	symlinked map[string]string // computed once by symlinkedDirs
}

// Rule allows one deliberate difference listed in docs/compat.md.
type Rule struct {
	Name   string
	Compat string // the compat.md item (its bold title)
	// Allow reports whether the rule covers finding f of diff d.
	Allow func(in *RuleInput, d *Diff, f *Finding) bool
}

// FailureRule allows an input that only LinuxKit fails to build, for a
// reason docs/compat.md lists.
type FailureRule struct {
	Name   string
	Compat string
	// Allow reports whether the rule covers LinuxKit's error message.
	Allow func(in *RuleInput, linuxkitErr string) bool
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

var bundleRE = regexp.MustCompile(`^containers/(onboot|onshutdown|services)/([^/]+)`)

// entryOf returns the YAML entry whose bundle holds p.
func entryOf(cfg *spec.Config, p string) *spec.Image {
	m := bundleRE.FindStringSubmatch(p)
	if m == nil {
		return nil
	}
	if m[1] == "services" {
		for _, y := range cfg.Services {
			if y.Name == m[2] {
				return y
			}
		}
		return nil
	}
	list := cfg.Onboot
	if m[1] == "onshutdown" {
		list = cfg.Onshutdown
	}
	num, name, ok := strings.Cut(m[2], "-")
	i, err := strconv.Atoi(num)
	if !ok || err != nil || len(num) != 3 || i >= len(list) || list[i].Name != name {
		return nil
	}
	return list[i]
}

// imagesAt returns the stand-in images whose tree holds p and p's path in
// it: a bundle's or a volume's image, or, outside those, the init images
// (the root is their merge).
func (in *RuleInput) imagesAt(p string) ([]*Image, string) {
	rel, ok := inImage(p)
	var refs []string
	switch {
	case !ok:
		refs = in.Config.Init
	case strings.HasPrefix(p, "containers/volumes/"):
		name := strings.SplitN(strings.TrimPrefix(p, "containers/volumes/"), "/", 2)[0]
		for _, v := range in.Config.Volumes {
			if v.Name == name {
				refs = []string{v.Image}
			}
		}
	default:
		if y := entryOf(in.Config, p); y != nil {
			refs = []string{y.Image}
		}
	}
	var out []*Image
	for _, r := range refs {
		if img := in.Images[r]; img != nil {
			out = append(out, img)
		}
	}
	return out, rel
}

// filePaths returns the files entries' paths (without leading /).
func filePaths(cfg *spec.Config) map[string]*spec.File {
	out := map[string]*spec.File{}
	for _, f := range cfg.Files {
		out[strings.TrimPrefix(f.Path, "/")] = f
	}
	return out
}

// symlinkedDirs maps each path where LinuxKit's tree has a directory and
// lkbuild's a symlink that resolves to a directory of lkbuild's tree to
// that directory.
func (in *RuleInput) symlinkedDirs() map[string]string {
	if in.symlinked != nil {
		return in.symlinked
	}
	in.symlinked = map[string]string{}
	for p, g := range in.Got.Entries {
		w := in.Want.Entries[p]
		if w == nil || w.Type != "dir" || g.Type != "symlink" {
			continue
		}
		if t, ok := resolveDir(in.Got, p); ok {
			in.symlinked[p] = t
		}
	}
	return in.symlinked
}

// resolveDir follows p through m's symlinks and returns the directory it
// names.
func resolveDir(m *Manifest, p string) (string, bool) {
	comps := strings.Split(p, "/")
	cur := ""
	for hops := 0; len(comps) > 0; {
		c := comps[0]
		comps = comps[1:]
		switch c {
		case "", ".":
			continue
		case "..":
			if cur != "" {
				cur = path.Dir(cur)
				if cur == "." {
					cur = ""
				}
			}
			continue
		}
		next := path.Join(cur, c)
		e := m.Entries[next]
		switch {
		case e == nil:
			return "", false
		case e.Type == "symlink":
			if hops++; hops > 40 {
				return "", false
			}
			if strings.HasPrefix(e.Target, "/") {
				cur = ""
			}
			comps = append(strings.Split(e.Target, "/"), comps...)
		case e.Type == "dir":
			cur = next
		default:
			return "", false
		}
	}
	return cur, cur != ""
}

// sameEntry reports whether two entries are equal but for their paths;
// a hardlink group's name is compared after mapping want's prefix from to
// to.
func sameEntry(w, g *Entry, from, to string) bool {
	if w == nil || g == nil {
		return false
	}
	a, b := *w, *g
	a.Path, b.Path = "", ""
	if rest, ok := strings.CutPrefix(a.Hardlink, from+"/"); ok {
		a.Hardlink = to + "/" + rest
	}
	return reflect.DeepEqual(a, b)
}

// relocated reports whether finding f of d is what storing LinuxKit's
// directory at a path lkbuild has a symlink to a directory through that
// symlink gives: a LinuxKit path below the symlink appears, equal, below
// its target; an lkbuild path below the target is such a LinuxKit path;
// a file both trees have below the target holds one of the colliding
// versions.
func (in *RuleInput) relocated(d *Diff, f *Finding) bool {
	if in.apkJoinedThroughSymlink(d, f) {
		return true
	}
	links := in.symlinkedDirs()
	if f.Field == "type" {
		_, ok := links[d.Path]
		return ok
	}
	for from, to := range links {
		if rest, ok := strings.CutPrefix(d.Path, from+"/"); ok && f.Field == "only-linuxkit" {
			moved := path.Join(to, rest)
			return sameEntry(d.Want, in.Got.Entries[moved], from, to) ||
				in.Want.Entries[moved] != nil && sameEntry(in.Want.Entries[moved], in.Got.Entries[moved], to, to)
		}
		if rest, ok := strings.CutPrefix(d.Path, to+"/"); ok && d.Got != nil &&
			sameEntry(in.Want.Entries[path.Join(from, rest)], d.Got, from, to) {
			// Only in lkbuild, or different from LinuxKit's entry
			// there: LinuxKit's entry at the symlink's path, stored
			// below the target (of two colliding files, that one).
			return true
		}
	}
	return false
}

// apkJoinedThroughSymlink allows the apk database where a symlinked
// directory holds it: LinuxKit joins the init images' databases found at
// the literal path lib/apk/db/installed (W, at that path in its tree) and
// leaves a usr-merged image's own database (F, below the symlink's target)
// alone; lkbuild joins that one too, in init order, and writes the join
// through the symlink. So lkbuild's file there must be W with F and its two
// newlines inserted once, with W's time.
func (in *RuleInput) apkJoinedThroughSymlink(d *Diff, f *Finding) bool {
	const db = "lib/apk/db/installed"
	for from, to := range in.symlinkedDirs() {
		rest, ok := strings.CutPrefix(db, from+"/")
		if !ok {
			continue
		}
		moved := path.Join(to, rest)
		w, fw, g := in.Want.Entries[db], in.Want.Entries[moved], in.Got.Entries[moved]
		if w == nil || fw == nil || g == nil || w.Type != "file" || fw.Type != "file" || g.Type != "file" {
			return false
		}
		// F is an image's own file: its contents come from the stand-in.
		wb, ok1 := in.WantContents[w.SHA256]
		fb, ok2 := "", false
		for _, ref := range in.Config.Init {
			if img := in.Images[ref]; img != nil {
				if b, ok := img.FileBody(moved); ok {
					fb, ok2 = b, true
				}
			}
		}
		gb, ok3 := in.GotContents[g.SHA256]
		part := fb + "\n\n"
		if !ok1 || !ok2 || !ok3 || len(gb) != len(wb)+len(part) || strings.Replace(string(gb), part, "", 1) != string(wb) {
			return false
		}
		switch {
		case d.Path == db:
			return f.Field == "only-linuxkit"
		case d.Path == moved:
			return f.Field == "content" || f.Field == "mtime" && g.MTime == w.MTime
		}
	}
	return false
}

// capsRE and mountsRE select config.json members.
var (
	capsRE   = regexp.MustCompile(`^/process/capabilities(/|:)`)
	mountsRE = regexp.MustCompile(`^/mounts(/|:)`)
)

// ignoredAdds returns the entry's capabilities.add and binds.add that
// LinuxKit ignores because the entry also sets the list ("an .add next to
// its list in the same layer is used"). A capability list with all or none
// is not expanded here: such an entry is not covered.
func ignoredAdds(y *spec.Image) (caps, binds []string, ok bool) {
	if y.Capabilities != nil && y.CapabilitiesAdd != nil {
		for _, c := range *y.CapabilitiesAdd {
			if l := strings.ToLower(c); l == "all" || l == "none" {
				return nil, nil, false
			}
		}
		caps = *y.CapabilitiesAdd
	}
	if y.Binds != nil && y.BindsAdd != nil {
		binds = *y.BindsAdd
	}
	return caps, binds, true
}

// configs returns both sides' config.json of d as JSON objects.
func (in *RuleInput) configs(d *Diff) (w, g map[string]any, ok bool) {
	if !configRE.MatchString(d.Path) || d.Want == nil || d.Got == nil {
		return nil, nil, false
	}
	wb, wok := in.WantContents[d.Want.SHA256]
	gb, gok := in.GotContents[d.Got.SHA256]
	if !wok || !gok || json.Unmarshal(wb, &w) != nil || json.Unmarshal(gb, &g) != nil {
		return nil, nil, false
	}
	return w, g, true
}

// expectedCaps is LinuxKit's process.capabilities with each name once
// (effective keeps its order) and the ignored .add names added.
func expectedCaps(want any, add []string) any {
	c, _ := want.(map[string]any)
	out := map[string]any{}
	for k, v := range c {
		out[k] = v
	}
	names := func(v any) []string {
		var s []string
		l, _ := v.([]any)
		for _, x := range l {
			if n, ok := x.(string); ok {
				s = append(s, n)
			}
		}
		return s
	}
	uniq := func(l []string) []any {
		seen := map[string]bool{}
		out := []any{}
		for _, n := range l {
			if !seen[n] {
				seen[n] = true
				out = append(out, n)
			}
		}
		return out
	}
	out["effective"] = uniq(append(names(c["effective"]), add...))
	for _, k := range []string{"bounding", "inheritable", "permitted"} {
		l := append(names(c[k]), add...)
		sort.Strings(l)
		out[k] = uniq(l)
	}
	return out
}

// expectedMounts is LinuxKit's mounts with the ignored binds.add entries
// made into bind mounts as LinuxKit makes binds (a volume name becomes
// its merged directory), each replacing a mount at the same destination.
func expectedMounts(cfg *spec.Config, want any, binds []string) (any, bool) {
	l, _ := want.([]any)
	mounts := append([]any(nil), l...)
	for _, s := range binds {
		b, ok := spec.ParseBind(s)
		if !ok {
			return nil, false
		}
		for _, v := range cfg.Volumes {
			if v.Name == b.Source {
				b.Source = "/" + path.Join(spec.VolumeDir(v.Name), "merged")
			}
		}
		m := b.Mount()
		dst := m.Destination
		opts := make([]any, len(m.Options))
		for i, o := range m.Options {
			opts[i] = o
		}
		kept := mounts[:0]
		for _, m := range mounts {
			if mm, _ := m.(map[string]any); mm != nil {
				if d, _ := mm["destination"].(string); path.Clean(d) == path.Clean(dst) {
					continue
				}
			}
			kept = append(kept, m)
		}
		mounts = append(kept, map[string]any{"destination": dst, "type": m.Type, "source": m.Source, "options": opts})
	}
	dest := func(m any) string {
		mm, _ := m.(map[string]any)
		d, _ := mm["destination"].(string)
		return d
	}
	sort.SliceStable(mounts, func(i, j int) bool { return dest(mounts[i]) < dest(mounts[j]) })
	return mounts, true
}

// adds reports whether finding f of a config.json is covered by the two
// .add items: the capability lists (or the mounts) are LinuxKit's with
// each name once and with the .add entries LinuxKit ignored; nextToList
// selects the item: true for a difference needing ignored entries, false
// for one that only drops repeats.
func (in *RuleInput) adds(d *Diff, f *Finding, nextToList bool) bool {
	if f.Field != "content" {
		return false
	}
	y := entryOf(in.Config, d.Path)
	w, g, ok := in.configs(d)
	if y == nil || !ok {
		return false
	}
	caps, binds, ok := ignoredAdds(y)
	if !ok {
		return false
	}
	proc := func(m map[string]any) any {
		p, _ := m["process"].(map[string]any)
		return p["capabilities"]
	}
	switch {
	case capsRE.MatchString(f.Detail):
		if nextToList != (len(caps) > 0) {
			return false
		}
		return jsonEqual(expectedCaps(proc(w), caps), proc(g))
	case mountsRE.MatchString(f.Detail):
		if !nextToList || len(binds) == 0 {
			return false
		}
		m, ok := expectedMounts(in.Config, w["mounts"], binds)
		return ok && jsonEqual(m, g["mounts"])
	}
	return false
}

func jsonEqual(a, b any) bool {
	x, err1 := json.Marshal(a)
	y, err2 := json.Marshal(b)
	return err1 == nil && err2 == nil && string(x) == string(y)
}

var (
	mountSourceRE = regexp.MustCompile(`^/mounts/\d+/source: (".*") vs (".*")$`)
	ociSubRE      = regexp.MustCompile(`^/linux/(resources|uidMappings|gidMappings)/[^:]*: (\(none\)|0|false) vs `)
	metaSubRE     = regexp.MustCompile(`^/(onboot|onshutdown|services)/\d+/(resources|uidMappings|gidMappings)/[^:]*: (\(none\)|0|false) vs `)
	mountIDMapRE  = regexp.MustCompile(`^/mounts/\d+/(uidMappings|gidMappings)[^:]*: \(none\) vs `)
	configRE      = regexp.MustCompile(`^containers/(onboot|onshutdown|services)/[^/]+/config\.json$`)
	capFailRE     = regexp.MustCompile(`^failed to create OCI spec for (\S+): unknown capability: (all|none)$`)
)

// sbomFile is where `linuxkit build` writes its SBOM by default
// (--sbom-output).
const sbomFile = "sbom.spdx.json"

// createdTime is lkbuild's time for the entries it creates when
// SOURCE_DATE_EPOCH is not set (the test sets none): LinuxKit's.
var createdTime = linuxkitTime

// Rules are the differences docs/compat.md lists, each as narrow as the
// item describes it. Nothing else is allowed.
var Rules = []Rule{
	{
		Name:   "files-parents-keep-mode",
		Compat: "`files` parents keep their mode.",
		// LinuxKit re-writes each parent of a files entry with the
		// entry's derived mode and owner; lkbuild leaves an existing
		// parent's. (Its time is not covered: the item does not list it.)
		Allow: func(in *RuleInput, d *Diff, f *Finding) bool {
			if d.Want == nil || d.Got == nil || d.Want.Type != "dir" || d.Got.Type != "dir" || (f.Field != "mode" && f.Field != "owner") {
				return false
			}
			for p, fe := range filePaths(in.Config) {
				if strings.HasPrefix(p, d.Path+"/") && d.Want.Mode == parentMode(fe) {
					return true
				}
			}
			return false
		},
	},
	{
		Name:   "image-filtering-path-based",
		Compat: "Image filtering is path based.",
		Allow: func(in *RuleInput, d *Diff, f *Finding) bool {
			rel, _ := inImage(d.Path)
			if f.Field == "only-linuxkit" {
				for _, ex := range []string{".dockerenv", "Dockerfile", "dev/console", "dev/pts", "dev/shm", "etc/hostname"} {
					if strings.HasPrefix(rel, ex+"/") {
						return true // LinuxKit drops only the path itself
					}
				}
			}
			// LinuxKit keeps an image's own etc/mtab.
			return rel == "etc/mtab" && d.Want != nil && d.Got != nil && d.Got.Type == "symlink" && d.Got.Target == "/proc/mounts" &&
				!(d.Want.Type == "symlink" && d.Want.Target == "/proc/mounts") && f.Field != "mtime"
		},
	},
	{
		Name:   "oci-volume-repacked",
		Compat: "Volumes with `format: oci` hold a re-packed image.",
		Allow: func(in *RuleInput, d *Diff, f *Finding) bool {
			for _, v := range in.Config.Volumes {
				if v.Format != "oci" {
					continue
				}
				rest, ok := strings.CutPrefix(d.Path, "containers/volumes/"+v.Name+"/lower/")
				if !ok {
					continue
				}
				switch {
				case strings.HasPrefix(rest, "blobs/sha256/") && rest != "blobs/sha256/":
					return f.Field == "only-linuxkit" || f.Field == "only-lkbuild"
				case f.Field == "mtime":
					// LinuxKit's layout entries have no time (0).
					return (rest == "blobs" || rest == "blobs/sha256" || rest == "index.json" || rest == "oci-layout") &&
						d.Want.MTime == 0 && d.Got.MTime == createdTime
				case rest == "index.json":
					return f.Field == "content"
				case rest == "oci-layout":
					return f.Field == "content" && f.Detail == sameJSON
				}
				return false
			}
			return false
		},
	},
	{
		Name:   "bind-mounts-of-volumes-resolved",
		Compat: "Bind mounts of volumes are resolved.",
		Allow: func(in *RuleInput, d *Diff, f *Finding) bool {
			m := mountSourceRE.FindStringSubmatch(f.Detail)
			if f.Field != "content" || !configRE.MatchString(d.Path) || m == nil {
				return false
			}
			for _, v := range in.Config.Volumes {
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
		Allow: func(in *RuleInput, d *Diff, f *Finding) bool {
			if f.Field != "content" {
				return false
			}
			if configRE.MatchString(d.Path) {
				return ociSubRE.MatchString(f.Detail)
			}
			fe := filePaths(in.Config)[d.Path]
			return fe != nil && fe.Metadata == "json" && metaSubRE.MatchString(f.Detail)
		},
	},
	{
		Name:   "mount-id-mappings",
		Compat: "Mount id mappings reach config.json.",
		Allow: func(in *RuleInput, d *Diff, f *Finding) bool {
			return f.Field == "content" && configRE.MatchString(d.Path) && mountIDMapRE.MatchString(f.Detail)
		},
	},
	{
		Name:   "add-once",
		Compat: "`capabilities.add` and `binds.add` add, once.",
		// LinuxKit's effective list repeats a name the label's list and
		// capabilities.add both have; lkbuild's has it once.
		Allow: func(in *RuleInput, d *Diff, f *Finding) bool { return in.adds(d, f, false) },
	},
	{
		Name:   "add-next-to-list",
		Compat: "An `.add` next to its list in the same layer is used.",
		// An entry's capabilities.add / binds.add next to its
		// capabilities / binds: in lkbuild's capability lists and mounts.
		Allow: func(in *RuleInput, d *Diff, f *Finding) bool { return in.adds(d, f, true) },
	},
	{
		Name:   "sbom-contents",
		Compat: "The SBOM lists what the images hold, and is reproducible.",
		// Both write sbom.spdx.json (0644, root, the created time); its
		// contents differ (LinuxKit's vary on every run): only the
		// contents are allowed to differ.
		Allow: func(in *RuleInput, d *Diff, f *Finding) bool {
			return d.Path == sbomFile && f.Field == "content" && d.Want != nil && d.Want.SHA256 == "varies" && d.Got != nil
		},
	},
	{
		Name:   "no-root-entry",
		Compat: "The root directory has no entry.",
		Allow: func(in *RuleInput, d *Diff, f *Finding) bool {
			return d.Path == "." && d.Got != nil && d.Got.Implicit && d.Want != nil && !d.Want.Implicit &&
				(f.Field == "mode" || f.Field == "owner" || f.Field == "mtime")
		},
	},
	{
		Name:   "opaque-whiteouts",
		Compat: "Opaque whiteouts hide the lower layers.",
		// A path of an image's earlier layer below a directory a later
		// layer made opaque: LinuxKit's flattening keeps it.
		Allow: func(in *RuleInput, d *Diff, f *Finding) bool {
			if f.Field != "only-linuxkit" {
				return false
			}
			imgs, rel := in.imagesAt(d.Path)
			for _, img := range imgs {
				if img.OpaqueHidden()[rel] {
					return true
				}
			}
			return false
		},
	},
	{
		Name:   "implied-directories-time",
		Compat: "A directory that a layer only implies gets the time of the extraction.",
		Allow: func(in *RuleInput, d *Diff, f *Finding) bool {
			if f.Field != "mtime" || d.Want.Type != "dir" || d.Want.MTime != imageTime {
				return false
			}
			imgs, rel := in.imagesAt(d.Path)
			for _, img := range imgs {
				if img.ImpliedDirs()[rel] {
					return true
				}
			}
			return false
		},
	},
	{
		Name:   "symlink-keeps-directories",
		Compat: "A symlink does not hide another layer's directory.",
		Allow:  func(in *RuleInput, d *Diff, f *Finding) bool { return in.relocated(d, f) },
	},
}

// FailureRules are the inputs LinuxKit fails on and lkbuild builds, for a
// reason docs/compat.md lists.
var FailureRules = []FailureRule{
	{
		Name:   "add-once",
		Compat: "`capabilities.add` and `binds.add` add, once.",
		// LinuxKit joins the label's list and the entry's
		// capabilities.add before expanding all/none.
		Allow: func(in *RuleInput, msg string) bool {
			m := capFailRE.FindStringSubmatch(msg)
			if m == nil {
				return false
			}
			for _, y := range allEntries(in.Config) {
				if y.Image != m[1] || y.CapabilitiesAdd == nil || y.Capabilities != nil {
					continue
				}
				list := *y.CapabilitiesAdd
				if img := in.Images[y.Image]; img != nil {
					list = append(labelCaps(img), list...)
				}
				for _, c := range list {
					if strings.EqualFold(c, m[2]) && len(list) > 1 {
						return true
					}
				}
			}
			return false
		},
	},
}

// ForeignImages lists the image references of cfg outside Namespace: a
// reference the rewrite missed would be pulled by both tools from
// elsewhere (lkbuild's buildkitd mirrors docker.io to the local registry).
func ForeignImages(cfg *spec.Config) []string {
	refs := append([]string{cfg.Kernel.Image}, cfg.Init...)
	for _, y := range allEntries(cfg) {
		refs = append(refs, y.Image)
	}
	for _, v := range cfg.Volumes {
		refs = append(refs, v.Image)
	}
	var out []string
	for _, r := range refs {
		if r != "" && !strings.HasPrefix(r, Namespace) {
			out = append(out, r)
		}
	}
	return out
}

func allEntries(cfg *spec.Config) []*spec.Image {
	var out []*spec.Image
	out = append(out, cfg.Onboot...)
	out = append(out, cfg.Onshutdown...)
	return append(out, cfg.Services...)
}

// labelCaps returns the capabilities of the image's
// org.mobyproject.config label.
func labelCaps(img *Image) []string {
	var l struct {
		Capabilities []string `yaml:"capabilities"`
	}
	_ = yaml.Unmarshal([]byte(img.label), &l)
	return l.Capabilities
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
func ApplyRules(in *RuleInput, diffs []*Diff) {
	for _, d := range diffs {
		for _, f := range d.Findings {
			for _, r := range Rules {
				if r.Allow(in, d, f) {
					f.Rule = r.Name
					break
				}
			}
		}
	}
}

// FailureAllowed returns the rule allowing LinuxKit's error, or "".
func FailureAllowed(in *RuleInput, linuxkitErr string) string {
	for _, r := range FailureRules {
		if r.Allow(in, linuxkitErr) {
			return r.Name
		}
	}
	return ""
}
