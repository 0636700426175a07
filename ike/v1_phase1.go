package ike

import (
	"bytes"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"time"

	"github.com/xdpsec/xdpsec/ike/isakmp"
	"github.com/xdpsec/xdpsec/ike/message"
	"github.com/xdpsec/xdpsec/ike/transform"
)

// initiateV1 starts an ISAKMP SA and, once it is established, Quick Modes
// for children.
func (e *Engine) initiateV1(c *connection, children []*childConfig) (*v1SA, error) {
	local, remote, err := e.initiatorEnds(c)
	if err != nil {
		return nil, err
	}
	sa := e.newV1SA(c, true, local, remote)
	sa.initAt = e.clock.Now()
	sa.ckyI = e.v1Cookie(sa.local, sa.remote)
	e.v1().sas[sa.ckyI] = sa
	sa.pending = children
	mode := "Main Mode"
	if sa.aggressive {
		mode = "Aggressive Mode"
	}
	infof(sa.log, "initiating %s IKE_SA %s to %s", mode, sa.name(), sa.remote.Addr())
	sa.setState(IKESAConnecting)
	auth := c.v1AuthMethodFor(true)
	suites := c.v1Suites(auth)
	for _, s := range suites {
		if s.encr != transform.ENCR_AES_CBC {
			return nil, fmt.Errorf("ike: connection %q: IKEv1 needs AES-CBC proposals, not %v", c.Name, s.encr)
		}
		if _, err := s.prf.V1Hash(); err != nil {
			return nil, fmt.Errorf("ike: connection %q: %v", c.Name, err)
		}
	}
	saP := v1Phase1SA(suites)
	body, err := saP.Body()
	if err != nil {
		return nil, err
	}
	sa.saiB = body
	ps := []isakmp.Payload{saP}
	if sa.aggressive {
		// Aggressive Mode fixes the group with the first proposal.
		sa.group = suites[0].group
		ke, err := sa.startDH()
		if err != nil {
			return nil, err
		}
		sa.ni = e.randomBytes(32)
		id := sa.idPayload()
		sa.idiiB, _ = id.Body()
		ps = append(ps, ke, &isakmp.Nonce{Data: sa.ni}, id)
	}
	ps = append(ps, sa.vendorIDs()...)
	exch := isakmp.ExchangeMain
	if sa.aggressive {
		exch = isakmp.ExchangeAggressive
	}
	sa.step = 1
	sa.sendPlain(sa.exchange(0), &isakmp.Message{Header: sa.header(exch, 0), Payloads: ps}, true)
	return sa, nil
}

func (sa *v1SA) vendorIDs() []isakmp.Payload {
	ps := []isakmp.Payload{&isakmp.VendorID{Data: isakmp.VendorDPD}, &isakmp.VendorID{Data: isakmp.VendorNATTRFC3947},
		&isakmp.VendorID{Data: isakmp.VendorNATTDraft02N}, &isakmp.VendorID{Data: isakmp.VendorNATTDraft03}}
	if sa.conn.fragmentation {
		ps = append(ps, &isakmp.VendorID{Data: isakmp.VendorFragmentation})
	}
	if sa.conn.xauthClient() || sa.conn.xauthServer() {
		ps = append(ps, &isakmp.VendorID{Data: isakmp.VendorXAuth})
	}
	return ps
}

func (sa *v1SA) processVendorIDs(ps []isakmp.Payload) {
	for _, v := range isakmp.All[*isakmp.VendorID](ps) {
		switch isakmp.ClassifyVendorID(v.Data) {
		case isakmp.VendorKindDPD:
			sa.peerDPD = true
		case isakmp.VendorKindNATT, isakmp.VendorKindNATTDraft:
			sa.peerNATT = true
		case isakmp.VendorKindFragmentation:
			sa.peerFrag = sa.conn.fragmentation
		case isakmp.VendorKindCiscoUnity:
			sa.peerUnity = true
		}
		switch k := isakmp.ClassifyVendorID(v.Data); k {
		case isakmp.VendorKindXAuth, isakmp.VendorKindCiscoUnity:
			infof(sa.log, "received %v vendor ID", k)
		default:
			debugf(sa.log, "received %v vendor ID", k)
		}
	}
}

func (sa *v1SA) startDH() (*isakmp.KeyExchange, error) {
	dh, err := transform.NewKeyExchange(sa.group, sa.e.rand)
	if err != nil {
		return nil, err
	}
	sa.dh = dh
	if sa.initiator {
		sa.gxi = dh.PublicValue()
		return &isakmp.KeyExchange{Data: sa.gxi}, nil
	}
	sa.gxr = dh.PublicValue()
	return &isakmp.KeyExchange{Data: sa.gxr}, nil
}

func (sa *v1SA) idPayload() *isakmp.Identification {
	id := sa.localID
	if id.IsAny() {
		id = addrIdentity(sa.local.Addr())
		sa.localID = id
	}
	return &isakmp.Identification{IDType: isakmp.IDType(id.Type), Data: id.Data}
}

// natdPayloads are the NAT-D payloads: the peer's address, then ours
// (RFC 3947 section 3.2).
func (sa *v1SA) natdPayloads() []isakmp.Payload {
	if !sa.peerNATT {
		return nil
	}
	remote, local := sa.natdHash(sa.remote), sa.natdHash(sa.local)
	if sa.conn.Encap {
		// Fake our address so that the peer sees a NAT (encap = yes).
		local = sa.natdHash(netip.AddrPortFrom(netip.IPv4Unspecified(), 0))
	}
	return []isakmp.Payload{&isakmp.NATD{Hash: remote}, &isakmp.NATD{Hash: local}}
}

func (sa *v1SA) natdHash(a netip.AddrPort) []byte {
	newHash, err := sa.prf.V1Hash()
	if err != nil {
		return nil
	}
	h := newHash()
	h.Write(binary.BigEndian.AppendUint64(nil, sa.ckyI))
	h.Write(binary.BigEndian.AppendUint64(nil, sa.ckyR))
	h.Write(a.Addr().AsSlice())
	h.Write(binary.BigEndian.AppendUint16(nil, a.Port()))
	return h.Sum(nil)
}

func (sa *v1SA) processNATD(ps []isakmp.Payload) {
	natd := isakmp.All[*isakmp.NATD](ps)
	if len(natd) < 2 || !sa.peerNATT {
		return
	}
	// The first names us as the peer saw us, the others the peer.
	sa.natLocal = !bytes.Equal(natd[0].Hash, sa.natdHash(sa.local))
	sa.natRemote = true
	for _, n := range natd[1:] {
		if bytes.Equal(n.Hash, sa.natdHash(sa.remote)) {
			sa.natRemote = false
		}
	}
	sa.logNAT()
	if sa.natAny() && sa.initiator {
		sa.floatToNATT()
	}
	if sa.natLocal {
		sa.scheduleKeepAlive()
	}
}

func (sa *v1SA) scheduleKeepAlive() {
	if sa.e.cfg.KeepAlive < 0 {
		return
	}
	sa.after(sa.e.cfg.KeepAlive, func() {
		if sa.e.clock.Now().Sub(sa.lastOutbound) >= sa.e.cfg.KeepAlive {
			sa.e.stats.KeepAlivesSent++
			sa.e.send(sa.local, sa.remote, [][]byte{{0xff}})
			sa.lastOutbound = sa.e.clock.Now()
		}
		sa.scheduleKeepAlive()
	})
}

// deriveKeys computes g^xy, SKEYID and the phase 1 keys and IV.
func (sa *v1SA) deriveKeys() error {
	peer := sa.gxr
	if !sa.initiator {
		peer = sa.gxi
	}
	gxy, err := sa.dh.SharedSecret(peer)
	if err != nil {
		return err
	}
	sa.gxy = gxy
	var skeyid []byte
	if sa.auth == isakmp.AuthPSK {
		psk, ok := sa.sharedKey(sa.conn.local.ID, sa.conn.remote.ID)
		if !ok {
			return fmt.Errorf("no shared key found for '%s' - '%s'", sa.conn.local.ID, sa.conn.remote.ID)
		}
		skeyid, err = transform.SKEYIDPSK(sa.prf, psk, sa.ni, sa.nr)
	} else {
		skeyid, err = transform.SKEYIDSig(sa.prf, sa.ni, sa.nr, gxy)
	}
	if err != nil {
		return err
	}
	defer clear(skeyid)
	n, err := transform.V1EncrKeyLen(sa.encr, sa.encrBits)
	if err != nil {
		return err
	}
	if sa.keys, err = transform.DeriveV1Keys(sa.prf, skeyid, gxy, sa.ckyI, sa.ckyR, n); err != nil {
		return err
	}
	if sa.cipher, err = transform.NewV1Cipher(sa.encr, sa.keys.Encr); err != nil {
		return err
	}
	iv, err := transform.V1PhaseOneIV(sa.prf, sa.gxi, sa.gxr, sa.cipher.BlockSize())
	if err != nil {
		return err
	}
	sa.exchange(0).iv = iv
	return nil
}

// authPRF is the PRF of HASH_I and HASH_R: the negotiated one, except with
// ECDSA signatures, where charon (RFC 4754 section 5's hash per method)
// keys HMAC-SHA2 of the method's size with SKEYID whatever the proposal's
// PRF, and signs its output as it is.
func (sa *v1SA) authPRF() transform.PRFID {
	switch sa.auth {
	case isakmp.AuthECDSA256:
		return transform.PRF_HMAC_SHA2_256
	case isakmp.AuthECDSA384:
		return transform.PRF_HMAC_SHA2_384
	case isakmp.AuthECDSA521:
		return transform.PRF_HMAC_SHA2_512
	}
	return sa.prf
}

// authPayloads builds our HASH or SIG payload (with CERT) for phase 1.
func (sa *v1SA) authPayloads(idB []byte) ([]isakmp.Payload, error) {
	var h []byte
	var err error
	if sa.initiator {
		h, err = transform.V1HashI(sa.authPRF(), sa.keys.SKEYID, sa.gxi, sa.gxr, sa.ckyI, sa.ckyR, sa.saiB, idB)
	} else {
		h, err = transform.V1HashR(sa.authPRF(), sa.keys.SKEYID, sa.gxi, sa.gxr, sa.ckyI, sa.ckyR, sa.saiB, idB)
	}
	if err != nil {
		return nil, err
	}
	if sa.auth == isakmp.AuthPSK {
		return []isakmp.Payload{&isakmp.Hash{Data: h}}, nil
	}
	r := sa.conn.local
	if r.PrivateKey == nil {
		return nil, fmt.Errorf("%v needs a private key, connection %s has none", sa.auth, sa.conn.Name)
	}
	sig, err := transform.V1SignHash(sa.e.rand, r.PrivateKey, h)
	if err != nil {
		return nil, err
	}
	var ps []isakmp.Payload
	if sa.conn.SendCert != SendCertNever {
		for _, c := range r.Certs {
			ps = append(ps, &isakmp.Certificate{Encoding: isakmp.CertX509Signature, Data: c.Raw})
		}
	}
	return append(ps, &isakmp.Signature{Data: sig}), nil
}

// errV1Auth is a peer that authenticated (its HASH or signature verifies,
// which needs the exchange's keys) but is refused: answered with
// AUTHENTICATION_FAILED, the IKE SA goes. errV1Unverified is a message
// whose HASH or signature does not verify: it may be anybody's (the
// cookies are on the wire), so it is dropped and changes nothing.
var (
	errV1Auth       = errors.New("authentication failed")
	errV1Unverified = errors.New("message not authenticated")
)

// verifyPeer checks the peer's ID and HASH or SIG. Only once it holds is
// anything of the message taken (accept).
func (sa *v1SA) verifyPeer(ps []isakmp.Payload) error {
	id, ok := isakmp.Find[*isakmp.Identification](ps)
	if !ok {
		return fmt.Errorf("ID payload missing: %w", errV1Unverified)
	}
	remoteID := Identity{Type: message.IDType(id.IDType), Data: id.Data}
	idB, _ := id.Body()
	var want []byte
	var err error
	if sa.initiator {
		want, err = transform.V1HashR(sa.authPRF(), sa.keys.SKEYID, sa.gxi, sa.gxr, sa.ckyI, sa.ckyR, sa.saiB, idB)
	} else {
		want, err = transform.V1HashI(sa.authPRF(), sa.keys.SKEYID, sa.gxi, sa.gxr, sa.ckyI, sa.ckyR, sa.saiB, idB)
	}
	if err != nil {
		return err
	}
	var cert *x509.Certificate
	if sa.auth == isakmp.AuthPSK {
		h, ok := isakmp.Find[*isakmp.Hash](ps)
		if !ok || !bytes.Equal(h.Data, want) {
			return fmt.Errorf("calculated HASH does not match HASH payload, pre-shared key mismatch?: %w", errV1Unverified)
		}
	} else {
		sig, ok := isakmp.Find[*isakmp.Signature](ps)
		if !ok {
			return fmt.Errorf("SIG payload missing: %w", errV1Unverified)
		}
		var chain []*x509.Certificate
		if cert, chain, err = parseV1Certs(isakmp.All[*isakmp.Certificate](ps)); err != nil {
			return err
		}
		if err := transform.V1VerifyHash(cert.PublicKey, want, sig.Data); err != nil {
			return fmt.Errorf("signature of '%s' does not verify: %w", remoteID, errV1Unverified)
		}
		// The signature covers HASH, which only the holder of the
		// exchange's keys computes: from here the peer is who sent it.
		if err := sa.trustCert(cert, chain, remoteID); err != nil {
			return err
		}
	}
	sa.remoteID = remoteID
	sa.accept()
	if !sa.conn.remote.ID.Matches(remoteID) {
		return fmt.Errorf("peer identity '%s' does not match '%s': %w", remoteID, sa.conn.remote.ID, errV1Auth)
	}
	if cert == nil {
		infof(sa.log, "authentication of '%s' with pre-shared key successful", remoteID)
	} else {
		infof(sa.log, "authentication of '%s' with %v successful", remoteID, sa.auth)
	}
	return nil
}

// parseV1Certs returns the end-entity certificate of CERT payloads and
// the intermediates after it.
func parseV1Certs(certs []*isakmp.Certificate) (*x509.Certificate, []*x509.Certificate, error) {
	var parsed []*x509.Certificate
	for _, c := range certs {
		if c.Encoding != isakmp.CertX509Signature {
			continue
		}
		x, err := x509.ParseCertificate(c.Data)
		if err != nil {
			return nil, nil, fmt.Errorf("certificate does not parse: %w", errV1Unverified)
		}
		parsed = append(parsed, x)
	}
	if len(parsed) == 0 {
		return nil, nil, fmt.Errorf("no certificate received: %w", errV1Unverified)
	}
	return parsed[0], parsed[1:], nil
}

// trustCert checks the peer's certificate against our CAs and its
// identity.
func (sa *v1SA) trustCert(cert *x509.Certificate, chain []*x509.Certificate, remoteID Identity) error {
	roots, inter := x509.NewCertPool(), x509.NewCertPool()
	cas := sa.conn.remote.CACerts
	if len(cas) == 0 {
		cas = sa.e.cfg.Credentials.CAs
	}
	for _, ca := range cas {
		roots.AddCert(ca)
	}
	for _, c := range chain {
		inter.AddCert(c)
	}
	if _, err := cert.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, CurrentTime: sa.e.clock.Now(),
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
		return fmt.Errorf("certificate of '%s' not trusted: %v: %w", remoteID, err, errV1Auth)
	}
	if !certHasIdentity(cert, remoteID) {
		return fmt.Errorf("certificate is not issued to '%s': %w", remoteID, errV1Auth)
	}
	return nil
}

// processPhase1 runs Main and Aggressive Mode. An encrypted message
// changes nothing until its HASH or signature verifies (verifyPeer); the
// unencrypted ones before it are unauthenticated by design (RFC 2409), as
// IKEv2's IKE_SA_INIT is.
func (sa *v1SA) processPhase1(h isakmp.Header, data []byte) {
	if sa.state == IKESAEstablished || sa.p1done {
		// Phase 1 is over: its last message, if the peer sent it again,
		// was answered in receive; anything else is not the peer's.
		sa.e.stats.DroppedUnexpected++
		infof(sa.log, "ignoring %v message with message ID 0 of an established IKE_SA", h.Exchange)
		return
	}
	ex := sa.exchange(0)
	var ps []isakmp.Payload
	encrypted := h.Flags&isakmp.FlagEncryption != 0
	// Once the keys are there, what comes must authenticate: Main Mode's
	// last messages are encrypted, Aggressive Mode's HASH_I may come
	// either way; neither changes anything before it verifies.
	keyed := sa.cipher != nil
	if keyed && !encrypted && !sa.aggressive {
		sa.e.stats.DroppedUnexpected++
		infof(sa.log, "ignoring unencrypted %v message %d of IKE_SA %s after the key exchange", h.Exchange, sa.step+1, sa.name())
		return
	}
	if encrypted {
		var err error
		var commit func()
		ps, _, commit, err = sa.open(h, data, ex)
		sa.rx.ex, sa.rx.commit = ex, commit
		if err != nil {
			sa.e.stats.DroppedAuthentication++
			if sa.cipher == nil {
				sa.log.Info("encrypted message before keys, dropped")
				return
			}
			first := h.NextPayload
			infof(sa.log, "invalid %s payload length, decryption failed?", v1PayloadName(first))
			sa.log.Info("could not decrypt payloads")
			if sa.auth == isakmp.AuthPSK {
				infof(sa.log, "message parsing failed: %v message %d of IKE_SA %s does not decrypt, the pre-shared key of '%s' - '%s' is likely wrong",
					h.Exchange, sa.step+1, sa.name(), sa.conn.local.ID, sa.conn.remote.ID)

			} else {
				sa.log.Info("message parsing failed")
			}
			return
		}
	} else {
		m, err := isakmp.Unmarshal(data)
		if err != nil {
			sa.e.stats.DroppedMalformed++
			infof(sa.log, "message parsing failed: %v", err)
			return
		}
		ps = m.Payloads
		sa.rx.ex = ex
		if !keyed {
			sa.accept() // unauthenticated by design, as IKE_SA_INIT
		}
	}
	sa.log.Info("parsed " + v1Summary(h, !sa.initiator, ps))
	if n, ok := isakmp.Find[*isakmp.Notify](ps); ok && n.NotifyType < 16384 && !keyed {
		infof(sa.log, "received %v error notify", n.NotifyType)
		ex.stop()
		sa.destroy()
		return
	}
	var err error
	if sa.aggressive {
		err = sa.aggressiveMode(h, ps)
	} else {
		err = sa.mainMode(h, ps)
	}
	if errors.Is(err, errV1Unverified) && keyed {
		sa.e.stats.DroppedAuthentication++
		infof(sa.log, "%v message %d of IKE_SA %s dropped: %v", h.Exchange, sa.step+1, sa.name(), err)
		return
	}
	if err != nil {
		infof(sa.log, "establishing IKE_SA %s failed: %v", sa.name(), err)
		if (errors.Is(err, errV1Auth) || errors.Is(err, errV1Unverified)) && sa.cipher != nil {
			sa.sendAuthFailed()
		}
		sa.destroy()
	}
}

// v1PayloadName names payloads as charon's decryption error does.
func v1PayloadName(t isakmp.PayloadType) string {
	switch t {
	case isakmp.PayloadID:
		return "ID_V1"
	case isakmp.PayloadHash:
		return "HASH_V1"
	}
	return t.String() + "_V1"
}

func (sa *v1SA) sendAuthFailed() {
	sa.sendInformational([]isakmp.Payload{&isakmp.Notify{DOI: isakmp.DOIIPsec, Protocol: isakmp.ProtoISAKMP,
		SPI: sa.cookies(), NotifyType: isakmp.AuthenticationFailed}})
}

func (sa *v1SA) cookies() []byte {
	return binary.BigEndian.AppendUint64(binary.BigEndian.AppendUint64(nil, sa.ckyI), sa.ckyR)
}

func (sa *v1SA) acceptSuite(ps []isakmp.Payload) error {
	p, ok := isakmp.Find[*isakmp.SecurityAssociation](ps)
	if !ok {
		return fmt.Errorf("SA payload missing")
	}
	if sa.initiator {
		if len(p.Proposals) != 1 || len(p.Proposals[0].Transforms) != 1 {
			return fmt.Errorf("responder selected not one transform")
		}
		s, why := v1ParseSuite(p.Proposals[0].Transforms[0])
		if why != "" {
			return fmt.Errorf("selected transform: %s", why)
		}
		if sa.aggressive && s.group != sa.group {
			return fmt.Errorf("responder selected %v, not %v", s.group, sa.group)
		}
		// The responder chooses among what we offered (RFC 2408 section
		// 4.2): anything else is not our proposal's answer.
		offered := false
		auth := sa.conn.v1AuthMethodFor(true)
		for _, o := range sa.conn.v1Suites(auth) {
			if o.encr == s.encr && o.encrBits == s.encrBits && o.prf == s.prf && o.group == s.group && o.auth == s.auth {
				offered = true
			}
		}
		if !offered {
			return fmt.Errorf("responder selected %v, which we did not propose", s)
		}
		sa.setSuite(s)
		return nil
	}
	sa.saiB, _ = p.Body()
	s, t, ok := sa.selectV1Suite(p)
	if !ok {
		return errNoProposal
	}
	sa.setSuite(s)
	sa.chosen = t
	return nil
}

var errNoProposal = errors.New("no acceptable proposal found")

// setSuite takes the negotiated transform. An XAuth method authenticates
// phase 1 as its base method (PSK or RSA), XAuth following.
func (sa *v1SA) setSuite(s v1Suite) {
	sa.encr, sa.encrBits, sa.prf, sa.group, sa.lifetime = s.encr, s.encrBits, s.prf, s.group, s.life
	var xauth bool
	if sa.auth, xauth = s.auth.XAuthBase(); xauth {
		sa.xauthMethod = s.auth
	}
	sa.proposal = s.String()
}

// mainMode handles one Main Mode message.
func (sa *v1SA) mainMode(h isakmp.Header, ps []isakmp.Payload) error {
	ex := sa.exchange(0)
	hdr := sa.header(isakmp.ExchangeMain, 0)
	switch {
	case sa.initiator && sa.step == 1: // SA -->  <-- SA
		ex.stop()
		sa.ckyR = h.ResponderCookie
		if err := sa.acceptSuite(ps); err != nil {
			return err
		}
		sa.processVendorIDs(ps)
		hdr.ResponderCookie = sa.ckyR
		ke, err := sa.startDH()
		if err != nil {
			return err
		}
		sa.ni = sa.e.randomBytes(32)
		out := []isakmp.Payload{ke, &isakmp.Nonce{Data: sa.ni}}
		// charon (send_cert = ifasked) sends its certificate in message 6
		// only when message 3 asked for one.
		if sa.auth != isakmp.AuthPSK {
			out = append(out, sa.certReqs()...)
		}
		out = append(out, sa.natdPayloads()...)
		sa.step = 3
		sa.sendPlain(ex, &isakmp.Message{Header: hdr, Payloads: out}, true)
	case !sa.initiator && sa.step == 0: // SA -->
		if err := sa.acceptSuite(ps); err != nil {
			sa.e.v1Notify(h, Datagram{Local: sa.local, Remote: sa.remote}, isakmp.NoProposalChosen)
			return err
		}
		sa.processVendorIDs(ps)
		sa.step = 2
		out := append([]isakmp.Payload{v1SAPayload([]isakmp.Proposal{{Number: 1, Protocol: isakmp.ProtoISAKMP,
			Transforms: []isakmp.Transform{sa.chosen}}})}, sa.vendorIDs()...)
		sa.sendPlain(ex, &isakmp.Message{Header: hdr, Payloads: out}, false)
	case !sa.initiator && sa.step == 2: // KE Ni -->  <-- KE Nr
		ke, ok1 := isakmp.Find[*isakmp.KeyExchange](ps)
		n, ok2 := isakmp.Find[*isakmp.Nonce](ps)
		if !ok1 || !ok2 {
			return fmt.Errorf("KE or nonce missing")
		}
		sa.gxi, sa.ni = ke.Data, n.Data
		myKE, err := sa.startDH()
		if err != nil {
			return err
		}
		sa.nr = sa.e.randomBytes(32)
		sa.processNATD(ps)
		if err := sa.deriveKeys(); err != nil {
			return err
		}
		out := []isakmp.Payload{myKE, &isakmp.Nonce{Data: sa.nr}}
		if sa.auth != isakmp.AuthPSK {
			out = append(out, sa.certReqs()...)
		}
		out = append(out, sa.natdPayloads()...)
		sa.step = 4
		sa.sendPlain(ex, &isakmp.Message{Header: hdr, Payloads: out}, false)
	case sa.initiator && sa.step == 3: // <-- KE Nr,  ID HASH_I -->
		ex.stop()
		ke, ok1 := isakmp.Find[*isakmp.KeyExchange](ps)
		n, ok2 := isakmp.Find[*isakmp.Nonce](ps)
		if !ok1 || !ok2 {
			return fmt.Errorf("KE or nonce missing")
		}
		sa.gxr, sa.nr = ke.Data, n.Data
		sa.processNATD(ps)
		if err := sa.deriveKeys(); err != nil {
			return err
		}
		id := sa.idPayload()
		idB, _ := id.Body()
		auth, err := sa.authPayloads(idB)
		if err != nil {
			return err
		}
		out := append([]isakmp.Payload{id}, auth...)
		if sa.sendInitialContact(sa.localID) {
			out = append(out, sa.initialContactNotify())
		}
		sa.step = 5
		sa.sendSealed(ex, hdr, out, true, sa.giveUp)
	case !sa.initiator && sa.step == 4: // ID HASH_I [N(INITIAL_CONTACT)] -->  <-- ID HASH_R
		if err := sa.verifyPeer(ps); err != nil {
			return err
		}
		sa.noteInitialContact(ps)
		if !sa.xauthServerRole() && sa.uniqueRefused("Main Mode", sa.refuseAuthFailed) {
			return nil
		}
		id := sa.idPayload()
		idB, _ := id.Body()
		auth, err := sa.authPayloads(idB)
		if err != nil {
			return err
		}
		sa.step = 6
		sa.sendSealed(ex, hdr, append([]isakmp.Payload{id}, auth...), false, nil)
		sa.phase1Complete()
	case sa.initiator && sa.step == 5: // <-- ID HASH_R
		if err := sa.verifyPeer(ps); err != nil {
			return err
		}
		ex.stop()
		if !sa.xauthServerRole() && sa.uniqueRefused("Main Mode", sa.delete) {
			return nil
		}
		sa.step = 6
		sa.phase1Complete()
	default:
		sa.e.stats.DroppedUnexpected++
		debugf(sa.log, "unexpected Main Mode message in step %d", sa.step)
	}
	return nil
}

func (sa *v1SA) certReqs() []isakmp.Payload {
	cas := sa.conn.remote.CACerts
	if len(cas) == 0 {
		cas = sa.e.cfg.Credentials.CAs
	}
	var out []isakmp.Payload
	for _, ca := range cas {
		out = append(out, &isakmp.CertificateRequest{Encoding: isakmp.CertX509Signature, Authority: ca.RawSubject})
	}
	return out
}

// aggressiveMode handles one Aggressive Mode message.
func (sa *v1SA) aggressiveMode(h isakmp.Header, ps []isakmp.Payload) error {
	ex := sa.exchange(0)
	hdr := sa.header(isakmp.ExchangeAggressive, 0)
	switch {
	case !sa.initiator && sa.step == 0: // SA KE Ni IDii -->  <-- SA KE Nr IDir HASH_R
		if err := sa.acceptSuite(ps); err != nil {
			sa.e.v1Notify(h, Datagram{Local: sa.local, Remote: sa.remote}, isakmp.NoProposalChosen)
			return err
		}
		if sa.auth == isakmp.AuthPSK && !sa.conn.Aggressive {
			sa.log.Info("Aggressive Mode PSK disabled for security reasons")
			sa.e.v1Notify(h, Datagram{Local: sa.local, Remote: sa.remote}, isakmp.AuthenticationFailed)
			return fmt.Errorf("Aggressive Mode refused")
		}
		sa.processVendorIDs(ps)
		ke, ok1 := isakmp.Find[*isakmp.KeyExchange](ps)
		n, ok2 := isakmp.Find[*isakmp.Nonce](ps)
		id, ok3 := isakmp.Find[*isakmp.Identification](ps)
		if !ok1 || !ok2 || !ok3 {
			return fmt.Errorf("KE, nonce or ID missing")
		}
		sa.gxi, sa.ni = ke.Data, n.Data
		sa.idiiB, _ = id.Body()
		sa.remoteID = Identity{Type: message.IDType(id.IDType), Data: id.Data}
		myKE, err := sa.startDH()
		if err != nil {
			return err
		}
		sa.nr = sa.e.randomBytes(32)
		if err := sa.deriveKeys(); err != nil {
			return err
		}
		myID := sa.idPayload()
		idB, _ := myID.Body()
		auth, err := sa.authPayloads(idB)
		if err != nil {
			return err
		}
		out := []isakmp.Payload{v1SAPayload([]isakmp.Proposal{{Number: 1, Protocol: isakmp.ProtoISAKMP,
			Transforms: []isakmp.Transform{sa.chosen}}}), myKE, &isakmp.Nonce{Data: sa.nr}, myID}
		out = append(append(append(out, auth...), sa.vendorIDs()...), sa.natdPayloads()...)
		sa.step = 2
		sa.sendPlain(ex, &isakmp.Message{Header: hdr, Payloads: out}, true)
	case sa.initiator && sa.step == 1: // <-- SA KE Nr IDir HASH_R,  HASH_I -->
		ex.stop()
		sa.ckyR = h.ResponderCookie
		hdr.ResponderCookie = sa.ckyR
		if err := sa.acceptSuite(ps); err != nil {
			return err
		}
		sa.processVendorIDs(ps)
		ke, ok1 := isakmp.Find[*isakmp.KeyExchange](ps)
		n, ok2 := isakmp.Find[*isakmp.Nonce](ps)
		if !ok1 || !ok2 {
			return fmt.Errorf("KE or nonce missing")
		}
		sa.gxr, sa.nr = ke.Data, n.Data
		if err := sa.deriveKeys(); err != nil {
			return err
		}
		if err := sa.verifyPeer(ps); err != nil {
			return err
		}
		if !sa.xauthServerRole() && sa.uniqueRefused("Aggressive Mode", sa.refuseAuthFailed) {
			return nil
		}
		auth, err := sa.authPayloads(sa.idiiB)
		if err != nil {
			return err
		}
		out := append(auth, sa.natdPayloads()...)
		sa.processNATD(ps)
		sa.step = 3
		sa.sendPlain(ex, &isakmp.Message{Header: hdr, Payloads: out}, false)
		sa.phase1Complete()
	case !sa.initiator && sa.step == 2: // HASH_I -->
		idPayload := &isakmp.Identification{IDType: isakmp.IDType(sa.remoteID.Type), Data: sa.remoteID.Data}
		// The initiator's ID came in the first message.
		if err := sa.verifyPeer(append([]isakmp.Payload{idPayload}, ps...)); err != nil {
			return err
		}
		ex.stop()
		if !sa.xauthServerRole() && sa.uniqueRefused("Aggressive Mode", sa.delete) {
			return nil
		}
		sa.processNATD(ps)
		sa.step = 3
		sa.phase1Complete()
	default:
		sa.e.stats.DroppedUnexpected++
	}
	return nil
}

// established finishes phase 1: log as charon, schedule reauthentication,
// DPD, and start Quick Modes.
func (sa *v1SA) established() {
	sa.setState(IKESAEstablished)
	sa.observeEstablished()
	if o := sa.e.observer; o != nil {
		o.IKEUpDown(sa.info(false), true)
	}
	infof(sa.log, "IKE_SA %s established between %s", sa.name(), sa.ends())
	if sa.initialContact {
		sa.initialContact = false
		sa.checkUniqueness(sa, true)
	}
	sa.leaveHalfOpen()
	if sa.dh != nil {
		sa.dh.Close()
		sa.dh = nil
	}
	sa.establishedAt = sa.e.clock.Now()
	sa.scheduleLifetime(0)
	if len(sa.conn.VIPs) == 0 {
		// A client with virtual IPs hands over once Mode Config gave
		// them to this SA too (modeCfgDone): retiring the old one
		// first would take them out of the dataplane in between.
		sa.retireReplaced()
	}
	sa.releaseHeld()
	if sa.deleted {
		return
	}
	if sa.startModeCfg() {
		return // Quick Modes follow the virtual IP (modeCfgDone)
	}
	sa.startPending()
}

// retireReplaced retires the ISAKMP SA this one reauthenticates.
func (sa *v1SA) retireReplaced() {
	if old := sa.replaces; old != nil {
		sa.replaces = nil
		old.retire(sa)
	}
}

// startPending starts the Quick Modes of the children waiting for the
// ISAKMP SA.
func (sa *v1SA) startPending() {
	for _, cc := range sa.pending {
		sa.startQuick(cc, nil)
	}
	sa.pending = nil
}

// scheduleLifetime sets the reauthentication, expiry and DPD timers of an
// ISAKMP SA established elapsed ago (a restart took it back).
func (sa *v1SA) scheduleLifetime(elapsed time.Duration) {
	left := func(d time.Duration) time.Duration { return max(d-elapsed, time.Second) }
	if sa.initiator && sa.conn.renewTime() < sa.lifetime {
		sa.after(left(sa.conn.renewTime()), sa.reauthenticate)
	} else if sa.initiator {
		sa.after(left(sa.lifetime*9/10), sa.reauthenticate)
	}
	sa.after(left(sa.lifetime), func() {
		infof(sa.log, "IKE_SA %s lifetime expired, deleting", sa.name())
		sa.delete()
	})
	if sa.conn.DPDDelay > 0 && sa.peerDPD {
		sa.scheduleDPD()
	}
}

// reauthenticate replaces the ISAKMP SA before it expires: IKEv1 cannot
// rekey it, so a new one is made and the IPsec SAs move over (charon's
// reauthentication).
func (sa *v1SA) reauthenticate() {
	if sa.state != IKESAEstablished {
		return
	}
	for _, o := range sa.e.allV1SAs() {
		if o.replaces == sa && !o.deleted {
			// One successor at a time: the peer cannot tell two apart,
			// and each end would hand the IPsec SAs to another one.
			infof(sa.log, "IKE_SA %s is being reauthenticated by IKE_SA %s already", sa.name(), o.name())
			return
		}
	}
	infof(sa.log, "reauthenticating IKE_SA %s", sa.name())
	n, err := sa.e.initiateV1(sa.conn, nil)
	if err != nil {
		infof(sa.log, "reauthenticating failed: %v", err)
		return
	}
	n.replaces = sa
	n.reauthVIPs = slices.Clone(sa.localVIPs)
}

// adoptChildren moves the IPsec SAs of an old ISAKMP SA to this one. A
// rekey of one of them that we run in a Quick Mode of the old SA is made
// again on this one.
func (sa *v1SA) adoptChildren(old *v1SA) {
	var rekey []*v1Child
	for _, q := range old.quicks {
		if q.initiator && q.rekey != nil && !q.installed {
			if q.rekey.state == ChildSARekeying {
				rekey = append(rekey, q.rekey)
			}
			delete(old.quicks, q.mid)
			if ex := old.exchanges[q.mid]; ex != nil {
				ex.stop()
			}
			q.release()
		}
	}
	for _, c := range old.children {
		c.ike = sa
		sa.children = append(sa.children, c)
	}
	old.children = nil
	for _, c := range rekey {
		if c.state == ChildSAInstalled {
			c.state = ChildSARekeying
			infof(sa.log, "rekeying CHILD_SA %s", c.name())
			sa.startQuick(c.cfg, c)
		}
	}
}

// retire ends a reauthenticated ISAKMP SA: its IPsec SAs go to its
// successor at once, and it is deleted once the Quick Modes still running
// on it are done (the peer answers them with this SA's keys: deleting it
// at once left the peer with IPsec SAs we never completed), at the latest
// after HalfOpenTimeout. IPsec SAs those Quick Modes make go over too.
func (sa *v1SA) retire(successor *v1SA) {
	sa.successor = successor
	successor.adoptChildren(sa)
	if len(sa.quicks) == 0 {
		sa.delete()
		return
	}
	infof(sa.log, "deleting IKE_SA %s once its %d Quick Modes are done", sa.name(), len(sa.quicks))
	sa.after(sa.e.cfg.HalfOpenTimeout, func() {
		for _, q := range sa.quicks {
			sa.endQuick(q) // the last one deletes the SA (handOver)
		}
		sa.handOver()
	})
}

// handOver moves what a retiring ISAKMP SA made to its successor, and
// deletes it when nothing runs on it any more.
func (sa *v1SA) handOver() {
	s := sa.successor
	if s == nil || sa.deleted {
		return
	}
	if !s.deleted {
		s.adoptChildren(sa)
	}
	if len(sa.quicks) == 0 {
		sa.delete()
	}
}

// findSuccessor returns the newest other established SA of the same
// connection and peer, which takes over IPsec SAs when this one goes.
func (sa *v1SA) findSuccessor() *v1SA {
	var best *v1SA
	for _, o := range sa.e.allV1SAs() {
		if o != sa && o.conn == sa.conn && o.remote.Addr() == sa.remote.Addr() && o.state == IKESAEstablished && !o.deleted {
			best = o
		}
	}
	return best
}
