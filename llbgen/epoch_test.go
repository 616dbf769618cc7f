package llbgen

import (
	"context"
	"path"
	"reflect"
	"sort"
	"testing"

	"github.com/moby/buildkit/client/llb"
	"github.com/moby/buildkit/solver/pb"
	digest "github.com/opencontainers/go-digest"
)

func TestWithParents(t *testing.T) {
	for in, want := range map[string][]string{
		"/":                  nil,
		"":                   nil,
		"etc":                {"/etc"},
		"/containers/a/b/":   {"/containers", "/containers/a", "/containers/a/b"},
		"containers//a/../b": {"/containers", "/containers/b"},
	} {
		if got := withParents(in); !reflect.DeepEqual(got, want) {
			t.Errorf("withParents(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestDirectoriesGetTheEpoch checks, for a configuration with every kind of
// layer (kernel, init images, bundles, volumes of each kind, files), that
// every directory a file operation creates or writes an entry into is
// stamped (touched) afterwards, in the same operation or a later one on
// top of it: else it would keep the time of the build. Merged layers pass
// on what each leaves unstamped. The top directory is stamped last.
func TestDirectoriesGetTheEpoch(t *testing.T) {
	for _, noMerge := range []bool{false, true} {
		o := options(&fakeResolver{})
		o.Target, o.NoMergeOp = "tar", noMerge
		ctxState := llb.Local("context")
		o.Context = &ctxState
		o.Sources = map[string]string{"conf/app.conf": "conf/app.conf"}
		res, err := Build(context.Background(), parseFile(t, "../frontend/testdata/rootfs.yml"), o)
		if err != nil {
			t.Fatal(err)
		}
		def, err := res.Output.Marshal(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		// left maps each op to the directories it leaves unstamped.
		left := map[digest.Digest]map[string]bool{}
		var lastOp *pb.Op
		for _, dt := range def.Def {
			var op pb.Op
			if err := op.UnmarshalVT(dt); err != nil {
				t.Fatal(err)
			}
			dirty := map[string]bool{}
			from := func(i int64) {
				if i >= 0 && int(i) < len(op.Inputs) {
					for d := range left[digest.Digest(op.Inputs[i].Digest)] {
						dirty[d] = true
					}
				}
			}
			switch {
			case op.GetMerge() != nil:
				for _, in := range op.GetMerge().GetInputs() {
					from(in.GetInput())
				}
			case op.GetFile() != nil:
				acts := op.GetFile().GetActions()
				from(acts[0].GetInput())
				touchActions(t, acts, dirty)
				lastOp = &op
			default:
				from(0)
			}
			left[digest.FromBytes(dt)] = dirty
		}
		final := left[digest.FromBytes(def.Def[len(def.Def)-1])]
		delete(final, "/")
		var names []string
		for d := range final {
			names = append(names, d)
		}
		sort.Strings(names)
		if len(names) > 0 {
			t.Errorf("NoMergeOp=%v: %q keep the time of the build", noMerge, names)
		}
		if acts := lastOp.GetFile().GetActions(); len(acts) != 1 || acts[0].GetCopy().GetSrc() != emptyDirPath || acts[0].GetCopy().GetDest() != "/" {
			t.Errorf("NoMergeOp=%v: the last file op is %v, want a touch of /", noMerge, acts)
		}
	}
}

// touchActions applies the actions of one file op to the set of
// directories whose time changed and is not yet stamped.
func touchActions(t *testing.T, acts []*pb.FileAction, dirty map[string]bool) {
	t.Helper()
	clean := func(p string) string { return path.Clean("/" + p) }
	parents := func(p string) {
		for _, d := range withParents(path.Dir(clean(p))) {
			dirty[d] = true
		}
	}
	for _, a := range acts {
		switch {
		case a.GetMkdir() != nil:
			m := a.GetMkdir()
			if m.GetMakeParents() {
				parents(m.GetPath())
			} else {
				dirty[path.Dir(clean(m.GetPath()))] = true
			}
		case a.GetMkfile() != nil:
			dirty[path.Dir(clean(a.GetMkfile().GetPath()))] = true
		case a.GetSymlink() != nil:
			dirty[path.Dir(clean(a.GetSymlink().GetNewpath()))] = true
		case a.GetRm() != nil:
			dirty[path.Dir(clean(a.GetRm().GetPath()))] = true
		case a.GetCopy() != nil:
			c := a.GetCopy()
			if c.GetSrc() == emptyDirPath {
				if c.GetTimestamp() != LinuxKitModTime.UnixNano() || !c.GetDirCopyContents() {
					t.Errorf("touch of %s: time %d, contents only %v", c.GetDest(), c.GetTimestamp(), c.GetDirCopyContents())
				}
				delete(dirty, clean(c.GetDest()))
				continue
			}
			parents(c.GetDest())
			// A copy with a time stamps what it copies into; one
			// without keeps the source's times, except where an
			// archive is unpacked.
			if c.GetTimestamp() == -1 && c.GetAttemptUnpackDockerCompatibility() {
				dirty[clean(c.GetDest())] = true
			}
		}
	}
}
