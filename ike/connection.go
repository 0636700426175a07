package ike

import (
	"crypto"
	"crypto/x509"
	"fmt"
	"math"
	"net/netip"
	"slices"
	"time"

	"github.com/xdpsec/xdpsec/ike/eap"
	"github.com/xdpsec/xdpsec/ike/transform"
)

// Connection is one IKE connection, a swanctl.conf "connections.<name>"
// section, in typed values: ike/swanctl reads the file into it, tests and
// tools write it directly. Zero values stand for swanctl.conf's defaults,
// which AddConnection applies; field comments name the swanctl keys.
type Connection struct {
	Name string // the section name

	// Version (version): 0 or 2 for IKEv2, 1 for IKEv1 (Main Mode, or
	// Aggressive Mode with Aggressive; see v1_*.go).
	Version int
	// Aggressive (aggressive) initiates IKEv1 in Aggressive Mode, and lets
	// a responder accept Aggressive Mode with pre-shared keys, which
	// charon refuses unless told it does not care about security.
	Aggressive bool

	LocalAddrs  []netip.Addr // local_addrs; empty for any
	RemoteAddrs []netip.Addr // remote_addrs; empty for any
	LocalPort   uint16       // local_port, default the engine's Config.Port (500)
	RemotePort  uint16       // remote_port, default 500
	// Proposals (proposals): IKE proposals in order of preference, empty
	// for transform.DefaultProposals.
	Proposals []transform.Proposal
	// Encap forces UDP encapsulation (encap): port 4500 even without NAT.
	Encap bool
	// NoMobike turns MOBIKE (RFC 4555, mobike = no) off: no
	// MOBIKE_SUPPORTED in IKE_AUTH, no move to the NAT-T port without a
	// NAT, and the IKE SA never follows address changes.
	NoMobike      bool
	Fragmentation Fragmentation // fragmentation
	DPDDelay      time.Duration // dpd_delay: 0 disables liveness checks
	DPDTimeout    time.Duration // dpd_timeout: 0 relies on retransmission
	// RekeyTime (rekey_time) of the IKE SA: 0 is 4h when ReauthTime is 0
	// too, else no rekeying.
	RekeyTime time.Duration
	// ReauthTime (reauth_time): an IKEv2 IKE SA is replaced by a fresh
	// one, fully authenticated, with new CHILD_SAs at this interval
	// (reauth.go); 0 never. IKEv1 reauthenticates at the shorter of the
	// two.
	ReauthTime time.Duration
	// OverTime (over_time): hard IKE SA lifetime beyond the shorter of
	// rekey_time and reauth_time, default a tenth of it.
	OverTime time.Duration
	RandTime time.Duration // rand_time: jitter subtracted from rekey_time and reauth_time, default over_time
	// RandExact takes rand_time here and rand_* in the children as given:
	// zero means no jitter instead of the default (for a caller that
	// resolved swanctl.conf's defaults itself, such as ike/swanctl).
	RandExact   bool
	SendCertReq *bool        // send_certreq, default yes
	SendCert    SendCert     // send_cert
	Unique      UniquePolicy // unique
	KeyingTries int          // keyingtries, default 1

	// Pools (pools): names of the engine's address pools (Config.Pools)
	// that virtual IPs requested in a configuration payload come from, in
	// order; the first with an address of the requested family serves.
	Pools []string
	// VIPs (vips): virtual IPs we ask the peer for in a CFG_REQUEST, the
	// unspecified address (0.0.0.0, ::) for any of the family. Our
	// dynamic local selectors become the addresses received.
	VIPs []netip.Addr
	// Push (pull = no): IKEv1 Mode Config in push mode, the gateway
	// sending the virtual IP in a CFG_SET after XAuth; by default the
	// client asks for it (pull, CFG_REQUEST).
	Push bool

	// Redirect (the redirect section, an xdpsec extension) sends new
	// clients to other gateways during IKE_SA_INIT (redirect.go); nil
	// serves them all here.
	Redirect *RedirectRule

	// Local and Remote are the local<suffix> and remote<suffix> rounds:
	// one each, and with IKEv1 a second one that is XAuth.
	Local    []*AuthConfig
	Remote   []*AuthConfig
	Children []*ChildConfig // children.<name>, in file order
}

// Fragmentation is the IKE fragmentation policy (fragmentation).
type Fragmentation uint8

const (
	FragmentationYes    Fragmentation = iota // announce support, fragment if the peer supports it
	FragmentationAccept                      // announce support, never fragment our messages
	FragmentationForce                       // IKEv1: fragment the first message already
	FragmentationNo                          // neither announce nor fragment
)

func (f Fragmentation) String() string {
	return enumName(f, "yes", "accept", "force", "no")
}

// SendCert says when to send certificate payloads (send_cert).
type SendCert uint8

const (
	SendCertIfAsked SendCert = iota
	SendCertAlways
	SendCertNever
)

func (s SendCert) String() string { return enumName(s, "ifasked", "always", "never") }

// UniquePolicy is the connection uniqueness policy (unique).
type UniquePolicy uint8

const (
	UniqueNo      UniquePolicy = iota // replace on INITIAL_CONTACT
	UniqueNever                       // never enforce
	UniqueKeep                        // reject new duplicates
	UniqueReplace                     // delete old duplicates
)

func (u UniquePolicy) String() string { return enumName(u, "no", "never", "keep", "replace") }

// AuthMethod is how a peer authenticates in one round (auth).
type AuthMethod uint8

const (
	AuthPubkey AuthMethod = iota // signatures with a certificate
	AuthPSK                      // pre-shared key
	// AuthEAP: EAP inside IKE_AUTH (RFC 7296 section 2.16): in a remote
	// round the peer authenticates to our EAP server, in a local round we
	// authenticate to the peer's as an EAP peer.
	AuthEAP
	// AuthEAPRadius (eap-radius): EAP inside IKE_AUTH with the engine
	// relaying the conversation to Config.EAPBackend (RFC 3579
	// pass-through); a remote round of a responder only.
	AuthEAPRadius
	// AuthXAuth (xauth): IKEv1's second round, XAuth
	// (draft-beaulieu-ike-xauth-02) after Main or Aggressive Mode: in a
	// remote round we are the XAuth server and check the peer's user
	// name and password against the EAP/XAuth secrets, in a local round
	// we are the client and answer with XAuthID's secret.
	AuthXAuth
	// AuthXAuthRadius (xauth-radius): as AuthXAuth in a remote round, the
	// user name and password checked by Config.XAuthBackend (a RADIUS
	// Access-Request with User-Password, RFC 2865).
	AuthXAuthRadius
)

func (m AuthMethod) String() string {
	return enumName(m, "pubkey", "psk", "eap", "eap-radius", "xauth", "xauth-radius")
}

// IsXAuth reports whether the round is XAuth.
func (m AuthMethod) IsXAuth() bool { return m == AuthXAuth || m == AuthXAuthRadius }

// isEAP reports whether the peer authenticates with EAP in the round,
// with our EAP server or relayed to the backend.
func (m AuthMethod) isEAP() bool { return m == AuthEAP || m == AuthEAPRadius }

// Action is what to do at load time (start_action), when the peer
// closes (close_action) or is found dead (dpd_action): nothing (clear),
// install a trap policy, (re)start the CHILD_SA, or both of the latter.
type Action uint8

const (
	ActionNone  Action = 0
	ActionTrap  Action = 1 << 0
	ActionStart Action = 1 << 1
)

func (a Action) String() string {
	switch a {
	case ActionNone:
		return "none"
	case ActionTrap:
		return "trap"
	case ActionStart:
		return "start"
	}
	return "trap|start"
}

// HWOffload is the hardware offload asked for a CHILD_SA's SAs
// (hw_offload); the daemon's dataplane acts on it.
type HWOffload uint8

const (
	HWOffloadNo     HWOffload = iota
	HWOffloadYes              // crypto offload, fail if unavailable
	HWOffloadAuto             // crypto offload if available
	HWOffloadPacket           // packet offload, fail if unavailable
)

func (h HWOffload) String() string { return enumName(h, "no", "yes", "auto", "packet") }

// enumName names v by its position in names, by its number beyond them.
func enumName[E ~uint8](v E, names ...string) string {
	if int(v) < len(names) {
		return names[v]
	}
	return fmt.Sprintf("%d", uint8(v))
}

// AuthConfig is a local or remote authentication round
// (connections.<name>.local / .remote).
type AuthConfig struct {
	Auth AuthMethod // auth
	// Scheme forces the signature scheme of a local pubkey round ("rsa",
	// "rsa/pss" in auth); nil chooses one from the key and the peer.
	Scheme *transform.SignatureScheme
	// ID (id): the identity. The zero Identity is %any: on the remote side
	// any identity, on the local side our certificate's subject (or the
	// address with PSK).
	ID Identity
	// Certs (certs): our certificate then intermediates (local), or
	// certificates the peer must use (remote, optional).
	Certs []*x509.Certificate
	// PrivateKey is the key of Certs[0]; swanctl finds it in its
	// private/ directory by matching public key.
	PrivateKey crypto.Signer
	// CACerts (cacerts): for remote rounds, the trust anchors the peer's
	// certificate must chain to; empty means the engine's Credentials.CAs.
	CACerts []*x509.Certificate
	// EAPMethods are the EAP methods offered with AuthEAP, in order of
	// preference (eap-md5: TypeMD5; eap-mschapv2: TypeMSCHAPv2; eap-tls:
	// TypeTLS; eap-dynamic: all three, the peer's Nak choosing). TypeTLS
	// needs certificates: the server presents the local round's
	// certificate and checks the client's against CACerts (or the
	// engine's CAs); the client presents this round's Certs. Where they
	// are missing, TypeTLS is dropped from a list that offers others and
	// refused when alone.
	EAPMethods []eap.Type
	// EAPID (eap_id) is the identity the peer authenticates as in EAP:
	// empty for its IKE identity, "%any" to ask it with EAP-Identity, or a
	// fixed identity.
	EAPID string
	// XAuthID (xauth_id) is, in a local XAuth round, the user name we
	// send (empty: our IKE identity); in a remote one the user the peer
	// must authenticate as (empty: any with a secret).
	XAuthID string
}

// ChildConfig is a CHILD_SA, a "connections.<name>.children.<child>" section.
type ChildConfig struct {
	Name string

	LocalTS  []TSSpec // local_ts, default dynamic
	RemoteTS []TSSpec // remote_ts, default dynamic
	// ESPProposals (esp_proposals), empty for transform.DefaultProposals;
	// a key exchange in them means PFS on rekeying (and on
	// CREATE_CHILD_SA).
	ESPProposals []transform.Proposal
	// AHProposals (ah_proposals): set, the CHILD_SA is AH (RFC 4302)
	// and ESPProposals must be empty; AH and ESP together (a bundle or
	// alternatives) are not supported.
	AHProposals []transform.Proposal
	Mode        Mode          // mode
	RekeyTime   time.Duration // rekey_time, default 1h
	LifeTime    time.Duration // life_time, default rekey_time * 1.1
	RandTime    time.Duration // rand_time, default life_time - rekey_time
	// Volume limits, 0 for none. The soft (rekey_*) limits minus a random
	// part of rand_* are the SAs' soft limits in the dataplane, the life_*
	// limits their hard ones; as with the times, life_* defaults to
	// rekey_* * 1.1 and rand_* to life_* - rekey_* (swanctl.conf's
	// defaults). A zero rand_* means that default, as for rand_time,
	// unless RandExact is set.
	RekeyBytes   uint64 // rekey_bytes
	LifeBytes    uint64 // life_bytes
	RandBytes    uint64 // rand_bytes
	RekeyPackets uint64 // rekey_packets
	LifePackets  uint64 // life_packets
	RandPackets  uint64 // rand_packets
	// RandExact: zero rand_* values mean no jitter (see Connection).
	RandExact bool
	// DPDAction (dpd_action): ActionNone (clear), ActionTrap (install the
	// child's trap policies, trap.go) or ActionStart (restart), what to
	// do when the peer is found dead.
	DPDAction   Action
	StartAction Action // start_action; the daemon acts on it
	// CloseAction (close_action): ActionTrap installs the child's trap
	// when the peer deletes it or its IKE SA; clear and restart are not
	// acted on yet.
	CloseAction  Action
	HWOffload    HWOffload // hw_offload; the daemon acts on it
	IfIDIn       uint32    // if_id_in
	IfIDOut      uint32    // if_id_out
	ReplayWindow uint32    // replay_window, DefaultReplayWindow if 0
	// Reqid (reqid): fixed reqid, 0 to allocate one.
	Reqid uint32
}

// connection is a Connection with its defaults applied and its
// invariants checked, as the engine uses it.
type connection struct {
	Connection
	// local and remote are the rounds with defaults applied: local.ID is
	// ours as we send it (the certificate's subject when none was set).
	local, remote AuthConfig
	// xauthLocal and xauthRemote are the IKEv1 second rounds: we are the
	// XAuth client (local) or server (remote); nil without.
	xauthLocal, xauthRemote *AuthConfig
	children                []*childConfig
	fragmentation           bool // announce and use IKE fragmentation
	sendCertReq             bool
}

// childConfig is a ChildConfig with its defaults applied, and the
// connection it belongs to.
type childConfig struct {
	ChildConfig
	conn           *connection
	bytes, packets volumeLimit
}

// xauthServer says whether we are the XAuth server of the connection's
// IKEv1 SAs, xauthClient whether we are the client.
func (c *connection) xauthServer() bool { return c.xauthRemote != nil }
func (c *connection) xauthClient() bool { return c.xauthLocal != nil }

// proto is the protocol of the CHILD_SA's SAs: AH with ah_proposals.
func (cc *childConfig) proto() SAProto {
	if len(cc.AHProposals) > 0 {
		return SAProtoAH
	}
	return SAProtoESP
}

// proposals are the configured proposals of the CHILD_SA's protocol.
func (cc *childConfig) proposals() []transform.Proposal {
	if len(cc.AHProposals) > 0 {
		return cc.AHProposals
	}
	return cc.ESPProposals
}

// resolveConnection applies the defaults and checks a connection; port is
// the engine's IKE port, the default local_port.
func resolveConnection(c *Connection, port uint16) (*connection, error) {
	rc := &connection{Connection: *c, sendCertReq: c.SendCertReq == nil || *c.SendCertReq}
	errf := func(key, format string, a ...any) error {
		return fmt.Errorf("connection %q: %s: %s", c.Name, key, fmt.Sprintf(format, a...))
	}
	if c.Name == "" {
		return nil, fmt.Errorf("connection without name")
	}
	if rc.LocalPort == 0 {
		rc.LocalPort = port
	}
	if rc.RemotePort == 0 {
		rc.RemotePort = PortIKE
	}
	var err error
	if rc.LocalAddrs, err = validAddrs(c.LocalAddrs); err != nil {
		return nil, errf("local_addrs", "%v", err)
	}
	if rc.RemoteAddrs, err = validAddrs(c.RemoteAddrs); err != nil {
		return nil, errf("remote_addrs", "%v", err)
	}
	if len(rc.Proposals) == 0 {
		rc.Proposals = transform.DefaultProposals(transform.ProtoIKE)
	}
	if err := checkProposals(rc.Proposals, transform.ProtoIKE); err != nil {
		return nil, errf("proposals", "%v", err)
	}
	if rc.Fragmentation > FragmentationNo {
		return nil, errf("fragmentation", "%v is not yes, accept, force or no", rc.Fragmentation)
	}
	rc.fragmentation = rc.Fragmentation != FragmentationNo
	if rc.SendCert > SendCertNever {
		return nil, errf("send_cert", "%v is not ifasked, always or never", rc.SendCert)
	}
	if rc.RekeyTime == 0 && rc.ReauthTime == 0 {
		rc.RekeyTime = 4 * time.Hour
	}
	if rc.RekeyTime < 0 || rc.ReauthTime < 0 {
		return nil, errf("rekey_time/reauth_time", "negative")
	}
	if rc.OverTime == 0 {
		rc.OverTime = rc.renewTime() / 10
	}
	if rc.RandTime == 0 && !c.RandExact {
		rc.RandTime = rc.OverTime
	}
	if len(c.Local) == 0 || len(c.Remote) == 0 || len(c.Local) > 2 || len(c.Remote) > 2 {
		return nil, errf("local/remote", "one local and one remote authentication round are supported (and an XAuth round with IKEv1)")
	}
	if rc.local, err = resolveAuth(c.Local[0], true); err != nil {
		return nil, errf("local", "%v", err)
	}
	if rc.remote, err = resolveAuth(c.Remote[0], false); err != nil {
		return nil, errf("remote", "%v", err)
	}
	if rc.local.Auth.IsXAuth() || rc.remote.Auth.IsXAuth() {
		return nil, errf("local/remote", "XAuth is a second round, after psk or pubkey")
	}
	if len(c.Local) == 2 {
		x := *c.Local[1]
		if x.Auth != AuthXAuth || rc.Version != 1 {
			return nil, errf("local", "a second local round must be XAuth (auth = xauth) of an IKEv1 connection")
		}
		rc.xauthLocal = &x
	}
	if len(c.Remote) == 2 {
		x := *c.Remote[1]
		if !x.Auth.IsXAuth() || rc.Version != 1 {
			return nil, errf("remote", "a second remote round must be XAuth (auth = xauth or xauth-radius) of an IKEv1 connection")
		}
		rc.xauthRemote = &x
	}
	if rc.xauthLocal != nil && rc.xauthRemote != nil {
		return nil, errf("local/remote", "XAuth in both directions: one end is the XAuth server")
	}
	if (rc.xauthLocal != nil || rc.xauthRemote != nil) && rc.local.Auth != rc.remote.Auth {
		return nil, errf("local/remote", "XAuth needs psk or pubkey on both ends (hybrid authentication is not supported)")
	}
	if rc.Version == 1 && rc.remote.Auth.isEAP() {
		return nil, errf("remote.auth", "EAP needs IKEv2")
	}
	if rc.Version == 1 {
		for _, p := range rc.Proposals {
			for _, t := range p.Transforms {
				if t.Type.IsAdditionalKE() || t.Type == transform.TransformKE && transform.KEID(t.ID).IsKEM() {
					return nil, errf("proposals", "%v needs IKEv2 (RFC 9370, IKE_INTERMEDIATE)", t)
				}
			}
		}
	}
	if rc.Version == 1 && rc.local.Auth == AuthEAP {
		return nil, errf("local.auth", "EAP needs IKEv2")
	}
	if rc.local.Auth == AuthEAPRadius {
		return nil, errf("local.auth", "eap-radius is for remote rounds: we relay the peer's EAP, we do not authenticate with it")
	}
	if rc.remote.Auth.isEAP() && rc.local.Auth == AuthEAP {
		return nil, errf("local.auth", "EAP on both ends: one of them must be the server, with a certificate or a PSK")
	}
	if rc.remote.Auth == AuthEAP && slices.Contains(rc.remote.EAPMethods, eap.TypeTLS) && rc.local.Auth != AuthPubkey {
		// Our EAP-TLS server presents the certificate of our IKE round.
		if len(rc.remote.EAPMethods) == 1 {
			return nil, errf("remote.auth", "eap-tls needs a certificate of ours: local.auth = pubkey with certs")
		}
		rc.remote.EAPMethods = slices.DeleteFunc(slices.Clone(rc.remote.EAPMethods), func(t eap.Type) bool { return t == eap.TypeTLS })
	}
	if rc.Redirect != nil {
		if rc.Version == 1 {
			return nil, errf("redirect", "redirection needs IKEv2")
		}
		r := *rc.Redirect
		r.Gateways = slices.Clone(r.Gateways)
		rc.Redirect = &r
		if err := resolveRedirect(rc.Redirect); err != nil {
			return nil, errf("redirect", "%v", err)
		}
	}
	for _, ch := range c.Children {
		cc, err := resolveChild(ch)
		if err != nil {
			return nil, fmt.Errorf("connection %q: %w", c.Name, err)
		}
		cc.conn = rc
		rc.children = append(rc.children, cc)
	}
	return rc, nil
}

// validAddrs refuses the zero Addr and unmaps IPv4-mapped addresses.
func validAddrs(list []netip.Addr) ([]netip.Addr, error) {
	out := make([]netip.Addr, 0, len(list))
	for _, a := range list {
		if !a.IsValid() {
			return nil, fmt.Errorf("invalid address")
		}
		out = append(out, a.Unmap())
	}
	return out, nil
}

// checkProposals refuses proposals made for another protocol.
func checkProposals(list []transform.Proposal, proto transform.Protocol) error {
	for _, p := range list {
		if p.Protocol != proto {
			return fmt.Errorf("%s is not a proposal for %v", p.Keywords(), proto)
		}
	}
	return nil
}

func resolveAuth(a *AuthConfig, local bool) (AuthConfig, error) {
	r := *a
	if r.Auth > AuthXAuthRadius {
		return r, fmt.Errorf("auth: %v is not supported (psk, pubkey, eap, eap-radius, xauth or xauth-radius)", r.Auth)
	}
	if r.XAuthID != "" && !r.Auth.IsXAuth() {
		return r, fmt.Errorf("xauth_id: XAuth settings in a round that does not use XAuth")
	}
	if r.Auth == AuthXAuthRadius && local {
		return r, fmt.Errorf("auth: xauth-radius is for remote rounds: we relay the peer's password, we do not authenticate with it")
	}
	if r.Auth == AuthEAPRadius {
		if len(r.EAPMethods) > 0 {
			return r, fmt.Errorf("auth: eap-radius takes no EAP method: the RADIUS server chooses")
		}
	} else if r.Auth == AuthEAP {
		if len(r.EAPMethods) == 0 {
			return r, fmt.Errorf("auth: EAP without a method")
		}
		for _, t := range r.EAPMethods {
			if t != eap.TypeMD5 && t != eap.TypeMSCHAPv2 && t != eap.TypeTLS {
				return r, fmt.Errorf("auth: EAP method %v is not supported (eap-md5, eap-mschapv2, eap-tls)", t)
			}
		}
	} else if len(r.EAPMethods) > 0 || r.EAPID != "" {
		return r, fmt.Errorf("eap_id: EAP settings in a round that does not use EAP")
	}
	if r.Scheme != nil && (!local || r.Auth != AuthPubkey) {
		return r, fmt.Errorf("auth: a signature scheme applies to local pubkey rounds only")
	}
	if local && r.Auth == AuthEAP && slices.Contains(r.EAPMethods, eap.TypeTLS) {
		// The EAP-TLS client presents the round's certificate; as with
		// pubkey, our identity defaults to its subject.
		if len(a.Certs) == 0 || a.PrivateKey == nil {
			if len(r.EAPMethods) == 1 {
				return r, fmt.Errorf("certs: eap-tls needs a certificate and its private key")
			}
			r.EAPMethods = slices.DeleteFunc(slices.Clone(r.EAPMethods), func(t eap.Type) bool { return t == eap.TypeTLS })
		} else if r.ID.IsAny() {
			r.ID = Identity{Type: 9, Data: a.Certs[0].RawSubject}
		}
	}
	if local && r.Auth == AuthPubkey {
		if len(a.Certs) == 0 || a.PrivateKey == nil {
			return r, fmt.Errorf("certs: public key authentication needs a certificate and its private key")
		}
		if r.ID.IsAny() {
			r.ID = Identity{Type: 9, Data: a.Certs[0].RawSubject}
		} else if !certHasIdentity(a.Certs[0], r.ID) {
			return r, fmt.Errorf("id: certificate is not issued to %s", r.ID)
		}
	}
	return r, nil
}

func resolveChild(c *ChildConfig) (*childConfig, error) {
	cc := &childConfig{ChildConfig: *c}
	errf := func(key, format string, a ...any) error {
		return fmt.Errorf("child %q: %s: %s", c.Name, key, fmt.Sprintf(format, a...))
	}
	if len(cc.LocalTS) == 0 {
		cc.LocalTS = []TSSpec{DynamicTS()}
	}
	if len(cc.RemoteTS) == 0 {
		cc.RemoteTS = []TSSpec{DynamicTS()}
	}
	for _, ts := range append(append([]TSSpec(nil), cc.LocalTS...), cc.RemoteTS...) {
		if ts.TS.Opaque() {
			return nil, errf("local_ts/remote_ts", "%v: OPAQUE ports are not supported", ts)
		}
	}
	if len(cc.AHProposals) > 0 {
		if len(cc.ESPProposals) > 0 {
			return nil, errf("ah_proposals", "AH together with esp_proposals is not supported: set one of them")
		}
		if err := checkProposals(cc.AHProposals, transform.ProtoAH); err != nil {
			return nil, errf("ah_proposals", "%v", err)
		}
	} else {
		if len(cc.ESPProposals) == 0 {
			cc.ESPProposals = transform.DefaultProposals(transform.ProtoESP)
		}
		if err := checkProposals(cc.ESPProposals, transform.ProtoESP); err != nil {
			return nil, errf("esp_proposals", "%v", err)
		}
	}
	if cc.Mode > ModeTransport {
		return nil, errf("mode", "%v is not tunnel or transport", cc.Mode)
	}
	if cc.RekeyTime == 0 {
		cc.RekeyTime = time.Hour
	}
	if cc.LifeTime == 0 {
		cc.LifeTime = cc.RekeyTime * 11 / 10
	}
	if cc.RandTime == 0 && cc.LifeTime > cc.RekeyTime && !c.RandExact {
		// charon's default: rand_time = life_time - rekey_time, so both
		// ends do not rekey at the same moment.
		cc.RandTime = cc.LifeTime - cc.RekeyTime
	}
	cc.bytes = newVolumeLimit(c.RekeyBytes, c.LifeBytes, c.RandBytes, c.RandExact)
	cc.packets = newVolumeLimit(c.RekeyPackets, c.LifePackets, c.RandPackets, c.RandExact)
	if cc.ReplayWindow == 0 {
		cc.ReplayWindow = DefaultReplayWindow
	}
	return cc, nil
}

// DefaultReplayWindow is the replay window of inbound SAs when the
// configuration sets none: 256 packets where strongSwan has 32. A sender
// on several CPUs puts its ESP on the wire out of the order it numbered
// it in (one CPU held up between taking a sequence number and
// transmitting); in the TCG guest a 50 MB transfer arrived up to 94
// packets behind with SA steering, up to 190 without, and a window of 32
// refused up to 20 (with steering) and 376 (without) of about 38,000. Only
// the receiver uses the window, so the peer need not agree; above 32 it
// goes to the kernel as a bitmap (XFRMA_REPLAY_ESN_VAL), 32 bytes here.
const DefaultReplayWindow = 256

// restart reports dpd_action = restart.
func (c *childConfig) restart() bool { return c.DPDAction&ActionStart != 0 }

// volumeLimit is a byte or packet lifetime of a CHILD_SA's SAs: rekey
// (soft), life (hard) and the jitter taken off the soft one.
type volumeLimit struct {
	rekey, life, jitter uint64
}

// newVolumeLimit applies swanctl.conf's defaults: the hard limit 10%
// above the soft one, the jitter their difference.
func newVolumeLimit(rekey, life, jitter uint64, exact bool) volumeLimit {
	if life == 0 {
		life = PercentMore(rekey)
	}
	if jitter == 0 && life > rekey && !exact {
		jitter = life - rekey
	}
	return volumeLimit{rekey: rekey, life: life, jitter: min(jitter, rekey)}
}

// PercentMore returns v plus 10%, as strongSwan computes default hard
// lifetimes (v * 110 / 100, without overflowing).
func PercentMore(v uint64) uint64 {
	if v > math.MaxUint64/110 {
		return v/100*110 + v%100*110/100
	}
	return v * 110 / 100
}

// resolveTS turns configured selectors into concrete ones, dynamic
// becoming the given IKE address with the spec's protocol and ports.
func resolveTS(specs []TSSpec, addr netip.Addr) []TrafficSelector {
	var out []TrafficSelector
	for _, s := range specs {
		ts := s.TS
		if s.Dynamic {
			ts.Start, ts.End = addr.Unmap(), addr.Unmap()
		}
		out = append(out, ts)
	}
	return out
}
