package daemon

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"

	"github.com/xdpsec/xdpsec/ike"
	"github.com/xdpsec/xdpsec/ike/swanctl"
	"github.com/xdpsec/xdpsec/maps/xfrm"
)

// Loaded is a swanctl.conf mapped onto what the engine takes, with what
// the daemon itself acts on (start_action, hw_offload) kept beside it.
type Loaded struct {
	File        *swanctl.Config
	Connections []*ike.Connection
	Credentials ike.Credentials
	Children    []ChildMeta
}

// ChildMeta is what the daemon, not the engine, needs of a CHILD_SA config.
type ChildMeta struct {
	Conn, Child    string
	StartAction    swanctl.Action
	HWOffload      xfrm.OffloadMode
	IfIDIn         uint32
	IfIDOut        uint32
	LocalAddrs     []netip.Addr // empty: any
	RemoteAddrs    []netip.Addr
	HasSpecificDst bool
}

// LoadConfig reads a swanctl.conf and maps it; errors name the key.
func LoadConfig(path string) (*Loaded, error) {
	f, err := swanctl.Load(path)
	if err != nil {
		return nil, err
	}
	return MapConfig(f)
}

// MapConfig maps a loaded swanctl.conf onto engine connections and
// credentials: PSKs from the secrets section, certificates, keys and CAs
// read from their files.
func MapConfig(f *swanctl.Config) (*Loaded, error) {
	l := &Loaded{File: f}
	keys, err := loadPrivateKeys(f.Secrets.PrivateKeys)
	if err != nil {
		return nil, err
	}
	for _, c := range f.Connections {
		ic, meta, err := mapConnection(c, keys)
		if err != nil {
			return nil, err
		}
		l.Connections = append(l.Connections, ic)
		l.Children = append(l.Children, meta...)
	}
	for _, s := range f.Secrets.IKE {
		l.Credentials.Shared = append(l.Credentials.Shared, ike.SharedKey{IDs: s.IDs, Secret: s.Secret.Bytes()})
	}
	// swanctl loads every certificate in x509ca/ as a trust anchor.
	cas, err := loadCertDir(filepath.Join(f.Dir, "x509ca"))
	if err != nil {
		return nil, err
	}
	l.Credentials.CAs = cas
	return l, nil
}

func keyErr(path string, format string, a ...any) error {
	return fmt.Errorf("%s: %s", path, fmt.Sprintf(format, a...))
}

func mapConnection(c *swanctl.Connection, keys []crypto.Signer) (*ike.Connection, []ChildMeta, error) {
	path := "connections." + c.Name
	ic := &ike.Connection{
		Name: c.Name, Version: int(c.Version), Aggressive: c.Aggressive,
		LocalPort: c.LocalPort, RemotePort: c.RemotePort,
		Encap: c.Encap, Fragmentation: c.Fragmentation.String(),
		DPDDelay: c.DPDDelay, DPDTimeout: c.DPDTimeout,
		RekeyTime: c.RekeyTime, OverTime: c.OverTime, RandTime: c.RandTime, RandExact: true,
		SendCert: c.SendCert.String(), Unique: c.Unique.String(), KeyingTries: int(c.KeyingTries),
	}
	if c.ReauthTime != 0 && c.RekeyTime == 0 {
		// Reauthentication is a fresh IKE SA; rekeying at that interval
		// renews the keys as often.
		ic.RekeyTime = c.ReauthTime
	}
	sendCertReq := c.SendCertReq
	ic.SendCertReq = &sendCertReq
	var err error
	var localIPs, remoteIPs []netip.Addr
	if ic.LocalAddrs, localIPs, err = mapAddrs(c.LocalAddrs, path+".local_addrs"); err != nil {
		return nil, nil, err
	}
	if ic.RemoteAddrs, remoteIPs, err = mapAddrs(c.RemoteAddrs, path+".remote_addrs"); err != nil {
		return nil, nil, err
	}
	for _, p := range c.Proposals {
		ic.Proposals = append(ic.Proposals, p.Keywords())
	}
	for _, a := range c.Local {
		ac, err := mapAuth(a, true, path+"."+a.Name, keys)
		if err != nil {
			return nil, nil, err
		}
		ic.Local = append(ic.Local, ac)
	}
	for _, a := range c.Remote {
		ac, err := mapAuth(a, false, path+"."+a.Name, nil)
		if err != nil {
			return nil, nil, err
		}
		ic.Remote = append(ic.Remote, ac)
	}
	var metas []ChildMeta
	for _, ch := range c.Children {
		cc, meta, err := mapChild(c, ch, path+".children."+ch.Name)
		if err != nil {
			return nil, nil, err
		}
		meta.LocalAddrs, meta.RemoteAddrs = localIPs, remoteIPs
		meta.HasSpecificDst = len(remoteIPs) > 0
		ic.Children = append(ic.Children, cc)
		metas = append(metas, meta)
	}
	return ic, metas, nil
}

// mapAddrs resolves DNS names (once, at load) and refuses what the engine
// cannot match yet.
func mapAddrs(list []swanctl.Addr, key string) ([]string, []netip.Addr, error) {
	var out []string
	var ips []netip.Addr
	for _, a := range list {
		switch a.Kind {
		case swanctl.AddrAny:
		case swanctl.AddrIP:
			out = append(out, a.IP.String())
			ips = append(ips, a.IP)
		case swanctl.AddrDNS:
			addrs, err := net.LookupHost(a.Name)
			if err != nil || len(addrs) == 0 {
				return nil, nil, keyErr(key, "cannot resolve %q: %v", a.Name, err)
			}
			ip, err := netip.ParseAddr(addrs[0])
			if err != nil {
				return nil, nil, keyErr(key, "%q resolved to %q: %v", a.Name, addrs[0], err)
			}
			out = append(out, ip.String())
			ips = append(ips, ip)
		default:
			return nil, nil, keyErr(key, "%s: subnets and ranges are not supported by the daemon yet", a)
		}
	}
	return out, ips, nil
}

func mapAuth(a *swanctl.AuthRound, local bool, key string, keys []crypto.Signer) (ike.AuthConfig, error) {
	ac := ike.AuthConfig{ID: a.ID}
	if a.Auth == swanctl.AuthPSK {
		ac.Auth = "psk"
	} else {
		spec := strings.ToLower(a.AuthSpec)
		switch {
		case strings.HasPrefix(spec, "rsa/pss"):
			ac.Auth = "rsa/pss"
		case strings.HasPrefix(spec, "rsa"):
			ac.Auth = "rsa"
		case strings.HasPrefix(spec, "ecdsa"):
			ac.Auth = "ecdsa"
		case strings.HasPrefix(spec, "ed25519"):
			ac.Auth = "ed25519"
		default:
			ac.Auth = "pubkey"
		}
		if !local {
			ac.Auth = "pubkey"
		}
	}
	for _, p := range a.Certs {
		cs, err := loadCerts(p)
		if err != nil {
			return ac, keyErr(key+".certs", "%v", err)
		}
		ac.Certs = append(ac.Certs, cs...)
	}
	for _, p := range a.CACerts {
		cs, err := loadCerts(p)
		if err != nil {
			return ac, keyErr(key+".cacerts", "%v", err)
		}
		ac.CACerts = append(ac.CACerts, cs...)
	}
	if len(a.PubKeys) > 0 {
		return ac, keyErr(key+".pubkeys", "raw public keys are not supported by the daemon yet")
	}
	if local && len(ac.Certs) > 0 {
		for _, k := range keys {
			if publicKeyEqual(k.Public(), ac.Certs[0].PublicKey) {
				ac.PrivateKey = k
				break
			}
		}
		if ac.PrivateKey == nil {
			return ac, keyErr(key+".certs", "no private key for certificate %q found in private/, rsa/, ecdsa/, pkcs8/ or secrets", ac.Certs[0].Subject)
		}
	}
	return ac, nil
}

func publicKeyEqual(a, b crypto.PublicKey) bool {
	type equaler interface{ Equal(crypto.PublicKey) bool }
	if e, ok := a.(equaler); ok {
		return e.Equal(b)
	}
	return reflect.DeepEqual(a, b)
}

func mapChild(c *swanctl.Connection, ch *swanctl.Child, key string) (ike.ChildConfig, ChildMeta, error) {
	cc := ike.ChildConfig{
		Name: ch.Name, Mode: ch.Mode.String(),
		RekeyTime: ch.Lifetime.RekeyTime, LifeTime: ch.Lifetime.LifeTime, RandTime: ch.Lifetime.RandTime, RandExact: true,
		RekeyBytes: ch.Lifetime.RekeyBytes, LifeBytes: ch.Lifetime.LifeBytes, RandBytes: ch.Lifetime.RandBytes,
		RekeyPackets: ch.Lifetime.RekeyPackets, LifePackets: ch.Lifetime.LifePackets, RandPackets: ch.Lifetime.RandPackets,
		StartAction: ch.StartAction.String(), CloseAction: ch.CloseAction.String(),
		ReplayWindow: ch.ReplayWindow, Reqid: ch.Reqid,
	}
	meta := ChildMeta{Conn: c.Name, Child: ch.Name, StartAction: ch.StartAction}
	switch ch.Mode {
	case swanctl.ModePass, swanctl.ModeDrop:
		return cc, meta, keyErr(key+".mode", "%v policies are not supported by the daemon yet", ch.Mode)
	}
	switch ch.DPDAction {
	case swanctl.ActionStart:
		cc.DPDAction = "restart"
	case swanctl.ActionTrap:
		cc.DPDAction = "trap"
	default:
		cc.DPDAction = "clear"
	}
	var err error
	if cc.LocalTS, err = mapTS(ch.LocalTS, key+".local_ts"); err != nil {
		return cc, meta, err
	}
	if cc.RemoteTS, err = mapTS(ch.RemoteTS, key+".remote_ts"); err != nil {
		return cc, meta, err
	}
	for _, p := range ch.ESPProposals {
		cc.ESPProposals = append(cc.ESPProposals, p.Keywords())
	}
	// if_id_in/out of the connection are the default of its children.
	in, out := c.IfIDIn, c.IfIDOut
	if ch.IfIDIn != (swanctl.IfID{}) {
		in = ch.IfIDIn
	}
	if ch.IfIDOut != (swanctl.IfID{}) {
		out = ch.IfIDOut
	}
	if in.Unique != swanctl.UniqueNone || out.Unique != swanctl.UniqueNone {
		return cc, meta, keyErr(key+".if_id_in", "%%unique interface IDs are not supported by the daemon yet")
	}
	cc.IfIDIn, cc.IfIDOut = in.ID, out.ID
	meta.IfIDIn, meta.IfIDOut = in.ID, out.ID
	if ch.MarkIn != (swanctl.Mark{}) || ch.MarkOut != (swanctl.Mark{}) {
		return cc, meta, keyErr(key+".mark_in", "marks are not supported by the daemon yet")
	}
	switch ch.HWOffload {
	case swanctl.HWOffloadYes:
		meta.HWOffload = xfrm.OffloadYes
	case swanctl.HWOffloadAuto:
		meta.HWOffload = xfrm.OffloadAuto
	case swanctl.HWOffloadPacket:
		meta.HWOffload = xfrm.OffloadPacket
	}
	if cc.ReplayWindow == 0 {
		// The engine takes 0 as its default of 32; a window of 0 (no
		// replay protection) cannot be asked for.
		return cc, meta, keyErr(key+".replay_window", "0 (replay protection off) is not supported by the daemon")
	}
	return cc, meta, nil
}

// mapTS writes selectors in the syntax ike.ParseTS reads.
func mapTS(list []swanctl.TrafficSelector, key string) ([]string, error) {
	var out []string
	for _, ts := range list {
		if ts.Opaque {
			return nil, keyErr(key, "OPAQUE ports are not supported by the daemon yet")
		}
		var s string
		switch {
		case ts.Dynamic:
			s = "dynamic"
			if ts.Protocol != 0 || ts.FromPort != 0 || ts.ToPort != 0xffff {
				return nil, keyErr(key, "dynamic with a protocol or port is not supported by the daemon yet")
			}
			out = append(out, s)
			continue
		case ts.Prefix.IsValid():
			s = ts.Prefix.String()
		default:
			s = ts.From.String() + "-" + ts.To.String()
		}
		if ts.Protocol != 0 || ts.FromPort != 0 || ts.ToPort != 0xffff {
			s += "[" + strconv.Itoa(int(ts.Protocol))
			if ts.FromPort != 0 || ts.ToPort != 0xffff {
				s += "/" + strconv.Itoa(int(ts.FromPort))
				if ts.ToPort != ts.FromPort {
					s += "-" + strconv.Itoa(int(ts.ToPort))
				}
			}
			s += "]"
		}
		if _, err := ike.ParseTS(s); err != nil {
			return nil, keyErr(key, "%v", err)
		}
		out = append(out, s)
	}
	return out, nil
}

// loadCerts reads the certificates of a PEM or DER file.
func loadCerts(path string) ([]*x509.Certificate, error) {
	if err := swanctl.CheckFileOwner(path, "the daemon trusts or presents its certificates"); err != nil {
		return nil, err
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var out []*x509.Certificate
	rest := b
	for {
		var blk *pem.Block
		blk, rest = pem.Decode(rest)
		if blk == nil {
			break
		}
		if blk.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		c, err := x509.ParseCertificate(b)
		if err != nil {
			return nil, fmt.Errorf("%s: neither PEM certificates nor a DER certificate: %w", path, err)
		}
		out = append(out, c)
	}
	return out, nil
}

func loadCertDir(dir string) ([]*x509.Certificate, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []*x509.Certificate
	for _, e := range entries {
		if e.IsDir() {
			continue
		}
		cs, err := loadCerts(filepath.Join(dir, e.Name()))
		if err != nil {
			return nil, fmt.Errorf("x509ca: %w", err)
		}
		out = append(out, cs...)
	}
	return out, nil
}

// loadPrivateKeys reads the private keys swanctl.conf names or its key
// folders hold.
func loadPrivateKeys(list []*swanctl.PrivateKey) ([]crypto.Signer, error) {
	var out []crypto.Signer
	for _, k := range list {
		s, err := loadPrivateKey(k.Path)
		if err != nil {
			where := k.Path
			if k.Name != "" {
				where = "secrets." + k.Name + ".file"
			}
			return nil, fmt.Errorf("%s: %w", where, err)
		}
		out = append(out, s)
	}
	return out, nil
}

func loadPrivateKey(path string) (crypto.Signer, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	der := b
	if blk, _ := pem.Decode(b); blk != nil {
		if blk.Headers["Proc-Type"] != "" || strings.Contains(blk.Type, "ENCRYPTED") {
			return nil, fmt.Errorf("%s: encrypted private keys are not supported yet", path)
		}
		der = blk.Bytes
	}
	if k, err := x509.ParsePKCS8PrivateKey(der); err == nil {
		switch k := k.(type) {
		case *rsa.PrivateKey:
			return k, nil
		case *ecdsa.PrivateKey:
			return k, nil
		case ed25519.PrivateKey:
			return k, nil
		}
		return nil, fmt.Errorf("%s: unsupported key type %T", path, k)
	}
	if k, err := x509.ParsePKCS1PrivateKey(der); err == nil {
		return k, nil
	}
	if k, err := x509.ParseECPrivateKey(der); err == nil {
		return k, nil
	}
	return nil, fmt.Errorf("%s: not a PKCS#8, PKCS#1 or SEC 1 private key", path)
}

// offloadFor returns the hw_offload of the CHILD_SA an SA belongs to. The
// engine does not name the CHILD_SA in an ike.SA, so it is found by its
// addresses and if_id; when several children could match, the first
// asking for offload wins.
func offloadFor(children []ChildMeta) func(sa *ike.SA) xfrm.OffloadMode {
	return func(sa *ike.SA) xfrm.OffloadMode {
		localAddr, remoteAddr, ifID := sa.Src, sa.Dst, uint32(0)
		for _, m := range children {
			if sa.Inbound {
				localAddr, remoteAddr, ifID = sa.Dst, sa.Src, m.IfIDIn
			} else {
				ifID = m.IfIDOut
			}
			if m.HWOffload == xfrm.OffloadNo || ifID != sa.IfID {
				continue
			}
			if addrIn(m.LocalAddrs, localAddr) && addrIn(m.RemoteAddrs, remoteAddr) {
				return m.HWOffload
			}
		}
		return xfrm.OffloadNo
	}
}

func addrIn(list []netip.Addr, a netip.Addr) bool {
	if len(list) == 0 {
		return true
	}
	for _, x := range list {
		if x.Unmap() == a.Unmap() {
			return true
		}
	}
	return false
}
