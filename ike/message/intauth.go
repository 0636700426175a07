package message

import (
	"encoding/binary"
	"fmt"
)

// IntAuthOctets returns IntAuth_A | IntAuth_P of an IKE_INTERMEDIATE
// message (RFC 9242 section 3.3.2): the IKE header and the SK payload's
// generic header as if the message were sent unencrypted (the Length
// fields count the header, SK's generic header and the inner payloads, no
// IV, padding or ICV), followed by the inner payloads in plaintext. A
// fragmented message counts as the one SK message it was split from
// (RFC 9242 section 3.3.2, RFC 7383), so the same octets come out on both
// ends whatever the path did to the datagrams.
//
// The inner payloads are encoded from m.Payloads; a received message's
// decoded payloads encode to the octets they were decoded from.
func IntAuthOctets(m *Message) ([]byte, error) {
	plaintext, err := appendChain(nil, m.Payloads, true)
	if err != nil {
		return nil, err
	}
	total := skAADLen + len(plaintext)
	b := make([]byte, skAADLen, total)
	if err := putHeader(b, &m.Header, PayloadSK, total); err != nil {
		return nil, err
	}
	if genericHeaderLen+len(plaintext) > maxPayloadLen {
		return nil, fmt.Errorf("IntAuth: %d octets of payloads: %w", len(plaintext), ErrTooLarge)
	}
	b[HeaderLen] = byte(firstType(m.Payloads))
	binary.BigEndian.PutUint16(b[HeaderLen+2:], uint16(genericHeaderLen+len(plaintext)))
	return append(b, plaintext...), nil
}
