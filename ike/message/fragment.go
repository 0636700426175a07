package message

import (
	"encoding/binary"
	"fmt"
)

// Fragment is one SKF message after verification and decryption.
type Fragment struct {
	Header Header
	Number uint16 // Fragment Number, from 1
	Total  uint16 // Total Fragments
	// NextPayload is the first inner payload's type in fragment 1.
	NextPayload PayloadType
	// Plaintext is this fragment's share of the inner payloads.
	Plaintext []byte
}

// MarshalFragments encodes m as SKF fragments (RFC 7383 section 2.5): the
// inner payloads are encoded as for MarshalEncrypted, cut into pieces and
// each piece sealed by p into one message of at most maxLen octets (the IKE
// message, without IP and UDP headers or the non-ESP marker; RFC 7383
// suggests deriving it from 576 octets of IPv4 datagram or 1280 of IPv6
// when the path MTU is not known). All fragments share m's header.
func (m *Message) MarshalFragments(p Protector, maxLen int) ([][]byte, error) {
	plaintext, err := appendChain(nil, m.Payloads, true)
	if err != nil {
		return nil, err
	}
	maxLen = min(maxLen, MaxMessageLen)
	room := fragmentRoom(p, maxLen)
	if room < 1 {
		return nil, fmt.Errorf("encode SKF: %d octets per message leave no room for content: %w", maxLen, ErrTooLarge)
	}
	total := max(1, (len(plaintext)+room-1)/room)
	if total > 0xffff {
		return nil, fmt.Errorf("encode SKF: %d fragments: %w", total, ErrTooLarge)
	}
	first := firstType(m.Payloads)
	out := make([][]byte, 0, total)
	for i := range total {
		chunk := plaintext[i*room : min(len(plaintext), (i+1)*room)]
		next := PayloadNone
		if i == 0 {
			next = first
		}
		b, err := sealSKF(&m.Header, next, uint16(i+1), uint16(total), chunk, p)
		if err != nil {
			return nil, err
		}
		out = append(out, b)
	}
	return out, nil
}

// fragmentRoom is the largest plaintext that fits one SKF message of
// maxLen octets, or 0. SealedLen does not decrease as its input grows, so
// a binary search finds it.
func fragmentRoom(p Protector, maxLen int) int {
	fits := func(n int) bool {
		l := p.SealedLen(n)
		return l >= 0 && skfAADLen+l <= maxLen
	}
	if !fits(1) {
		return 0
	}
	// Invariant: fits(lo); nothing above hi fits (a body is never
	// shorter than nothing, so no more than maxLen octets fit).
	lo, hi := 1, maxLen
	for lo < hi {
		mid := lo + (hi-lo+1)/2
		if fits(mid) {
			lo = mid
		} else {
			hi = mid - 1
		}
	}
	return lo
}

func sealSKF(h *Header, next PayloadType, number, total uint16, plaintext []byte, p Protector) ([]byte, error) {
	bodyLen := p.SealedLen(len(plaintext))
	if bodyLen < 0 || genericHeaderLen+skfFixedLen+bodyLen > maxPayloadLen {
		return nil, fmt.Errorf("encode SKF: body of %d octets: %w", bodyLen, ErrTooLarge)
	}
	length := skfAADLen + bodyLen
	b := make([]byte, skfAADLen, length)
	if err := putHeader(b, h, PayloadSKF, length); err != nil {
		return nil, err
	}
	b[HeaderLen] = byte(next)
	binary.BigEndian.PutUint16(b[HeaderLen+2:], uint16(genericHeaderLen+skfFixedLen+bodyLen))
	binary.BigEndian.PutUint16(b[HeaderLen+4:], number)
	binary.BigEndian.PutUint16(b[HeaderLen+6:], total)
	body, err := p.Seal(b[:skfAADLen:skfAADLen], plaintext)
	if err != nil {
		return nil, fmt.Errorf("encode SKF %d/%d: %w", number, total, err)
	}
	if len(body) != bodyLen {
		return nil, fmt.Errorf("encode SKF: Seal returned %d octets, SealedLen %d: %w", len(body), bodyLen, ErrProtector)
	}
	return append(b, body...), nil
}

// UnmarshalFragment decodes a message whose only payload is SKF, checks
// its fragment numbers and verifies and decrypts it with p. RFC 7383 has
// each fragment authenticated on its own before it is kept for
// reassembly; hand the result to a Reassembler.
func UnmarshalFragment(b []byte, p Protector) (*Fragment, error) {
	h, err := UnmarshalHeader(b)
	if err != nil {
		return nil, err
	}
	if h.NextPayload != PayloadSKF {
		return nil, fmt.Errorf("decode %v message %d: first payload %v, want SKF: %w", h.ExchangeType, h.MessageID, h.NextPayload, ErrPayloadPlacement)
	}
	next, body, err := sealedBody(b, skfAADLen)
	if err != nil {
		return nil, fmt.Errorf("decode %v message %d: SKF: %w", h.ExchangeType, h.MessageID, err)
	}
	f := &Fragment{
		Header:      h,
		NextPayload: next,
		Number:      binary.BigEndian.Uint16(b[HeaderLen+4:]),
		Total:       binary.BigEndian.Uint16(b[HeaderLen+6:]),
	}
	if err := checkFragmentNumber(f.Number, f.Total); err != nil {
		return nil, fmt.Errorf("decode %v message %d: SKF: %w", h.ExchangeType, h.MessageID, err)
	}
	f.Plaintext, err = p.Open(b[:skfAADLen:skfAADLen], body)
	if err != nil {
		return nil, fmt.Errorf("decode %v message %d: open SKF %d/%d: %w", h.ExchangeType, h.MessageID, f.Number, f.Total, err)
	}
	return f, nil
}
