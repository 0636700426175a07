package xfrm

import (
	"errors"
	"fmt"
	"net/netip"
	"unsafe"

	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"
)

// Acquire is the kernel's request for SAs (XFRM_MSG_ACQUIRE): a packet
// matched a policy whose template found no SA. The policy is a trap an
// IKE daemon installed; the daemon negotiates the SAs.
type Acquire struct {
	// Reqid is the template's: it names the trap.
	Reqid uint32
	// Src and Dst are the template's outer addresses (for a tunnel).
	Src, Dst netip.Addr
	// Packet is the selector of the packet that matched (its addresses,
	// protocol and ports); Policy the matched policy's.
	Packet, Policy Selector
	PolicyIndex    uint32
	Dir            Dir
}

// userAcquire is struct xfrm_user_acquire.
type userAcquire struct {
	ID     nl.XfrmId
	Saddr  nl.XfrmAddress
	Sel    nl.XfrmSelector
	Policy nl.XfrmUserpolicyInfo
	Aalgos uint32
	Ealgos uint32
	Calgos uint32
	Seq    uint32
}

// sizeofUserAcquire is sizeof(struct xfrm_user_acquire) on Linux.
const sizeofUserAcquire = 280

func init() {
	if unsafe.Sizeof(userAcquire{}) != sizeofUserAcquire {
		panic(fmt.Sprintf("xfrm: xfrm_user_acquire is %d bytes, want %d", unsafe.Sizeof(userAcquire{}), sizeofUserAcquire))
	}
}

// AcquireListener receives the acquires of one network namespace: it is
// a netlink socket in the multicast group XFRMNLGRP_ACQUIRE.
type AcquireListener struct {
	fd  int
	buf []byte
}

// ListenAcquires joins the acquire group in the calling thread's network
// namespace. Receive waits at most a quarter of a second, so that a
// reader can check for its end between calls (a daemon stopping waits no
// longer than that for it).
func ListenAcquires() (*AcquireListener, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_XFRM)
	if err != nil {
		return nil, fmt.Errorf("open XFRM netlink: %w", err)
	}
	tv := unix.Timeval{Usec: 250_000}
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		unix.Close(fd)
		return nil, err
	}
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK, Groups: 1 << (nl.XFRMNLGRP_ACQUIRE - 1)}); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("join the XFRM acquire group: %w", err)
	}
	return &AcquireListener{fd: fd, buf: make([]byte, recvBufSize)}, nil
}

// ErrNoAcquire is Receive's answer when none arrived within its wait.
var ErrNoAcquire = errors.New("no acquire")

// Receive returns the acquires of the next datagram, ErrNoAcquire when
// none arrived within its wait. A malformed message is skipped with an
// error saying so.
func (l *AcquireListener) Receive() ([]Acquire, error) {
	n, _, err := unix.Recvfrom(l.fd, l.buf, 0)
	if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR) {
		return nil, ErrNoAcquire
	}
	if err != nil {
		return nil, fmt.Errorf("receive acquire: %w", err)
	}
	var out []Acquire
	var errs []error
	msgs := l.buf[:n]
	for len(msgs) >= nlmsgHdrLen {
		ml := int(native.Uint32(msgs[0:]))
		if ml < nlmsgHdrLen || ml > len(msgs) {
			return out, errors.New("malformed netlink message")
		}
		typ := native.Uint16(msgs[4:])
		data := msgs[nlmsgHdrLen:ml]
		msgs = msgs[min(align4(ml), len(msgs)):]
		if typ != nl.XFRM_MSG_ACQUIRE {
			continue
		}
		a, err := parseAcquire(data)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out = append(out, a)
	}
	return out, errors.Join(errs...)
}

// Close leaves the group.
func (l *AcquireListener) Close() error {
	if l.fd < 0 {
		return nil
	}
	err := unix.Close(l.fd)
	l.fd = -1
	return err
}

func parseAcquire(data []byte) (Acquire, error) {
	ua, err := fromBytes[userAcquire](data)
	if err != nil {
		return Acquire{}, fmt.Errorf("acquire: %w", err)
	}
	a := Acquire{
		Packet:      selectorFrom(&ua.Sel),
		Policy:      selectorFrom(&ua.Policy.Sel),
		PolicyIndex: ua.Policy.Index,
		Dir:         Dir(ua.Policy.Dir),
	}
	family := ua.Sel.Family
	a.Src, a.Dst = addrFrom(family, ua.Saddr), addrFrom(family, ua.ID.Daddr)
	at, err := attrs(data[align4(sizeofUserAcquire):])
	if err != nil {
		return Acquire{}, fmt.Errorf("acquire: %w", err)
	}
	if v := at[nl.XFRMA_TMPL]; len(v) >= nl.SizeofXfrmUserTmpl {
		ut, _ := fromBytes[nl.XfrmUserTmpl](v)
		a.Reqid = ut.Reqid
		if ut.Saddr != (nl.XfrmAddress{}) {
			a.Src, a.Dst = addrFrom(ut.Family, ut.Saddr), addrFrom(ut.Family, ut.XfrmId.Daddr)
		}
	}
	return a, nil
}
