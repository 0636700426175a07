package main

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// netnsRunDir is where `ip netns add` bind-mounts named network namespaces.
const netnsRunDir = "/run/netns"

// ipNetnsExecName reports whether this process runs under `ip netns exec
// NAME`, and NAME. ip netns exec gives the process a mount namespace of its
// own with a fresh sysfs on /sys, mounted with the namespace's name as its
// source: bpffs under it is private too, so whatever `xdpsec load` pins
// there, and the links that hold XDP and tc attached, go when the process
// exits. That mark is what is checked, against the network namespace this
// process is in (mountinfo's /sys entry, /run/netns/NAME's inode).
func ipNetnsExecName() (string, bool, error) {
	src, fstype, err := sysMount("/proc/self/mountinfo")
	if err != nil {
		return "", false, err
	}
	if fstype != "sysfs" || src == "" || src == "sysfs" || strings.ContainsRune(src, '/') {
		return "", false, nil
	}
	var ns, named unix.Stat_t
	if err := unix.Stat("/proc/self/ns/net", &ns); err != nil {
		return "", false, fmt.Errorf("network namespace: %w", err)
	}
	if err := unix.Stat(filepath.Join(netnsRunDir, src), &named); err != nil {
		return "", false, nil
	}
	return src, named.Dev == ns.Dev && named.Ino == ns.Ino, nil
}

// sysMount returns the source and file system type of the topmost mount on
// /sys in a mountinfo file (proc(5)).
func sysMount(mountinfo string) (source, fstype string, err error) {
	f, err := os.Open(mountinfo)
	if err != nil {
		return "", "", err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// 54 51 0:41 / /sys rw,relatime - sysfs NAME rw
		pre, post, ok := strings.Cut(sc.Text(), " - ")
		fields, tail := strings.Fields(pre), strings.Fields(post)
		if !ok || len(fields) < 5 || len(tail) < 2 || fields[4] != "/sys" {
			continue
		}
		fstype, source = tail[0], tail[1]
	}
	return source, fstype, sc.Err()
}

// refuseIPNetnsExec is load's check: under ip netns exec it would report
// success and leave nothing behind.
func refuseIPNetnsExec() error {
	name, under, err := ipNetnsExecName()
	if err != nil || !under {
		return err
	}
	return fmt.Errorf("refusing to load under `ip netns exec %[1]s`: it gives xdpsec a private /sys, so the pins and links would vanish "+
		"when this command exits and XDP and tc would detach again; enter only the network namespace, keeping the host's /sys and bpffs: "+
		"`nsenter --net=%[2]s/%[1]s xdpsec load ...`", name, netnsRunDir)
}
