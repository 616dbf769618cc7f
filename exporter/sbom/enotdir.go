package sbom

import "syscall"

// syscallENOTDIR is returned for a path through a file.
const syscallENOTDIR = syscall.ENOTDIR
