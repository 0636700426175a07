package ike

import (
	"encoding/binary"
	"errors"
	"maps"
	"net/netip"

	"github.com/xdpsec/xdpsec/ike/isakmp"
	"github.com/xdpsec/xdpsec/ike/message"
	"github.com/xdpsec/xdpsec/ike/transform"
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
		n += sas.len()
	}
	return n
}

// V1TransactionAsPeer builds a Transaction message of the ISAKMP SA with
// unique ID id as its peer would send it under message ID mid: HASH(1)
// over the given Attribute payload body, encrypted with the SA's keys and
// the IV the exchange has (our request's, when mid is one we await an
// answer to; else a new exchange's). Fuzz tests use it to reach XAuth
// and Mode Config with authentic but arbitrary attributes.
func (e *Engine) V1TransactionAsPeer(id uint32, mid uint32, attrBody []byte) ([]byte, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	sa := e.v1SAByID(id)
	if sa == nil || sa.keys == nil || sa.cipher == nil {
		return nil, errors.New("no ISAKMP SA with keys")
	}
	if len(attrBody) > 60000 {
		attrBody = attrBody[:60000]
	}
	chain := binary.BigEndian.AppendUint32(nil, uint32(4+len(attrBody))) // next NONE, reserved, length
	chain = append(chain, attrBody...)
	h, err := transform.V1QuickHash1(sa.prf, sa.keys.SKEYIDa, mid, chain)
	if err != nil {
		return nil, err
	}
	plain := []byte{byte(isakmp.PayloadAttribute), 0}
	plain = binary.BigEndian.AppendUint16(plain, uint16(4+len(h)))
	plain = append(append(plain, h...), chain...)
	var iv []byte
	if ex := sa.exchanges[mid]; ex != nil && ex.iv != nil {
		iv = ex.iv
	} else if p1 := sa.exchanges[0]; p1 != nil && p1.iv != nil {
		if iv, err = transform.V1ExchangeIV(sa.prf, p1.iv, mid, sa.cipher.BlockSize()); err != nil {
			return nil, err
		}
	} else {
		return nil, errors.New("no phase 1 IV")
	}
	ct, err := sa.cipher.Encrypt(iv, plain)
	if err != nil {
		return nil, err
	}
	return isakmp.AssembleEncrypted(sa.header(isakmp.ExchangeTransaction, mid), isakmp.PayloadHash, ct)
}

// V1AwaitedTransaction is the message ID of a Transaction request the
// ISAKMP SA with unique ID id sent and awaits an answer to, 0 if none.
func (e *Engine) V1AwaitedTransaction(id uint32) uint32 {
	e.mu.Lock()
	defer e.mu.Unlock()
	if sa := e.v1SAByID(id); sa != nil {
		for mid, t := range sa.txns {
			if t.initiator && t.onReply != nil {
				return mid
			}
		}
	}
	return 0
}

// SetBetweenPieces has Snapshot run f between its pieces (nil: nothing)
// and returns the chunk size.
func SetBetweenPieces(f func()) int {
	betweenPieces = f
	return snapshotChunk
}

// ChildKeyCopies returns the engine's own copies of its CHILD_SAs' keys
// (Config.CheckpointChildKeys), not clones: a test keeps them to see
// them zeroed when their CHILD_SA goes.
func (e *Engine) ChildKeyCopies() [][]byte {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out [][]byte
	for _, sa := range e.allSAs() {
		for _, c := range sa.children {
			if k := c.keyCopy; k != nil {
				out = append(out, k.in.Encr, k.in.Integ, k.out.Encr, k.out.Integ)
			}
		}
	}
	return out
}

// CorruptIntAuth flips a bit of IKE SA ikeID's IntAuth_rN (RFC 9242),
// as if it had seen another IKE_INTERMEDIATE response than its peer: the
// AUTH octets of the two ends no longer agree. False without IntAuth.
func (e *Engine) CorruptIntAuth(ikeID uint32) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	sa, err := e.ikeSA(ikeID)
	if err != nil || sa.setup == nil || len(sa.setup.intAuthR) == 0 {
		return false
	}
	sa.setup.intAuthR[0] ^= 1
	return true
}

// FollowupLink is the link data of the IKE_FOLLOWUP_KE exchange that IKE
// SA ikeID waits for as responder (what its last ADDITIONAL_KEY_EXCHANGE
// notify carried), nil when it waits for none. Tests use it to forge the
// next request of a real pending exchange.
func (e *Engine) FollowupLink(ikeID uint32) []byte {
	e.mu.Lock()
	defer e.mu.Unlock()
	sa, err := e.ikeSA(ikeID)
	if err != nil || e.followups[sa] == nil {
		return nil
	}
	return append([]byte(nil), e.followups[sa].link...)
}
