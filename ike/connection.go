package ike

import (
	"fmt"
	"math"
	"net/netip"
	"strings"
	"time"

	"github.com/xdpsec/xdpsec/ike/transform"
)

// connection is a Connection checked and parsed, as the engine uses it.
type connection struct {
	cfg                     *Connection
	localAddrs, remoteAddrs []netip.Addr // empty: any
	localPort, remotePort   uint16
	proposals               []transform.Proposal
	local, remote           authRound
	children                []*childConfig
	fragmentation           bool
	sendCertReq             bool
	sendCert                string
	rekeyTime, overTime     time.Duration
	randTime                time.Duration
}

type authMethod uint8

const (
	authPSK authMethod = iota + 1
	authPubkey
)

type authRound struct {
	cfg    *AuthConfig
	method authMethod
	id     Identity
	scheme *transform.SignatureScheme // local: forced scheme, nil for the default
}

type childConfig struct {
	cfg               *ChildConfig
	conn              *connection
	localTS, remoteTS []tsSpec
	proposals         []transform.Proposal
	mode              Mode
	rekeyTime         time.Duration
	lifeTime          time.Duration
	randTime          time.Duration
	bytes, packets    volumeLimit
	restart           bool // dpd_action = restart
	replayWindow      uint32
}

// tsSpec is a configured selector; dynamic stands for the IKE address.
type tsSpec struct {
	dynamic bool
	ts      TrafficSelector
}

// resolveConnection checks and parses a connection; port is the engine's
// IKE port, the default local_port.
func resolveConnection(c *Connection, port uint16) (*connection, error) {
	rc := &connection{cfg: c, localPort: c.LocalPort, remotePort: c.RemotePort, sendCert: c.SendCert, sendCertReq: true}
	errf := func(key, format string, a ...any) error {
		return fmt.Errorf("connection %q: %s: %s", c.Name, key, fmt.Sprintf(format, a...))
	}
	if c.Name == "" {
		return nil, fmt.Errorf("connection without name")
	}
	if rc.localPort == 0 {
		rc.localPort = port
	}
	if rc.remotePort == 0 {
		rc.remotePort = PortIKE
	}
	var err error
	if rc.localAddrs, err = parseAddrs(c.LocalAddrs); err != nil {
		return nil, errf("local_addrs", "%v", err)
	}
	if rc.remoteAddrs, err = parseAddrs(c.RemoteAddrs); err != nil {
		return nil, errf("remote_addrs", "%v", err)
	}
	props := strings.Join(c.Proposals, ",")
	if props == "" {
		props = "default"
	}
	if rc.proposals, err = transform.ParseProposals(transform.ProtoIKE, props); err != nil {
		return nil, errf("proposals", "%v", err)
	}
	switch c.Fragmentation {
	case "", "yes", "accept", "force":
		rc.fragmentation = true
	case "no":
	default:
		return nil, errf("fragmentation", "%q is not yes, accept, force or no", c.Fragmentation)
	}
	if c.SendCertReq != nil {
		rc.sendCertReq = *c.SendCertReq
	}
	switch c.SendCert {
	case "":
		rc.sendCert = "ifasked"
	case "ifasked", "always", "never":
	default:
		return nil, errf("send_cert", "%q is not ifasked, always or never", c.SendCert)
	}
	rc.rekeyTime = c.RekeyTime
	if rc.rekeyTime == 0 {
		rc.rekeyTime = 4 * time.Hour
	}
	rc.overTime = c.OverTime
	if rc.overTime == 0 {
		rc.overTime = rc.rekeyTime / 10
	}
	rc.randTime = c.RandTime
	if rc.randTime == 0 && !c.RandExact {
		rc.randTime = rc.overTime
	}
	if len(c.Local) != 1 || len(c.Remote) != 1 {
		return nil, errf("local/remote", "exactly one local and one remote authentication round are supported")
	}
	if rc.local, err = resolveAuth(&c.Local[0], true); err != nil {
		return nil, errf("local", "%v", err)
	}
	if rc.remote, err = resolveAuth(&c.Remote[0], false); err != nil {
		return nil, errf("remote", "%v", err)
	}
	for i := range c.Children {
		cc, err := resolveChild(&c.Children[i])
		if err != nil {
			return nil, fmt.Errorf("connection %q: %w", c.Name, err)
		}
		cc.conn = rc
		rc.children = append(rc.children, cc)
	}
	return rc, nil
}

func parseAddrs(list []string) ([]netip.Addr, error) {
	var out []netip.Addr
	for _, s := range list {
		for f := range strings.SplitSeq(s, ",") {
			f = strings.TrimSpace(f)
			if f == "" || f == "%any" || f == "%any4" || f == "%any6" {
				continue
			}
			a, err := netip.ParseAddr(f)
			if err != nil {
				return nil, err
			}
			out = append(out, a.Unmap())
		}
	}
	return out, nil
}

func resolveAuth(a *AuthConfig, local bool) (authRound, error) {
	r := authRound{cfg: a}
	var err error
	if r.id, err = ParseIdentity(a.ID); err != nil {
		return r, fmt.Errorf("id: %w", err)
	}
	switch a.Auth {
	case "psk":
		r.method = authPSK
	case "pubkey", "":
		r.method = authPubkey
	case "rsa", "rsa/pss", "ecdsa", "ed25519":
		r.method = authPubkey
		s := map[string]transform.SignatureScheme{
			"rsa":     {Algorithm: transform.SigRSAPKCS1, Hash: transform.HashSHA2_256},
			"rsa/pss": {Algorithm: transform.SigRSAPSS, Hash: transform.HashSHA2_256},
		}[a.Auth]
		if s.Algorithm != 0 {
			r.scheme = &s
		}
	default:
		return r, fmt.Errorf("auth: %q is not supported (psk, pubkey, rsa, rsa/pss, ecdsa, ed25519)", a.Auth)
	}
	if local && r.method == authPubkey {
		if len(a.Certs) == 0 || a.PrivateKey == nil {
			return r, fmt.Errorf("certs: public key authentication needs a certificate and its private key")
		}
		if r.id.IsAny() {
			r.id = Identity{Type: 9, Data: a.Certs[0].RawSubject}
		} else if !certHasIdentity(a.Certs[0], r.id) {
			return r, fmt.Errorf("id: certificate is not issued to %s", r.id)
		}
	}
	return r, nil
}

func resolveChild(c *ChildConfig) (*childConfig, error) {
	cc := &childConfig{cfg: c, replayWindow: c.ReplayWindow}
	errf := func(key, format string, a ...any) error {
		return fmt.Errorf("child %q: %s: %s", c.Name, key, fmt.Sprintf(format, a...))
	}
	var err error
	if cc.localTS, err = parseTSSpecs(c.LocalTS); err != nil {
		return nil, errf("local_ts", "%v", err)
	}
	if cc.remoteTS, err = parseTSSpecs(c.RemoteTS); err != nil {
		return nil, errf("remote_ts", "%v", err)
	}
	props := strings.Join(c.ESPProposals, ",")
	if props == "" {
		props = "default"
	}
	if cc.proposals, err = transform.ParseProposals(transform.ProtoESP, props); err != nil {
		return nil, errf("esp_proposals", "%v", err)
	}
	switch c.Mode {
	case "", "tunnel":
	case "transport":
		cc.mode = ModeTransport
	default:
		return nil, errf("mode", "%q is not tunnel or transport", c.Mode)
	}
	switch c.DPDAction {
	case "", "clear", "trap", "none":
	case "restart":
		cc.restart = true
	default:
		return nil, errf("dpd_action", "%q is not clear, trap or restart", c.DPDAction)
	}
	cc.rekeyTime = c.RekeyTime
	if cc.rekeyTime == 0 {
		cc.rekeyTime = time.Hour
	}
	cc.lifeTime = c.LifeTime
	if cc.lifeTime == 0 {
		cc.lifeTime = cc.rekeyTime * 11 / 10
	}
	cc.randTime = c.RandTime
	if cc.randTime == 0 && cc.lifeTime > cc.rekeyTime && !c.RandExact {
		// charon's default: rand_time = life_time - rekey_time, so both
		// ends do not rekey at the same moment.
		cc.randTime = cc.lifeTime - cc.rekeyTime
	}
	cc.bytes = newVolumeLimit(c.RekeyBytes, c.LifeBytes, c.RandBytes, c.RandExact)
	cc.packets = newVolumeLimit(c.RekeyPackets, c.LifePackets, c.RandPackets, c.RandExact)
	if cc.replayWindow == 0 {
		cc.replayWindow = 32
	}
	return cc, nil
}

// volumeLimit is a byte or packet lifetime of a CHILD_SA's SAs: rekey
// (soft), life (hard) and the jitter taken off the soft one.
type volumeLimit struct {
	rekey, life, jitter uint64
}

// newVolumeLimit applies swanctl.conf's defaults: the hard limit 10%
// above the soft one, the jitter their difference.
func newVolumeLimit(rekey, life, jitter uint64, exact bool) volumeLimit {
	if life == 0 {
		life = percentMore(rekey)
	}
	if jitter == 0 && life > rekey && !exact {
		jitter = life - rekey
	}
	return volumeLimit{rekey: rekey, life: life, jitter: min(jitter, rekey)}
}

func percentMore(v uint64) uint64 {
	if v > math.MaxUint64/110 {
		return v/100*110 + v%100*110/100
	}
	return v * 110 / 100
}

func parseTSSpecs(list []string) ([]tsSpec, error) {
	var out []tsSpec
	for _, s := range list {
		for f := range strings.SplitSeq(s, ",") {
			f = strings.TrimSpace(f)
			if f == "" {
				continue
			}
			if f == "dynamic" {
				out = append(out, tsSpec{dynamic: true})
				continue
			}
			ts, err := ParseTS(f)
			if err != nil {
				return nil, err
			}
			out = append(out, tsSpec{ts: ts})
		}
	}
	if len(out) == 0 {
		out = append(out, tsSpec{dynamic: true})
	}
	return out, nil
}

// resolveTS turns configured selectors into concrete ones, dynamic
// becoming the given IKE address.
func resolveTS(specs []tsSpec, addr netip.Addr) []TrafficSelector {
	var out []TrafficSelector
	for _, s := range specs {
		if s.dynamic {
			out = append(out, HostTS(addr))
		} else {
			out = append(out, s.ts)
		}
	}
	return out
}
