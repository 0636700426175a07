package xfrm

import (
	"errors"
	"fmt"
	"net/netip"

	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"

	"github.com/xdpsec/xdpsec/maps"
)

// minSPI is the lowest SPI the allocator hands out: 1-255 are reserved by
// IANA (RFC 4303 2.1).
const minSPI = 256

// AllocSPI asks the kernel for an unused SPI in r for an inbound ESP or AH SA
// from src (the peer) to dst (us), as strongSwan's get_spi does with
// XFRM_MSG_ALLOCSPI. The kernel reserves it in a larval SA that carries no
// keys and passes no traffic; UpdateState with the full SA completes it.
// A larval SA not completed within net.core.xfrm_acq_expires seconds (30 by
// default) is removed and its SPI may be handed out again.
//
// A failed allocation (range exhausted) leaves a keyless acquire state
// with SPI 0 behind until the same timeout; the kernel makes it before it
// looks for a free SPI.
//
// r is the daemon's allocated range, so that xdp_wan finds the SA by index.
//
// The kernel keeps SPIs apart per protocol only: an AH and an ESP SA may
// get the same SPI (the caller keeps them apart where it needs to).
func (c *Conn) AllocSPI(proto Proto, src, dst netip.Addr, r maps.SPIRange) (uint32, error) {
	if _, err := encodeAllocSPI(proto, src, dst, r); err != nil {
		return 0, fmt.Errorf("allocate SPI for %s → %s: %w", src, dst, err)
	}
	var spi uint32
	err := retryInterrupted(func() error {
		// exec zeroes a request once sent: each try encodes its own.
		req, err := encodeAllocSPI(proto, src, dst, r)
		if err != nil {
			return err
		}
		return c.exec(c.xfrm, req, func(typ uint16, data []byte) error {
			if typ != nl.XFRM_MSG_NEWSA || len(data) < nl.SizeofXfrmUsersaInfo {
				return nil
			}
			spi = fromBE32(nl.DeserializeXfrmUsersaInfo(data).Id.Spi)
			return nil
		})
	})
	if err == nil && spi == 0 {
		err = errors.New("kernel answered without an SPI")
	}
	if err != nil {
		return 0, fmt.Errorf("allocate SPI %#08x-%#08x for %s → %s: %w", r.Base, r.Base+r.Count-1, src, dst, classify(err, nil))
	}
	return spi, nil
}

// errRestartSys is the kernel's ERESTARTSYS (512), which XFRM_MSG_ALLOCSPI
// answers when a signal was pending while it searched the range: Go's
// runtime preempts goroutines with SIGURG, so a busy daemon sees it (7 of
// 10,000 allocations in a guest bring-up). Netlink cannot restart the
// request for us, and the kernel kept nothing of it but the acquire state
// the next try finds again.
const errRestartSys = unix.Errno(512)

// interruptedTries bounds retryInterrupted.
const interruptedTries = 8

// retryInterrupted runs fn again while the kernel answers that a signal
// interrupted it (ERESTARTSYS or EINTR), at most interruptedTries times.
func retryInterrupted(fn func() error) error {
	var err error
	for range interruptedTries {
		if err = fn(); !errors.Is(err, errRestartSys) && !errors.Is(err, unix.EINTR) {
			return err
		}
	}
	return fmt.Errorf("interrupted %d times: %w", interruptedTries, err)
}

func encodeAllocSPI(proto Proto, src, dst netip.Addr, r maps.SPIRange) (*request, error) {
	if !src.IsValid() || !dst.IsValid() || src.Unmap().Is4() != dst.Unmap().Is4() {
		return nil, errors.New("need source and destination addresses of one family")
	}
	if r.Count == 0 {
		return nil, errors.New("empty SPI range")
	}
	last := uint64(r.Base) + uint64(r.Count) - 1
	if r.Base < minSPI || last > 0xffffffff {
		return nil, fmt.Errorf("SPI range %#x+%d is outside %#x-0xffffffff", r.Base, r.Count, minSPI)
	}
	var v nl.XfrmUserSpiInfo
	v.XfrmUsersaInfo.Saddr = xfrmAddr(src)
	v.XfrmUsersaInfo.Id.Daddr = xfrmAddr(dst)
	v.XfrmUsersaInfo.Id.Proto = proto.ipproto()
	v.XfrmUsersaInfo.Family = familyOf(dst)
	v.Min, v.Max = r.Base, uint32(last)
	req := newRequest(nl.XFRM_MSG_ALLOCSPI, unix.NLM_F_ACK)
	req.fixed(structBytes(&v))
	return req, nil
}
