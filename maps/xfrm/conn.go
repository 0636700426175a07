package xfrm

import (
	"errors"
	"fmt"
	"runtime"
	"sync"

	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// KernelError is the kernel's answer to a request that failed: the errno
// and, where the kernel gave one, its extended-ack message ("Requested type
// not found", "Device failed to offload this state"). errors.Is works on
// the errno.
type KernelError struct {
	Errno   unix.Errno
	Message string
}

func (e *KernelError) Error() string {
	if e.Message == "" {
		return e.Errno.Error()
	}
	return e.Errno.Error() + " (" + e.Message + ")"
}

func (e *KernelError) Unwrap() error { return e.Errno }

// Conn talks to the XFRM and routing netlink of one network namespace. It
// is safe for concurrent use; requests are answered one at a time.
type Conn struct {
	mu    sync.Mutex // serialises exchanges on both sockets
	xfrm  *socket
	route *socket
	owned netns.NsHandle // a throwaway namespace this Conn made, closed with it
}

// Open connects to the network namespace of the calling thread.
func Open() (*Conn, error) {
	return openHere()
}

// OpenAt connects to the given network namespace. The sockets stay bound to
// it whatever namespace later calls run in.
func OpenAt(ns netns.NsHandle) (*Conn, error) {
	return inNewThread(func() (*Conn, error) {
		if err := netns.Set(ns); err != nil {
			return nil, fmt.Errorf("enter network namespace: %w", err)
		}
		return openHere()
	})
}

// openThrowaway makes a new, unnamed network namespace and connects to it;
// the namespace goes away when the Conn is closed.
func openThrowaway() (*Conn, error) {
	return inNewThread(func() (*Conn, error) {
		ns, err := netns.New()
		if err != nil {
			return nil, fmt.Errorf("make a throwaway network namespace: %w", err)
		}
		c, err := openHere()
		if err != nil {
			ns.Close()
			return nil, err
		}
		c.owned = ns
		return c, nil
	})
}

// inNewThread runs fn on a locked OS thread that is never unlocked, so the
// runtime discards it instead of reusing a thread in another namespace.
func inNewThread(fn func() (*Conn, error)) (*Conn, error) {
	type result struct {
		c   *Conn
		err error
	}
	ch := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		c, err := fn()
		ch <- result{c, err}
	}()
	r := <-ch
	return r.c, r.err
}

func openHere() (*Conn, error) {
	x, err := openSocket(unix.NETLINK_XFRM)
	if err != nil {
		return nil, fmt.Errorf("open XFRM netlink: %w", err)
	}
	r, err := openSocket(unix.NETLINK_ROUTE)
	if err != nil {
		x.close()
		return nil, fmt.Errorf("open route netlink: %w", err)
	}
	return &Conn{xfrm: x, route: r, owned: netns.None()}, nil
}

// Close releases the sockets (and a throwaway namespace).
func (c *Conn) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.xfrm.close()
	c.route.close()
	if c.owned.IsOpen() {
		c.owned.Close()
	}
	return nil
}

// socket is one netlink socket; its buffer is zeroed after every message
// because the kernel's SA replies hold keys.
type socket struct {
	fd  int
	pid uint32
	seq uint32
	buf []byte
}

const recvBufSize = 1 << 16

func openSocket(proto int) (*socket, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, proto)
	if err != nil {
		return nil, err
	}
	// Errors carry the kernel's reason (4.12+) and no copy of the request,
	// which may hold keys (4.3+). Older kernels work without either.
	_ = unix.SetsockoptInt(fd, unix.SOL_NETLINK, unix.NETLINK_EXT_ACK, 1)
	_ = unix.SetsockoptInt(fd, unix.SOL_NETLINK, unix.NETLINK_CAP_ACK, 1)
	tv := unix.Timeval{Sec: 10}
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		unix.Close(fd)
		return nil, err
	}
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		unix.Close(fd)
		return nil, err
	}
	sa, err := unix.Getsockname(fd)
	if err != nil {
		unix.Close(fd)
		return nil, err
	}
	nsa, ok := sa.(*unix.SockaddrNetlink)
	if !ok {
		unix.Close(fd)
		return nil, errors.New("netlink socket has no netlink address")
	}
	return &socket{fd: fd, pid: nsa.Pid, buf: make([]byte, recvBufSize)}, nil
}

func (s *socket) close() {
	if s != nil && s.fd >= 0 {
		unix.Close(s.fd)
		s.fd = -1
	}
}

// errDumpInterrupted means the table changed during a dump; it is retried.
var errDumpInterrupted = errors.New("netlink dump interrupted")

// nlmsgerrAttrMsg is NLMSGERR_ATTR_MSG: the extended-ack text.
const nlmsgerrAttrMsg = 1

// exec sends a request and calls fn for each reply message until the
// kernel's acknowledgement or the end of a dump. The request buffer is
// zeroed once sent.
func (c *Conn) exec(s *socket, req *request, fn func(typ uint16, data []byte) error) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if s.fd < 0 {
		return errors.New("connection closed")
	}
	s.seq++
	seq := s.seq
	b := req.finish(seq, 0)
	err := unix.Sendto(s.fd, b, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK})
	req.zero()
	if err != nil {
		return fmt.Errorf("send netlink request: %w", err)
	}
	defer clear(s.buf)
	interrupted := false
	for {
		n, _, flags, _, err := unix.Recvmsg(s.fd, s.buf, nil, 0)
		if err != nil {
			return fmt.Errorf("receive netlink reply: %w", err)
		}
		if flags&unix.MSG_TRUNC != 0 {
			return errors.New("netlink reply larger than the receive buffer")
		}
		msgs := s.buf[:n]
		for len(msgs) >= nlmsgHdrLen {
			l := int(native.Uint32(msgs[0:]))
			if l < nlmsgHdrLen || l > len(msgs) {
				return errors.New("malformed netlink reply")
			}
			typ := native.Uint16(msgs[4:])
			mflags := native.Uint16(msgs[6:])
			mseq := native.Uint32(msgs[8:])
			data := msgs[nlmsgHdrLen:l]
			msgs = msgs[min(align4(l), len(msgs)):]
			if mseq != seq {
				continue // a late answer to an earlier request
			}
			if mflags&unix.NLM_F_DUMP_INTR != 0 {
				interrupted = true
			}
			switch typ {
			case unix.NLMSG_DONE:
				if interrupted {
					return errDumpInterrupted
				}
				return nil
			case unix.NLMSG_ERROR:
				return parseAck(data, mflags)
			}
			if fn != nil {
				if err := fn(typ, data); err != nil {
					return err
				}
			}
		}
	}
}

// parseAck reads an NLMSG_ERROR payload: errno, the echoed request header
// (or the whole request if uncapped), then extended-ack attributes.
func parseAck(data []byte, flags uint16) error {
	if len(data) < 4 {
		return errors.New("short netlink acknowledgement")
	}
	errno := int32(native.Uint32(data))
	if errno == 0 {
		return nil
	}
	ke := &KernelError{Errno: unix.Errno(-errno)}
	rest := data[4:]
	if flags&unix.NLM_F_ACK_TLVS != 0 && len(rest) >= nlmsgHdrLen {
		skip := nlmsgHdrLen
		if flags&unix.NLM_F_CAPPED == 0 {
			skip = align4(int(native.Uint32(rest)))
		}
		if skip <= len(rest) {
			if m, err := attrs(rest[skip:]); err == nil {
				if msg, ok := m[nlmsgerrAttrMsg]; ok {
					ke.Message = unix.ByteSliceToString(msg)
				}
			}
		}
	}
	return ke
}

// dump runs a dump request, retrying when the table changed under it.
func (c *Conn) dump(s *socket, build func() *request, fn func(typ uint16, data []byte) error, reset func()) error {
	var err error
	for range 5 {
		reset()
		err = c.exec(s, build(), fn)
		if !errors.Is(err, errDumpInterrupted) {
			return err
		}
	}
	return err
}
