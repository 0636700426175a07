package ike

import (
	"crypto"
	"crypto/x509"
	"time"
)

// Connection is one IKE connection, a swanctl.conf "connections.<name>"
// section. Field names follow the swanctl keys (given in each comment) so
// that a parsed file maps onto it one to one; values are already parsed
// where the syntax is trivial (durations, booleans), kept as strongSwan
// strings where the engine owns their meaning (proposals, selectors, ids).
type Connection struct {
	Name string // the section name

	// Version (version): 0 or 2 for IKEv2, 1 for IKEv1 (Main Mode, or
	// Aggressive Mode with Aggressive; see v1_*.go).
	Version int
	// Aggressive (aggressive) initiates IKEv1 in Aggressive Mode, and lets
	// a responder accept Aggressive Mode with pre-shared keys, which
	// charon refuses unless told it does not care about security.
	Aggressive bool

	LocalAddrs  []string // local_addrs: addresses, "%any" or empty for any
	RemoteAddrs []string // remote_addrs
	LocalPort   uint16   // local_port, default the engine's Config.Port (500)
	RemotePort  uint16   // remote_port, default 500
	Proposals   []string // proposals: IKE proposal strings, default "default"
	// Encap forces UDP encapsulation (encap): port 4500 even without NAT.
	Encap bool
	// Fragmentation (fragmentation): "yes" (default), "accept", "force"
	// or "no". "yes" and "accept" announce support, "no" neither
	// announces nor fragments.
	Fragmentation string
	DPDDelay      time.Duration // dpd_delay: 0 disables liveness checks
	DPDTimeout    time.Duration // dpd_timeout: 0 relies on retransmission
	RekeyTime     time.Duration // rekey_time of the IKE SA, default 4h; 0 via NoRekey
	OverTime      time.Duration // over_time: hard IKE SA lifetime beyond rekey_time
	RandTime      time.Duration // rand_time: jitter subtracted from rekey_time
	// RandExact takes rand_time here and rand_* in the children as given:
	// zero means no jitter instead of the default (for a caller that
	// resolved swanctl.conf's defaults itself, such as the daemon).
	RandExact   bool
	SendCertReq *bool  // send_certreq, default yes
	SendCert    string // send_cert: "ifasked" (default), "always", "never"
	Unique      string // unique: "no" (default), "never", "keep", "replace"
	KeyingTries int    // keyingtries, default 1

	Local    []AuthConfig  // local<suffix> rounds; one is supported
	Remote   []AuthConfig  // remote<suffix> rounds; one is supported
	Children []ChildConfig // children.<name>, in file order
}

// AuthConfig is a local or remote authentication round
// (connections.<name>.local / .remote).
type AuthConfig struct {
	// Auth (auth): "psk", "pubkey", or a specific signature scheme for
	// local rounds: "rsa" (PKCS#1 v1.5), "rsa/pss", "ecdsa", "ed25519".
	Auth string
	// ID (id): the identity, "%any" or empty for any on the remote side.
	// Parsed as strongSwan does: an IP address, "@fqdn", "@#hex" (KEY_ID),
	// "user@domain" (RFC822), a DN ("C=CH, O=org, CN=host"), or a
	// typed form "fqdn:", "email:", "keyid:", "ipv4:", "ipv6:", "asn1dn:".
	ID string
	// Certs (certs): our certificate then intermediates (local), or
	// certificates the peer must use (remote, optional).
	Certs []*x509.Certificate
	// PrivateKey is the key of Certs[0]; swanctl finds it in its
	// private/ directory by matching public key.
	PrivateKey crypto.Signer
	// CACerts (cacerts): for remote rounds, the trust anchors the peer's
	// certificate must chain to; empty means the engine's Credentials.CAs.
	CACerts []*x509.Certificate
}

// ChildConfig is a CHILD_SA, a "connections.<name>.children.<child>" section.
type ChildConfig struct {
	Name string

	LocalTS  []string // local_ts: selectors, "dynamic" (default) is our address
	RemoteTS []string // remote_ts
	// ESPProposals (esp_proposals); a key exchange in them means PFS on
	// rekeying (and on CREATE_CHILD_SA).
	ESPProposals []string
	Mode         string        // mode: "tunnel" (default) or "transport"
	RekeyTime    time.Duration // rekey_time, default 1h
	LifeTime     time.Duration // life_time, default rekey_time * 1.1
	RandTime     time.Duration // rand_time, default life_time - rekey_time
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
	// DPDAction (dpd_action): "clear" (default), "trap" (taken as
	// clear) or "restart", what to do when the peer is found dead.
	DPDAction    string
	StartAction  string // start_action: "none", "trap", "start"
	CloseAction  string // close_action: "none", "trap", "start"
	IfIDIn       uint32 // if_id_in
	IfIDOut      uint32 // if_id_out
	ReplayWindow uint32 // replay_window, default 32
	// Reqid (reqid): fixed reqid, 0 to allocate one.
	Reqid uint32
}

// SharedKey is a secrets.ike<suffix> entry: a pre-shared key and the
// identities it is for (an empty list matches any).
type SharedKey struct {
	IDs    []string
	Secret []byte
}

// Credentials are what swanctl loads outside connections: shared secrets
// and trusted CA certificates (x509ca/, authorities).
type Credentials struct {
	Shared []SharedKey
	CAs    []*x509.Certificate
}
