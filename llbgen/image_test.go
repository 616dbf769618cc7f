package llbgen

import (
	"context"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/moby/buildkit/solver/pb"
	digest "github.com/opencontainers/go-digest"
)

// TestImageTreeSkeleton: after each image's own entries, every image tree
// (init images at /, a bundle's lower/ or rootfs/) gets a copy of the
// skeleton tree: dev, dev/pts, dev/shm, etc, proc and sys as 0755
// directories, owned by root (the copy's owner), at SOURCE_DATE_EPOCH, and
// replacing entries of another type. A copy, unlike mkdir, applies this to
// directories the image already has (an image's 0555 proc/sys).
func TestImageTreeSkeleton(t *testing.T) {
	o := options(&fakeResolver{})
	o.Target = "tar"
	epoch := time.Unix(1700000000, 0).UTC()
	o.Epoch = &epoch
	res, err := Build(context.Background(), parseFile(t, "../examples/minimal.yml"), o)
	if err != nil {
		t.Fatal(err)
	}
	def, err := res.Output.Marshal(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	byDigest := map[digest.Digest]*pb.Op{}
	var all []*pb.Op
	for _, dt := range def.Def {
		var op pb.Op
		if err := op.UnmarshalVT(dt); err != nil {
			t.Fatal(err)
		}
		byDigest[digest.FromBytes(dt)] = &op
		all = append(all, &op)
	}
	trees := map[string]string{} // image tree -> what its skeleton holds
	for _, op := range all {
		acts := op.GetFile().GetActions()
		for i, a := range acts {
			img := a.GetCopy()
			if img == nil || len(img.GetExcludePatterns()) == 0 {
				continue
			}
			if i+1 >= len(acts) || acts[i+1].GetCopy() == nil {
				t.Errorf("%s: no copy after the image's entries", img.GetDest())
				continue
			}
			next := acts[i+1]
			sk := next.GetCopy()
			if sk.GetSrc() != "/" || sk.GetDest() != img.GetDest() || !sk.GetDirCopyContents() {
				t.Errorf("%s: skeleton copy %s -> %s (contents only %v)", img.GetDest(), sk.GetSrc(), sk.GetDest(), sk.GetDirCopyContents())
			}
			if got := uid(sk.GetOwner()); got != "0:0" || sk.GetOwner() == nil {
				t.Errorf("%s: skeleton owner %s, want an explicit 0:0", img.GetDest(), got)
			}
			if sk.GetTimestamp() != epoch.UnixNano() {
				t.Errorf("%s: skeleton time %d, want SOURCE_DATE_EPOCH", img.GetDest(), sk.GetTimestamp())
			}
			if !sk.GetAlwaysReplaceExistingDestPaths() {
				t.Errorf("%s: the skeleton must replace a symlink or file at dev, etc, proc or sys", img.GetDest())
			}
			in := next.GetSecondaryInput()
			if in < 0 || int(in) >= len(op.GetInputs()) {
				t.Errorf("%s: skeleton input %d is not an op input", img.GetDest(), in)
				continue
			}
			src := byDigest[digest.Digest(op.GetInputs()[in].GetDigest())]
			trees[img.GetDest()] = describeSkeleton(t, src, epoch)
		}
	}
	var dests []string
	for d := range trees {
		dests = append(dests, d)
	}
	sort.Strings(dests)
	// Two init images at /, hello's image in lower/ (httpd shares it).
	if got := strings.Join(dests, " "); got != "/ /containers/onboot/000-hello/lower" {
		t.Fatalf("image trees %q", got)
	}
	dirs := "dir /dev 755 0:0|dir /dev/pts 755 0:0|dir /dev/shm 755 0:0|dir /etc 755 0:0|dir /proc 755 0:0|dir /sys 755 0:0|file /etc/hosts 644"
	if want := dirs + "|symlink /etc/resolv.conf -> /run/resolvconf/resolv.conf|symlink /etc/mtab -> /proc/mounts"; trees["/"] != want {
		t.Errorf("init skeleton:\n%s\nwant\n%s", trees["/"], want)
	}
	if want := dirs + "|file /etc/resolv.conf 644|symlink /etc/mtab -> /proc/mounts"; trees["/containers/onboot/000-hello/lower"] != want {
		t.Errorf("bundle skeleton:\n%s\nwant\n%s", trees["/containers/onboot/000-hello/lower"], want)
	}
}

// describeSkeleton lists what a skeleton FileOp creates, checking that
// every entry gets the epoch as its time.
func describeSkeleton(t *testing.T, op *pb.Op, epoch time.Time) string {
	t.Helper()
	if op == nil || op.GetFile() == nil {
		t.Fatal("the skeleton is not a FileOp")
	}
	var out []string
	for _, a := range op.GetFile().GetActions() {
		var ts int64
		switch {
		case a.GetMkdir() != nil:
			d := a.GetMkdir()
			ts = d.GetTimestamp()
			out = append(out, "dir "+d.GetPath()+" "+octal(d.GetMode())+" "+uid(d.GetOwner()))
		case a.GetMkfile() != nil:
			f := a.GetMkfile()
			ts = f.GetTimestamp()
			out = append(out, "file "+f.GetPath()+" "+octal(f.GetMode()))
		case a.GetSymlink() != nil:
			s := a.GetSymlink()
			ts = s.GetTimestamp()
			out = append(out, "symlink "+s.GetNewpath()+" -> "+s.GetOldpath())
		default:
			t.Errorf("unexpected skeleton action %v", a)
		}
		if ts != epoch.UnixNano() {
			t.Errorf("skeleton entry %s has time %d, want the epoch", out[len(out)-1], ts)
		}
	}
	return strings.Join(out, "|")
}
