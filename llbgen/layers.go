package llbgen

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"path"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/lkbuild/lkbuild/spec"
	"github.com/moby/buildkit/client/llb"
	fstypes "github.com/tonistiigi/fsutil/types"
	"golang.org/x/sync/errgroup"
)

// Reader reads the contents of LLB states. The frontend implements it by
// solving the state through the gateway; llbgen uses it to reconcile the
// layouts of the root filesystem's layers (see reconcile) and to join the
// init images' apk databases, the only places where the conversion depends
// on what an image holds.
type Reader interface {
	// Open solves st (once) and returns its tree.
	Open(ctx context.Context, st llb.State) (Tree, error)
}

// Tree is a solved filesystem, read without following symlinks.
type Tree interface {
	// ReadDir lists the directory dir ("/" is the root). Mode is Go's
	// os.FileMode; Linkname is a symlink's target.
	ReadDir(ctx context.Context, dir string) ([]*fstypes.Stat, error)
	// ReadFile returns a regular file's contents.
	ReadFile(ctx context.Context, name string) ([]byte, error)
}

// maxRelocations bounds how many directories can be moved through symlinks
// in one root filesystem.
const maxRelocations = 256

// rootLayer is one input of the root filesystem merge.
type rootLayer struct {
	st   llb.State
	what string   // the YAML entry, for errors: "kernel (ref)", "init[1] (ref)"
	pos  spec.Pos // where the entry is in the YAML
	// static, when set, is the one directory the layer holds everything
	// in (a bundle's or a volume's, "containers/services/sshd"): its
	// ancestors are listed without solving the layer.
	static string
	// segment, when set, is the part of the layer that the initrd may
	// hold as a segment of its own (the kernel's modules tarball, without
	// boot/): see kernelApart.
	segment *llb.State
	// moves relocates directories of this layer through another layer's
	// symlink: from is a path in the layer, to the real directory in the
	// merged tree that its contents are stored in.
	moves []move
	// segmentStep is the layer's initrd segment step, once made
	// (layerSegment).
	segmentStep *llb.State
	// opened tree, and the cache of its directory listings by layer path.
	once  sync.Once
	tree  Tree
	err   error
	mu    sync.Mutex
	dirs  map[string]map[string]entry
	order int
}

type move struct{ from, to string }

// entry is a directory entry of a layer.
type entry struct {
	mode  os.FileMode
	link  string
	mtime int64 // nanoseconds since the epoch
}

func (e entry) isDir() bool     { return e.mode.IsDir() }
func (e entry) isSymlink() bool { return e.mode&os.ModeSymlink != 0 }

// occurrence is a name found in a merged directory: which layer has it,
// at which path of its own, and as what.
type occurrence struct {
	layer *rootLayer
	src   string // path in the layer; "" for a directory a move creates
	e     entry
}

// reconciler decides where every layer's contents go in the merged tree.
//
// A plain merge is an overlay: a later layer's entry hides an earlier one's.
// For a directory and a symlink at the same path that hides a whole tree: a
// usr-merged init image (lib -> usr/lib) would hide the kernel's
// lib/modules. The rule (docs/compat.md): where one layer has a symlink that
// resolves to a directory of the merged tree and another layer has a
// directory at the same path, in either order, the symlink stays and the
// directory's contents are stored in the directory it resolves to, as if
// written through it (`tar --keep-directory-symlink`, the kernel unpacking
// an initramfs). Directories merge; for other entries the later layer wins.
// A directory against a file, a device or a symlink that does not resolve
// to a directory cannot be reconciled and fails the build, naming both YAML
// entries and the path.
type reconciler struct {
	r      Reader
	layers []*rootLayer
	// replace marks the files entries whose path is a symlink of the
	// layers, to be removed before the entry is written (symlinkAt).
	replace map[*spec.File]bool
}

func (rc *reconciler) open(ctx context.Context, l *rootLayer) (Tree, error) {
	l.once.Do(func() {
		l.tree, l.err = rc.r.Open(ctx, l.st)
		if l.err != nil {
			l.err = fmt.Errorf("%s: reading %s: %w", l.pos, l.what, l.err)
		}
	})
	return l.tree, l.err
}

// list returns the entries of the layer's own directory p ("" is the root).
func (rc *reconciler) list(ctx context.Context, l *rootLayer, p string) (map[string]entry, error) {
	l.mu.Lock()
	if d, ok := l.dirs[p]; ok {
		l.mu.Unlock()
		return d, nil
	}
	l.mu.Unlock()
	out := map[string]entry{}
	if l.static != "" && p != l.static && under(l.static, p) {
		n := strings.SplitN(strings.TrimPrefix(strings.TrimPrefix(l.static, p), "/"), "/", 2)[0]
		out[n] = entry{mode: os.ModeDir | 0o755}
	} else {
		t, err := rc.open(ctx, l)
		if err != nil {
			return nil, err
		}
		sts, err := t.ReadDir(ctx, "/"+p)
		if err != nil {
			return nil, fmt.Errorf("%s: reading /%s of %s: %w", l.pos, p, l.what, err)
		}
		for _, st := range sts {
			out[path.Base(st.Path)] = entry{mode: os.FileMode(st.Mode), link: st.Linkname, mtime: st.ModTime}
		}
	}
	l.mu.Lock()
	if l.dirs == nil {
		l.dirs = map[string]map[string]entry{}
	}
	l.dirs[p] = out
	l.mu.Unlock()
	return out, nil
}

// own reports the layer's own entry at p, read without following symlinks.
func (rc *reconciler) own(ctx context.Context, l *rootLayer, p string) (entry, bool, error) {
	if p == "" {
		return entry{mode: os.ModeDir | 0o755}, true, nil
	}
	parent, ok, err := rc.own(ctx, l, dirOf(p))
	if err != nil || !ok || !parent.isDir() {
		return entry{}, false, err
	}
	ents, err := rc.list(ctx, l, dirOf(p))
	if err != nil {
		return entry{}, false, err
	}
	e, ok := ents[path.Base(p)]
	return e, ok, nil
}

// ownResolved follows p through the layer's own tree, symlinks included
// (an absolute one from the layer's root), and returns the real path it
// names in the layer and its entry; ok is false when it names nothing.
func (rc *reconciler) ownResolved(ctx context.Context, l *rootLayer, p string) (string, entry, bool, error) {
	comps := split(p)
	cur := ""
	hops := 0
	for len(comps) > 0 {
		c := comps[0]
		comps = comps[1:]
		switch c {
		case ".":
			continue
		case "..":
			cur = dirOf(cur)
			continue
		}
		e, ok, err := rc.own(ctx, l, joinRel(cur, c))
		if err != nil || !ok {
			return "", entry{}, false, err
		}
		switch {
		case e.isSymlink():
			if hops++; hops > maxSymlinks {
				return "", entry{}, false, nil
			}
			if strings.HasPrefix(e.link, "/") {
				cur = ""
			}
			comps = append(split(e.link), comps...)
		case e.isDir():
			cur = joinRel(cur, c)
		case len(comps) == 0:
			return joinRel(cur, c), e, true, nil
		default:
			return "", entry{}, false, nil
		}
	}
	e, ok, err := rc.own(ctx, l, cur)
	return cur, e, ok, err
}

// place maps a path of the layer to its path in the merged tree.
func (l *rootLayer) place(p string) string {
	best := -1
	for i, m := range l.moves {
		if under(p, m.from) && (best < 0 || len(m.from) > len(l.moves[best].from)) {
			best = i
		}
	}
	if best < 0 {
		return p
	}
	m := l.moves[best]
	return joinRel(m.to, strings.TrimPrefix(strings.TrimPrefix(p, m.from), "/"))
}

// sources returns the layer's own directories whose contents appear at the
// merged directory dir: dir itself unless it was moved, and the origin of
// every move into dir or below it.
func (rc *reconciler) sources(ctx context.Context, l *rootLayer, dir string) ([]string, error) {
	var cands []string
	cands = append(cands, dir)
	for _, m := range l.moves {
		if under(dir, m.to) {
			cands = append(cands, joinRel(m.from, strings.TrimPrefix(strings.TrimPrefix(dir, m.to), "/")))
		}
	}
	var out []string
	for _, c := range cands {
		if l.place(c) != dir {
			continue
		}
		e, ok, err := rc.own(ctx, l, c)
		if err != nil {
			return nil, err
		}
		if ok && e.isDir() {
			out = append(out, c)
		}
	}
	return out, nil
}

// gather lists the merged directory dir: for every name, each layer's
// entry in layer order (within a layer, its own entry before moved ones).
func (rc *reconciler) gather(ctx context.Context, dir string) (map[string][]occurrence, error) {
	out := map[string][]occurrence{}
	for _, l := range rc.layers {
		srcs, err := rc.sources(ctx, l, dir)
		if err != nil {
			return nil, err
		}
		for _, s := range srcs {
			ents, err := rc.list(ctx, l, s)
			if err != nil {
				return nil, err
			}
			for _, n := range slices.Sorted(maps.Keys(ents)) {
				src := joinRel(s, n)
				if l.place(src) != joinRel(dir, n) {
					continue // moved elsewhere
				}
				out[n] = append(out[n], occurrence{layer: l, src: src, e: ents[n]})
			}
		}
		// A move creates the parents of its destination.
		for _, m := range l.moves {
			if dir != m.to && under(m.to, dir) {
				n := strings.SplitN(strings.TrimPrefix(strings.TrimPrefix(m.to, dir), "/"), "/", 2)[0]
				occ := out[n]
				if len(occ) == 0 || occ[len(occ)-1].layer != l {
					out[n] = append(occ, occurrence{layer: l, e: entry{mode: os.ModeDir | 0o755}})
				}
			}
		}
	}
	return out, nil
}

// winner is what the merged tree holds for a name: a symlink that has a
// directory against it (the rule above), else the last layer's entry.
func winner(occs []occurrence) occurrence {
	hasDir := false
	for _, o := range occs {
		hasDir = hasDir || o.e.isDir()
	}
	if hasDir {
		for i := len(occs) - 1; i >= 0; i-- {
			if occs[i].e.isSymlink() {
				return occs[i]
			}
		}
	}
	return occs[len(occs)-1]
}

// resolve follows p through the merged tree, symlinks included, and returns
// the real path it names and its entry.
func (rc *reconciler) resolve(ctx context.Context, p string) (string, entry, error) {
	comps := split(p)
	cur := ""
	hops := 0
	for len(comps) > 0 {
		c := comps[0]
		comps = comps[1:]
		switch c {
		case "", ".":
			continue
		case "..":
			cur = dirOf(cur)
			continue
		}
		ents, err := rc.gather(ctx, cur)
		if err != nil {
			return "", entry{}, err
		}
		occs := ents[c]
		if len(occs) == 0 {
			return "", entry{}, fmt.Errorf("/%s does not exist", joinRel(cur, c))
		}
		w := winner(occs)
		switch {
		case w.e.isSymlink():
			if hops++; hops > maxSymlinks {
				return "", entry{}, errors.New("too many levels of symbolic links")
			}
			if strings.HasPrefix(w.e.link, "/") {
				cur = ""
			}
			comps = append(split(w.e.link), comps...)
		case w.e.isDir():
			cur = joinRel(cur, c)
		case len(comps) == 0:
			return joinRel(cur, c), w.e, nil
		default:
			return "", entry{}, fmt.Errorf("/%s is not a directory", joinRel(cur, c))
		}
	}
	return cur, entry{mode: os.ModeDir | 0o755}, nil
}

// run reconciles the layers: it records the moves that keep every
// directory's contents reachable, or fails where that is impossible.
func (rc *reconciler) run(ctx context.Context) error {
	for i := 0; i < maxRelocations; i++ {
		moved, err := rc.walk(ctx, "")
		if err != nil || !moved {
			return err
		}
	}
	return fmt.Errorf("more than %d directories stored through symlinks", maxRelocations)
}

// walk checks the merged directory dir and, recursively, every directory
// that more than one layer contributes to. It stops at the first move it
// records (the caller walks again, since the move changes the tree).
func (rc *reconciler) walk(ctx context.Context, dir string) (bool, error) {
	ents, err := rc.gather(ctx, dir)
	if err != nil {
		return false, err
	}
	for _, n := range slices.Sorted(maps.Keys(ents)) {
		occs := ents[n]
		if len(occs) < 2 {
			continue
		}
		p := joinRel(dir, n)
		var dirs, links, others []occurrence
		for _, o := range occs {
			switch {
			case o.e.isDir():
				dirs = append(dirs, o)
			case o.e.isSymlink():
				links = append(links, o)
			default:
				others = append(others, o)
			}
		}
		switch {
		case len(dirs) == 0:
			// Files, symlinks and devices: the later layer wins.
			continue
		case len(others) > 0:
			return false, conflict(dirs[0], others[0], p, "is a directory in one and a file in the other")
		case len(links) == 0:
			if moved, err := rc.walk(ctx, p); moved || err != nil {
				return moved, err
			}
			continue
		}
		link := links[len(links)-1]
		target, te, err := rc.resolve(ctx, p)
		if err == nil && !te.isDir() {
			err = fmt.Errorf("/%s is not a directory", target)
		}
		if err != nil {
			return false, conflict(dirs[0], link, p, fmt.Sprintf("is a directory in one and a symlink to %s in the other, which cannot hold it: %v",
				link.e.link, err))
		}
		for _, d := range dirs {
			if d.src == "" {
				continue
			}
			d.layer.moves = append(d.layer.moves, move{from: d.src, to: target})
		}
		return true, nil
	}
	return false, nil
}

// conflict reports two layers whose entries at p cannot both be in the
// root filesystem, at the YAML position of the later one.
func conflict(a, b occurrence, p, why string) error {
	first, second := a, b
	if first.layer.order > second.layer.order {
		first, second = second, first
	}
	pos := second.layer.pos
	msg := fmt.Sprintf("/%s %s: %s and %s cannot be merged into one root filesystem", p, why, first.layer.what, second.layer.what)
	if first.layer == second.layer {
		msg = fmt.Sprintf("/%s %s, both in %s", p, why, first.layer.what)
	}
	return &spec.Error{File: pos.File, Line: pos.Line, Col: pos.Col, Msg: msg}
}

// checkFilePaths refuses a files entry whose path goes through a symlink
// or a file of the merged layers: BuildKit would write it through the
// symlink (or fail with an internal error), so the tree would differ from
// what the YAML says. The error names the entry, the symlink and the layer
// that provides it, and the path the entry would really write.
func (rc *reconciler) checkFilePaths(ctx context.Context, files []*spec.File) error {
	var errs spec.Errors
	for i, f := range files {
		comps := split(path.Clean("/" + f.Path))
		cur := ""
	walk:
		for j, c := range comps[:max(len(comps)-1, 0)] {
			ents, err := rc.gather(ctx, cur)
			if err != nil {
				return err
			}
			occs := ents[c]
			if len(occs) == 0 {
				break // created by the entry
			}
			w := winner(occs)
			p := joinRel(cur, c)
			switch {
			case w.e.isSymlink():
				msg := fmt.Sprintf("/%s goes through /%s, a symlink to %s that %s provides", f.Path, p, w.e.link, w.layer.what)
				if real, _, err := rc.resolve(ctx, p); err == nil {
					msg += fmt.Sprintf("; write the path it leads to, /%s", joinRel(real, strings.Join(comps[j+1:], "/")))
				}
				e := f.Loc.Errorf("path", "%s", msg)
				e.Field = fmt.Sprintf("files[%d].path", i)
				errs = append(errs, e)
				break walk
			case !w.e.isDir():
				e := f.Loc.Errorf("path", "/%s goes through /%s, which %s provides as a file, not a directory", f.Path, p, w.layer.what)
				e.Field = fmt.Sprintf("files[%d].path", i)
				errs = append(errs, e)
				break walk
			}
			cur = p
		}
		if len(comps) == 0 || cur != path.Join(comps[:len(comps)-1]...) {
			continue // an error above, or parents the entry creates
		}
		e, err := rc.symlinkAt(ctx, cur, comps[len(comps)-1], f, i)
		if err != nil {
			return err
		}
		if e != nil {
			errs = append(errs, e)
		}
	}
	if len(errs) > 0 {
		return errs
	}
	return nil
}

// symlinkAt handles a files entry f (files[i]) whose own path, name in
// the directory dir, is a symlink that the layers provide. LinuxKit's tar
// (and the kernel unpacking its initrd) replaces the symlink with the
// entry; BuildKit would write a file through it, into the symlink's
// target (bin/ls -> busybox would overwrite busybox). A file entry is
// therefore marked to replace the symlink (rc.replace); a directory entry,
// which LinuxKit's extractors treat differently, is an error naming the
// path the symlink leads to.
func (rc *reconciler) symlinkAt(ctx context.Context, dir, name string, f *spec.File, i int) (*spec.Error, error) {
	ents, err := rc.gather(ctx, dir)
	if err != nil {
		return nil, err
	}
	occs := ents[name]
	if len(occs) == 0 {
		return nil, nil
	}
	w := winner(occs)
	if !w.e.isSymlink() {
		return nil, nil
	}
	p := joinRel(dir, name)
	if f.Directory {
		msg := fmt.Sprintf("/%s is a symlink to %s that %s provides; a directory entry there is ambiguous (replace the symlink, or write through it?)", p, w.e.link, w.layer.what)
		if real, _, err := rc.resolve(ctx, p); err == nil {
			msg += fmt.Sprintf(": write the path it leads to, /%s", real)
		}
		e := f.Loc.Errorf("path", "%s", msg)
		e.Field = fmt.Sprintf("files[%d].path", i)
		return e, nil
	}
	if rc.replace == nil {
		rc.replace = map[*spec.File]bool{}
	}
	rc.replace[f] = true
	return nil, nil
}

// reconcile runs the reconciler over the layers (opened concurrently).
func reconcile(ctx context.Context, r Reader, layers []*rootLayer) error {
	_, err := newReconciler(ctx, r, layers)
	return err
}

// newReconciler opens the layers concurrently, reconciles them and returns
// the reconciler, whose view of the merged tree later checks use.
//
// Opening a layer only asks for it: the daemon pulls and extracts its
// image when the tree is first read. So each layer's root is read here,
// concurrently, and not first in the reconciler's walk, which reads the
// layers one after the other (a cold build pulled the four init images of
// LinuxKit's linuxkit.yml in turn, 2.4 s, before its base segment could
// start). The error returned is that of the first failing layer in merge
// order, whichever failed first.
func newReconciler(ctx context.Context, r Reader, layers []*rootLayer) (*reconciler, error) {
	rc := &reconciler{r: r, layers: layers}
	errs := make([]error, len(layers))
	var eg errgroup.Group
	for i, l := range layers {
		l.order = i
		if l.static != "" {
			continue
		}
		eg.Go(func() error {
			_, errs[i] = rc.list(ctx, l, "")
			return nil
		})
	}
	eg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	return rc, rc.run(ctx)
}

// relocated returns the layer with its moves applied: its tree without the
// moved directories, and each moved directory's contents copied into its
// destination (times kept; the destination and its parents, which the copy
// may create, get the epoch like every created directory).
func (b *builder) relocated(l *rootLayer) llb.State {
	return b.relocate(l, l.st, l.what)
}

// relocate is relocated for st, the layer's tree or a part of it that
// holds every directory its moves take from, named what in the progress.
func (b *builder) relocate(l *rootLayer, st llb.State, what string) llb.State {
	if len(l.moves) == 0 {
		return st
	}
	moves := append([]move(nil), l.moves...)
	sort.SliceStable(moves, func(i, j int) bool { return len(moves[i].from) < len(moves[j].from) })
	excl := func(base string) []string {
		var pats []string
	next:
		for _, m := range moves {
			if m.from == base || !under(m.from, base) {
				continue
			}
			for _, o := range moves {
				if o.from != base && o.from != m.from && under(o.from, base) && under(m.from, o.from) {
					continue next // excluded with o
				}
			}
			pats = append(pats, escapePattern(strings.TrimPrefix(strings.TrimPrefix(m.from, base), "/")))
		}
		return pats
	}
	fa := llb.Copy(st, "/", "/", &llb.CopyInfo{
		CopyDirContentsOnly: true,
		ExcludePatterns:     excl(""),
		AllowEmptyWildcard:  true,
	})
	var names, created []string
	for _, m := range moves {
		fa = fa.Copy(st, "/"+m.from, "/"+m.to, &llb.CopyInfo{
			CopyDirContentsOnly: true,
			CreateDestPath:      true,
			ExcludePatterns:     excl(m.from),
			AllowEmptyWildcard:  true,
		})
		names = append(names, fmt.Sprintf("/%s -> /%s", m.from, m.to))
		created = append(created, withParents(m.to)...)
	}
	slices.Sort(created)
	fa = b.touch(fa, slices.Compact(created)...)
	return llb.Scratch().File(fa, llb.WithCustomNamef("%s store %s through symlinks", what, strings.Join(names, ", ")), b.at(l.pos))
}

// escapePattern makes p match itself only as a copy exclude pattern.
func escapePattern(p string) string {
	var b strings.Builder
	for _, r := range p {
		if strings.ContainsRune(`*?[]\`, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// under reports whether p is base or inside it (relative paths, "" is the
// root).
func under(p, base string) bool {
	return base == "" || p == base || strings.HasPrefix(p, base+"/")
}

func joinRel(a, b string) string {
	switch {
	case a == "":
		return b
	case b == "":
		return a
	}
	return a + "/" + b
}

func dirOf(p string) string {
	if i := strings.LastIndexByte(p, '/'); i >= 0 {
		return p[:i]
	}
	return ""
}

func split(p string) []string {
	var out []string
	for _, c := range strings.Split(p, "/") {
		if c != "" {
			out = append(out, c)
		}
	}
	return out
}
