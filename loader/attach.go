package loader

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"

	"github.com/xdpsec/xdpsec/bpf"
)

// Names under <pin dir>/links: "<program>@<interface>". bpffs refuses dots
// in names and interface names cannot hold a colon, so dots (VLAN
// interfaces like eth0.100) are written as colons.
func linkPinName(prog, ifname string) string {
	return prog + "@" + strings.ReplaceAll(ifname, ".", ":")
}

func parseLinkPinName(name string) (prog, ifname string, ok bool) {
	prog, ifname, ok = strings.Cut(name, "@")
	return prog, strings.ReplaceAll(ifname, ":", "."), ok
}

// clsactFilterName marks the cls_bpf filters xdpsec adds, so Unload finds them.
const clsactFilterName = "xdpsec_tc_lan"

// clsactPriority is the filter priority of tc_lan on clsact ingress.
const clsactPriority = 0xc0de

func (l *Loaded) attachAll(opts *Options, wan *net.Interface, lans []*net.Interface) error {
	dir := filepath.Join(opts.PinDir, linksDir)
	want := map[string]bool{}
	if wan != nil {
		want[linkPinName(bpf.XdpsecProgXdpWan, wan.Name)] = true
		if err := l.attachXDP(opts, wan, filepath.Join(dir, linkPinName(bpf.XdpsecProgXdpWan, wan.Name))); err != nil {
			return err
		}
	}
	clsact := map[int]bool{}
	for _, lan := range lans {
		name := linkPinName(bpf.XdpsecProgTcLan, lan.Name)
		usedClsact, err := l.attachTC(opts, lan, filepath.Join(dir, name))
		if err != nil {
			return err
		}
		if usedClsact {
			clsact[lan.Index] = true
		} else {
			want[name] = true
		}
	}
	// Interfaces an earlier load attached to and this one does not name.
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if want[e.Name()] || strings.HasPrefix(e.Name(), tmpPinPrefix) {
			continue
		}
		if err := detachPinnedLink(filepath.Join(dir, e.Name())); err != nil {
			return err
		}
		opts.Log.Info("detached", "link", e.Name())
	}
	return removeClsactFilters(clsact)
}

// attachXDP attaches xdp_wan to ifc, or upgrades the program of the link
// an earlier load pinned.
func (l *Loaded) attachXDP(opts *Options, ifc *net.Interface, pin string) error {
	if old, err := link.LoadPinnedLink(pin, nil); err == nil {
		defer old.Close()
		if err := old.Update(l.XDP); err != nil {
			return fmt.Errorf("upgrade xdp_wan on %s: %w", ifc.Name, err)
		}
		opts.Log.Info("upgraded xdp_wan in place", "interface", ifc.Name)
		return nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("open pinned link %s: %w", pin, err)
	}

	attach := func(flags link.XDPAttachFlags) (link.Link, error) {
		return link.AttachXDP(link.XDPOptions{Program: l.XDP, Interface: ifc.Index, Flags: flags})
	}
	var (
		lk  link.Link
		err error
	)
	switch opts.XDPMode {
	case XDPNative:
		lk, err = attach(link.XDPDriverMode)
	case XDPGeneric:
		lk, err = attach(link.XDPGenericMode)
	case XDPAuto:
		lk, err = attach(link.XDPDriverMode)
		if err != nil && !errors.Is(err, unix.EBUSY) && !errors.Is(err, unix.EEXIST) {
			opts.Log.Warn("native XDP refused, falling back to generic XDP (slower: runs after skb allocation)",
				"interface", ifc.Name, "reason", err)
			lk, err = attach(link.XDPGenericMode)
		}
	default:
		return fmt.Errorf("unknown XDP mode %q (want auto, native or generic)", opts.XDPMode)
	}
	if err != nil {
		if errors.Is(err, unix.EBUSY) || errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("attach xdp_wan to %s: %w", ifc.Name, ErrForeignProgram)
		}
		return fmt.Errorf("attach xdp_wan to %s: %w", ifc.Name, err)
	}
	l.links = append(l.links, lk)
	if err := pinReplace(lk.Pin, pin); err != nil {
		return fmt.Errorf("pin XDP link: %w", err)
	}
	opts.Log.Info("attached xdp_wan", "interface", ifc.Name, "mode", xdpAttachMode(ifc.Index))
	return nil
}

// xdpAttachMode asks the kernel how the program on ifindex runs.
func xdpAttachMode(ifindex int) string {
	dev, err := netlink.LinkByIndex(ifindex)
	if err != nil || dev.Attrs().Xdp == nil {
		return "unknown"
	}
	switch dev.Attrs().Xdp.AttachMode {
	case nl.XDP_ATTACHED_DRV:
		return "native"
	case nl.XDP_ATTACHED_SKB:
		return "generic"
	case nl.XDP_ATTACHED_HW:
		return "offload"
	}
	return "none"
}

// attachTC attaches tc_lan to ingress of ifc with tcx, or with a clsact
// filter where tcx is missing or asked not to be used; it reports which.
func (l *Loaded) attachTC(opts *Options, ifc *net.Interface, pin string) (clsact bool, err error) {
	if opts.TCMode != TCClsact {
		if old, err := link.LoadPinnedLink(pin, nil); err == nil {
			defer old.Close()
			if err := old.Update(l.TC); err != nil {
				return false, fmt.Errorf("upgrade tc_lan on %s: %w", ifc.Name, err)
			}
			opts.Log.Info("upgraded tc_lan in place", "interface", ifc.Name)
			return false, nil
		} else if !errors.Is(err, os.ErrNotExist) {
			return false, fmt.Errorf("open pinned link %s: %w", pin, err)
		}
		lk, err := link.AttachTCX(link.TCXOptions{Interface: ifc.Index, Program: l.TC, Attach: ebpf.AttachTCXIngress})
		switch {
		case err == nil:
			l.links = append(l.links, lk)
			if err := pinReplace(lk.Pin, pin); err != nil {
				return false, fmt.Errorf("pin tcx link: %w", err)
			}
			opts.Log.Info("attached tc_lan", "interface", ifc.Name, "hook", "tcx ingress")
			return false, nil
		case opts.TCMode == TCX || !errors.Is(err, ebpf.ErrNotSupported):
			return false, fmt.Errorf("attach tc_lan to %s with tcx: %w", ifc.Name, err)
		}
		opts.Log.Info("kernel has no tcx, using a clsact filter", "interface", ifc.Name)
	}
	// A pinned tcx link from an earlier load would run tc_lan twice.
	if err := detachPinnedLink(pin); err != nil {
		return false, err
	}
	if err := l.attachClsact(ifc); err != nil {
		return false, err
	}
	opts.Log.Info("attached tc_lan", "interface", ifc.Name, "hook", "clsact ingress")
	return true, nil
}

func (l *Loaded) attachClsact(ifc *net.Interface) error {
	nl, err := netlink.LinkByIndex(ifc.Index)
	if err != nil {
		return fmt.Errorf("interface %s: %w", ifc.Name, err)
	}
	qdisc := &netlink.GenericQdisc{
		QdiscAttrs: netlink.QdiscAttrs{LinkIndex: ifc.Index, Handle: netlink.MakeHandle(0xffff, 0), Parent: netlink.HANDLE_CLSACT},
		QdiscType:  "clsact",
	}
	if err := netlink.QdiscReplace(qdisc); err != nil {
		return fmt.Errorf("add clsact qdisc to %s: %w", ifc.Name, err)
	}
	filter := &netlink.BpfFilter{
		FilterAttrs: netlink.FilterAttrs{
			LinkIndex: nl.Attrs().Index,
			Parent:    netlink.HANDLE_MIN_INGRESS,
			Handle:    1,
			Protocol:  unix.ETH_P_ALL,
			Priority:  clsactPriority,
		},
		Fd:           l.TC.FD(),
		Name:         clsactFilterName,
		DirectAction: true,
	}
	if err := netlink.FilterReplace(filter); err != nil {
		return fmt.Errorf("add tc_lan filter to %s: %w", ifc.Name, err)
	}
	return nil
}

// detachPinnedLink removes a pinned link, which detaches its program.
func detachPinnedLink(path string) error {
	lk, err := link.LoadPinnedLink(path, nil)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		// Not a link (or from an incompatible version): drop the pin.
		if rmErr := os.Remove(path); rmErr != nil {
			return fmt.Errorf("open pinned link %s: %w", path, err)
		}
		return nil
	}
	defer lk.Close()
	if err := lk.Unpin(); err != nil {
		return fmt.Errorf("unpin %s: %w", path, err)
	}
	return nil
}

// removeClsactFilters deletes xdpsec's clsact filters from every interface
// except those in keep, and the clsact qdisc where nothing else uses it.
func removeClsactFilters(keep map[int]bool) error {
	links, err := netlink.LinkList()
	if err != nil {
		return fmt.Errorf("list interfaces: %w", err)
	}
	for _, nl := range links {
		idx := nl.Attrs().Index
		if keep[idx] {
			continue
		}
		filters, err := netlink.FilterList(nl, netlink.HANDLE_MIN_INGRESS)
		if err != nil {
			continue // no clsact on this interface
		}
		removed := false
		for _, f := range filters {
			if bf, ok := f.(*netlink.BpfFilter); ok && bf.Name == clsactFilterName {
				if err := netlink.FilterDel(f); err != nil {
					return fmt.Errorf("remove tc_lan filter from %s: %w", nl.Attrs().Name, err)
				}
				removed = true
			}
		}
		if removed {
			removeIdleClsact(nl)
		}
	}
	return nil
}

func removeIdleClsact(nl netlink.Link) {
	for _, parent := range []uint32{netlink.HANDLE_MIN_INGRESS, netlink.HANDLE_MIN_EGRESS} {
		if fs, err := netlink.FilterList(nl, parent); err != nil || len(fs) > 0 {
			return
		}
	}
	netlink.QdiscDel(&netlink.GenericQdisc{
		QdiscAttrs: netlink.QdiscAttrs{LinkIndex: nl.Attrs().Index, Handle: netlink.MakeHandle(0xffff, 0), Parent: netlink.HANDLE_CLSACT},
		QdiscType:  "clsact",
	})
}
