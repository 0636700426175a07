package vici

import (
	"strconv"
	"strings"

	"github.com/xdpsec/xdpsec/internal/daemon"
)

// ikeSAMessage is an IKE SA as charon's list-sa event has it, with the
// CHILD_SAs given (none for ike-updown).
func ikeSAMessage(sa daemon.IKESA, children []daemon.ChildSA) *Message {
	m := NewMessage()
	m.Set("uniqueid", u32(sa.UniqueID)).Set("version", strconv.Itoa(sa.Version)).Set("state", sa.State)
	if sa.LocalHost != "" && sa.LocalHost != "invalid IP" {
		m.Set("local-host", sa.LocalHost).Set("local-port", strconv.Itoa(int(sa.LocalPort)))
	}
	m.Set("local-id", sa.LocalID)
	if sa.RemoteHost != "" && sa.RemoteHost != "invalid IP" {
		m.Set("remote-host", sa.RemoteHost).Set("remote-port", strconv.Itoa(int(sa.RemotePort)))
	}
	m.Set("remote-id", sa.RemoteID)
	if sa.EAPID != "" && sa.Version == 1 {
		// IKEv1's is the XAuth user, as charon names it.
		m.Set("remote-xauth-id", sa.EAPID)
	} else if sa.EAPID != "" {
		m.Set("remote-eap-id", sa.EAPID)
	}
	if sa.Initiator {
		m.Set("initiator", "yes")
	}
	m.Set("initiator-spi", sa.SPIi).Set("responder-spi", sa.SPIr)
	if sa.NATLocal {
		m.Set("nat-local", "yes")
	}
	if sa.NATRemote {
		m.Set("nat-remote", "yes")
	}
	if sa.NATLocal || sa.NATRemote {
		m.Set("nat-any", "yes")
	}
	if sa.State != "CREATED" && sa.State != "CONNECTING" {
		setAlgorithms(m, sa.Proposal, true)
	}
	if sa.Established != nil {
		m.Set("established", strconv.FormatInt(*sa.Established, 10))
	}
	if sa.RekeyTime != nil {
		m.Set("rekey-time", strconv.FormatInt(*sa.RekeyTime, 10))
	}
	if sa.ReauthTime != nil {
		m.Set("reauth-time", strconv.FormatInt(*sa.ReauthTime, 10))
	}
	if len(sa.LocalVIPs) > 0 {
		m.SetList("local-vips", sa.LocalVIPs)
	}
	if len(sa.RemoteVIPs) > 0 {
		m.SetList("remote-vips", sa.RemoteVIPs)
	}
	if children != nil {
		cs := m.Section("child-sas")
		for _, ch := range children {
			cs.AddSection(ch.Name+"-"+u32(ch.UniqueID), childSAMessage(ch))
		}
	}
	return m
}

func childSAMessage(ch daemon.ChildSA) *Message {
	m := NewMessage()
	m.Set("name", ch.Name).Set("uniqueid", u32(ch.UniqueID)).Set("reqid", u32(ch.ReqID)).Set("state", ch.State).
		Set("mode", strings.ToUpper(ch.Mode)).Set("protocol", ch.Protocol)
	if ch.Encap {
		m.Set("encap", "yes")
	}
	m.Set("spi-in", ch.SPIIn).Set("spi-out", ch.SPIOut)
	setAlgorithms(m, ch.Proposal, false)
	m.Set("bytes-in", u64(ch.BytesIn)).Set("packets-in", u64(ch.PacketsIn))
	if ch.UseIn != nil {
		m.Set("use-in", strconv.FormatInt(*ch.UseIn, 10))
	}
	m.Set("bytes-out", u64(ch.BytesOut)).Set("packets-out", u64(ch.PacketsOut))
	if ch.UseOut != nil {
		m.Set("use-out", strconv.FormatInt(*ch.UseOut, 10))
	}
	// xdp_wan's counters before authentication: no charon key carries
	// them, these are ours (swanctl does not print them).
	m.Set("rx-seen-bytes", u64(ch.RxSeenBytes)).Set("rx-seen-packets", u64(ch.RxSeenPackets))
	if ch.RekeyTime != nil {
		m.Set("rekey-time", strconv.FormatInt(*ch.RekeyTime, 10))
	}
	if ch.LifeTime != nil {
		m.Set("life-time", strconv.FormatInt(*ch.LifeTime, 10))
	}
	if ch.InstallTime != nil {
		m.Set("install-time", strconv.FormatInt(*ch.InstallTime, 10))
	}
	m.SetList("local-ts", ch.LocalTS).SetList("remote-ts", ch.RemoteTS)
	return m
}

// setAlgorithms splits a proposal ("IKE:AES_CBC_256/HMAC_SHA2_256_128/
// PRF_HMAC_SHA2_256/MODP_2048") into charon's encr-alg, encr-keysize,
// integ-alg, integ-keysize, prf-alg, dh-group, ake1..ake7 (RFC 9370's
// additional key exchanges, "KE1_ML_KEM_768") and esn keys.
func setAlgorithms(m *Message, proposal string, ikeSA bool) {
	_, algs, ok := strings.Cut(proposal, ":")
	if !ok {
		algs = proposal
	}
	var encr, integ, prf, dh, keysize string
	var ake [][2]string
	esn := false
	for _, a := range strings.Split(algs, "/") {
		switch {
		case a == "":
		case len(a) > 4 && strings.HasPrefix(a, "KE") && a[2] >= '1' && a[2] <= '7' && a[3] == '_':
			method := a[4:]
			if method == "NONE" {
				method = "KE_NONE"
			}
			ake = append(ake, [2]string{"ake" + a[2:3], method})
		case strings.HasPrefix(a, "PRF_"):
			prf = a
		case strings.HasPrefix(a, "HMAC_") || strings.HasPrefix(a, "AES_XCBC") || strings.HasPrefix(a, "AES_CMAC") || strings.HasPrefix(a, "AUTH_"):
			integ = a
		case strings.HasPrefix(a, "MODP_") || strings.HasPrefix(a, "ECP_") || strings.HasPrefix(a, "CURVE_") || strings.HasPrefix(a, "ECP") ||
			strings.HasPrefix(a, "ML_KEM") || strings.HasPrefix(a, "KE"):
			dh = a
		case a == "EXT_SEQ":
			esn = true
		case a == "NO_EXT_SEQ":
		default:
			encr = a
			if i := strings.LastIndexByte(a, '_'); i > 0 {
				if _, err := strconv.Atoi(a[i+1:]); err == nil {
					encr, keysize = a[:i], a[i+1:]
				}
			}
		}
	}
	if encr != "" {
		m.Set("encr-alg", encr)
		if keysize != "" {
			m.Set("encr-keysize", keysize)
		}
	}
	if integ != "" {
		m.Set("integ-alg", integ)
	}
	if prf != "" {
		m.Set("prf-alg", prf)
	}
	if dh != "" {
		m.Set("dh-group", dh)
	}
	for _, kv := range ake {
		m.Set(kv[0], kv[1])
	}
	if esn {
		m.Set("esn", "1")
	}
}

// authClass names an auth method as charon's auth_class names do.
func authClass(auth string) string {
	switch auth {
	case "pubkey":
		return "public key"
	case "psk":
		return "pre-shared key"
	case "eap", "eap-radius":
		return "EAP"
	}
	return "any"
}

// connMessage is a connection as charon's list-conn event has it.
func connMessage(ci daemon.ConnInfo) *Message {
	m := NewMessage()
	m.SetList("local_addrs", orAny(ci.LocalAddrs)).SetList("remote_addrs", orAny(ci.RemoteAddrs))
	m.Set("version", ci.Version)
	m.Set("reauth_time", strconv.FormatInt(ci.ReauthTime, 10)).Set("rekey_time", strconv.FormatInt(ci.RekeyTime, 10))
	m.Set("unique", "UNIQUE_NO")
	l := m.Section("local-1")
	l.Set("class", authClass(ci.LocalAuth))
	if ci.LocalID != "" {
		l.Set("id", ci.LocalID)
	}
	l.SetList("groups", nil).SetList("cert_policy", nil).SetList("certs", ci.LocalCerts).SetList("cacerts", ci.LocalCACerts)
	r := m.Section("remote-1")
	r.Set("class", authClass(ci.RemoteAuth))
	if ci.RemoteID != "" {
		r.Set("id", ci.RemoteID)
	}
	r.SetList("groups", nil).SetList("cert_policy", nil).SetList("certs", ci.RemoteCerts).SetList("cacerts", ci.RemoteCACerts)
	cs := m.Section("children")
	for _, ch := range ci.Children {
		c := cs.Section(ch.Name)
		c.Set("mode", strings.ToUpper(ch.Mode)).Set("rekey_time", strconv.FormatInt(ch.RekeyTime, 10)).
			Set("rekey_bytes", "0").Set("rekey_packets", "0").Set("dpd_action", "clear").Set("close_action", "clear")
		if ch.IfIDIn != 0 {
			c.Set("if_id_in", strconv.FormatUint(uint64(ch.IfIDIn), 16))
		}
		if ch.IfIDOut != 0 {
			c.Set("if_id_out", strconv.FormatUint(uint64(ch.IfIDOut), 16))
		}
		c.SetList("local-ts", ch.LocalTS).SetList("remote-ts", ch.RemoteTS)
	}
	return m
}

func orAny(addrs []string) []string {
	if len(addrs) == 0 {
		return []string{"%any"}
	}
	return addrs
}

func u32(v uint32) string { return strconv.FormatUint(uint64(v), 10) }
func u64(v uint64) string { return strconv.FormatUint(v, 10) }
