package llbgen

import (
	"context"
	"fmt"
	"os"
	"path"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lkbuild/lkbuild/spec"
	"github.com/moby/buildkit/client/llb"
	"github.com/moby/buildkit/solver/pb"
	digest "github.com/opencontainers/go-digest"
	fstypes "github.com/tonistiigi/fsutil/types"
)

// fakeTree is a filesystem: path (no leading slash) -> "dir", "link:target"
// or "file:contents". Parents are implied.
type fakeTree map[string]string

// fakeReader opens a state as the tree registered under the custom name of
// its last op; unknown states are empty.
type fakeReader map[string]fakeTree

func (r fakeReader) Open(ctx context.Context, st llb.State) (Tree, error) {
	name, err := nameOf(ctx, st)
	if err != nil {
		return nil, err
	}
	return r[name], nil
}

// nameOf returns the custom name of st's last op.
func nameOf(ctx context.Context, st llb.State) (string, error) {
	def, err := st.Marshal(ctx)
	if err != nil {
		return "", err
	}
	// The last op before the terminal one is the state's own op.
	var last pb.Op
	if err := last.UnmarshalVT(def.Def[len(def.Def)-1]); err != nil {
		return "", err
	}
	dgst := last.GetInputs()[0].GetDigest()
	return def.Metadata[digestOf(dgst)].Description["llb.customname"], nil
}

func (t fakeTree) entries() map[string]string {
	all := map[string]string{}
	for p, v := range t {
		all[p] = v
		for d := path.Dir(p); d != "."; d = path.Dir(d) {
			if _, ok := all[d]; !ok {
				all[d] = "dir"
			}
		}
	}
	return all
}

func (t fakeTree) ReadDir(ctx context.Context, dir string) ([]*fstypes.Stat, error) {
	dir = strings.TrimPrefix(dir, "/")
	all := t.entries()
	if dir != "" && all[dir] != "dir" {
		return nil, fmt.Errorf("%s: not a directory", dir)
	}
	var out []*fstypes.Stat
	for p, v := range all {
		if path.Dir(p) != dir && !(dir == "" && !strings.Contains(p, "/")) {
			continue
		}
		st := &fstypes.Stat{Path: path.Base(p)}
		switch {
		case v == "dir":
			st.Mode = uint32(os.ModeDir | 0o755)
		case strings.HasPrefix(v, "link:"):
			st.Mode = uint32(os.ModeSymlink | 0o777)
			st.Linkname = strings.TrimPrefix(v, "link:")
		default:
			st.Mode = 0o644
		}
		out = append(out, st)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out, nil
}

func (t fakeTree) ReadFile(ctx context.Context, name string) ([]byte, error) {
	v, ok := t[strings.TrimPrefix(name, "/")]
	if !ok || !strings.HasPrefix(v, "file:") {
		return nil, fmt.Errorf("%s: not a file", name)
	}
	return []byte(strings.TrimPrefix(v, "file:")), nil
}

// layersOf builds named layers whose trees the reader knows.
func layersOf(trees ...fakeTree) ([]*rootLayer, fakeReader) {
	r := fakeReader{}
	var ls []*rootLayer
	for i, t := range trees {
		name := fmt.Sprintf("layer %d", i)
		r[name] = t
		what := fmt.Sprintf("init[%d] (img%d)", i, i)
		if i == 0 {
			what = "kernel (kernel)"
		}
		ls = append(ls, &rootLayer{
			st:   llb.Scratch().File(llb.Mkdir("/x", 0o755), llb.WithCustomName(name)),
			what: what,
			pos:  spec.Pos{File: "x.yml", Line: 2 + i, Col: 3},
		})
	}
	return ls, r
}

func movesOf(ls []*rootLayer) string {
	var out []string
	for i, l := range ls {
		for _, m := range l.moves {
			out = append(out, fmt.Sprintf("%d:%s->%s", i, m.from, m.to))
		}
	}
	return strings.Join(out, " ")
}

var (
	kernelTree  = fakeTree{"boot/kernel": "file:k", "lib/modules/6.1/kernel/fs/erofs.ko": "file:m", "lib/modules/6.1/modules.dep": "file:d"}
	usrMerged   = fakeTree{"lib": "link:usr/lib", "usr/lib/libc.so": "file:c", "bin": "link:usr/bin", "usr/bin/sh": "file:s"}
	usrMergedAb = fakeTree{"lib": "link:/usr/lib", "usr/lib/libc.so": "file:c"}
)

func TestReconcile(t *testing.T) {
	for _, tc := range []struct {
		name  string
		trees []fakeTree
		moves string
		err   string
	}{
		{name: "no conflict", trees: []fakeTree{kernelTree, {"lib/libc.so": "file:c", "etc/passwd": "file:p"}}},
		{name: "usr-merged init over the kernel's lib", trees: []fakeTree{kernelTree, usrMerged}, moves: "0:lib->usr/lib"},
		{name: "absolute symlink", trees: []fakeTree{kernelTree, usrMergedAb}, moves: "0:lib->usr/lib"},
		{name: "directory after the symlink", trees: []fakeTree{kernelTree, usrMerged, {"lib/firmware/fw.bin": "file:f", "bin/tool": "file:t"}},
			moves: "0:lib->usr/lib 2:bin->usr/bin 2:lib->usr/lib"},
		{name: "symlink chain and dot-dot", trees: []fakeTree{kernelTree,
			{"lib": "link:./usr/../lib64", "lib64": "link:usr/lib64", "usr/lib64/libc.so": "file:c"}}, moves: "0:lib->usr/lib64"},
		{name: "target provided by another layer", trees: []fakeTree{kernelTree, {"usr/lib/libc.so": "file:c"}, {"lib": "link:usr/lib"}},
			moves: "0:lib->usr/lib"},
		{name: "nested symlink inside a merged directory", trees: []fakeTree{
			{"usr/lib/modules/6.1/m.ko": "file:m"}, {"usr/lib/modules": "link:../../lib/modules", "lib/modules/x": "file:x"}},
			moves: "0:usr/lib/modules->lib/modules"},
		{name: "dangling symlink", trees: []fakeTree{kernelTree, {"lib": "link:usr/lib"}},
			err: "x.yml:3:3: /lib is a directory in one and a symlink to usr/lib in the other, which cannot hold it: /usr does not exist: kernel (kernel) and init[1] (img1) cannot be merged"},
		{name: "symlink to a file", trees: []fakeTree{kernelTree, {"lib": "link:usr/lib", "usr/lib": "file:x"}},
			err: "/usr/lib is not a directory"},
		{name: "symlink loop", trees: []fakeTree{kernelTree, {"lib": "link:lib/x"}},
			err: "too many levels of symbolic links"},
		{name: "file over directory", trees: []fakeTree{kernelTree, {"lib": "file:x"}},
			err: "x.yml:3:3: /lib is a directory in one and a file in the other: kernel (kernel) and init[1] (img1) cannot be merged"},
		{name: "directory over file", trees: []fakeTree{{"lib": "file:x"}, kernelTree},
			err: "/lib is a directory in one and a file in the other: kernel (kernel) and init[1] (img1)"},
		{name: "conflict inside the symlink's target", trees: []fakeTree{kernelTree, {"lib": "link:usr/lib", "usr/lib/modules": "file:x"}},
			err: "/usr/lib/modules is a directory in one and a file in the other: kernel (kernel) and init[1] (img1)"},
		{name: "files and symlinks: the later wins", trees: []fakeTree{{"etc/a": "file:1", "etc/b": "link:x"}, {"etc/a": "link:y", "etc/b": "file:2"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ls, r := layersOf(tc.trees...)
			err := reconcile(context.Background(), r, ls)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := movesOf(ls); got != tc.moves {
				t.Errorf("moves %q, want %q", got, tc.moves)
			}
		})
	}
}

// TestRelocatedState checks the LLB of a layer with moves: the tree
// without the moved directories, then each one's contents at its
// destination, the nested move excluded from its parent's copy.
func TestRelocatedState(t *testing.T) {
	l := &rootLayer{st: llb.Image("docker.io/x/kernel:1"), what: "kernel (x)",
		moves: []move{{from: "lib/fw[1]", to: "opt/fw"}, {from: "lib", to: "usr/lib"}}}
	var copies, touched []string
	b := &builder{opt: options(&fakeResolver{})}
	for _, op := range ops(t, b.relocated(l)) {
		for _, a := range op.GetFile().GetActions() {
			c := a.GetCopy()
			switch {
			case c == nil:
			case c.GetSrc() == emptyDirPath:
				touched = append(touched, c.GetDest())
			default:
				if c.GetTimestamp() != -1 {
					t.Errorf("copy of %s sets the files' times; they must be kept", c.GetSrc())
				}
				copies = append(copies, fmt.Sprintf("%s>%s%v", c.GetSrc(), c.GetDest(), c.GetExcludePatterns()))
			}
		}
	}
	// The destinations and their parents, which the copies may create,
	// get the epoch.
	if got, want := strings.Join(touched, " "), "/opt /opt/fw /usr /usr/lib"; got != want {
		t.Errorf("touched %s, want %s", got, want)
	}
	want := `/>/[lib] /lib>/usr/lib[fw\[1\]] /lib/fw[1]>/opt/fw[]`
	if got := strings.Join(copies, " "); got != want {
		t.Errorf("copies %s, want %s", got, want)
	}
	if l2 := (&rootLayer{st: l.st}); b.relocated(l2).Output() != l.st.Output() {
		t.Error("a layer without moves must be used as it is")
	}
}

func digestOf(s string) digest.Digest { return digest.Digest(s) }

const usrMergeYAML = `kernel:
  image: linuxkit/kernel:6.1
init:
  - example/alpine-init:1
  - example/usrmerge:1
  - example/runc:1
onboot:
  - name: hello
    image: busybox:1.36
`

// TestBuildReconcilesLayers builds a config whose second init image is
// usr-merged: the kernel's and the first init image's lib/ reach the merge
// stored under usr/lib, and the apk databases of the two Alpine-style init
// images are joined on top.
func TestBuildReconcilesLayers(t *testing.T) {
	cfg, err := spec.Parse("x.yml", []byte(usrMergeYAML))
	if err != nil {
		t.Fatal(err)
	}
	o := options(&fakeResolver{})
	o.Target = "tar"
	o.Reader = fakeReader{
		"[kernel] extract linuxkit/kernel:6.1": kernelTree,
		"[init] extract example/alpine-init:1": {"lib/apk/db/installed": "file:P:musl\n", "lib/ld-musl.so": "file:x", "sbin/init": "file:i"},
		"[init] extract example/usrmerge:1":    usrMerged,
		"[init] extract example/runc:1":        {"lib/apk/db/installed": "file:P:runc\n", "usr/bin/runc": "file:r"},
	}
	res, err := Build(context.Background(), cfg, o)
	if err != nil {
		t.Fatal(err)
	}
	var copies, mkfiles []string
	merged := false
	for _, op := range ops(t, res.Output) {
		merged = merged || op.GetMerge() != nil
		for _, a := range op.GetFile().GetActions() {
			if c := a.GetCopy(); c != nil && c.GetDest() == "/usr/lib" && c.GetSrc() != emptyDirPath {
				copies = append(copies, c.GetSrc())
			}
			if f := a.GetMkfile(); f != nil && f.GetPath() == "/lib/apk/db/installed" {
				mkfiles = append(mkfiles, fmt.Sprintf("%o %q", f.GetMode(), f.GetData()))
			}
		}
	}
	if !merged {
		t.Fatal("no merge")
	}
	// kernel, alpine-init and runc each store their lib/ through the symlink.
	if got := strings.Join(copies, " "); got != "/lib /lib /lib" {
		t.Errorf("copies into /usr/lib from %q, want the lib/ of three layers", got)
	}
	if want := []string{`644 "P:musl\n\n\nP:runc\n\n\n"`}; fmt.Sprint(mkfiles) != fmt.Sprint(want) {
		t.Errorf("apk database %v, want %v", mkfiles, want)
	}
}

// TestAPKDatabases: with one apk database among the init images the
// image's own file stays, as in LinuxKit; a usr-merged image's database,
// reached through its own symlinks, joins the others (it is the same path
// in the merged tree).
func TestAPKDatabases(t *testing.T) {
	for _, tc := range []struct {
		name   string
		two    fakeTree
		joined string
	}{
		{name: "one database", two: fakeTree{"usr/bin/x": "file:x"}},
		{name: "usr-merged database", two: fakeTree{"usr/lib/apk/db/installed": "file:P:fw\n", "lib": "link:usr/lib"},
			joined: "P:musl\n\n\nP:fw\n\n\n"},
		{name: "symlinked db directory", two: fakeTree{"usr/lib/apk/db/installed": "file:P:x\n", "lib/apk/db": "link:/usr/lib/apk/db"},
			joined: "P:musl\n\n\nP:x\n\n\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := spec.Parse("x.yml", []byte("init:\n  - a/one:1\n  - a/two:1\n"))
			if err != nil {
				t.Fatal(err)
			}
			o := options(&fakeResolver{})
			o.Target = "tar"
			o.Reader = fakeReader{
				"[init] extract a/one:1": {"lib/apk/db/installed": "file:P:musl\n"},
				"[init] extract a/two:1": tc.two,
			}
			res, err := Build(context.Background(), cfg, o)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, op := range ops(t, res.Output) {
				for _, a := range op.GetFile().GetActions() {
					if f := a.GetMkfile(); f != nil && strings.Contains(f.GetPath(), "apk") {
						got = append(got, string(f.GetData()))
					}
				}
			}
			want := []string(nil)
			if tc.joined != "" {
				want = []string{tc.joined}
			}
			if fmt.Sprintf("%q", got) != fmt.Sprintf("%q", want) {
				t.Errorf("joined database %q, want %q", got, want)
			}
		})
	}
}

// TestFilesThroughImageSymlinks: a files entry whose parent path is a
// symlink (or a file) an image provides is refused at its path's line,
// naming the symlink, the layer and the path it leads to.
func TestFilesThroughImageSymlinks(t *testing.T) {
	yml := `kernel:
  image: linuxkit/kernel:6.1
init:
  - example/usrmerge:1
files:
  - path: etc/motd
    contents: "hi"
  - path: lib/modules-load.d/x.conf
    contents: "erofs"
  - path: usr/bin/sh/x
    contents: "x"
  - path: newdir/x
    contents: "x"
`
	cfg, err := spec.Parse("x.yml", []byte(yml))
	if err != nil {
		t.Fatal(err)
	}
	o := options(&fakeResolver{})
	o.Target = "tar"
	o.Reader = fakeReader{
		"[kernel] extract linuxkit/kernel:6.1": kernelTree,
		"[init] extract example/usrmerge:1":    usrMerged,
	}
	_, err = Build(context.Background(), cfg, o)
	if err == nil {
		t.Fatal("no error")
	}
	want := []string{
		"x.yml:8:11: files[1].path: /lib/modules-load.d/x.conf goes through /lib, a symlink to usr/lib that init[0] (example/usrmerge:1) provides; write the path it leads to, /usr/lib/modules-load.d/x.conf",
		"x.yml:10:11: files[2].path: /usr/bin/sh/x goes through /usr/bin/sh, which init[0] (example/usrmerge:1) provides as a file, not a directory",
	}
	if got := err.Error(); got != strings.Join(want, "\n") {
		t.Errorf("error\n%s\nwant\n%s", got, strings.Join(want, "\n"))
	}
}

// barrierReader opens the trees of a fakeReader, but reading a root waits
// until every one of n roots is being read (or fails after a while).
type barrierReader struct {
	fakeReader
	wg   *sync.WaitGroup
	fail map[string]time.Duration // name -> fail this root after a delay
}

type barrierTree struct {
	fakeTree
	r    barrierReader
	name string
	once *sync.Once
}

func (r barrierReader) Open(ctx context.Context, st llb.State) (Tree, error) {
	name, err := nameOf(ctx, st)
	if err != nil {
		return nil, err
	}
	return barrierTree{fakeTree: r.fakeReader[name], r: r, name: name, once: &sync.Once{}}, nil
}

func (t barrierTree) ReadDir(ctx context.Context, dir string) ([]*fstypes.Stat, error) {
	if dir == "/" {
		t.once.Do(t.r.wg.Done)
		done := make(chan struct{})
		go func() { t.r.wg.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			return nil, fmt.Errorf("%s: read alone: the layers were not read concurrently", t.name)
		}
		if d, ok := t.r.fail[t.name]; ok {
			time.Sleep(d)
			return nil, fmt.Errorf("%s failed", t.name)
		}
	}
	return t.fakeTree.ReadDir(ctx, dir)
}

// TestReconcilerReadsLayersConcurrently: every layer's tree is read at
// once (the daemon pulls an image when its tree is first read; the walk
// read them one after the other), and when several fail the error is the
// first layer's in merge order, not the first to fail.
func TestReconcilerReadsLayersConcurrently(t *testing.T) {
	trees := []fakeTree{kernelTree, {"sbin/init": "file:i"}, {"usr/bin/runc": "file:r"}, {"etc/ssl/cert.pem": "file:c"}}
	ls, fr := layersOf(trees...)
	var wg sync.WaitGroup
	wg.Add(len(ls))
	if _, err := newReconciler(context.Background(), barrierReader{fakeReader: fr, wg: &wg}, ls); err != nil {
		t.Fatal(err)
	}

	ls, fr = layersOf(trees...)
	wg = sync.WaitGroup{}
	wg.Add(len(ls))
	r := barrierReader{fakeReader: fr, wg: &wg, fail: map[string]time.Duration{"layer 1": 200 * time.Millisecond, "layer 3": 0}}
	_, err := newReconciler(context.Background(), r, ls)
	if err == nil || !strings.Contains(err.Error(), "layer 1 failed") {
		t.Errorf("error %v, want layer 1's", err)
	}
}
