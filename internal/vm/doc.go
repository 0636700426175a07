// Package vm boots a Linux kernel in QEMU and runs one command in it: the
// VM test level, where tests need a kernel the host does not give them
// (real XFRM ESP, XFRM interfaces, a known kernel version).
//
// The guest runs busybox from a small initramfs that carries the kernel
// modules the tests need, mounts the host's root read-only over virtio-9p,
// puts tmpfs on the directories that must be writable, and runs the command
// chrooted into the host's userland, so it finds ip, ping and the test
// binary at the same paths as on the host. The command's exit status comes
// back on the serial console in a marker line.
//
// Prepare fetches a Debian kernel package and builds the initramfs, both
// cached; Run boots them. The package knows nothing of xdpsec.
package vm
