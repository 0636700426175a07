# xdpsec build, test and benchmark entry points.
#
# `make test` is what CI runs: it installs what the tests need on a fresh
# Debian machine (as root), checks that the committed BPF objects are what
# the C sources produce, vets, and runs every test.

SHELL := /bin/bash
GO ?= $(shell command -v go 2>/dev/null || echo /usr/local/go/bin/go)
# The one clang the committed objects are built with (Debian 12's clang-19).
CLANG_VERSION := 19
CLANG := clang-$(CLANG_VERSION)
TEST_TIMEOUT ?= 45m

# Debian packages: the BPF toolchain and headers, and the tools tests drive.
APT_PACKAGES := $(CLANG) llvm-$(CLANG_VERSION) libbpf-dev linux-libc-dev iproute2 util-linux
# strongSwan's charon and swanctl for the interop tests (interop/): the
# standard plugins hold openssl and gcm, the extra ones kdf, curve25519 and
# (in libcharon-extra-plugins) kernel-libipsec, charon's userspace ESP for
# kernels without it; nftables drops and masquerades packets in the tests.
APT_PACKAGES += strongswan-charon strongswan-swanctl libstrongswan-standard-plugins \
	libstrongswan-extra-plugins libcharon-extra-plugins nftables

.PHONY: all build generate check-generated deps vet test test-short bench clean

all: build

build:
	$(GO) build -o bin/xdpsec ./cmd/xdpsec

# Rebuild the BPF objects and their Go bindings from bpf/*.c.
generate: deps
	$(GO) generate ./bpf/

# Install missing Debian packages (needs root and the Debian mirror).
deps:
	@missing=""; for p in $(APT_PACKAGES); do \
		dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		if [ "$$(id -u)" != 0 ]; then echo "need root to install:$$missing" >&2; exit 1; fi; \
		export DEBIAN_FRONTEND=noninteractive; \
		apt-get update -qq && apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi

# The committed bpf/*_bpfel.{go,o} must be exactly what the sources give.
check-generated: deps
	@tmp=$$(mktemp -d); trap 'rm -rf $$tmp' EXIT; \
	git ls-files -z | xargs -0 -I{} cp --parents {} $$tmp/ 2>/dev/null || cp -r . $$tmp/; \
	(cd $$tmp && $(GO) generate ./bpf/) || exit 1; \
	status=0; for f in bpf/*_bpfel.go bpf/*_bpfel.o; do \
		if ! cmp -s $$f $$tmp/$$f; then echo "$$f differs from what the C sources produce: run 'make generate' and commit" >&2; status=1; fi; \
	done; \
	[ $$status = 0 ] && echo "generated BPF objects match their sources"; exit $$status

vet:
	$(GO) vet ./...
	@bad=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$bad" ]; then echo "gofmt needed: $$bad" >&2; exit 1; fi

test: deps check-generated vet
	$(GO) test -count=1 -timeout $(TEST_TIMEOUT) ./...

# Unit tests only: no root, no BPF (those skip with the reason).
test-short:
	$(GO) test -short ./...

bench: deps
	$(GO) test -run '^$$' -bench . -benchtime 1x -timeout 60m ./bench/ | tee bench/results.txt

clean:
	rm -rf bin bench/results.txt
