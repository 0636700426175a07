package ike

import (
	"net/netip"
	"time"

	"github.com/xdpsec/xdpsec/ike/transform"
)

// Dataplane is what the engine installs negotiated CHILD_SAs into: the
// kernel's XFRM and the BPF maps in the daemon, an in-memory recorder in
// tests (package ike/dataplanetest). It is charon's kernel_ipsec_t cut down
// to what IKEv2 with ESP needs.
//
// The engine calls it with its own lock held: implementations must not call
// back into the engine. Key slices handed over belong to the engine, which
// zeroes them when the call returns; an implementation that keeps keys
// copies them.
type Dataplane interface {
	// AllocateSPI reserves an inbound ESP or AH SPI for a CHILD_SA
	// being negotiated between src (the peer) and dst (us).
	AllocateSPI(proto SAProto, src, dst netip.Addr) (uint32, error)
	// AddSA installs one direction of a CHILD_SA.
	AddSA(sa *SA) error
	// UpdateSA changes an installed SA's addresses or encapsulation (NAT
	// mapping change); it is found by its SAID.
	UpdateSA(sa *SA) error
	// MigrateSA moves an installed SA, found by from, to the outer
	// addresses and encapsulation of sa (MOBIKE, RFC 4555): SPI, keys,
	// replay state and counters stay; sa carries no keys. An inbound
	// SA's entry in the BPF SA table moves with it, counters included.
	MigrateSA(from SAID, sa *SA) error
	// DeleteSA removes an SA (or releases an SPI that was allocated but
	// never installed).
	DeleteSA(id SAID) error
	// AddPolicy installs a policy; DeletePolicy removes it.
	AddPolicy(p *Policy) error
	DeletePolicy(p *Policy) error
	// MigratePolicy replaces an installed policy by to, which differs in
	// its template addresses only (MOBIKE), without a moment in which
	// traffic of its selectors matches neither.
	MigratePolicy(from, to *Policy) error
	// QuerySA returns an SA's counters.
	QuerySA(id SAID) (SAStats, error)
	// AddVirtualIP installs a virtual IP a gateway assigned us (the
	// client role, swanctl.conf vips) where traffic to the peer will use
	// it, before the policies whose RouteSrc it is; DeleteVirtualIP
	// removes it after them, when no IKE SA of ours holds it any more.
	// AddVirtualIP of an address installed already (an IKE SA taken back
	// after a restart, a reauthentication) is no error and no duplicate.
	AddVirtualIP(v *VirtualIP) error
	DeleteVirtualIP(v *VirtualIP) error
}

// VirtualIP is an address the peer assigned us in its CFG_REPLY, with the
// outer addresses of the IKE SA that got it: it goes on the interface
// that routes to Peer.
type VirtualIP struct {
	Addr        netip.Addr
	Local, Peer netip.Addr
}

// SAID names an installed SA as the kernel does: destination, protocol
// and SPI.
type SAID struct {
	Dst   netip.Addr
	SPI   uint32
	Proto SAProto
}

// SAProto is the IPsec protocol of an SA. The zero value is ESP, so that
// SAIDs written before AH existed (saved state) still name ESP SAs.
type SAProto uint8

const (
	SAProtoESP SAProto = iota // ESP (RFC 4303), IP protocol 50
	SAProtoAH                 // AH (RFC 4302), IP protocol 51
)

func (p SAProto) String() string {
	if p == SAProtoAH {
		return "AH"
	}
	return "ESP"
}

// IPProto is the protocol's IP protocol number.
func (p SAProto) IPProto() uint8 {
	if p == SAProtoAH {
		return 51
	}
	return 50
}

// Protocol is the proposal protocol of the same name.
func (p SAProto) Protocol() transform.Protocol {
	if p == SAProtoAH {
		return transform.ProtoAH
	}
	return transform.ProtoESP
}

// saProtoOf is the SA protocol of a suite.
func saProtoOf(s transform.ChildSuite) SAProto {
	if s.AH {
		return SAProtoAH
	}
	return SAProtoESP
}

// Mode is the IPsec mode of a CHILD_SA (swanctl.conf "mode").
type Mode uint8

const (
	ModeTunnel Mode = iota
	ModeTransport
)

func (m Mode) String() string {
	if m == ModeTransport {
		return "TRANSPORT"
	}
	return "TUNNEL"
}

// Encap is UDP encapsulation of ESP (RFC 3948), used when a NAT was
// detected (AH cannot cross a NAT and has none): the outer ports of the IKE SA after the float to port 4500.
type Encap struct {
	SrcPort, DstPort uint16
}

// Lifetime bounds an SA; zero fields are unlimited. The engine drives
// rekeying with its own timers, the dataplane enforces the hard limits.
type Lifetime struct {
	SoftTime, HardTime       time.Duration
	SoftBytes, HardBytes     uint64
	SoftPackets, HardPackets uint64
}

// SA is one direction of a CHILD_SA.
type SA struct {
	SAID
	Src      netip.Addr // outer source address
	Inbound  bool
	Mode     Mode
	Encap    *Encap // nil without NAT-T
	ESN      bool
	Replay   uint32           // replay window, packets (outbound: 0, or the inbound's with ESN)
	Encr     transform.EncrID // 0 for AH
	EncrBits uint16           // key length attribute, 0 when the algorithm has one size
	EncrKey  []byte           // for AEADs the 4-byte salt is at the end
	Integ    transform.IntegID
	IntegKey []byte
	Lifetime Lifetime
	IfID     uint32 // XFRM interface ID, 0 for none
	// Offload is the hw_offload its CHILD_SA asks for (the dataplane
	// acts on it).
	Offload HWOffload
	ReqID   uint32 // ties the SA to its policies
	// Selectors restrict a transport mode SA to the negotiated traffic.
	Selectors []TrafficSelector
	// OutSeq and InSeq are the initial sequence numbers (the XFRM replay
	// state's oseq and seq, 64-bit with ESN): zero for a new SA; an SA a
	// fleet member takes over starts its outbound numbers past what the
	// failed member can have sent, and its inbound window at what it had
	// received (RFC 6311 section 5).
	OutSeq, InSeq uint64
}

// Direction of a policy.
type Direction uint8

const (
	DirOut Direction = iota
	DirIn
	DirFwd
)

func (d Direction) String() string {
	switch d {
	case DirIn:
		return "in"
	case DirFwd:
		return "fwd"
	}
	return "out"
}

// Policy says which traffic a CHILD_SA protects.
type Policy struct {
	Dir      Direction
	Src, Dst TrafficSelector
	// Outer addresses of the SA the policy uses (its template).
	TmplSrc, TmplDst netip.Addr
	Proto            SAProto // of the template: the SA's protocol
	Mode             Mode
	ReqID            uint32
	IfID             uint32
	// RouteSrc is our virtual IP when Src is just that address (an
	// outbound policy of the client role): routes to Dst carry it as
	// their source, so that what the host sends there matches the
	// policy. Invalid otherwise.
	RouteSrc netip.Addr
}

// SAStats are an SA's counters.
type SAStats struct {
	Bytes, Packets uint64
	// LastUsed is the time of the last packet, zero if none.
	LastUsed time.Time
	// OutSeq and InSeq are the highest sequence numbers sent and
	// received (64-bit with ESN), from the kernel's replay state; zero
	// where the dataplane does not know them.
	OutSeq, InSeq uint64
}
