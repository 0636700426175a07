package xfrm

import (
	"errors"
	"fmt"

	"golang.org/x/sys/unix"
)

// Interface is an XFRM interface ("ip link add NAME type xfrm if_id N"):
// packets routed into it are encrypted by the SAs and policies with its
// if_id, and decrypted packets of those SAs come out of it.
type Interface struct {
	Name string
	// IfID ties the interface to SAs and policies; must be non-zero unless
	// External.
	IfID uint32
	// Link is an underlying device whose namespace and MTU the interface
	// follows; empty for none.
	Link string
	// External is collect_md mode ("ip link add ... type xfrm external",
	// Linux 6.0+): one interface per namespace serving every if_id, set per
	// packet by BPF (bpf_skb_set_xfrm_info). IfID and Link must be unset.
	External bool
	Up       bool // bring the interface up when adding it
	Index    int  // set by GetInterface
}

// ErrNoXfrmInterface means the kernel cannot make XFRM interfaces.
var ErrNoXfrmInterface = errors.New("kernel has no XFRM interfaces (xfrm_interface module)")

// ErrNoDevice means there is no network device of that name.
var ErrNoDevice = errors.New("no such device")

// rtnetlink attribute numbers (linux/if_link.h).
const (
	iflaXfrmLink        = 1 // IFLA_XFRM_LINK
	iflaXfrmIfID        = 2 // IFLA_XFRM_IF_ID
	iflaXfrmCollectMeta = 3 // IFLA_XFRM_COLLECT_METADATA
	xfrmKind            = "xfrm"
)

func encodeNewInterface(i Interface, linkIndex int) (*request, error) {
	if i.Name == "" || len(i.Name) >= unix.IFNAMSIZ {
		return nil, fmt.Errorf("bad interface name %q", i.Name)
	}
	if i.External && (i.IfID != 0 || i.Link != "") {
		return nil, errors.New("an external (collect_md) interface takes no if_id or link")
	}
	if !i.External && i.IfID == 0 {
		return nil, errors.New("if_id must be non-zero")
	}
	req := newRequest(unix.RTM_NEWLINK, unix.NLM_F_CREATE|unix.NLM_F_EXCL|unix.NLM_F_ACK)
	ifi := unix.IfInfomsg{Family: unix.AF_UNSPEC}
	if i.Up {
		ifi.Flags, ifi.Change = unix.IFF_UP, unix.IFF_UP
	}
	req.fixed(structBytes(&ifi))
	req.attr(unix.IFLA_IFNAME, []byte(i.Name), []byte{0})
	endInfo := req.nest(unix.IFLA_LINKINFO)
	req.attr(unix.IFLA_INFO_KIND, []byte(xfrmKind), []byte{0})
	endData := req.nest(unix.IFLA_INFO_DATA)
	if linkIndex != 0 {
		req.attrU32(iflaXfrmLink, uint32(linkIndex))
	}
	if i.External {
		req.attr(iflaXfrmCollectMeta)
	} else {
		req.attrU32(iflaXfrmIfID, i.IfID)
	}
	endData()
	endInfo()
	return req, nil
}

// AddInterface creates an XFRM interface.
func (c *Conn) AddInterface(i Interface) error {
	var link int
	if i.Link != "" {
		var err error
		if link, err = c.linkIndex(i.Link); err != nil {
			return fmt.Errorf("add xfrm interface %s: %w", i.Name, err)
		}
	}
	req, err := encodeNewInterface(i, link)
	if err == nil {
		err = c.exec(c.route, req, nil)
	}
	if err != nil {
		if errors.Is(err, unix.EOPNOTSUPP) {
			err = fmt.Errorf("%w: %w", ErrNoXfrmInterface, err)
		} else {
			err = classify(err, nil)
		}
		return fmt.Errorf("add xfrm interface %s if_id %d: %w", i.Name, i.IfID, err)
	}
	return nil
}

// GetInterface reads an XFRM interface back.
func (c *Conn) GetInterface(name string) (Interface, error) {
	l, err := c.getLink(name)
	if err != nil {
		return Interface{}, fmt.Errorf("xfrm interface %s: %w", name, err)
	}
	if l.kind != xfrmKind {
		return Interface{}, fmt.Errorf("%s is not an xfrm interface (kind %q)", name, l.kind)
	}
	i := Interface{Name: name, Index: l.index, Up: l.flags&unix.IFF_UP != 0}
	if v, ok := l.data[iflaXfrmIfID]; ok && len(v) >= 4 {
		i.IfID = native.Uint32(v)
	}
	_, i.External = l.data[iflaXfrmCollectMeta]
	if v, ok := l.data[iflaXfrmLink]; ok && len(v) >= 4 && native.Uint32(v) != 0 {
		if ll, err := c.linkByIndex(int(native.Uint32(v))); err == nil {
			i.Link = ll.name
		}
	}
	return i, nil
}

// DeleteInterface removes an XFRM interface; it refuses other devices.
func (c *Conn) DeleteInterface(name string) error {
	i, err := c.GetInterface(name)
	if err != nil {
		return fmt.Errorf("delete %w", err)
	}
	req := newRequest(unix.RTM_DELLINK, unix.NLM_F_ACK)
	ifi := unix.IfInfomsg{Family: unix.AF_UNSPEC, Index: int32(i.Index)}
	req.fixed(structBytes(&ifi))
	if err := c.exec(c.route, req, nil); err != nil {
		return fmt.Errorf("delete xfrm interface %s: %w", name, err)
	}
	return nil
}

// link is what this package reads of an RTM_NEWLINK message.
type link struct {
	name  string
	index int
	flags uint32
	kind  string
	data  map[uint16][]byte // IFLA_INFO_DATA, copied
}

func (c *Conn) linkIndex(name string) (int, error) {
	l, err := c.getLink(name)
	if err != nil {
		return 0, err
	}
	return l.index, nil
}

func (c *Conn) getLink(name string) (link, error) {
	if name == "" || len(name) >= unix.IFNAMSIZ {
		return link{}, fmt.Errorf("bad interface name %q", name)
	}
	req := newRequest(unix.RTM_GETLINK, unix.NLM_F_ACK)
	ifi := unix.IfInfomsg{Family: unix.AF_UNSPEC}
	req.fixed(structBytes(&ifi))
	req.attr(unix.IFLA_IFNAME, []byte(name), []byte{0})
	return c.readLink(req, name)
}

func (c *Conn) linkByIndex(index int) (link, error) {
	req := newRequest(unix.RTM_GETLINK, unix.NLM_F_ACK)
	ifi := unix.IfInfomsg{Family: unix.AF_UNSPEC, Index: int32(index)}
	req.fixed(structBytes(&ifi))
	return c.readLink(req, fmt.Sprintf("#%d", index))
}

func (c *Conn) readLink(req *request, what string) (link, error) {
	var (
		l     link
		found bool
	)
	err := c.exec(c.route, req, func(typ uint16, data []byte) error {
		if typ != unix.RTM_NEWLINK {
			return nil
		}
		var err error
		l, err = parseLink(data)
		found = err == nil
		return err
	})
	if errors.Is(err, unix.ENODEV) || err == nil && !found {
		return link{}, fmt.Errorf("%w: %s", ErrNoDevice, what)
	}
	return l, err
}

func parseLink(data []byte) (link, error) {
	ifi, err := fromBytes[unix.IfInfomsg](data)
	if err != nil {
		return link{}, err
	}
	a, err := attrs(data[align4(unix.SizeofIfInfomsg):])
	if err != nil {
		return link{}, err
	}
	l := link{index: int(ifi.Index), flags: ifi.Flags, data: map[uint16][]byte{}}
	l.name = unix.ByteSliceToString(a[unix.IFLA_IFNAME])
	if info, ok := a[unix.IFLA_LINKINFO]; ok {
		ia, err := attrs(info)
		if err != nil {
			return link{}, err
		}
		l.kind = unix.ByteSliceToString(ia[unix.IFLA_INFO_KIND])
		if d, ok := ia[unix.IFLA_INFO_DATA]; ok {
			da, err := attrs(d)
			if err != nil {
				return link{}, err
			}
			for k, v := range da {
				l.data[k] = append([]byte(nil), v...) // exec reuses its buffer
			}
		}
	}
	return l, nil
}
