package daemon

import (
	"errors"
	"fmt"
	"net/netip"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"

	"github.com/xdpsec/xdpsec/ike"
)

// watchExpires forwards the kernel's SA expiry notices to the engine:
// a soft expiry (a byte, packet or time limit reached) rekeys the CHILD_SA,
// a hard one means the kernel removed the SA and the CHILD_SA is closed.
// The engine rekeys on its own timers too; the kernel's notices are what
// carry the byte and packet limits.
func (d *Daemon) watchExpires() error {
	msgs := make(chan netlink.XfrmMsg, 64)
	errs := make(chan error, 1)
	if err := netlink.XfrmMonitor(msgs, d.stop, errs, nl.XFRM_MSG_EXPIRE); err != nil {
		return fmt.Errorf("listening for XFRM expiry notices: %w", err)
	}
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		for {
			select {
			case <-d.stop:
				return
			case err := <-errs:
				d.knlLog.Warn(fmt.Sprintf("XFRM expiry notices lost: %v", err))
				return
			case m, ok := <-msgs:
				if !ok {
					return
				}
				if exp, ok := m.(*netlink.XfrmMsgExpire); ok {
					d.expire(exp)
				}
			}
		}
	}()
	return nil
}

func (d *Daemon) expire(exp *netlink.XfrmMsgExpire) {
	st := exp.XfrmState
	if st == nil || (st.Proto != netlink.XFRM_PROTO_ESP && st.Proto != netlink.XFRM_PROTO_AH) {
		return
	}
	dst, ok := netip.AddrFromSlice(st.Dst)
	if !ok {
		return
	}
	id := ike.SAID{Dst: dst.Unmap(), SPI: uint32(st.Spi)}
	if st.Proto == netlink.XFRM_PROTO_AH {
		id.Proto = ike.SAProtoAH
	}
	kind := "soft"
	if exp.Hard {
		kind = "hard"
	}
	d.knlLog.Debug(fmt.Sprintf("received %s expire for SA %.8x", kind, id.SPI))
	err := d.engine.Expire(id, exp.Hard)
	switch {
	case errors.Is(err, ike.ErrUnknownSA):
		// Not ours (another daemon's SA, or one we already closed).
	case err != nil:
		d.knlLog.Warn(fmt.Sprintf("handling %s expire of SA %.8x failed: %v", kind, id.SPI, err))
	}
}
