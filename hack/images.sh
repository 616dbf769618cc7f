#!/usr/bin/env bash
# hack/images.sh [NAME...]: build and push the lkbuild frontend image and the
# OFFLINE STAND-INS for the LinuxKit images the examples and tests name, into
# the local registry of hack/env.sh (127.0.0.1:5000). NAME is one of
# kernel kernel-builtin init init-usrmerge runc busybox proc0555 debian golang
# dockerfile lkbuild (default: all, in that order). init-usrmerge and proc0555
# are test images of our own, not stand-ins.
#
# Nothing can be pulled from a public registry here, so every stand-in is
# built FROM scratch with BuildKit's built-in dockerfile.v0 frontend, from a
# context prepared under .cache/images/<name>/ out of Debian packages and our
# own binaries; the Dockerfiles are hack/images/<name>/Dockerfile. buildkitd
# mirrors docker.io to the local registry, so `linuxkit/kernel:6.12.59` in a
# LinuxKit YAML resolves to the stand-in pushed here.
#
# The frontend image (lkbuild) is the release image: the repository's
# Dockerfile built with `docker buildx bake` (docker-bake.hcl), one
# Dockerfile for release and tests. Its bases (debian:bookworm-slim,
# golang:<GO_VERSION>-bookworm, and docker/dockerfile:1 for its syntax line)
# are stand-ins built here first: `hack/images.sh lkbuild` builds them too.
# LKBUILD_IMAGE=<repo>:<tag> pushes it under another name than
# lkbuild/lkbuild:v0.1 (in the local registry).
#
# Images are multi-platform (linux/amd64 and linux/arm64, see PLATFORMS):
# the context holds one tree per architecture (<ctx>/<arch>/) and the
# Dockerfile copies ${TARGETARCH}/; nothing runs during their builds, so no
# emulation is needed. arm64 parts come from Debian's arm64 packages,
# downloaded with apt-get download (the script adds the arm64 architecture to
# dpkg for that) and unpacked, never installed or executed.
#
# An image is rebuilt only when its inputs (Dockerfile and context; for
# lkbuild, the files of the checkout and the platforms) changed or it is
# missing from the registry; FORCE=1 rebuilds everything.
set -euo pipefail
# shellcheck source=hack/lib.sh
source "$(dirname "$0")/lib.sh"

IMAGES_DIR="$CACHE/images"
DEBS_DIR="$CACHE/debs"
FORCE="${FORCE:-0}"
# Timestamps inside the stand-in images and kernel.tar (seconds since the epoch).
EPOCH=0

# The Go version of the release Dockerfile's build stage (ARG GO_VERSION):
# the golang stand-in is pushed under that tag.
GO_VERSION="$(sed -n 's/^ARG GO_VERSION=//p' "$ROOT/Dockerfile")"

declare -A REFS=(
	[lkbuild]="${LKBUILD_IMAGE:-lkbuild/lkbuild:v0.1}"
	[kernel]="linuxkit/kernel:6.12.59"
	[kernel-builtin]="lkbuild/kernel-builtin:6.1"
	[init]="linuxkit/init:b5506cc74a6812dc40982cacfd2f4328f8a4b12a"
	[init-usrmerge]="lkbuild/init-usrmerge:1"
	[runc]="linuxkit/runc:9442aa234715e751a16144f1d4ae3fd1a00fd492"
	[busybox]="library/busybox:1.36"
	[proc0555]="lkbuild/test-proc0555:1"
	[debian]="library/debian:bookworm-slim"
	[golang]="library/golang:${GO_VERSION}-bookworm"
	[dockerfile]="docker/dockerfile:1"
)
ALL=(kernel kernel-builtin init init-usrmerge runc busybox proc0555 debian golang dockerfile lkbuild)
# The stand-ins the release Dockerfile builds from, built before lkbuild.
LKBUILD_BASES=(debian golang dockerfile)

# Architectures each image is built for.
declare -A PLATFORMS=(
	[lkbuild]="amd64 arm64"
	[kernel]="amd64 arm64"
	[kernel-builtin]="amd64"
	[init]="amd64 arm64"
	[init-usrmerge]="amd64 arm64"
	[runc]="amd64 arm64"
	[busybox]="amd64 arm64"
	[proc0555]="amd64 arm64"
	# The release Dockerfile runs its bases on the build platform (this
	# machine) only; the frontend runs where buildkitd runs.
	[debian]="amd64"
	[golang]="amd64"
	[dockerfile]="amd64"
)

# LKBUILD_ARCHES (e.g. "amd64") restricts every image to those of its
# architectures: make demo builds only what the host boots.
# The release Dockerfile's bases are for the build platform, not a target:
# they keep theirs.
if [ -n "${LKBUILD_ARCHES:-}" ]; then
	for name in "${!PLATFORMS[@]}"; do
		case " ${LKBUILD_BASES[*]} " in *" $name "*) continue ;; esac
		kept=""
		for a in ${PLATFORMS[$name]}; do
			case " $LKBUILD_ARCHES " in *" $a "*) kept="$kept $a" ;; esac
		done
		PLATFORMS[$name]="${kept# }"
	done
fi

has_arch() { case " ${PLATFORMS[$1]} " in *" $2 "*) return 0 ;; esac; return 1; }

# Modules put in the stand-in kernel's kernel.tar (with their dependencies).
# The stand-in init loads the same list at boot (hack/standins/init).
KERNEL_MODULES=(crc32c_generic overlay squashfs erofs isofs vfat nls_cp437 nls_ascii nls_utf8 ext4 loop
	virtio_pci virtio_mmio virtio_blk virtio_net virtio_scsi virtio_console virtio-rng
	sr_mod sd_mod ata_piix ahci e1000 9pnet_virtio 9p fuse tun veth bridge vmw_vsock_virtio_transport)

BUSYBOX=/bin/busybox
RUNC=/usr/sbin/runc

is_static() { ! ldd "$1" >/dev/null 2>&1; }

# fresh_ctx NAME: an empty context directory for NAME.
fresh_ctx() {
	local ctx="$IMAGES_DIR/$1"
	rm -rf "$ctx"
	mkdir -p "$ctx"
	echo "$ctx"
}

# ensure_arch ARCH: makes apt know ARCH's packages (dpkg --add-architecture;
# nothing of it is installed).
ensure_arch() {
	local arch="$1"
	if [ "$arch" != all ] && [ "$arch" != "$(dpkg --print-architecture)" ] &&
		! dpkg --print-foreign-architectures | grep -qx "$arch"; then
		dpkg --add-architecture "$arch"
		apt-get update -qq >&2
	fi
}

# fetch_deb NAME ARCH: path of the cached .deb of package NAME for ARCH
# ("all" for architecture-independent ones), downloading it when missing.
fetch_deb() {
	local name="$1" arch="$2" deb
	mkdir -p "$DEBS_DIR"
	deb="$(find "$DEBS_DIR" -maxdepth 1 -name "${name}_*_${arch}.deb" | sort -V | tail -1)"
	if [ -z "$deb" ]; then
		log "downloading $name:$arch"
		ensure_arch "$arch"
		(cd "$DEBS_DIR" && apt-get -qq -o APT::Sandbox::User=root download "$name:$arch" >&2) ||
			(apt-get update -qq >&2 && cd "$DEBS_DIR" && apt-get -qq -o APT::Sandbox::User=root download "$name:$arch" >&2)
		deb="$(find "$DEBS_DIR" -maxdepth 1 -name "${name}_*_${arch}.deb" | sort -V | tail -1)"
	fi
	[ -n "$deb" ] || die "cannot download the Debian package $name:$arch"
	echo "$deb"
}

# busybox_bin ARCH: a static busybox for ARCH: the host's for amd64, else
# Debian's busybox-static for ARCH, unpacked.
busybox_bin() {
	local arch="$1" work
	if [ "$arch" = amd64 ]; then
		is_static "$BUSYBOX" || die "$BUSYBOX is not static (install busybox-static)"
		echo "$BUSYBOX"
		return
	fi
	work="$IMAGES_DIR/.busybox-$arch"
	if [ ! -x "$work/bin/busybox" ]; then
		rm -rf "$work"
		dpkg -x "$(fetch_deb busybox-static "$arch")" "$work"
	fi
	echo "$work/bin/busybox"
}

# busybox_tree DIR init|image ARCH: busybox at /bin/busybox with applet symlinks:
# where busybox installs them (/bin, /sbin, /usr/bin, /usr/sbin) for init,
# all in /bin (as the busybox image has them) for image.
# The applet list comes from the host's busybox (the same Debian version):
# a foreign binary is never run.
busybox_tree() {
	local dir="$1" layout="$2" arch="${3:-amd64}" p
	is_static "$BUSYBOX" || die "$BUSYBOX is not static (install busybox-static)"
	install -D -m 0755 "$(busybox_bin "$arch")" "$dir/bin/busybox"
	if [ "$layout" = init ]; then
		while read -r p; do
			case "$p" in "" | linuxrc | sbin/init | bin/busybox) continue ;; esac
			mkdir -p "$dir/$(dirname "$p")"
			ln -sfn /bin/busybox "$dir/$p"
		done < <("$BUSYBOX" --list-full)
	else
		while read -r p; do
			case "$p" in "" | busybox | linuxrc) continue ;; esac
			ln -sfn busybox "$dir/bin/$p"
		done < <("$BUSYBOX" --list)
	fi
}

base_etc() {
	local dir="$1"
	mkdir -p "$dir/etc"
	printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$dir/etc/passwd"
	printf 'root:x:0:\ntty:x:5:\nnogroup:x:65534:\n' >"$dir/etc/group"
	mkdir -p "$dir/root" "$dir/tmp"
	chmod 0700 "$dir/root"
	chmod 1777 "$dir/tmp"
}

prep_init() {
	local ctx arch
	ctx="$(fresh_ctx init)"
	for arch in ${PLATFORMS[init]}; do
		init_tree "$ctx/$arch" "$arch"
	done
}

init_tree() {
	local ctx="$1" arch="$2"
	busybox_tree "$ctx" init "$arch"
	# The init uses only the standard library: build it as a module of its own
	# so a main go.mod in flux does not matter.
	local src="$IMAGES_DIR/.init-src"
	rm -rf "$src"
	mkdir -p "$src"
	cp "$ROOT"/hack/standins/init/*.go "$src/"
	rm -f "$src"/*_test.go
	printf 'module lkinit\n\ngo 1.22\n' >"$src/go.mod"
	(cd "$src" && GOWORK=off GOFLAGS= CGO_ENABLED=0 GOOS=linux GOARCH="$arch" go build -trimpath -buildvcs=false \
		-ldflags '-s -w' -o "$ctx/init" .)
	rm -rf "$src"
	is_static "$ctx/init" || die "stand-in init is not static"
	ln -sfn /init "$ctx/sbin/init"
	base_etc "$ctx"
	mkdir -p "$ctx"/{dev,proc,sys,run,var,mnt,containers}
}

# prep_init-usrmerge: the stand-in init with a merged /usr: bin, sbin, lib
# and lib64 are symlinks into usr/ (relative, as Debian's usrmerge makes
# them), what they held is under usr/.
prep_init-usrmerge() {
	local ctx arch d
	ctx="$(fresh_ctx init-usrmerge)"
	for arch in ${PLATFORMS[init-usrmerge]}; do
		init_tree "$ctx/$arch" "$arch"
		for d in bin sbin lib lib64; do
			mkdir -p "$ctx/$arch/usr/$d"
			if [ -d "$ctx/$arch/$d" ]; then
				cp -a "$ctx/$arch/$d/." "$ctx/$arch/usr/$d/"
				rm -rf "${ctx:?}/$arch/$d"
			fi
			ln -sfn "usr/$d" "$ctx/$arch/$d"
		done
		printf 'ID=lkbuild-usrmerge\n' >"$ctx/$arch/usr/lib/os-release"
	done
}

prep_runc() {
	local ctx lib
	[ -x "$RUNC" ] || die "$RUNC missing (apt package runc)"
	ctx="$(fresh_ctx runc)"
	has_arch runc amd64 || die "prep_runc needs amd64 (the host's runc)"
	if has_arch runc arm64; then
		runc_foreign "$ctx/arm64" arm64
	fi
	ctx="$ctx/amd64"
	install -D -m 0755 "$RUNC" "$ctx/usr/bin/runc"
	# Shared libraries at the paths the binary asks for, the loader included.
	for lib in $(ldd "$RUNC" | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }'); do
		mkdir -p "$ctx$(dirname "$lib")"
		cp -L "$lib" "$ctx$lib"
		chmod 0755 "$ctx$lib"
	done
}

# runc_foreign DIR ARCH: Debian's runc for ARCH with the libraries its ELF
# header names (read with readelf, never run), from ARCH's packages.
runc_foreign() {
	local dir="$1" arch="$2" work p lib interp path
	work="$IMAGES_DIR/.runc-$arch"
	rm -rf "$work"
	for p in runc libseccomp2 libc6; do
		dpkg -x "$(fetch_deb "$p" "$arch")" "$work"
	done
	install -D -m 0755 "$work/usr/sbin/runc" "$dir/usr/bin/runc"
	interp="$(readelf -l "$work/usr/sbin/runc" | sed -n 's/.*interpreter: \(.*\)]/\1/p')"
	[ -n "$interp" ] || die "runc:$arch has no ELF interpreter"
	install -D -m 0755 "$(readlink -f "$work$interp")" "$dir$interp"
	for lib in $(readelf -d "$work/usr/sbin/runc" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'); do
		path="$(cd "$work" && find lib usr/lib -name "$lib" 2>/dev/null | head -1)"
		[ -n "$path" ] || die "runc:$arch needs $lib, not found in its packages"
		install -D -m 0755 "$(readlink -f "$work/$path")" "$dir/$path"
	done
	rm -rf "$work"
}

prep_busybox() {
	local ctx arch
	ctx="$(fresh_ctx busybox)"
	for arch in ${PLATFORMS[busybox]}; do
		busybox_tree "$ctx/$arch" image "$arch"
		base_etc "$ctx/$arch"
		mkdir -p "$ctx/$arch"/{home,usr/sbin,var}
	done
}

# prep_proc0555: a test image with no binaries whose proc and sys are 0555
# (as many distribution images ship them; sys holds a file), whose etc is
# 0700 with a file, and whose dev is a symlink to run/dev, a directory with a
# file.
prep_proc0555() {
	local ctx arch d
	ctx="$(fresh_ctx proc0555)"
	for arch in ${PLATFORMS[proc0555]}; do
		d="$ctx/$arch"
		mkdir -p "$d"/{proc,sys,etc,run/dev}
		echo kept >"$d/etc/kept"
		echo kept >"$d/sys/kept"
		echo kept >"$d/run/dev/kept"
		ln -s run/dev "$d/dev"
		chmod 0555 "$d/proc" "$d/sys"
		chmod 0700 "$d/etc"
	done
}

# kernel_deb ARCH: path of the cached Debian kernel package for ARCH,
# downloading the one linux-image-ARCH currently depends on when none is
# cached.
kernel_deb() {
	local arch="$1" deb pkg
	deb="$(find "$DEBS_DIR" -maxdepth 1 -name "linux-image-6.1.*-${arch}_*_${arch}.deb" 2>/dev/null | sort -V | tail -1)"
	if [ -n "$deb" ]; then
		echo "$deb"
		return
	fi
	ensure_arch "$arch"
	pkg="$(apt-cache depends "linux-image-$arch:$arch" 2>/dev/null | awk '$1 == "Depends:" && $2 ~ /^linux-image-6\.1\./ { sub(/:.*/, "", $2); print $2; exit }')"
	if [ -z "$pkg" ]; then
		apt-get update -qq >&2
		pkg="$(apt-cache depends "linux-image-$arch:$arch" 2>/dev/null | awk '$1 == "Depends:" && $2 ~ /^linux-image-6\.1\./ { sub(/:.*/, "", $2); print $2; exit }')"
	fi
	[ -n "$pkg" ] || die "cannot find the Debian linux-image-6.1.*-$arch package"
	fetch_deb "$pkg" "$arch"
}

# module_closure MODDIR NAME...: module paths (relative to MODDIR) for NAMEs and
# everything they depend on, from MODDIR/modules.dep.
module_closure() {
	local moddir="$1"
	shift
	awk -v want="$*" '
		function norm(p,   b) { b = p; sub(/.*\//, "", b); sub(/\.ko(\.[a-z]+)?$/, "", b); gsub(/-/, "_", b); return b }
		{
			p = $1; sub(/:$/, "", p); byname[norm(p)] = p; deps[p] = ""
			for (i = 2; i <= NF; i++) deps[p] = deps[p] " " $i
		}
		END {
			n = split(want, w, " ")
			for (i = 1; i <= n; i++) {
				k = w[i]; gsub(/-/, "_", k)
				if (k in byname) q[++qn] = byname[k]
			}
			while (qi < qn) {
				p = q[++qi]
				if (p in seen) continue
				seen[p] = 1; print p
				m = split(deps[p], d, " ")
				for (j = 1; j <= m; j++) q[++qn] = d[j]
			}
		}' "$moddir/modules.dep" | sort
}

prep_kernel() {
	local arch debs=() key ctx="$IMAGES_DIR/kernel"
	for arch in ${PLATFORMS[kernel]}; do
		debs+=("$(kernel_deb "$arch")")
	done
	key="$(basename -a "${debs[@]}" | tr '\n' ' ') $(sha256sum <"$0" | cut -d' ' -f1)"
	if [ "$FORCE" != 1 ] && [ -d "$ctx" ] && [ "$(cat "$IMAGES_DIR/kernel.prep" 2>/dev/null)" = "$key" ]; then
		return
	fi
	rm -f "$IMAGES_DIR/kernel.prep"
	ctx="$(fresh_ctx kernel)"
	for arch in ${PLATFORMS[kernel]}; do
		kernel_tree "$ctx/$arch" "$(kernel_deb "$arch")"
	done
	echo "$key" >"$IMAGES_DIR/kernel.prep"
}

# kernel_tree DIR DEB: the kernel of the Debian package DEB as DIR/kernel and
# a subset of its modules (KERNEL_MODULES and their dependencies, indexed
# with depmod, which reads foreign modules without running them) in
# DIR/kernel.tar.
kernel_tree() {
	local ctx="$1" deb="$2" work ver full sub m
	log "kernel: preparing from $(basename "$deb")"
	work="$IMAGES_DIR/.work-kernel"
	rm -rf "$work"
	mkdir -p "$work/full"
	dpkg -x "$deb" "$work/full"
	ver="$(basename "$(find "$work/full/lib/modules" -mindepth 1 -maxdepth 1 -type d | head -1)")"
	[ -n "$ver" ] && [ -f "$work/full/boot/vmlinuz-$ver" ] || die "unexpected layout in $deb"
	full="$work/full/lib/modules/$ver"
	depmod -b "$work/full" "$ver"

	sub="$work/sub/lib/modules/$ver"
	mkdir -p "$sub"
	for m in $(module_closure "$full" "${KERNEL_MODULES[@]}"); do
		install -D -m 0644 "$full/$m" "$sub/$m"
	done
	cp "$full/modules.builtin" "$full/modules.builtin.modinfo" "$sub/"
	(cd "$sub" && grep -Fxf <(find kernel -type f | sort) "$full/modules.order" >modules.order || true)
	depmod -b "$work/sub" "$ver"
	find "$work/sub" -type d -exec chmod 0755 {} +
	find "$work/sub" -type f -exec chmod 0644 {} +

	mkdir -p "$ctx"
	install -m 0644 "$work/full/boot/vmlinuz-$ver" "$ctx/kernel"
	tar --sort=name --mtime="@$EPOCH" --owner=0 --group=0 --numeric-owner --format=gnu \
		-C "$work/sub" -cf "$ctx/kernel.tar" lib
	log "kernel: $ver, $(tar -tf "$ctx/kernel.tar" | grep -c '\.ko') modules in kernel.tar ($(du -h "$ctx/kernel.tar" | cut -f1))"
	rm -rf "$work"
}

# prep_kernel-builtin: the kernel of hack/kernel.sh (built once, cached
# outside the checkout) and an empty kernel.tar.
prep_kernel-builtin() {
	local ctx
	ctx="$(fresh_ctx kernel-builtin)/amd64"
	"$ROOT/hack/kernel.sh" "$ctx"
	mkdir -p "$IMAGES_DIR/.empty-modules/lib/modules"
	tar --sort=name --mtime="@$EPOCH" --owner=0 --group=0 --numeric-owner --format=gnu \
		-C "$IMAGES_DIR/.empty-modules" -cf "$ctx/kernel.tar" lib
	rm -rf "$IMAGES_DIR/.empty-modules"
}

# Debian suite and sources of the debian stand-in (those of the official
# image: deb.debian.org, with updates and security).
DEBIAN_SUITE=bookworm
DEBIAN_SOURCES=(
	"deb http://deb.debian.org/debian $DEBIAN_SUITE main"
	"deb http://deb.debian.org/debian $DEBIAN_SUITE-updates main"
	"deb http://deb.debian.org/debian-security $DEBIAN_SUITE-security main"
)
# dpkg options of the slim image: no documentation but the copyright files,
# no manual pages, no translations.
DEBIAN_SLIM=(
	--dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright'
	--dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/info/*'
	--dpkgopt='path-exclude=/usr/share/locale/*' --aptopt='Acquire::Languages "none"'
)

# prep_debian: a minimal Debian root (mmdebstrap --variant=minbase, as the
# official image) as <ctx>/<arch>/rootfs.tar. It is made once and kept
# (.cache/images/debian.prep records how), so its digest and everything
# built on it stay the same until FORCE=1 or a changed recipe.
prep_debian() {
	local ctx="$IMAGES_DIR/debian" arch key
	key="$DEBIAN_SUITE ${PLATFORMS[debian]} ${DEBIAN_SOURCES[*]} ${DEBIAN_SLIM[*]}"
	if [ "$FORCE" != 1 ] && [ "$(cat "$IMAGES_DIR/debian.prep" 2>/dev/null)" = "$key" ]; then
		return
	fi
	command -v mmdebstrap >/dev/null || die "mmdebstrap missing (apt package mmdebstrap; hack/env.sh start installs it)"
	rm -f "$IMAGES_DIR/debian.prep" "$IMAGES_DIR/debian.ctxhash"
	ctx="$(fresh_ctx debian)"
	for arch in ${PLATFORMS[debian]}; do
		[ "$arch" = "$(dpkg --print-architecture)" ] || die "the debian stand-in is built for this machine's architecture only, not $arch"
		log "debian: mmdebstrap $DEBIAN_SUITE ($arch, minbase)"
		mkdir -p "$ctx/$arch"
		SOURCE_DATE_EPOCH="$EPOCH" mmdebstrap --quiet --variant=minbase --architectures="$arch" \
			--format=tar --skip=output/dev "${DEBIAN_SLIM[@]}" \
			"$DEBIAN_SUITE" "$ctx/$arch/rootfs.tar" "${DEBIAN_SOURCES[@]}" >&2
	done
	echo "$key" >"$IMAGES_DIR/debian.prep"
}

# The CA certificates the golang stand-in trusts: this machine's, with which
# the build stage reaches the Go module proxy as the host's go does (the
# official image has Debian's ca-certificates).
CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt

# prep_golang: the debian stand-in's rootfs.tar (hard-linked), the Go
# toolchain that runs this script (GOROOT, as go.tar), which must be
# GO_VERSION, and CA_BUNDLE.
prep_golang() {
	local ctx="$IMAGES_DIR/golang" arch goroot gover key
	command -v go >/dev/null || die "go is not on PATH (the golang stand-in copies its toolchain)"
	goroot="$(go env GOROOT)" gover="$(go env GOVERSION)"
	case "$gover." in "go$GO_VERSION".*) ;; *) die "the Dockerfile wants Go $GO_VERSION, this machine has $gover" ;; esac
	prep_debian
	[ -f "$CA_BUNDLE" ] || die "$CA_BUNDLE missing (apt package ca-certificates)"
	key="$gover $goroot $(sha256sum <"$CA_BUNDLE" | cut -d' ' -f1) $(cat "$IMAGES_DIR/debian.prep")"
	if [ "$FORCE" != 1 ] && [ -d "$ctx" ] && [ "$(cat "$IMAGES_DIR/golang.prep" 2>/dev/null)" = "$key" ]; then
		return
	fi
	rm -f "$IMAGES_DIR/golang.prep" "$IMAGES_DIR/golang.ctxhash"
	ctx="$(fresh_ctx golang)"
	for arch in ${PLATFORMS[golang]}; do
		[ "$arch" = "$(go env GOHOSTARCH)" ] || die "the golang stand-in is built for this machine's architecture only, not $arch"
		mkdir -p "$ctx/$arch"
		ln "$IMAGES_DIR/debian/$arch/rootfs.tar" "$ctx/$arch/rootfs.tar"
		# A tar (ADD unpacks it), not a tree: no copy of Go's sources lies in
		# the checkout for gofmt or editors to find.
		tar --sort=name --mtime="@$EPOCH" --owner=0 --group=0 --numeric-owner \
			-C "$goroot" -cf "$ctx/$arch/go.tar" .
		install -m 0644 "$CA_BUNDLE" "$ctx/$arch/ca-certificates.crt"
	done
	echo "$key" >"$IMAGES_DIR/golang.prep"
}

# prep_dockerfile: BuildKit's Dockerfile frontend (the docker/dockerfile image's
# binary), from the BuildKit version hack/tools/buildkit pins.
prep_dockerfile() {
	local ctx arch dir="$ROOT/hack/tools/buildkit" ver
	ver="$(awk '$1 == "require" && $2 == "github.com/moby/buildkit" { print $3 } $1 == "github.com/moby/buildkit" { print $2 }' "$dir/go.mod" | head -1)"
	ctx="$(fresh_ctx dockerfile)"
	for arch in ${PLATFORMS[dockerfile]}; do
		(cd "$dir" && CGO_ENABLED=0 GOOS=linux GOARCH="$arch" go build -trimpath \
			-tags 'netgo static_build osusergo' -ldflags "-s -w -X main.Version=$ver" \
			-o "$ctx/$arch/dockerfile-frontend" github.com/moby/buildkit/frontend/dockerfile/cmd/dockerfile-frontend)
	done
}

# prep_lkbuild: nothing to prepare: the release Dockerfile builds from the
# checkout (see lkbuild_hash and bake_lkbuild).
prep_lkbuild() { :; }

# lkbuild_version and lkbuild_revision: the VERSION and REVISION build
# arguments (image labels) of the frontend image: git describe and the
# commit of the checkout.
lkbuild_version() { "$ROOT/hack/version.sh" version; }
lkbuild_revision() { "$ROOT/hack/version.sh" revision; }

# lkbuild_hash: hash of the release build's inputs: every file of the
# checkout that git tracks or does not ignore (a superset of the build
# context, which .dockerignore trims), the platforms, the version and the
# revision.
lkbuild_hash() {
	{
		echo "${PLATFORMS[lkbuild]} $(lkbuild_version) $(lkbuild_revision)"
		if git -C "$ROOT" rev-parse --git-dir >/dev/null 2>&1; then
			(cd "$ROOT" && git ls-files -z -co --exclude-standard | sort -z |
				xargs -0 sha256sum 2>/dev/null) || true
		else
			date +%s%N # not a checkout: always build (BuildKit's cache keeps it fast)
		fi
	} | sha256sum | cut -d' ' -f1
}

# bake_lkbuild: `docker buildx bake` of docker-bake.hcl's frontend target on
# the lkbuild builder (hack/env.sh), pushed as REFS[lkbuild], for the
# platforms of PLATFORMS[lkbuild].
bake_lkbuild() {
	local ref="$REGISTRY_ADDR/${REFS[lkbuild]}" logf="$IMAGES_DIR/lkbuild.build.log"
	command -v docker >/dev/null && docker buildx version >/dev/null 2>&1 ||
		die "lkbuild: docker buildx is needed (hack/env.sh start installs the plugin and the lkbuild builder)"
	log "lkbuild: docker buildx bake frontend ($(platform_list lkbuild)), pushing $ref"
	if ! (cd "$ROOT" && SOURCE_DATE_EPOCH="$EPOCH" VERSION="$(lkbuild_version)" REVISION="$(lkbuild_revision)" \
		docker buildx bake --builder lkbuild --progress=plain \
		--provenance=false \
		--set "frontend.platform=$(platform_list lkbuild)" \
		--set "frontend.tags=$ref" \
		--set "frontend.output=type=image,push=true,registry.insecure=true,rewrite-timestamp=true" \
		frontend) >"$logf" 2>&1; then
		tail -40 "$logf" >&2
		die "lkbuild: docker buildx bake failed (log: $logf)"
	fi
}

# Images whose context is kept between runs and only made again when its
# recipe changes (hundreds of MB): their context is hashed once, after it is
# made (.cache/images/<name>.ctxhash, removed when it is made again).
KEPT_CTX=(debian golang)

# ctx_hash NAME: hash of NAME's Dockerfile and prepared context.
ctx_hash() {
	local ctx="$IMAGES_DIR/$1" memo="$IMAGES_DIR/$1.ctxhash"
	case " ${KEPT_CTX[*]} " in
	*" $1 "*)
		[ -f "$memo" ] || tar --sort=name --mtime="@$EPOCH" --owner=0 --group=0 --numeric-owner -C "$ctx" -cf - . |
			sha256sum | cut -d' ' -f1 >"$memo"
		{ cat "$ROOT/hack/images/$1/Dockerfile" "$memo"; } | sha256sum | cut -d' ' -f1
		return
		;;
	esac
	{
		cat "$ROOT/hack/images/$1/Dockerfile"
		tar --sort=name --mtime="@$EPOCH" --owner=0 --group=0 --numeric-owner -C "$ctx" -cf - .
	} | sha256sum | cut -d' ' -f1
}

# platform_list NAME: NAME's platforms as buildctl takes them.
platform_list() {
	local a out=()
	for a in ${PLATFORMS[$1]}; do out+=("linux/$a"); done
	(IFS=,; echo "${out[*]}")
}

build_push() {
	local name="$1" ctx="$IMAGES_DIR/$1" ref="$REGISTRY_ADDR/${REFS[$1]}" logf="$IMAGES_DIR/$1.build.log"
	# Fixed timestamps in the context: layers do not change when content does not.
	find "$ctx" -exec touch -h -d "@$EPOCH" {} +
	log "$name: building and pushing $ref"
	if ! buildctl --addr "$BUILDKIT_ADDR" build --progress=plain \
		--frontend dockerfile.v0 \
		--local context="$ctx" --local dockerfile="$ROOT/hack/images/$name" \
		--opt platform="$(platform_list "$name")" --opt build-arg:SOURCE_DATE_EPOCH="$EPOCH" \
		--output "type=image,name=$ref,push=true,registry.insecure=true,rewrite-timestamp=true" \
		>"$logf" 2>&1; then
		tail -40 "$logf" >&2
		die "$name: build failed (log: $logf)"
	fi
}

# with_bases NAME...: NAMEs in ALL's order, with lkbuild's base stand-ins
# added when lkbuild is one of them.
with_bases() {
	local n want=" $* "
	case "$want" in *" lkbuild "*) want="$want ${LKBUILD_BASES[*]} " ;; esac
	for n in "${ALL[@]}"; do
		case "$want" in *" $n "*) echo "$n" ;; esac
	done
}

main() {
	local names=("$@") name repo tag stamp want start t0
	[ "${#names[@]}" -gt 0 ] || names=("${ALL[@]}")
	for name in "${names[@]}"; do
		[ -n "${REFS[$name]:-}" ] || die "unknown image '$name' (one of: ${ALL[*]})"
	done
	names=($(with_bases "${names[@]}"))
	if ! registry_up || ! buildkitd_up; then
		"$ROOT/hack/env.sh" start
	fi
	mkdir -p "$IMAGES_DIR"
	t0=$SECONDS
	for name in "${names[@]}"; do
		start=$SECONDS
		"prep_$name"
		repo="${REFS[$name]%:*}" tag="${REFS[$name]##*:}"
		stamp="$IMAGES_DIR/$name.stamp"
		if [ "$name" = lkbuild ]; then
			want="$(lkbuild_hash)"
			stamp="$IMAGES_DIR/lkbuild-$(echo "${REFS[lkbuild]}" | tr '/:' '__').stamp"
		else
			want="$(ctx_hash "$name")"
		fi
		if [ "$FORCE" != 1 ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ] && manifest_exists "$repo" "$tag"; then
			log "$name: $REGISTRY_ADDR/${REFS[$name]} is up to date"
			continue
		fi
		rm -f "$stamp"
		if [ "$name" = lkbuild ]; then
			bake_lkbuild
		else
			build_push "$name"
		fi
		manifest_exists "$repo" "$tag" || die "$name: pushed but $REGISTRY_ADDR/${REFS[$name]} is not in the registry"
		echo "$want" >"$stamp"
		log "$name: pushed $REGISTRY_ADDR/${REFS[$name]} ($((SECONDS - start))s)"
	done
	log "done in $((SECONDS - t0))s"
}

main "$@"
