// Package exporter groups lkbuild's pure-Go artifact writers. They run
// inside the build (`lkbuild mkimage`, `lkbuild ocilayout`) on a read-only
// root filesystem tree and know nothing of BuildKit: subpackages must not
// import github.com/moby/buildkit.
package exporter
