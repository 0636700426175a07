package ike

import (
	"fmt"
	"net/netip"
	"slices"

	"github.com/xdpsec/xdpsec/ike/eap"
	"github.com/xdpsec/xdpsec/ike/message"
	"github.com/xdpsec/xdpsec/ike/transform"
)

// eapPeerRound is the initiator's side of IKE_AUTH with EAP (the flow is
// drawn at eapRound): our first request carries no AUTH, the responder's
// first response authenticates it and starts EAP, and each response until
// EAP-Success is answered with another IKE_AUTH request from the same
// task, queued again in front; then our AUTH over the MSK, and the
// responder's AUTH, CP and CHILD_SA in the last response.
type eapPeerRound struct {
	peer     *eap.Peer
	identity string
	idiBytes []byte // IDi as we sent it, for our AUTH
	idrBytes []byte // IDr as the responder sent it, for its AUTH
	next     []byte // the EAP Response the next request carries
	msk      []byte
	verified bool // the responder's certificate AUTH is verified
	authSent bool // EAP succeeded and our AUTH is sent
}

func (r *eapPeerRound) wipe() {
	clear(r.msk)
	r.msk = nil
	r.peer.Abort()
}

func (r *eapPeerRound) secret(skp []byte) []byte {
	if len(r.msk) > 0 {
		return r.msk
	}
	return skp
}

// startEAPPeer builds the first request of an IKE_AUTH with EAP.
func (t *ikeAuth) startEAPPeer(m *message.Message, idi *message.IDi) error {
	sa := t.sa
	identity := sa.conn.local.EAPID
	if identity == "" {
		identity = sa.localID.String()
	}
	methods := sa.conn.local.EAPMethods
	secret, err := sa.e.eapSecret(identity)
	if err != nil {
		// EAP-TLS needs no password: without one, it is the only method.
		if !slices.Contains(methods, eap.TypeTLS) {
			sa.log.Info(fmt.Sprintf("no EAP key found for '%s'", identity))
			t.abortChild()
			return errDestroy
		}
		methods = []eap.Type{eap.TypeTLS}
	}
	peer, err := eap.NewPeer(eap.PeerConfig{Identity: identity, Secret: secret, Methods: methods, Rand: sa.e.rand,
		NewMethod: sa.newEAPPeerMethod})
	secret.Wipe()
	if err != nil {
		sa.log.Info(fmt.Sprintf("EAP peer: %v", err))
		t.abortChild()
		return errDestroy
	}
	t.peerEAP = &eapPeerRound{peer: peer, identity: identity, idiBytes: idi.IDBytes()}
	m.Payloads = append(m.Payloads, idi)
	sa.appendRequestHints(m)
	if cp := sa.configRequestPayload(); cp != nil {
		m.Payloads = append(m.Payloads, cp)
	}
	if t.child != nil {
		if err := t.child.buildRequest(m); err != nil {
			t.child = nil
		}
	}
	return nil
}

// newEAPPeerMethod makes EAP-TLS's peer side when the server starts it:
// our round's certificate and key, the server's certificate checked
// against the remote round's CAs and the identity it authenticated with
// in IKE (verified before any EAP message is taken).
func (sa *ikeSA) newEAPPeerMethod(t eap.Type) eap.PeerMethod {
	if t != eap.TypeTLS {
		return nil
	}
	m, err := eap.NewTLSPeer(sa.tlsConfig(sa.conn.local, sa.remoteID.String()))
	if err != nil {
		sa.log.Info(fmt.Sprintf("EAP-TLS peer: %v", err))
		return nil
	}
	return m
}

// buildEAPRequest builds the IKE_AUTH requests after the first.
func (t *ikeAuth) buildEAPRequest(m *message.Message) error {
	sa, r := t.sa, t.peerEAP
	if r.next != nil {
		m.Payloads = append(m.Payloads, &message.EAP{Message: r.next})
		r.next = nil
		return nil
	}
	octets, err := sa.signedOctets(true, r.idiBytes)
	var data []byte
	if err == nil {
		data, err = transform.PSKAuth(sa.suite.PRF, r.secret(sa.keys.PI), octets)
	}
	if err != nil {
		sa.log.Info(fmt.Sprintf("generating AUTH payload failed: %v", err))
		t.abortChild()
		return errDestroy
	}
	sa.log.Info(fmt.Sprintf("authentication of '%s' (myself) with EAP", sa.localID))
	r.authSent = true
	m.Payloads = append(m.Payloads, &message.Authentication{Method: message.AuthSharedKeyMIC, Data: data})
	return nil
}

// again queues the task in front, for the next IKE_AUTH request.
func (t *ikeAuth) again() {
	t.sa.tm.queued = append([]task{t}, t.sa.tm.queued...)
}

// processEAPResponse takes the responses of an IKE_AUTH with EAP.
func (t *ikeAuth) processEAPResponse(m *message.Message) error {
	sa, r := t.sa, t.peerEAP
	fail := func() error {
		r.wipe()
		t.abortChild()
		return errDestroy
	}
	if nt, ok := notifyErr(m); ok && (!r.authSent || nt == message.AUTHENTICATION_FAILED) {
		sa.log.Info(fmt.Sprintf("received %v notify error", nt))
		return fail()
	}
	if !r.verified {
		idr, ok1 := find[*message.IDr](m)
		auth, ok2 := find[*message.Authentication](m)
		if !ok1 || !ok2 {
			sa.log.Info("IDr or AUTH payload missing")
			return fail()
		}
		peer := Identity{Type: idr.IDType, Data: idr.Data}
		if !sa.conn.remote.ID.Matches(peer) {
			sa.log.Info(fmt.Sprintf("received IDr '%s' does not match configured '%s'", peer, sa.conn.remote.ID))
			return fail()
		}
		if err := sa.verifyAuth(sa.conn.remote, peer, idr.IDBytes(), auth, findAll[*message.Certificate](m)); err != nil {
			sa.log.Info(err.Error())
			return fail()
		}
		sa.remoteID = peer
		r.idrBytes = idr.IDBytes()
		r.verified = true
	}
	if !r.authSent {
		p, ok := find[*message.EAP](m)
		if !ok {
			sa.log.Info("EAP payload missing")
			return fail()
		}
		out, err := r.peer.Process(p.Message)
		if err != nil {
			sa.log.Info(fmt.Sprintf("EAP: %v", err))
			return fail()
		}
		if r.peer.Done() {
			res := r.peer.Result()
			if res.Err != nil {
				sa.log.Info(fmt.Sprintf("EAP authentication failed: %v", res.Err))
				return fail()
			}
			r.msk = res.MSK
			if res.Detail != "" {
				sa.log.Info(res.Detail)
			}
			if len(r.msk) > 0 {
				sa.log.Info(fmt.Sprintf("EAP method %v succeeded, MSK established", res.Method))
			} else {
				sa.log.Info(fmt.Sprintf("EAP method %v succeeded, no MSK established", res.Method))
			}
			t.again()
			return nil
		}
		if out == nil {
			sa.log.Info("EAP conversation stalled")
			return fail()
		}
		r.next = out
		t.again()
		return nil
	}
	auth, ok := find[*message.Authentication](m)
	if !ok {
		sa.log.Info("AUTH payload missing")
		return fail()
	}
	octets, err := sa.signedOctets(false, r.idrBytes)
	if err == nil {
		err = errAuth
		if auth.Method == message.AuthSharedKeyMIC {
			err = transform.VerifyPSKAuth(sa.suite.PRF, r.secret(sa.keys.PR), octets, auth.Data)
		}
	}
	r.wipe()
	if err != nil {
		sa.log.Info("verification of AUTH payload with EAP MSK failed")
		return t.rejectResponder()
	}
	sa.log.Info(fmt.Sprintf("authentication of '%s' with EAP successful", sa.remoteID))
	sa.eapIdentity = r.identity
	sa.configReply(m)
	sa.established()
	sa.logEstablished()
	if t.child != nil {
		return t.child.processResponse(m)
	}
	return nil
}

// configRequestPayload is the CFG_REQUEST for the connection's vips (the
// addresses we had, when reauthenticating), nil without.
func (sa *ikeSA) configRequestPayload() *message.Configuration {
	if len(sa.conn.VIPs) == 0 {
		return nil
	}
	cp := &message.Configuration{CFGType: message.CFG_REQUEST}
	vips := sa.conn.VIPs
	if len(sa.reauthVIPs) > 0 {
		vips = sa.reauthVIPs
	}
	for _, v := range vips {
		if v.Is4() {
			var val []byte
			if !v.IsUnspecified() {
				val = v.AsSlice()
			}
			cp.Attributes = append(cp.Attributes, message.ConfigAttribute{Type: message.INTERNAL_IP4_ADDRESS, Value: val},
				message.ConfigAttribute{Type: message.INTERNAL_IP4_DNS})
		} else {
			var val []byte
			if !v.IsUnspecified() {
				val = append(v.AsSlice(), 128)
			}
			cp.Attributes = append(cp.Attributes, message.ConfigAttribute{Type: message.INTERNAL_IP6_ADDRESS, Value: val},
				message.ConfigAttribute{Type: message.INTERNAL_IP6_DNS})
		}
	}
	return cp
}

// configReply takes the virtual IPs and DNS servers of the gateway's
// CFG_REPLY and installs the virtual IPs (virtual_ip.go). The DNS servers
// are logged and listed (list-sas), not written anywhere: the daemon
// leaves the host's resolver to the operator.
func (sa *ikeSA) configReply(m *message.Message) {
	if len(sa.conn.VIPs) == 0 {
		return
	}
	cp, ok := find[*message.Configuration](m)
	if !ok || cp.CFGType != message.CFG_REPLY {
		sa.log.Info("no virtual IP received")
		return
	}
	for _, a := range cp.Attributes {
		switch {
		case a.Type == message.INTERNAL_IP4_ADDRESS && len(a.Value) == 4:
			sa.takeVIP(netip.AddrFrom4([4]byte(a.Value)))
		case a.Type == message.INTERNAL_IP6_ADDRESS && len(a.Value) == 17:
			sa.takeVIP(netip.AddrFrom16([16]byte(a.Value[:16])))
		case a.Type == message.INTERNAL_IP4_DNS && len(a.Value) == 4:
			d := netip.AddrFrom4([4]byte(a.Value))
			sa.log.Info(fmt.Sprintf("received DNS server %s", d))
			sa.dnsServers = append(sa.dnsServers, d)
		case a.Type == message.INTERNAL_IP6_DNS && len(a.Value) == 16:
			d := netip.AddrFrom16([16]byte(a.Value))
			sa.log.Info(fmt.Sprintf("received DNS server %s", d))
			sa.dnsServers = append(sa.dnsServers, d)
		}
	}
	if len(sa.localVIPs) == 0 {
		sa.log.Info("no virtual IP received")
	}
	sa.installVIPs(false)
}

// takeVIP keeps a virtual IP of the CFG_REPLY: one address per family,
// and only one a host can hold as its own.
func (sa *ikeSA) takeVIP(v netip.Addr) {
	if !v.IsGlobalUnicast() {
		sa.log.Info(fmt.Sprintf("ignoring virtual IP %s: not a unicast address", v))
		return
	}
	for _, o := range sa.localVIPs {
		if o.Is4() == v.Is4() {
			sa.log.Info(fmt.Sprintf("ignoring virtual IP %s: %s is ours already", v, o))
			return
		}
	}
	sa.log.Info(fmt.Sprintf("received virtual IP %s", v))
	sa.localVIPs = append(sa.localVIPs, v)
}

// resolveLocalTS resolves our selectors as an initiator offers them:
// dynamic is our virtual IPs once we have them, the whole family while we
// ask for them (the gateway narrows to what it assigns), else our IKE
// address.
func (sa *ikeSA) resolveLocalTS(specs []TSSpec) []TrafficSelector {
	addrs := sa.localVIPs
	if len(addrs) == 0 && len(sa.conn.VIPs) == 0 {
		return resolveTS(specs, sa.local.Addr())
	}
	var out []TrafficSelector
	for _, s := range specs {
		if !s.Dynamic {
			out = append(out, s.TS)
			continue
		}
		if len(addrs) > 0 {
			for _, a := range addrs {
				out = append(out, resolveTS([]TSSpec{s}, a)...)
			}
			continue
		}
		for _, v := range sa.conn.VIPs {
			ts := s.TS
			if v.Is4() {
				ts.Start, ts.End = netip.IPv4Unspecified(), netip.AddrFrom4([4]byte{255, 255, 255, 255})
			} else {
				ts.Start, ts.End = netip.IPv6Unspecified(), netip.AddrFrom16([16]byte{0: 0xff, 1: 0xff, 2: 0xff, 3: 0xff, 4: 0xff, 5: 0xff, 6: 0xff, 7: 0xff, 8: 0xff, 9: 0xff, 10: 0xff, 11: 0xff, 12: 0xff, 13: 0xff, 14: 0xff, 15: 0xff})
			}
			out = append(out, ts)
		}
	}
	return out
}
