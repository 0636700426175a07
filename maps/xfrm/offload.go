package xfrm

import (
	"errors"
	"fmt"
	"strings"

	"golang.org/x/sys/unix"
)

// OffloadMode says whether an SA's ESP processing is handed to the NIC,
// with strongSwan's hw_offload values.
type OffloadMode uint8

const (
	OffloadNo     OffloadMode = iota // software only
	OffloadYes                       // crypto offload; a refusal is an error
	OffloadAuto                      // crypto offload if the device takes it, else software
	OffloadPacket                    // packet offload; a refusal is an error
)

func (m OffloadMode) String() string {
	switch m {
	case OffloadNo:
		return "no"
	case OffloadYes:
		return "yes"
	case OffloadAuto:
		return "auto"
	case OffloadPacket:
		return "packet"
	}
	return fmt.Sprintf("offload(%d)", uint8(m))
}

// ParseOffloadMode reads a swanctl.conf hw_offload value.
func ParseOffloadMode(s string) (OffloadMode, error) {
	switch strings.ToLower(s) {
	case "no", "":
		return OffloadNo, nil
	case "yes", "crypto":
		return OffloadYes, nil
	case "auto":
		return OffloadAuto, nil
	case "packet":
		return OffloadPacket, nil
	}
	return 0, fmt.Errorf("unknown hw_offload value %q (want no, yes, auto or packet)", s)
}

// Offload asks for an SA to be offloaded to a device.
type Offload struct {
	Mode   OffloadMode
	Device string // interface name, in the Conn's namespace
}

// OffloadInfo is the offload the kernel reports for an SA.
type OffloadInfo struct {
	Ifindex int
	Inbound bool
	Packet  bool // packet offload, else crypto offload
}

// OffloadError is a device's refusal to offload an SA.
type OffloadError struct {
	Device string
	Err    error // the kernel's reason
}

func (e *OffloadError) Error() string {
	return "hw offload on " + e.Device + " refused: " + e.Err.Error()
}

func (e *OffloadError) Unwrap() error { return e.Err }

// ErrNotOffloaded is the reason given when the kernel accepted an offload
// request but installed the SA in software: it does so, without a word,
// for devices with no IPsec offload (no xfrmdev_ops, esp-hw-offload off)
// or whose driver declines the SA with EOPNOTSUPP.
var ErrNotOffloaded = fmt.Errorf("%w (the kernel installed the SA in software)", unix.EOPNOTSUPP)

// OffloadResult says what became of an offload request.
type OffloadResult struct {
	Device    string
	Offloaded bool          // the kernel reports the SA offloaded to Device
	Refused   *OffloadError // mode auto: why the SA runs in software instead
}

// String is the log line for a fallback, empty when there is nothing to say.
func (r OffloadResult) String() string {
	if r.Refused == nil {
		return ""
	}
	return r.Refused.Error() + ", falling back to software"
}

// Flags of struct xfrm_user_offload.
const (
	offloadIPv6    = 1 // XFRM_OFFLOAD_IPV6
	offloadInbound = 2 // XFRM_OFFLOAD_INBOUND
	offloadPacket  = 4 // XFRM_OFFLOAD_PACKET
)

// offloadAttr is struct xfrm_user_offload, the value of XFRMA_OFFLOAD_DEV.
type offloadAttr struct {
	ifindex int32
	flags   uint8
}

func newOffloadAttr(ifindex int, s *State) *offloadAttr {
	o := &offloadAttr{ifindex: int32(ifindex)}
	if familyOf(s.Dst) == unix.AF_INET6 {
		o.flags |= offloadIPv6
	}
	if s.Inbound {
		o.flags |= offloadInbound
	}
	if s.Offload.Mode == OffloadPacket {
		o.flags |= offloadPacket
	}
	return o
}

// encode lays the struct out: int ifindex, u8 flags, 3 bytes of padding.
func (o *offloadAttr) encode() []byte {
	b := native.AppendUint32(make([]byte, 0, 8), uint32(o.ifindex))
	return append(b, o.flags, 0, 0, 0)
}

func parseOffload(v []byte) OffloadInfo {
	flags := v[4]
	return OffloadInfo{
		Ifindex: int(int32(native.Uint32(v))),
		Inbound: flags&offloadInbound != 0,
		Packet:  flags&offloadPacket != 0,
	}
}

// install adds or updates an SA, with offload as s.Offload asks.
func (c *Conn) install(typ uint16, s *State) (OffloadResult, error) {
	if s.Offload.Mode == OffloadNo {
		return OffloadResult{}, c.sendState(typ, s, nil)
	}
	if s.Offload.Mode > OffloadPacket {
		return OffloadResult{}, fmt.Errorf("unknown offload mode %d", s.Offload.Mode)
	}
	res := OffloadResult{Device: s.Offload.Device}
	ifindex, err := c.linkIndex(s.Offload.Device)
	if err != nil {
		return res, fmt.Errorf("offload device: %w", err)
	}
	err = c.sendState(typ, s, newOffloadAttr(ifindex, s))
	if errors.Is(err, ErrNoESP) || errors.Is(err, ErrNoAlgorithm) || errors.Is(err, ErrExists) {
		return res, err // the SA itself is refused; offload is not the reason
	}
	var refusal error
	if err != nil {
		refusal = err
	} else {
		info, gerr := c.GetState(s.ID())
		switch {
		case gerr != nil:
			return res, fmt.Errorf("read back offload state: %w", gerr)
		case info.Offload != nil && info.Offload.Packet == (s.Offload.Mode == OffloadPacket):
			res.Offloaded = true
			return res, nil
		}
		refusal = ErrNotOffloaded
	}
	oe := &OffloadError{Device: s.Offload.Device, Err: refusal}
	if s.Offload.Mode != OffloadAuto {
		if err == nil {
			// Installed in software against the caller's wish: take it out.
			if derr := c.DeleteState(s.ID()); derr != nil {
				return res, fmt.Errorf("%w; removing the software SA: %v", oe, derr)
			}
		}
		return res, oe
	}
	res.Refused = oe
	if err == nil {
		return res, nil // already in software
	}
	if err := c.sendState(typ, s, nil); err != nil {
		return res, err
	}
	return res, nil
}
