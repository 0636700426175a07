// Package vmtest runs the guest tests of package e2e in the VM test guest
// (package internal/vm): it compiles them into a static test binary, boots
// Debian's 6.12 kernel in QEMU with it, and passes or fails on what the
// guest reports. Beside it, a second guest of each extra kernel (Debian
// 12's stock 6.1 by default) runs the loader's tests: every BPF program
// loaded and attached there too. `make vmtest` runs it; plain `go test
// ./...` skips it.
package vmtest
