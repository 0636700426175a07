package radius

import (
	"crypto/hmac"
	"crypto/md5"
	"crypto/subtle"
	"encoding/binary"
	"errors"

	"layeh.com/radius"
	"layeh.com/radius/rfc2869"
)

// Header layout (RFC 2865 §3): Code(1) Identifier(1) Length(2)
// Authenticator(16), then attributes as Type(1) Length(1) Value.
const (
	headerLen        = 20
	authenticatorOff = 4
	maxPacketLen     = radius.MaxPacketLength // 4096, RFC 2865 §3
	// messageAuthLen is the HMAC-MD5 value of a Message-Authenticator.
	messageAuthLen = md5.Size
)

// DropReason says why a reply was dropped, in charon's words where it has
// them.
type DropReason int

const (
	DropNone DropReason = iota
	// DropMalformed: shorter than its header, a Length field outside
	// 20-4096 or beyond the datagram, attributes that overrun.
	DropMalformed
	// DropUnexpectedID: the Identifier is not the request's.
	DropUnexpectedID
	// DropUnexpectedCode: a code that does not answer the request.
	DropUnexpectedCode
	// DropResponseAuthenticator: the Response Authenticator does not
	// match, most often because the server has another shared secret.
	DropResponseAuthenticator
	// DropMessageAuthenticator: the Message-Authenticator is not the
	// HMAC-MD5 of the reply under the shared secret, or has a wrong length
	// or appears twice.
	DropMessageAuthenticator
	// DropMessageAuthenticatorMissing: a reply that must carry a
	// Message-Authenticator does not.
	DropMessageAuthenticatorMissing

	numDropReasons
)

func (r DropReason) String() string {
	switch r {
	case DropNone:
		return "none"
	case DropMalformed:
		return "received invalid RADIUS message"
	case DropUnexpectedID:
		return "received RADIUS message with unexpected ID"
	case DropUnexpectedCode:
		return "received RADIUS message with unexpected code"
	case DropResponseAuthenticator:
		return "RADIUS Response-Authenticator verification failed"
	case DropMessageAuthenticator:
		return "RADIUS Message-Authenticator verification failed"
	case DropMessageAuthenticatorMissing:
		return "RADIUS Message-Authenticator attribute missing"
	}
	return "unknown drop reason"
}

// encodeRequest puts a request on the wire. An Access-Request gets a
// Message-Authenticator (RFC 3579 §3.2: HMAC-MD5 keyed with the shared
// secret over the whole packet, the attribute's own value zeroed while it
// is computed); an Accounting-Request gets its Request Authenticator from
// the MD5 of the packet (RFC 2866 §3), which layeh's Encode computes.
func encodeRequest(p *radius.Packet) ([]byte, error) {
	if p.Code != radius.CodeAccessRequest {
		return p.Encode()
	}
	p.Attributes.Del(rfc2869.MessageAuthenticator_Type)
	p.Attributes.Add(rfc2869.MessageAuthenticator_Type, make(radius.Attribute, messageAuthLen))
	wire, err := p.Encode()
	if err != nil {
		return nil, err
	}
	off, n := findMessageAuthenticator(wire)
	if n != 1 || off < 0 {
		return nil, errors.New("radius: Message-Authenticator lost in encoding")
	}
	mac := hmac.New(md5.New, p.Secret)
	mac.Write(wire)
	mac.Sum(wire[off:off])
	return wire, nil
}

// findMessageAuthenticator returns the offset of the value of the first
// Message-Authenticator in a packet whose attributes are well formed,
// and how many there are; -1 for the offset when one has a wrong length.
func findMessageAuthenticator(b []byte) (off, count int) {
	off = -1
	for i := headerLen; i+2 <= len(b); {
		t, l := b[i], int(b[i+1])
		if l < 2 || i+l > len(b) {
			return off, count
		}
		if radius.Type(t) == rfc2869.MessageAuthenticator_Type {
			count++
			if count == 1 && l == 2+messageAuthLen {
				off = i + 2
			}
		}
		i += l
	}
	return off, count
}

// allowedReply says which codes answer a request code.
func allowedReply(req, reply radius.Code) bool {
	switch req {
	case radius.CodeAccessRequest:
		return reply == radius.CodeAccessAccept || reply == radius.CodeAccessReject || reply == radius.CodeAccessChallenge
	case radius.CodeAccountingRequest:
		return reply == radius.CodeAccountingResponse
	}
	return false
}

// verifyReply checks a datagram against the request it should answer and
// parses it. In order: the header and the attribute framing, the
// Identifier, the code, the Response Authenticator (RFC 2865 §3: MD5 over
// the reply with the request's authenticator in place of its own, then
// the secret), and the Message-Authenticator (RFC 3579 §3.2: HMAC-MD5 of
// the reply with the request's authenticator in place and the attribute's
// value zeroed).
//
// A Message-Authenticator is verified wherever it appears. It is required
// in every reply that carries an EAP-Message (RFC 3579 §3.2) and, since
// every Access-Request of ours carries one, in every Access-Accept and
// Access-Challenge: an Access-Accept that is only covered by the MD5
// Response Authenticator could be forged from another reply
// (CVE-2024-3596, "Blast-RADIUS").
//
// Octets past the Length field are padding and ignored (RFC 2865 §3).
func verifyReply(req, b, secret []byte) (*radius.Packet, DropReason) {
	if len(b) < headerLen || len(req) < headerLen {
		return nil, DropMalformed
	}
	length := int(binary.BigEndian.Uint16(b[2:4]))
	if length < headerLen || length > maxPacketLen || length > len(b) {
		return nil, DropMalformed
	}
	b = b[:length]
	if b[1] != req[1] {
		return nil, DropUnexpectedID
	}
	code := radius.Code(b[0])
	if !allowedReply(radius.Code(req[0]), code) {
		return nil, DropUnexpectedCode
	}
	attrs, err := radius.ParseAttributes(b[headerLen:])
	if err != nil {
		return nil, DropMalformed
	}

	h := md5.New()
	h.Write(b[:authenticatorOff])
	h.Write(req[authenticatorOff:headerLen])
	h.Write(b[headerLen:])
	h.Write(secret)
	var sum [md5.Size]byte
	if subtle.ConstantTimeCompare(h.Sum(sum[:0]), b[authenticatorOff:headerLen]) != 1 {
		return nil, DropResponseAuthenticator
	}

	off, count := findMessageAuthenticator(b)
	switch {
	case count > 1 || count == 1 && off < 0:
		return nil, DropMessageAuthenticator
	case count == 1:
		c := append([]byte(nil), b...)
		copy(c[authenticatorOff:headerLen], req[authenticatorOff:headerLen])
		clear(c[off : off+messageAuthLen])
		mac := hmac.New(md5.New, secret)
		mac.Write(c)
		if !hmac.Equal(mac.Sum(nil), b[off:off+messageAuthLen]) {
			return nil, DropMessageAuthenticator
		}
	default:
		_, hasEAP := attrs.Lookup(rfc2869.EAPMessage_Type)
		if hasEAP || code == radius.CodeAccessAccept || code == radius.CodeAccessChallenge {
			return nil, DropMessageAuthenticatorMissing
		}
	}

	p := &radius.Packet{Code: code, Identifier: b[1], Secret: secret, Attributes: attrs}
	copy(p.Authenticator[:], b[authenticatorOff:headerLen])
	return p, DropNone
}
