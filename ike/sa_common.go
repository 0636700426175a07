package ike

import (
	"fmt"
	"log/slog"
	"net/netip"
	"time"
)

// ikeSACommon is what an IKE SA is in both versions: IKEv2's ikeSA and
// IKEv1's ISAKMP SA (v1SA) embed it, and the CHILD_SAs of either reach
// their IKE SA's engine, addresses and log through it (kernel.go).
// Guarded by the engine lock.
type ikeSACommon struct {
	e    *Engine
	conn *connection
	id   uint32 // unique ID, the [1] in logs
	log  *slog.Logger

	state     IKESAState
	initiator bool // IKEv2: the original initiator (I flag); IKEv1: of phase 1
	local     netip.AddrPort
	remote    netip.AddrPort

	localID, remoteID Identity
	natLocal          bool // we are behind a NAT
	natRemote         bool // the peer is
	peerFrag          bool // the peer announced fragmentation support

	lastInbound  time.Time
	lastOutbound time.Time // last IKE message or keepalive sent
}

func (e *Engine) newIKESACommon(c *connection, initiator bool, local, remote netip.AddrPort) ikeSACommon {
	e.nextIKEID++
	sa := ikeSACommon{e: e, conn: c, id: e.nextIKEID, initiator: initiator, local: local, remote: remote,
		lastInbound: e.clock.Now()}
	sa.log = e.log.With("ike_sa", sa.name())
	return sa
}

// common lets code written for both versions (kernelChild) reach it.
func (sa *ikeSACommon) common() *ikeSACommon { return sa }

func (sa *ikeSACommon) name() string { return fmt.Sprintf("%s[%d]", sa.conn.cfg.Name, sa.id) }

func (sa *ikeSACommon) setState(s IKESAState) {
	if sa.state != s {
		sa.log.Debug(fmt.Sprintf("IKE_SA %s state change: %s => %s", sa.name(), sa.state, s))
		sa.state = s
	}
}

// send sends datagrams of this IKE SA to the peer.
func (sa *ikeSACommon) send(packets [][]byte) {
	sa.lastOutbound = sa.e.clock.Now()
	sa.e.send(sa.local, sa.remote, packets)
}

func (sa *ikeSACommon) natAny() bool { return sa.natLocal || sa.natRemote }

// useNATT reports whether ESP must be UDP-encapsulated.
func (sa *ikeSACommon) useNATT() bool { return sa.natAny() || sa.conn.cfg.Encap }

// logNAT says what NAT detection found.
func (sa *ikeSACommon) logNAT() {
	if sa.natLocal {
		sa.log.Info("local host is behind NAT, sending keep alives")
	}
	if sa.natRemote {
		sa.log.Info("remote host is behind NAT")
	}
}

// floatToNATT moves the IKE SA to the NAT-T ports (RFC 7296 section
// 2.23, RFC 3947) as charon's float_ports() does: the peer's port becomes
// 4500 if either end used 500 (a peer on a custom port is assumed to stay
// on it), and ours becomes our NAT-T port if it was our IKE port (a
// custom local_port stays).
func (sa *ikeSACommon) floatToNATT() {
	if sa.remote.Port() == PortIKE || sa.local.Port() == PortIKE {
		sa.remote = netip.AddrPortFrom(sa.remote.Addr(), PortNATT)
	}
	if sa.local.Port() == sa.e.cfg.Port {
		sa.local = netip.AddrPortFrom(sa.local.Addr(), sa.e.cfg.NATTPort)
	}
}

// ends are the IKE SA's ends as charon logs them: local[ID]...remote[ID].
func (sa *ikeSACommon) ends() string {
	return fmt.Sprintf("%s[%s]...%s[%s]", sa.local.Addr(), sa.localID, sa.remote.Addr(), sa.remoteID)
}
