package ike

import (
	"github.com/xdpsec/xdpsec/ike/isakmp"
)

// IKE fragmentation for IKEv1 (the Cisco/strongSwan vendor extension): a
// message larger than the path allows is sent as unencrypted ISAKMP
// messages each holding one FRAG payload, numbered from 1, the last
// flagged. Both ends must have sent the fragmentation vendor ID.

// maxV1Fragments bounds reassembly (charon's max_fragments is 16).
const maxV1Fragments = 16

type v1Reassembly struct {
	parts map[uint8][]byte
	last  uint8
	size  int
}

// fragment splits a message if the peer supports fragmentation and it is
// too large.
func (sa *v1SA) fragment(msg []byte) [][]byte {
	max := sa.e.cfg.FragmentSize - 8 - 20
	if sa.remote.Addr().Is6() {
		max -= 20
	}
	if sa.local.Port() == sa.e.cfg.NATTPort {
		max -= 4
	}
	if !sa.peerFrag || len(msg) <= max {
		return [][]byte{msg}
	}
	h, _ := isakmp.UnmarshalHeader(msg)
	chunk := max - isakmp.HeaderLen - 8
	sa.nextFragID++
	var out [][]byte
	for i, n := 0, uint8(1); i < len(msg); i, n = i+chunk, n+1 {
		end := min(i+chunk, len(msg))
		fh := isakmp.Header{InitiatorCookie: h.InitiatorCookie, ResponderCookie: h.ResponderCookie, Exchange: h.Exchange, MessageID: h.MessageID}
		m := &isakmp.Message{Header: fh, Payloads: []isakmp.Payload{&isakmp.Fragment{ID: sa.nextFragID, Number: n, Last: end == len(msg), Data: msg[i:end]}}}
		b, err := m.Marshal()
		if err != nil {
			return [][]byte{msg}
		}
		out = append(out, b)
	}
	infof(sa.log, "splitting IKE message (%d bytes) into %d fragments", len(msg), len(out))
	return out
}

// reassemble collects fragments and processes the message they make.
func (sa *v1SA) reassemble(h isakmp.Header, data []byte, d Datagram) {
	m, err := isakmp.Unmarshal(data)
	if err != nil || len(m.Payloads) != 1 {
		sa.e.stats.DroppedMalformed++
		return
	}
	f, ok := m.Payloads[0].(*isakmp.Fragment)
	if !ok || f.Number > maxV1Fragments || !sa.conn.fragmentation {
		sa.e.stats.DroppedMalformed++
		return
	}
	r := sa.fragments[f.ID]
	if r == nil {
		if len(sa.fragments) > 4 {
			clear(sa.fragments)
		}
		r = &v1Reassembly{parts: map[uint8][]byte{}}
		sa.fragments[f.ID] = r
	}
	if _, dup := r.parts[f.Number]; !dup {
		r.parts[f.Number] = f.Data
		r.size += len(f.Data)
	}
	if f.Last {
		r.last = f.Number
	}
	if r.last == 0 || len(r.parts) != int(r.last) || r.size > isakmp.MaxMessageLen {
		return
	}
	delete(sa.fragments, f.ID)
	var msg []byte
	for i := uint8(1); i <= r.last; i++ {
		msg = append(msg, r.parts[i]...)
	}
	mh, err := isakmp.UnmarshalHeader(msg)
	if err != nil || mh.NextPayload == isakmp.PayloadFragment {
		infof(sa.log, "reassembled message invalid: %v", err)
		return
	}
	infof(sa.log, "received fragment #%d, reassembled fragmented IKE message (%d bytes)", f.Number, len(msg))
	sa.receive(mh, msg, d)
}
