package loader

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/vishvananda/netlink"

	"github.com/xdpsec/xdpsec/bpf"
	"github.com/xdpsec/xdpsec/maps"
)

// ErrNotLoaded means there is nothing pinned to unload or inspect.
var ErrNotLoaded = maps.ErrNotLoaded

// Unload detaches every program xdpsec attached and removes every pin
// under dir, then dir itself. Unloading what is not loaded is no error.
func Unload(dir string) error {
	if dir == "" {
		dir = DefaultPinDir
	}
	if os.Geteuid() != 0 {
		return ErrNotRoot
	}
	if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
		return removeClsactFilters(nil)
	}
	unlock, err := lockDir(dir)
	if err != nil {
		return err
	}
	defer unlock()

	links, _ := os.ReadDir(filepath.Join(dir, linksDir))
	for _, e := range links {
		if err := detachPinnedLink(filepath.Join(dir, linksDir, e.Name())); err != nil {
			return err
		}
	}
	if err := removeClsactFilters(nil); err != nil {
		return err
	}
	for _, sub := range []string{linksDir, progsDir, maps.MapsDir} {
		entries, _ := os.ReadDir(filepath.Join(dir, sub))
		for _, e := range entries {
			if err := os.Remove(filepath.Join(dir, sub, e.Name())); err != nil {
				return fmt.Errorf("unpin: %w", err)
			}
		}
		if err := os.Remove(filepath.Join(dir, sub)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("remove %s: %w", sub, err)
		}
	}
	if err := os.Remove(dir); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove pin dir (something else is pinned there?): %w", err)
	}
	return nil
}

// Attachment is one place xdpsec's programs are attached.
type Attachment struct {
	Program   string `json:"program"`
	Interface string `json:"interface"`
	Ifindex   int    `json:"ifindex"`
	Hook      string `json:"hook"` // xdp native/generic, tcx ingress, clsact ingress
	ProgramID uint32 `json:"program_id"`
	LinkID    uint32 `json:"link_id,omitempty"`
}

// Attachments lists where the pinned programs are attached.
func Attachments(dir string) ([]Attachment, error) {
	if dir == "" {
		dir = DefaultPinDir
	}
	entries, err := os.ReadDir(filepath.Join(dir, linksDir))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%w (no %s)", ErrNotLoaded, dir)
	}
	if err != nil {
		return nil, err
	}
	var out []Attachment
	for _, e := range entries {
		prog, ifname, ok := parseLinkPinName(e.Name())
		if !ok {
			continue
		}
		lk, err := link.LoadPinnedLink(filepath.Join(dir, linksDir, e.Name()), nil)
		if err != nil {
			return nil, fmt.Errorf("open pinned link %s: %w", e.Name(), err)
		}
		info, err := lk.Info()
		lk.Close()
		if err != nil {
			return nil, fmt.Errorf("link %s: %w", e.Name(), err)
		}
		a := Attachment{Program: prog, Interface: ifname, ProgramID: uint32(info.Program), LinkID: uint32(info.ID)}
		switch info.Type {
		case link.XDPType:
			if x := info.XDP(); x != nil {
				a.Ifindex = int(x.Ifindex)
			}
			a.Hook = "xdp " + xdpAttachMode(a.Ifindex)
		case link.TCXType:
			if x := info.TCX(); x != nil {
				a.Ifindex = int(x.Ifindex)
			}
			a.Hook = "tcx ingress"
		}
		out = append(out, a)
	}
	// clsact filters carry no link: find them by name.
	nls, err := netlink.LinkList()
	if err != nil {
		return nil, err
	}
	for _, nl := range nls {
		filters, err := netlink.FilterList(nl, netlink.HANDLE_MIN_INGRESS)
		if err != nil {
			continue
		}
		for _, f := range filters {
			if bf, ok := f.(*netlink.BpfFilter); ok && bf.Name == clsactFilterName {
				out = append(out, Attachment{Program: bpf.XdpsecProgTcLan, Interface: nl.Attrs().Name,
					Ifindex: nl.Attrs().Index, Hook: "clsact ingress", ProgramID: uint32(bf.Id)})
			}
		}
	}
	return out, nil
}

// OpenTC opens the pinned tc_lan program, for test runs.
func OpenTC(dir string) (*ebpf.Program, error) {
	if dir == "" {
		dir = DefaultPinDir
	}
	p, err := ebpf.LoadPinnedProgram(ProgPath(dir, bpf.XdpsecProgTcLan), nil)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%w (no pinned tc_lan under %s)", ErrNotLoaded, dir)
	}
	return p, err
}
