# syntax=docker/dockerfile:1
# The lkbuild frontend image: one static binary that is the BuildKit gateway
# frontend (entrypoint), and the `mkimage` helper that frontend runs inside
# builds. `make images` builds the same image offline (hack/images/lkbuild).
ARG GO_VERSION=1.26

FROM --platform=$BUILDPLATFORM golang:${GO_VERSION}-bookworm AS build
WORKDIR /src
ARG TARGETOS TARGETARCH
RUN --mount=type=bind,target=. \
    --mount=type=cache,target=/root/.cache/go-build \
    --mount=type=cache,target=/go/pkg/mod \
    CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH \
    go build -trimpath -ldflags "-s -w" -o /out/lkbuild ./cmd/lkbuild

# Bootloader files for the disk, ISO and UKI formats, from Debian packages.
FROM --platform=$BUILDPLATFORM debian:bookworm-slim AS bootfiles
RUN apt-get update && \
    apt-get install -y --no-install-recommends grub-pc-bin grub-common isolinux syslinux-common systemd-boot-efi && \
    rm -rf /var/lib/apt/lists/*
COPY hack/bootfiles.sh /usr/local/bin/bootfiles.sh
RUN bootfiles.sh / /out/share/lkbuild/boot

FROM scratch
COPY --from=build /out/lkbuild /lkbuild
COPY --from=bootfiles /out/share /share
LABEL moby.buildkit.frontend.network.none="true"
LABEL moby.buildkit.frontend.caps="moby.buildkit.frontend.inputs,moby.buildkit.frontend.subrequests,moby.buildkit.frontend.contexts"
ENTRYPOINT ["/lkbuild", "frontend"]
