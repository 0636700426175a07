package xfrm

import (
	"encoding/binary"
	"errors"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Netlink framing: a 16-byte header, the message's fixed part, then
// attributes (4-byte length, 2-byte type, value, padded to 4 bytes).
const (
	nlmsgHdrLen = unix.SizeofNlMsghdr // 16
	attrHdrLen  = unix.SizeofRtAttr   // 4
	nlaNested   = unix.NLA_F_NESTED
)

var native = binary.NativeEndian

func align4(n int) int { return (n + 3) &^ 3 }

// request is one netlink request built in a single buffer, so that key
// material written into it has exactly one copy to zero.
type request struct {
	b []byte
}

func newRequest(typ, flags uint16) *request {
	r := &request{b: make([]byte, nlmsgHdrLen, 512)}
	native.PutUint16(r.b[4:], typ)
	native.PutUint16(r.b[6:], flags|unix.NLM_F_REQUEST)
	return r
}

// fixed appends the message's fixed part (a kernel struct's bytes).
func (r *request) fixed(b []byte) {
	r.b = append(r.b, b...)
	r.pad()
}

func (r *request) pad() {
	for len(r.b)%4 != 0 {
		r.b = append(r.b, 0)
	}
}

// attr appends one attribute whose value is the concatenation of parts.
func (r *request) attr(typ uint16, parts ...[]byte) {
	n := attrHdrLen
	for _, p := range parts {
		n += len(p)
	}
	r.b = native.AppendUint16(r.b, uint16(n))
	r.b = native.AppendUint16(r.b, typ)
	for _, p := range parts {
		r.b = append(r.b, p...)
	}
	r.pad()
}

func (r *request) attrU32(typ uint16, v uint32) { r.attr(typ, native.AppendUint32(nil, v)) }

// nest opens a nested attribute; call the returned func to close it.
func (r *request) nest(typ uint16) func() {
	start := len(r.b)
	r.b = append(r.b, 0, 0, 0, 0)
	native.PutUint16(r.b[start+2:], typ|nlaNested)
	return func() { native.PutUint16(r.b[start:], uint16(len(r.b)-start)) }
}

// finish sets the length and sequence number and returns the wire bytes.
func (r *request) finish(seq, pid uint32) []byte {
	native.PutUint32(r.b[0:], uint32(len(r.b)))
	native.PutUint32(r.b[8:], seq)
	native.PutUint32(r.b[12:], pid)
	return r.b
}

// payload is everything after the netlink header, for encoding tests.
func (r *request) payload() []byte { return r.b[nlmsgHdrLen:] }

func (r *request) msgType() uint16 { return native.Uint16(r.b[4:]) }

func (r *request) zero() { clear(r.b[:cap(r.b)]) }

// structBytes views a kernel struct (one of nl's fixed layouts) as bytes.
func structBytes[T any](v *T) []byte {
	return unsafe.Slice((*byte)(unsafe.Pointer(v)), unsafe.Sizeof(*v))
}

// attrs splits an attribute stream into type → value (the last one of a
// type wins; XFRM sends each at most once). Nested flags are stripped.
func attrs(b []byte) (map[uint16][]byte, error) {
	m := make(map[uint16][]byte)
	for len(b) >= attrHdrLen {
		n := int(native.Uint16(b[0:]))
		typ := native.Uint16(b[2:]) &^ (unix.NLA_F_NESTED | unix.NLA_F_NET_BYTEORDER)
		if n < attrHdrLen || n > len(b) {
			return nil, errors.New("malformed netlink attribute")
		}
		m[typ] = b[attrHdrLen:n]
		if align4(n) >= len(b) {
			break
		}
		b = b[align4(n):]
	}
	return m, nil
}

// fromBytes copies a kernel struct out of a message, checking its length.
func fromBytes[T any](b []byte) (T, error) {
	var v T
	if len(b) < int(unsafe.Sizeof(v)) {
		return v, errors.New("short netlink message")
	}
	copy(structBytes(&v), b)
	return v, nil
}
