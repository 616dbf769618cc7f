package frontend

import (
	"github.com/lkbuild/lkbuild/spec"
	"github.com/moby/buildkit/client/llb"
)

// lfSourceMap is sm with its data in UTF-8 and its line breaks written as
// LF (spec.PlainLines), for showing positions: BuildKit and buildx print
// the YAML lines around an error or warning by splitting the data at LF,
// while the positions count lines as yaml.v3 does (a lone CR, CR LF, NEL,
// LS and PS are line breaks too, and UTF-16 is read), so a file written
// otherwise would show other lines (or none) than the position names.
// The YAML is parsed from the file's own bytes, never from this copy.
func lfSourceMap(sm *llb.SourceMap) *llb.SourceMap {
	if sm == nil {
		return nil
	}
	dt := spec.PlainLines(sm.Data)
	if len(dt) == len(sm.Data) && (len(dt) == 0 || &dt[0] == &sm.Data[0]) {
		return sm
	}
	c := *sm
	c.Data = dt
	return &c
}
