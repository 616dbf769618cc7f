package llbgen

import (
	"path"
	"strings"
	"time"

	"github.com/moby/buildkit/client/llb"
)

// Timestamps of created entries. BuildKit gives an entry made by Mkdir,
// Mkfile, Symlink or Copy the time it is asked for (the epoch here), but a
// directory's time changes again whenever an entry is created in it, and
// Mkdir with parents stamps only the last directory: without
// SOURCE_DATE_EPOCH, which the exporters clamp to, such directories would
// carry the wall-clock time of the build. The only file action that sets a
// directory's time after its contents is Copy with a created time, which
// stamps the directories it merges into. touch copies an empty directory
// onto each directory a step created or wrote into, as the step's last
// actions: the time becomes the epoch and nothing else changes (mode, owner
// and contents stay, and a path through a symlink resolves inside the root).

// emptyDirPath is the directory of emptyDir's state that touch copies.
const emptyDirPath = "/empty"

// emptyDir is an empty directory, the source of touch.
func (b *builder) emptyDir() llb.State {
	return llb.Scratch().File(llb.Mkdir(emptyDirPath, 0o755, llb.WithCreatedTime(b.epoch())),
		llb.WithCustomName("[internal] empty directory"))
}

// touch appends to fa (nil: a new action) actions that set the time of each
// of dirs, which must exist, to the epoch.
func (b *builder) touch(fa *llb.FileAction, dirs ...string) *llb.FileAction {
	return b.touchAt(fa, b.epoch(), dirs...)
}

// touchAt is touch with the time t.
func (b *builder) touchAt(fa *llb.FileAction, t time.Time, dirs ...string) *llb.FileAction {
	src := b.emptyDir()
	for _, d := range dirs {
		ci := &llb.CopyInfo{CopyDirContentsOnly: true, CreatedTime: &t}
		if fa == nil {
			fa = llb.Copy(src, emptyDirPath, d, ci)
		} else {
			fa = fa.Copy(src, emptyDirPath, d, ci)
		}
	}
	return fa
}

// withParents returns p and the directories above it, from the top down,
// without "/": the directories that creating p with its parents may create
// or write into.
func withParents(p string) []string {
	p = path.Clean("/" + p)
	if p == "/" {
		return nil
	}
	var out []string
	parts := strings.Split(p[1:], "/")
	for i := range parts {
		out = append(out, "/"+strings.Join(parts[:i+1], "/"))
	}
	return out
}
