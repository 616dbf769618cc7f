package llbgen

import (
	"bytes"
	"context"
	"fmt"
	"path"
	"time"

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
// file stays. Unlike LinuxKit, which matches the literal path in each
// image's tar stream, an image whose lib/apk/db is reached through its own
// symlinks (a usr-merged image) joins too: in the merged tree its file and
// the joined one are the same path. The joined file's time is SOURCE_DATE_EPOCH, else 0 (LinuxKit
// leaves it unset); lib/apk/db keeps the time the last init image gives it.
func (b *builder) withAPKDatabase(ctx context.Context, rootfs llb.State, inits []*rootLayer) (llb.State, error) {
	if len(inits) < 2 {
		return rootfs, nil
	}
	rc := &reconciler{r: b.opt.Reader}
	var dbs [][]byte
	dirTime := b.epoch()
	for _, l := range inits {
		if _, d, ok, err := rc.ownResolved(ctx, l, path.Dir(apkDatabase)); err != nil {
			return llb.State{}, err
		} else if ok && d.isDir() {
			dirTime = time.Unix(0, d.mtime).UTC()
		}
		// In a usr-merged image (lib -> usr/lib) the database is at
		// usr/lib/apk/db/installed: found through the image's own
		// symlinks, it joins the others, which are written through the
		// same symlink in the merged tree.
		real, e, ok, err := rc.ownResolved(ctx, l, apkDatabase)
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
		dt, err := t.ReadFile(ctx, "/"+real)
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
	fileTime := time.Unix(0, 0).UTC()
	if b.opt.Epoch != nil {
		fileTime = *b.opt.Epoch
	}
	fa := llb.Mkfile("/"+apkDatabase, 0o644, all.Bytes(), llb.WithCreatedTime(fileTime))
	fa = b.touchAt(fa, dirTime, "/"+path.Dir(apkDatabase))
	return rootfs.File(fa, llb.WithCustomNamef("[init] join %d apk databases", len(dbs))), nil
}
