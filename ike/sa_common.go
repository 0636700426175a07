package ike

import (
	"fmt"
	"log/slog"
	"math"
	"net/netip"
	"strconv"
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

	// initAt is when the IKE_SA_INIT that set the SA up was sent or
	// received, zero for an SA made by a rekey or taken back; the
	// observed flags say which of its observations were made (observe.go).
	initAt time.Time
	// state beside the flags: an IKE SA of more than 1016 bytes would
	// take 1152 (the allocator's header and size classes).
	state                            IKESAState
	establishObserved, childObserved bool
	initiator                        bool // IKEv2: the original initiator (I flag); IKEv1: of phase 1
	local                            netip.AddrPort
	remote                           netip.AddrPort

	localID, remoteID Identity
	natLocal          bool // we are behind a NAT
	natRemote         bool // the peer is
	peerFrag          bool // the peer announced fragmentation support

	lastInbound  time.Time
	lastOutbound time.Time // last IKE message or keepalive sent

	// outer is the IKE SA of its version that embeds this, and peerKey
	// its key in the engine's connected peers while it is in them
	// (indexPeer).
	outer   uniqueSA
	peerKey *peerKey

	// Remote access, in both versions (config_payload.go, v1_modecfg.go).
	// eapIdentity is the identity the peer authenticated as with EAP, or
	// with XAuth in IKEv1.
	eapIdentity string
	// framedIP is the virtual IP an EAP or XAuth backend assigned the
	// peer (Framed-IP-Address): leased in place of one from the pools.
	framedIP netip.Addr
	// vips are the virtual IPs leased to the peer (config_payload.go),
	// given back when the SA goes.
	vips []vipLease
	// localVIPs and dnsServers are what the gateway assigned to us in its
	// CFG_REPLY or Mode Config reply (the client role).
	localVIPs  []netip.Addr
	dnsServers []netip.Addr

	// endCause is why the IKE SA goes, once endCauseSet (ending).
	endCause    EndCause
	endCauseSet bool

	// journaled: the StateSink has a record of the SA (state_journal.go);
	// journalPending is what it will be once the delta being handed over
	// is saved.
	journaled, journalPending bool
	// connecting: the IKE SA counts in Engine.connecting (we initiate it
	// and it is not established yet).
	connecting bool
}

func (e *Engine) newIKESACommon(c *connection, initiator bool, local, remote netip.AddrPort) ikeSACommon {
	e.nextIKEID++
	sa := ikeSACommon{e: e, conn: c, id: e.nextIKEID, initiator: initiator, local: local, remote: remote,
		lastInbound: e.clock.Now()}
	sa.log = e.log.With("ike_sa", sa.name())
	sa.localID = c.local.ID
	return sa
}

// takeID gives an IKE SA made for a record Import takes back the record's
// unique ID: making it counted no new one.
func (sa *ikeSACommon) takeID(id uint32) {
	sa.e.nextIKEID--
	sa.id = id
	sa.log = sa.e.log.With("ike_sa", sa.name())
}

// ours picks, of the initiator's and the responder's SPI (IKEv1: cookie),
// the one the peer addresses us with.
func ours(initiator bool, i, r uint64) uint64 {
	if initiator {
		return i
	}
	return r
}

// common lets code written for both versions (kernelChild) reach it.
func (sa *ikeSACommon) common() *ikeSACommon { return sa }

func (sa *ikeSACommon) name() string {
	return sa.conn.Name + "[" + strconv.FormatUint(uint64(sa.id), 10) + "]"
}

func (sa *ikeSACommon) setState(s IKESAState) {
	if sa.state != s {
		if debugOn(sa.log) {
			debugf(sa.log, "IKE_SA %s state change: %s => %s", sa.name(), sa.state, s)
		}
		sa.state = s
		sa.indexPeer()
		sa.e.changed(sa, true)
	}
}

// send sends datagrams of this IKE SA to the peer.
func (sa *ikeSACommon) send(packets [][]byte) {
	sa.lastOutbound = sa.e.clock.Now()
	sa.e.send(sa.local, sa.remote, packets)
}

func (sa *ikeSACommon) natAny() bool { return sa.natLocal || sa.natRemote }

// useNATT reports whether ESP must be UDP-encapsulated.
func (sa *ikeSACommon) useNATT() bool { return sa.natAny() || sa.conn.Encap }

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

// retransmitTimeout is how long a request sent tries+1 times waits for
// its answer (RFC 7296 section 2.1; charon's retransmit_timeout and
// retransmit_base).
func (e *Engine) retransmitTimeout(tries int) time.Duration {
	return time.Duration(float64(e.cfg.RetransmitTimeout) * math.Pow(e.cfg.RetransmitBase, float64(tries)))
}

// retransmitDue counts one more retransmit of a request retransmitted
// *tries times so far, or says (false) that the retransmits are used up.
func (sa *ikeSACommon) retransmitDue(tries *int) bool {
	if *tries >= sa.e.cfg.RetransmitTries {
		infof(sa.log, "giving up after %d retransmits", *tries)
		return false
	}
	*tries++
	sa.e.stats.Retransmits++
	return true
}

// ends are the IKE SA's ends as charon logs them: local[ID]...remote[ID].
func (sa *ikeSACommon) ends() string {
	return fmt.Sprintf("%s[%s]...%s[%s]", sa.local.Addr(), sa.localID, sa.remote.Addr(), sa.remoteID)
}
