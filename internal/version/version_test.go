package version

import (
	"runtime/debug"
	"strings"
	"testing"
)

func TestFromBuildInfo(t *testing.T) {
	bi := &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Path: "github.com/lkbuild/lkbuild", Version: "v0.1.1-0.20261130200000-7e17541a1b2c+dirty"},
		Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: "7e17541a1b2c3d4e5f60718293a4b5c6d7e8f901"}, {Key: "vcs.modified", Value: "true"}}}
	i := fromBuildInfo(bi, "", "")
	if i.Version != "v0.1.1-0.20261130200000-7e17541a1b2c+dirty" || i.Revision != "7e17541a1b2c3d4e5f60718293a4b5c6d7e8f901" || !i.Modified || i.GoVersion != "go1.26.8" {
		t.Errorf("from build info: %+v", i)
	}
	if s := i.Short(); s != "v0.1.1-0.20261130200000-7e17541a1b2c+dirty (commit 7e17541a1b2c, modified)" {
		t.Errorf("Short() = %q", s)
	}
	for _, want := range []string{"commit:   7e17541a1b2c3d4e5f60718293a4b5c6d7e8f901\n", "modified: true\n", "go:       go1.26.8\n"} {
		if !strings.Contains(i.String(), want) {
			t.Errorf("String() lacks %q:\n%s", want, i)
		}
	}
	// -X values win (a container build without .git).
	i = fromBuildInfo(&debug.BuildInfo{Main: debug.Module{Version: "(devel)"}}, "v0.2.0", "abcdef0123456789-dirty")
	if i.Version != "v0.2.0" || i.Revision != "abcdef0123456789" || !i.Modified {
		t.Errorf("with -X: %+v", i)
	}
	if s := fromBuildInfo(nil, "", "").Short(); s != "(devel) (commit unknown)" {
		t.Errorf("no build info: %q", s)
	}
}
