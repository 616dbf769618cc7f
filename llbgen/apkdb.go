package llbgen

import (
	"bytes"
	"context"
	"fmt"

	"github.com/moby/buildkit/client/llb"
)

// apkDatabase is where Alpine's package manager records the installed
// packages.
const apkDatabase = "lib/apk/db/installed"

// withAPKDatabase joins the init images' apk databases, as LinuxKit does
// (src/cmd/linuxkit/moby/apk_tarwriter.go): when more than one init image
// has a regular file at lib/apk/db/installed, the file in the root
// filesystem is their contents in init order, each followed by two
// newlines, mode 0644, owned by root, so package scanners see every init
// image's packages instead of the last one's. With one such image its own
// file stays.
func (b *builder) withAPKDatabase(ctx context.Context, rootfs llb.State, inits []*rootLayer) (llb.State, error) {
	if len(inits) < 2 {
		return rootfs, nil
	}
	rc := &reconciler{r: b.opt.Reader}
	var dbs [][]byte
	for _, l := range inits {
		e, ok, err := rc.own(ctx, l, apkDatabase)
		if err != nil {
			return llb.State{}, err
		}
		if !ok || !e.mode.IsRegular() {
			continue
		}
		t, err := rc.open(ctx, l)
		if err != nil {
			return llb.State{}, err
		}
		dt, err := t.ReadFile(ctx, "/"+apkDatabase)
		if err != nil {
			return llb.State{}, fmt.Errorf("%s: reading /%s of %s: %w", l.pos, apkDatabase, l.what, err)
		}
		dbs = append(dbs, dt)
	}
	if len(dbs) < 2 {
		return rootfs, nil
	}
	var all bytes.Buffer
	for _, db := range dbs {
		all.Write(db)
		all.WriteString("\n\n")
	}
	return rootfs.File(llb.Mkfile("/"+apkDatabase, 0o644, all.Bytes(), llb.WithCreatedTime(b.epoch())),
		llb.WithCustomNamef("[init] join %d apk databases", len(dbs))), nil
}
