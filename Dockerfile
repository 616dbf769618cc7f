# syntax=docker/dockerfile:1
# The lkbuild frontend image: one static binary that is the BuildKit gateway
# frontend (entrypoint), and the `mkimage` helper that frontend runs inside
# builds. Built with `docker buildx bake` (docker-bake.hcl, docs/release.md);
# `make images` builds this same file for the tests, on offline stand-ins of
# its base images (hack/images.sh).
ARG GO_VERSION=1.26

FROM --platform=$BUILDPLATFORM golang:${GO_VERSION}-bookworm AS build
WORKDIR /src
ARG TARGETOS TARGETARCH
# lkbuild's version and commit (hack/version.sh version|revision): the
# context has no .git for the toolchain to read them from.
ARG VERSION REVISION
RUN --mount=type=bind,target=. \
    --mount=type=cache,target=/root/.cache/go-build \
    --mount=type=cache,target=/go/pkg/mod \
    CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH \
    go build -trimpath -ldflags "-s -w -X github.com/lkbuild/lkbuild/internal/version.version=${VERSION} -X github.com/lkbuild/lkbuild/internal/version.revision=${REVISION}" -o /out/lkbuild ./cmd/lkbuild

# Bootloader files for the disk, ISO and UKI formats, from Debian packages.
# The packages are unpacked, not installed: the grub-mkimage that runs is
# the unpacked one (grub-common of the build platform, so nothing runs
# emulated), and both architectures' systemd-boot-efi sit side by side.
FROM --platform=$BUILDPLATFORM debian:bookworm-slim AS bootfiles
WORKDIR /debs
RUN for a in amd64 arm64; do \
        [ "$a" = "$(dpkg --print-architecture)" ] || dpkg --add-architecture "$a"; \
    done && apt-get update && \
    apt-get install -y --no-install-recommends libdevmapper1.02.1 liblzma5 && \
    apt-get download grub-pc-bin:amd64 grub-common isolinux syslinux-common \
        systemd-boot-efi:amd64 systemd-boot-efi:arm64 && \
    for d in *.deb; do dpkg -x "$d" /root-bootfiles; done && \
    rm -rf /var/lib/apt/lists/*
COPY hack/bootfiles.sh /usr/local/bin/bootfiles.sh
RUN bootfiles.sh /root-bootfiles /out/share/lkbuild/boot

FROM scratch
# The release's version (its tag) and the commit it was built from
# (docker-bake.hcl's VERSION and REVISION).
ARG VERSION REVISION
LABEL org.opencontainers.image.version="${VERSION}"
LABEL org.opencontainers.image.revision="${REVISION}"
COPY --from=build /out/lkbuild /lkbuild
COPY --from=bootfiles /out/share /share
LABEL moby.buildkit.frontend.network.none="true"
LABEL moby.buildkit.frontend.caps="moby.buildkit.frontend.inputs,moby.buildkit.frontend.subrequests,moby.buildkit.frontend.contexts"
ARG VERSION REVISION
LABEL org.opencontainers.image.version="${VERSION}" org.opencontainers.image.revision="${REVISION}"
ENTRYPOINT ["/lkbuild", "frontend"]
