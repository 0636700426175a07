package ike

import (
	"encoding/binary"
	"errors"
	"maps"
	"net/netip"

	"github.com/xdpsec/xdpsec/ike/message"
)

// SealAsPeer builds an SK message for IKE SA ikeID as its peer would: h's
// header, an SK payload whose first inner payload is first, and the inner
// payload chain plaintext sealed with the peer's keys. Fuzz tests use it
// to reach the exchange tasks with authentic but arbitrary payloads.
func (e *Engine) SealAsPeer(ikeID uint32, h message.Header, first message.PayloadType, plaintext []byte) ([]byte, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	sa, err := e.ikeSA(ikeID)
	if err != nil {
		return nil, err
	}
	p := sa.protIn()
	if p == nil {
		return nil, errors.New("no keys")
	}
	h.InitiatorSPI, h.ResponderSPI = sa.spiI, sa.spiR
	hdr, err := (&message.Message{Header: h}).Marshal()
	if err != nil {
		return nil, err
	}
	bodyLen := p.SealedLen(len(plaintext))
	total := len(hdr) + 4 + bodyLen
	if total > message.MaxMessageLen {
		return nil, errors.New("too large")
	}
	b := append(hdr, byte(first), 0, 0, 0)
	b[16] = byte(message.PayloadSK)
	binary.BigEndian.PutUint32(b[24:], uint32(total))
	binary.BigEndian.PutUint16(b[30:], uint16(4+bodyLen))
	body, err := p.Seal(b[:32:32], plaintext)
	if err != nil {
		return nil, err
	}
	return append(b, body...), nil
}

// HalfOpenBySource returns a copy of the per-source counts of half-open
// responder IKE SAs that BlockThreshold is checked against.
func (e *Engine) HalfOpenBySource() map[netip.Addr]int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return maps.Clone(e.halfOpenBySource)
}

// ConnectedPeers counts the IKE SAs in the engine's connected-peers
// index (uniqueness), to check that none stays there after it is gone.
func (e *Engine) ConnectedPeers() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	n := 0
	for _, sas := range e.peers {
		n += len(sas)
	}
	return n
}
