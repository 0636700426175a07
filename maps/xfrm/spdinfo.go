package xfrm

import (
	"errors"
	"fmt"

	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"
)

// The attributes of XFRM_MSG_NEWSPDINFO and GETSPDINFO (enum
// xfrm_spdattr_type_t in linux/xfrm.h), which x/sys/unix does not define.
const (
	xfrmaSPDInfo        = 1 // struct xfrmu_spdinfo {u32 incnt, outcnt, fwdcnt, inscnt, outscnt, fwdscnt}
	xfrmaSPDHInfo       = 2 // struct xfrmu_spdhinfo {u32 spdhcnt, spdhmcnt}
	xfrmaSPDIPv4HThresh = 3 // struct xfrmu_spdhthresh {u8 lbits, rbits}
	xfrmaSPDIPv6HThresh = 4
)

// HashThresholds are the prefix lengths from which the kernel hashes a
// policy by its addresses instead of keeping it with the inexact ones
// (`ip xfrm policy set hthresh4 LBITS RBITS`): a policy whose local
// prefix is at least Local bits and remote at least Remote bits long is
// hashed. The kernel's default is the full address length on both sides,
// so a remote-access policy (0.0.0.0/0 to a client's /32) is inexact;
// with Local 0 it is hashed by the client's address.
type HashThresholds struct {
	Local, Remote uint8
}

// SPDInfo is what XFRM_MSG_GETSPDINFO reports of a namespace's policies.
type SPDInfo struct {
	In, Out, Fwd int // policies per direction
	// HashBuckets is the size of the policy index hash table minus one,
	// HashBucketsMax the most it grows to.
	HashBuckets, HashBucketsMax int
	IPv4, IPv6                  HashThresholds
}

// SPDInfo reads the namespace's policy database counters and hash
// thresholds.
func (c *Conn) SPDInfo() (SPDInfo, error) {
	var si SPDInfo
	req := newRequest(nl.XFRM_MSG_GETSPDINFO, unix.NLM_F_ACK)
	req.fixed([]byte{0xff, 0xff, 0xff, 0xff})
	seen := 0
	err := c.exec(c.xfrm, req, func(typ uint16, data []byte) error {
		if typ != nl.XFRM_MSG_NEWSPDINFO || len(data) < 4 {
			return nil
		}
		a, err := attrs(data[4:])
		if err != nil {
			return err
		}
		if v := a[xfrmaSPDInfo]; len(v) >= 12 {
			si.In, si.Out, si.Fwd = int(native.Uint32(v)), int(native.Uint32(v[4:])), int(native.Uint32(v[8:]))
			seen |= 1
		}
		if v := a[xfrmaSPDHInfo]; len(v) >= 8 {
			si.HashBuckets, si.HashBucketsMax = int(native.Uint32(v)), int(native.Uint32(v[4:]))
			seen |= 2
		}
		if v := a[xfrmaSPDIPv4HThresh]; len(v) >= 2 {
			si.IPv4 = HashThresholds{v[0], v[1]}
			seen |= 4
		}
		if v := a[xfrmaSPDIPv6HThresh]; len(v) >= 2 {
			si.IPv6 = HashThresholds{v[0], v[1]}
		}
		return nil
	})
	if err != nil {
		return si, fmt.Errorf("get SPD info: %w", err)
	}
	if seen != 7 {
		return si, errors.New("get SPD info: attributes missing from the answer")
	}
	return si, nil
}

// SetHashThresholds sets the namespace's policy hash thresholds of one
// family (XFRM_MSG_NEWSPDINFO); the kernel rehashes its policies.
func (c *Conn) SetHashThresholds(ipv6 bool, t HashThresholds) error {
	attr, max := uint16(xfrmaSPDIPv4HThresh), uint8(32)
	if ipv6 {
		attr, max = xfrmaSPDIPv6HThresh, 128
	}
	if t.Local > max || t.Remote > max {
		return fmt.Errorf("set hash thresholds %d %d: more than %d bits", t.Local, t.Remote, max)
	}
	req := newRequest(nl.XFRM_MSG_NEWSPDINFO, unix.NLM_F_ACK)
	req.fixed(make([]byte, 4)) // u32 flags, unused
	req.attr(attr, []byte{t.Local, t.Remote})
	if err := c.exec(c.xfrm, req, nil); err != nil {
		return fmt.Errorf("set hash thresholds %d %d: %w", t.Local, t.Remote, err)
	}
	return nil
}
