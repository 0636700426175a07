package ike

import (
	"bytes"
	"crypto/sha1"
	"encoding/binary"
	"log/slog"
	"net/netip"

	"github.com/xdpsec/xdpsec/ike/message"
)

// natdHash is the NAT_DETECTION_*_IP data (RFC 7296 section 2.23):
// SHA-1(SPIi | SPIr | IP | Port).
func natdHash(spiI, spiR uint64, a netip.AddrPort) []byte {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:], spiI)
	binary.BigEndian.PutUint64(b[8:], spiR)
	var p [2]byte
	binary.BigEndian.PutUint16(p[:], a.Port())
	h := sha1.New()
	h.Write(b[:])
	h.Write(a.Addr().Unmap().AsSlice())
	h.Write(p[:])
	return h.Sum(nil)
}

// natdPayloads are our two NAT detection notifies. With encap forced the
// source hash is made not to match, so the peer sees a NAT and floats.
func (sa *ikeSA) natdPayloads(spiI, spiR uint64) []message.Payload {
	src := natdHash(spiI, spiR, sa.local)
	if sa.conn.Encap {
		src = natdHash(spiI, spiR, netip.AddrPortFrom(netip.IPv4Unspecified(), 0))
	}
	return []message.Payload{
		notify(message.NAT_DETECTION_SOURCE_IP, src),
		notify(message.NAT_DETECTION_DESTINATION_IP, natdHash(spiI, spiR, sa.remote)),
	}
}

// processNATD compares the peer's hashes with the addresses the message
// came from and to.
func (sa *ikeSA) processNATD(m *message.Message) {
	var src []*message.Notify
	var dst *message.Notify
	for _, n := range findAll[*message.Notify](m) {
		switch n.NotifyType {
		case message.NAT_DETECTION_SOURCE_IP:
			src = append(src, n)
		case message.NAT_DETECTION_DESTINATION_IP:
			dst = n
		}
	}
	if len(src) == 0 || dst == nil {
		return
	}
	h := &m.Header
	sa.natLocal = !bytes.Equal(dst.Data, natdHash(h.InitiatorSPI, h.ResponderSPI, sa.local))
	want := natdHash(h.InitiatorSPI, h.ResponderSPI, sa.remote)
	sa.natRemote = true
	for _, n := range src {
		if bytes.Equal(n.Data, want) {
			sa.natRemote = false
		}
	}
	sa.logNAT()
	if !sa.natAny() {
		debugf(sa.log, "no NAT between %s and %s", fmtAddr(sa.local), fmtAddr(sa.remote))
	}
}

// mayFloat says whether an authenticated message from another address or
// port moves an IKE SA of either version there (RFC 7296 section 2.23,
// RFC 3947): before it is established, to the NAT-T port (the float) or
// to the port its NAT mapped it to; once established, when a NAT is
// between us or the peer moved to the NAT-T port. The peer's IP address
// never changes here: an authentic message a spoofer raced from its own
// address must not take the SA there; a peer's new address is taken only
// through MOBIKE's UPDATE_SA_ADDRESSES after a return routability check
// (mobike.go).
func (e *Engine) mayFloat(log *slog.Logger, established, nat bool, local, remote netip.AddrPort, d Datagram) bool {
	learning := func(a netip.Addr) bool { return !a.IsValid() || a.IsUnspecified() }
	if (d.Remote.Addr() != remote.Addr() && !learning(remote.Addr())) || (d.Local.Addr() != local.Addr() && !learning(local.Addr())) {
		infof(log, "ignoring the address change of an authenticated message: %s from %s, the IKE_SA is %s...%s",
			fmtAddr(d.Local), fmtAddr(d.Remote), fmtAddr(local), fmtAddr(remote))

		return false
	}
	if !established || nat || d.Local.Port() == e.cfg.NATTPort {
		if established {
			infof(log, "remote endpoint changed from %s to %s", fmtAddr(remote), fmtAddr(d.Remote))
		}
		return true
	}
	return false
}
