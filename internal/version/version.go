// Package version tells which lkbuild this is: the main module's version
// and the commit it was built from, read from the build information the
// Go toolchain embeds (runtime/debug.ReadBuildInfo). A build without the
// repository at hand (a container build whose context has no .git) passes
// them with -ldflags "-X github.com/lkbuild/lkbuild/internal/version.version=...
// -X github.com/lkbuild/lkbuild/internal/version.revision=...".
package version

import (
	"fmt"
	"runtime/debug"
	"strings"
)

// Set with -ldflags -X when the toolchain cannot stamp them.
var (
	version  string
	revision string
)

// Info is lkbuild's version.
type Info struct {
	// Version is the main module's version: a tag (v0.1.0), a pseudo
	// version (v0.1.1-0.20261130200000-7e17541a1b2c, +dirty when the
	// tree was modified), or "(devel)" when the toolchain did not know.
	Version string
	// Revision is the commit (vcs.revision), "" when unknown.
	Revision string
	// Modified is set when the working tree had changes (vcs.modified).
	Modified bool
	// GoVersion is the Go toolchain that built the binary.
	GoVersion string
}

// Get returns the version of the running binary.
func Get() Info {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return fromBuildInfo(nil, version, revision)
	}
	return fromBuildInfo(bi, version, revision)
}

// fromBuildInfo reads Info from bi, with the -X values (when set) in
// place of the module version and the commit.
func fromBuildInfo(bi *debug.BuildInfo, xVersion, xRevision string) Info {
	i := Info{Version: "(devel)"}
	if bi != nil {
		i.GoVersion = bi.GoVersion
		if v := bi.Main.Version; v != "" {
			i.Version = v
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				i.Revision = s.Value
			case "vcs.modified":
				i.Modified = s.Value == "true"
			}
		}
	}
	if xVersion != "" {
		i.Version = xVersion
	}
	if xRevision != "" {
		i.Revision, i.Modified = strings.TrimSuffix(xRevision, "-dirty"), strings.HasSuffix(xRevision, "-dirty")
	}
	return i
}

// Short is the version and the commit's first 12 hex digits on one line:
// "v0.1.0 (commit 7e17541a1b2c)", "(devel) (commit unknown)".
func (i Info) Short() string {
	rev := i.Revision
	if len(rev) > 12 {
		rev = rev[:12]
	}
	if rev == "" {
		rev = "unknown"
	}
	if i.Modified {
		rev += ", modified"
	}
	return fmt.Sprintf("%s (commit %s)", i.Version, rev)
}

// String is the full version: version, whole commit, whether the tree
// was modified and the Go version, one per line.
func (i Info) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "version:  %s\n", i.Version)
	rev := i.Revision
	if rev == "" {
		rev = "unknown"
	}
	fmt.Fprintf(&b, "commit:   %s\n", rev)
	fmt.Fprintf(&b, "modified: %t\n", i.Modified)
	if i.GoVersion != "" {
		fmt.Fprintf(&b, "go:       %s\n", i.GoVersion)
	}
	return b.String()
}
