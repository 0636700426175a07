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
# The VM tests: one QEMU boot per test binary, minutes under TCG.
VMTEST_TIMEOUT ?= 65m

# Debian packages: the BPF toolchain and headers, and the tools tests drive.
APT_PACKAGES := $(CLANG) llvm-$(CLANG_VERSION) libbpf-dev linux-libc-dev iproute2 util-linux
# ... and what the VM tests boot with (the guest kernel itself is fetched by
# internal/vm with apt-get download into .cache/vm/).
VM_APT_PACKAGES := qemu-system-x86 busybox-static xz-utils etcd-server keepalived
# The guest kernel: Debian 12's 6.12 (bookworm-security, bookworm-backports).
VM_KERNEL_PACKAGE ?= linux-image-6.12-amd64
# More guest kernels (space-separated packages), each booted once beside
# the main guest to load and attach every BPF program (the loader's tests):
# by default Debian 12's stock kernel, 6.1 (linux-image-amd64). Empty: none.
VM_EXTRA_KERNELS ?= linux-image-amd64
# strongSwan's charon and swanctl for the interop tests (interop/): the
# standard plugins hold openssl and gcm, the extra ones kdf, curve25519 and
# (in libcharon-extra-plugins) kernel-libipsec, charon's userspace ESP for
# kernels without it, eap-identity and eap-md5 (libcharon-extra-plugins) and
# eap-mschapv2 (libcharon-extauth-plugins) for the remote-access tests,
# xauth-generic (libcharon-extauth-plugins) and unity (libcharon-extra-plugins)
# for the IKEv1 XAuth tests; nftables drops and masquerades packets in the tests.
APT_PACKAGES += strongswan-charon strongswan-swanctl libstrongswan-standard-plugins \
	libstrongswan-extra-plugins libcharon-extra-plugins libcharon-extauth-plugins nftables
# FreeRADIUS for the RADIUS client's integration tests (internal/radius):
# the tests write their own configuration and start it on loopback.
APT_PACKAGES += freeradius
# etcd for the fleet tests (internal/fleet, TestFleet...): the tests start
# Debian's /usr/bin/etcd on loopback themselves; the package's own service
# is not used. keepalived moves the fleet's shared address in the VM test.
APT_PACKAGES += etcd-server keepalived
# mmdebstrap makes the Debian 13 (trixie) chroot with strongSwan 6 of the
# interop tests that need charon 6 (make sw6).
APT_PACKAGES += mmdebstrap

# What `xdpsec --version` prints (cmd/xdpsec/version.go); a binary built
# without these takes the Go toolchain's build information.
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo unknown)
COMMIT ?= $(shell git rev-parse HEAD 2>/dev/null || echo unknown)
LDFLAGS := -X main.version=$(VERSION) -X main.commit=$(COMMIT)

.PHONY: all build demo sw6 bench-vm bench-kernel bench-clients bench-ra bench-rekey bench-pq bench-ike charon-lt generate check-generated deps vmdeps vet test test-short vmtest bench fuzz clean

all: build

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o bin/xdpsec ./cmd/xdpsec

# The README's first command: the example configuration (dist/swanctl.conf)
# between two sites in network namespaces, traffic through it, and each
# gateway's list-sas and stats. On a kernel without ESP (or as non-root)
# it runs in the VM test guest, so it needs what `make vmtest` needs.
# Static binaries: the guest runs them from the host's files.
demo:
	@if [ "$$(id -u)" = 0 ]; then $(MAKE) --no-print-directory vmdeps; fi
	CGO_ENABLED=0 $(GO) build -ldflags "$(LDFLAGS)" -o bin/xdpsec ./cmd/xdpsec
	CGO_ENABLED=0 $(GO) build -o bin/xdpsec-demo ./cmd/xdpsec-demo
	bin/xdpsec-demo -xdpsec bin/xdpsec $(DEMO_FLAGS)

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

test: deps charon-lt sw6 check-generated vet
	$(GO) test -count=1 -timeout $(TEST_TIMEOUT) ./...
	$(MAKE) vmtest

# What the VM tests need, where it can be had: without root (or without the
# mirror) this says so and the VM tests skip with the reason.
vmdeps:
	@missing=""; for p in $(VM_APT_PACKAGES); do \
		dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ "$$(id -u)" != 0 ]; then \
		[ -z "$$missing" ] || echo "vmtest: need root to install:$$missing; the VM tests will skip" >&2; \
		exit 0; \
	fi; \
	export DEBIAN_FRONTEND=noninteractive; \
	if [ -n "$$missing" ] || ! apt-cache show $(VM_KERNEL_PACKAGE) $(VM_EXTRA_KERNELS) >/dev/null 2>&1; then \
		apt-get update -qq || echo "vmtest: apt-get update failed" >&2; \
	fi; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		apt-get install -y -qq --no-install-recommends $$missing >/dev/null || echo "vmtest: cannot install$$missing; the VM tests will skip" >&2; \
	fi

# The VM test level: QEMU (TCG) boots Debian's $(VM_KERNEL_PACKAGE) with the
# host's root shared read-only; package vmtest runs the e2e tests in it
# and, in a second guest beside it, the loader's tests on each of
# $(VM_EXTRA_KERNELS); internal/vm checks the harness itself. Kernels and
# initramfs images are cached in .cache/vm/, one directory per package
# version. One package at a time (-p 1): more TCG guests on a small machine
# only slow each other down.
vmtest: vmdeps
	XDPSEC_VMTEST=1 XDPSEC_VM_KERNEL_PACKAGE=$(VM_KERNEL_PACKAGE) XDPSEC_VM_EXTRA_KERNELS="$(VM_EXTRA_KERNELS)" \
		$(GO) test -count=1 -p 1 -v -timeout $(VMTEST_TIMEOUT) ./internal/vm/ ./vmtest/

# charon with strongSwan's load-tester plugin, the like-for-like responder
# of the IKE benchmarks (fake_kernel: no kernel work, as our dry-run):
# built once from Debian's strongswan source by bench/charon-lt.sh (about
# 2 minutes on 2 CPUs) and cached in $(CHARON_LT_DIR); later runs find
# it and do nothing. Without root, or where the build fails, this says so
# and the comparison with it skips with the reason.
CHARON_LT_DIR ?= .cache/charon-lt
charon-lt:
	@if [ "$$(id -u)" != 0 ] && [ ! -f $(CHARON_LT_DIR)/inst/.built ]; then \
		echo "charon-lt: need root to build charon with load-tester; its comparison will skip" >&2; \
	else bench/charon-lt.sh $(CHARON_LT_DIR) || echo "charon-lt: build failed; the comparison with charon (load-tester) will skip" >&2; fi

# strongSwan 6 for the interop tests that need it (interop/sw6_test.go):
# Debian 13 (trixie)'s strongswan-charon, swanctl and plugin packages in a
# chroot made by interop/strongswan6.sh with mmdebstrap (about 20 seconds,
# 130 MB), with strongSwan's ML-KEM plugin (which Debian's build leaves
# out) built from Debian's source of the same version (about a minute),
# cached in $(SW6_DIR)/root; later runs find it and do nothing.
# Without root, or where it fails, this says so and those tests skip with
# the reason (XDPSEC_REQUIRE_SW6=1 makes them fail instead).
SW6_DIR ?= .cache/sw6
sw6:
	@if [ "$$(id -u)" != 0 ] && [ ! -f $(SW6_DIR)/.built ]; then \
		echo "sw6: need root to make the trixie chroot with strongSwan 6; its interop tests will skip" >&2; \
	else interop/strongswan6.sh $(SW6_DIR) || echo "sw6: making the chroot failed; the strongSwan 6 interop tests will skip" >&2; fi

# Unit tests only: no root, no BPF (those skip with the reason).
test-short:
	$(GO) test -short ./...

# Runs fuzz targets one after the other, each for FUZZTIME (go test runs
# only one -fuzz target at a time). FUZZ picks targets by package and
# name; the default is the stateful IKE targets, which feed sequences of
# real and forged datagrams to two engines. New failing inputs land in
# the package's testdata/fuzz/ and are run by every go test from then on.
# Minimisation is bounded so that the run fuzzes instead of minimising.
FUZZTIME ?= 5m
FUZZ ?= ./ike:FuzzStatefulV1 ./ike:FuzzStatefulV2 ./ike:FuzzStatefulPQ
fuzz:
	@set -e; for t in $(FUZZ); do pkg=$${t%%:*}; name=$${t##*:}; \
		echo "== $$pkg $$name for $(FUZZTIME)"; \
		$(GO) test -run '^$$' -fuzz "^$$name\$$" -fuzztime $(FUZZTIME) -fuzzminimizetime 100x $$pkg; \
	done

# Runs the host benchmarks (as root) and rewrites bench/README.md and the
# SVG charts beside it; the IKE go test benchmarks' output goes in as is,
# and bin/xdpsec is the responder compared with charon and flooded.
BENCH_IKE_SAS ?= 10000
# IKE SAs of the large run (ours with the state file on, charon with
# load-tester at the same count, three rounds); 0 leaves it out.
BENCH_LARGE_SAS ?= 100000
# IKE SAs of the rekey spread runs (make bench and make bench-rekey); the
# checkpoint cost is measured at 1,000, 10,000 and 100,000 SAs up to it.
BENCH_REKEY_SAS ?= 100000
# Remote-access clients per responder (make bench and make bench-ra).
BENCH_RA_CLIENTS ?= $(or $(XDPSEC_BENCH_RA_CLIENTS),10000)
# IKE SAs per run of the post-quantum comparison (make bench and make
# bench-pq): ours and charon 6, each with x25519, x25519-ke1_mlkem768 and
# x25519-ke1_ecp384.
BENCH_PQ_SAS ?= 3000
# The IKE go test benchmarks and a profile of one establishment
# (BenchmarkIKEEstablish/memory: pprof's top by CPU, bytes and objects
# allocated), into the directory $$prof.
IKE_GO_BENCH = $(GO) test -run '^$$' -bench IKE -benchtime 2000x -count 3 -timeout 30m ./bench/ | tee $$prof/ike.txt && \
	$(GO) test -run '^$$' -bench 'IKEEstablish/memory' -benchtime 5000x -benchmem -o $$prof/bench.test \
		-cpuprofile $$prof/cpu.prof -memprofile $$prof/mem.prof ./bench/ | grep '^Benchmark' >$$prof/bench.txt && \
	$(GO) tool pprof -top $$prof/bench.test $$prof/cpu.prof >$$prof/cpu.txt 2>/dev/null && \
	$(GO) tool pprof -sample_index=alloc_space -top $$prof/bench.test $$prof/mem.prof >$$prof/alloc_space.txt 2>/dev/null && \
	$(GO) tool pprof -sample_index=alloc_objects -top $$prof/bench.test $$prof/mem.prof >$$prof/alloc_objects.txt 2>/dev/null
bench: deps build charon-lt sw6
	@prof=$$(mktemp -d); trap 'rm -rf $$prof' EXIT; \
	$(IKE_GO_BENCH) && \
	$(GO) run ./bench/mkreport -dir bench -ike $$prof/ike.txt -ike-prof $$prof -xdpsec bin/xdpsec -sas $(BENCH_IKE_SAS) \
		-large-sas $(BENCH_LARGE_SAS) -ra-clients $(BENCH_RA_CLIENTS) -rekey-sas $(BENCH_REKEY_SAS) -pq-sas $(BENCH_PQ_SAS)
	$(MAKE) bench-kernel

# Only the IKE part (the go test benchmarks and profile, our responder
# against charon with load-tester and with kernel-libipsec, the large
# run, the flood); rewrites only the IKE sections of bench/README.md.
bench-ike: deps build charon-lt
	@prof=$$(mktemp -d); trap 'rm -rf $$prof' EXIT; \
	$(IKE_GO_BENCH) && \
	$(GO) run ./bench/mkreport -dir bench -ike-only -ike $$prof/ike.txt -ike-prof $$prof -xdpsec bin/xdpsec -sas $(BENCH_IKE_SAS) \
		-large-sas $(BENCH_LARGE_SAS)

# Only the remote-access establishments (EAP-MSCHAPv2 with a pool lease,
# our daemon against charon, as root); rewrites only that section of
# bench/README.md. `make bench` runs it too.
bench-ra: deps build
	$(GO) run ./bench/mkreport -dir bench -ra-only -xdpsec bin/xdpsec -ra-clients $(BENCH_RA_CLIENTS)

# Only the post-quantum comparison (issue 21): the same generator against
# our daemon and then charon 6 from the sw6 chroot (kernel-libipsec), each
# with x25519, x25519-ke1_mlkem768 and x25519-ke1_ecp384, BENCH_PQ_SAS IKE
# SAs per run, fastest of 3 rounds (about 4 minutes), as root; rewrites only that section of
# bench/README.md. charon 6 is left out, with the reason in the section,
# where `make sw6` could not make its chroot. `make bench` runs it too.
bench-pq: deps build sw6
	$(GO) run ./bench/mkreport -dir bench -pq-only -xdpsec bin/xdpsec -pq-sas $(BENCH_PQ_SAS)

# Only the rekey spread (BENCH_REKEY_SAS IKE SAs established at once, then
# the responder rekeys them for 5 min 20 s, with rand_time and without: two
# runs of about 8 minutes; a tenth of them rekeyed every minute for 8
# minutes, the steady state) and the checkpoint cost per SA change (1,000
# to 100,000 SAs, about 5 minutes), as root; rewrites only that section of
# bench/README.md.
# `make bench` runs it too.
bench-rekey: deps build
	$(GO) run ./bench/mkreport -dir bench -rekey-only -xdpsec bin/xdpsec -rekey-sas $(BENCH_REKEY_SAS)

# Only the outbound lookup per remote-access client (kernel XFRM policies
# against tc_lan, 10 to 100,000 clients, as root); rewrites only that
# section of bench/README.md. `make bench` runs it too.
bench-clients:
	$(GO) run ./bench/mkreport -dir bench -clients-only

# The VM part of the benchmarks: the same TCP transfer through a tunnel of
# our daemons and through one of charon's, side by side in the guest
# (e2e TestTransferOursVsCharon); rewrites only that section of
# bench/README.md. Functional numbers: the guest runs under TCG.
bench-vm: vmdeps
	@tmp=$$(mktemp); trap 'rm -f $$tmp' EXIT; \
	XDPSEC_VMTEST=1 XDPSEC_VM_BENCH=1 XDPSEC_VM_KERNEL_PACKAGE=$(VM_KERNEL_PACKAGE) XDPSEC_E2E_RUN='^TestTransferOursVsCharon$$' \
		$(GO) test -count=1 -v -timeout $(VMTEST_TIMEOUT) ./vmtest/ | tee $$tmp; \
	[ $${PIPESTATUS[0]} = 0 ] && $(GO) run ./bench/mkreport -dir bench -vm-only -vm $$tmp

# The kernel at scale, in the VM guest: $(BENCH_KERNEL_TUNNELS) route-based
# tunnels (real XFRM SAs and policies) brought up against our daemon, then
# against charon (kernel-netlink) with the same swanctl.conf and initiators
# (e2e TestKernelScale), with a CPU profile of our daemon; rewrites only
# that section of bench/README.md. `make bench` runs it too.
BENCH_KERNEL_TUNNELS ?= 10000
# The guest test's time limit: 10,000 tunnels against both responders
# take about 40 minutes under TCG on 2 CPUs.
BENCH_KERNEL_TIMEOUT ?= 100m
bench-kernel: vmdeps
	@tmp=$$(mktemp -d); trap 'rm -rf $$tmp' EXIT; \
	XDPSEC_VMTEST=1 XDPSEC_VM_BENCH=1 XDPSEC_VM_KERNEL_PACKAGE=$(VM_KERNEL_PACKAGE) XDPSEC_E2E_RUN='^TestKernelScale$$' \
	XDPSEC_KSCALE_TUNNELS=$(BENCH_KERNEL_TUNNELS) XDPSEC_KSCALE_CPUPROFILE=$$tmp/cpu.prof XDPSEC_VM_TEST_TIMEOUT=$(BENCH_KERNEL_TIMEOUT) \
		$(GO) test -count=1 -v -timeout 2h ./vmtest/ | tee $$tmp/out; \
	[ $${PIPESTATUS[0]} = 0 ] || exit 1; \
	if [ -f $$tmp/cpu.prof ]; then $(GO) tool pprof -top -cum -nodecount 40 $$tmp/cpu.prof 2>/dev/null | \
		sed 's/^/XDPSEC-BENCH vm-kscale-prof /' >>$$tmp/out; fi; \
	$(GO) run ./bench/mkreport -dir bench -kscale-only -kscale $$tmp/out

clean:
	rm -rf bin
