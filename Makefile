# lkbuild: a BuildKit frontend that builds LinuxKit operating systems.
#
#   make demo       set up everything, build examples/minimal.yml into out/ and boot it in qemu
#   make test       unit tests, then integration and boot tests against the local environment
#   make env        install/start the local registry, buildkitd and the buildx builder (idempotent)
#   make env-stop   stop exactly what `make env` started
#   make images     build and push the frontend image and the offline stand-in images
#   make bench      throughput and peak heap of the artifact writers (no daemon needed), then bench-e2e
#   make bench-e2e  kernel+initrd of LinuxKit's linuxkit.yml end to end in five scenarios (LINUXKIT=<linuxkit>
#                   compares with linuxkit build; BENCHFLAGS='-n 5' etc.; skipped without the environment)
#   make fuzz       fuzz the YAML loader (spec.FuzzLoad) for FUZZTIME (default 2m)

SHELL := /bin/bash
GO ?= go
BIN := bin/lkbuild

.PHONY: all build test test-unit test-integration env env-stop images demo boot lint fmt vet clean bench bench-e2e fuzz

all: build

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "-s -w $$(hack/version.sh ldflags)" -o $(BIN) ./cmd/lkbuild

fmt:
	gofmt -l -w $$(git ls-files '*.go')

vet:
	$(GO) vet ./...

lint: vet
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

# test-unit also fuzzes the YAML loader briefly (make fuzz runs it longer).
test-unit:
	$(GO) test -short ./...
	$(GO) test -run '^$$' -fuzz '^FuzzLoad$$' -fuzztime 15s ./spec

env:
	hack/env.sh start

env-stop:
	hack/env.sh stop

images: env build
	hack/images.sh

# Integration and boot tests need the environment and the images; they are
# skipped with a message under -short.
test-integration: images
	source .lkbuild/env && LKBUILD_INTEGRATION=1 $(GO) test -count=1 -timeout 40m ./...

test: lint test-unit test-integration

# Benchmarks print numbers and ratios; they assert nothing about speed.
bench:
	$(GO) test -run '^$$' -bench . -benchtime 1x ./exporter/...
	$(MAKE) bench-e2e

# The end-to-end benchmark (hack/bench, see hack/README.md) needs the
# environment of `make env` and `make images`; without it, it says so and
# exits 0. It starts a buildkitd of its own (the shared one is left alone).
BENCHFLAGS ?=
bench-e2e: build
	$(GO) run ./hack/bench $(BENCHFLAGS)

# The seed corpus (the hostile inputs and LinuxKit's configs) also runs as a
# plain test in test-unit. An input that fails is saved under
# spec/testdata/fuzz/FuzzLoad; `go test ./spec` then replays it.
FUZZTIME ?= 2m
fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzLoad$$' -fuzztime $(FUZZTIME) ./spec

# The demo sets up only what it needs (no built-in-driver kernel, no test
# images, amd64 only) and prints the time of each step.
demo:
	hack/demo.sh

clean:
	rm -rf bin out
