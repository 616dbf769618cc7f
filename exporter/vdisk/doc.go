// Package vdisk converts a raw disk image into the virtual disk formats
// LinuxKit offers, in pure Go, streaming (memory depends on the disk size only
// through small allocation tables, never through the data) and byte-for-byte
// reproducibly (identifiers come from a caller-provided seed, timestamps from a
// caller-provided time). WriteQCOW2 writes a sparse qcow2 version 3 image
// (64 KiB clusters, no compression, no backing file) for qemu/KVM and
// OpenStack; WriteVHD writes a fixed VHD (the raw data plus a footer), the
// format Azure and Hyper-V import; WriteDynamicVHD writes a sparse dynamic VHD
// (2 MiB blocks) for Hyper-V and Virtual PC; WriteVMDK writes a
// streamOptimized VMDK (deflate-compressed 64 KiB grains), the single-file
// format VMware, vSphere OVA and the AWS/GCE image importers take. All-zero
// clusters, blocks and grains are left unallocated. Limits: virtual sizes are
// rounded up to whole 512-byte sectors, and VHD sizes further up to an exact
// CHS geometry (see VHDSize), so converters back to raw may show a zero tail;
// VHD is limited to 2040 GiB and VMDK to 2 TiB of output; qcow2 and dynamic VHD
// read the raw image twice (a scan for non-zero data, then the copy), so the
// raw image must not change during a call; the VMDK grain data is as
// compress/flate of the building Go toolchain makes it, so identical bytes are
// only guaranteed with the same Go release.
package vdisk
