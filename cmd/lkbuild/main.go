// Command lkbuild builds LinuxKit operating systems with BuildKit. One
// static binary is the gateway frontend (`lkbuild frontend`, the entrypoint
// of the frontend image), the `lkbuild build` CLI and the in-build
// `lkbuild mkimage` helper.
package main

import (
	"os"

	"github.com/lkbuild/lkbuild/internal/cli"
)

func main() {
	os.Exit(cli.Main(os.Args[1:]))
}
