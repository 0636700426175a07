package ike

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"fmt"
	"iter"
	"log/slog"
	"strings"
	"time"

	"github.com/xdpsec/xdpsec/ike/isakmp"
	"github.com/xdpsec/xdpsec/ike/transform"
)

// Phase 1 suites: IKEv1 negotiates one transform holding cipher, hash
// (whose HMAC is the PRF), authentication method, group and lifetime. The
// configured IKE proposals (strongSwan's proposal strings) are expanded to
// one transform per combination, in order of preference.

type v1Suite struct {
	encr     transform.EncrID
	encrBits uint16
	prf      transform.PRFID
	group    transform.KEID
	auth     isakmp.AuthMethod
	life     time.Duration
}

var v1HashOfPRF = map[transform.PRFID]uint16{
	transform.PRF_HMAC_SHA1: isakmp.P1HashSHA1, transform.PRF_HMAC_SHA2_256: isakmp.P1HashSHA256,
	transform.PRF_HMAC_SHA2_384: isakmp.P1HashSHA384, transform.PRF_HMAC_SHA2_512: isakmp.P1HashSHA512,
}

func (s v1Suite) String() string {
	return fmt.Sprintf("IKE:%v/%v/%v/%v", transform.Transform{Type: transform.TransformENCR, ID: uint16(s.encr), KeyLength: s.encrBits},
		strings.TrimPrefix(s.prf.String(), "PRF_"), s.group, s.auth)
}

// v1AuthMethod is the phase 1 method of our local round.
func (c *connection) v1AuthMethod() isakmp.AuthMethod {
	if c.local.Auth == AuthPSK {
		return isakmp.AuthPSK
	}
	if pub, ok := c.local.PrivateKey.Public().(*ecdsa.PublicKey); ok {
		switch pub.Curve {
		case elliptic.P384():
			return isakmp.AuthECDSA384
		case elliptic.P521():
			return isakmp.AuthECDSA521
		}
		return isakmp.AuthECDSA256
	}
	return isakmp.AuthRSA
}

// v1Suites expands the connection's proposals.
func (c *connection) v1Suites(auth isakmp.AuthMethod) []v1Suite {
	var out []v1Suite
	for _, p := range c.Proposals {
		for _, e := range p.Algorithms(transform.TransformENCR) {
			for _, prf := range p.Algorithms(transform.TransformPRF) {
				for _, g := range p.Algorithms(transform.TransformKE) {
					out = append(out, v1Suite{encr: transform.EncrID(e.ID), encrBits: e.KeyLength,
						prf: transform.PRFID(prf.ID), group: transform.KEID(g.ID), auth: auth, life: c.renewTime() + c.OverTime})
				}
			}
		}
	}
	return out
}

func (s v1Suite) transform(n uint8) isakmp.Transform {
	encr := map[transform.EncrID]uint16{transform.ENCR_AES_CBC: isakmp.P1EncrAESCBC, transform.ENCR_3DES: isakmp.P1Encr3DES}[s.encr]
	attrs := []isakmp.Attribute{isakmp.BasicAttr(isakmp.P1Encryption, encr)}
	if s.encrBits != 0 {
		attrs = append(attrs, isakmp.BasicAttr(isakmp.P1KeyLength, s.encrBits))
	}
	attrs = append(attrs,
		isakmp.BasicAttr(isakmp.P1Hash, v1HashOfPRF[s.prf]),
		isakmp.BasicAttr(isakmp.P1AuthMethod, uint16(s.auth)),
		isakmp.BasicAttr(isakmp.P1Group, uint16(s.group)),
		isakmp.BasicAttr(isakmp.P1LifeType, isakmp.LifeSeconds),
		isakmp.NumberAttr(isakmp.P1LifeDuration, uint64(s.life/time.Second)))
	return isakmp.Transform{Number: n, ID: isakmp.TransformKeyIKE, Attributes: attrs}
}

func v1SAPayload(proposals []isakmp.Proposal) *isakmp.SecurityAssociation {
	return &isakmp.SecurityAssociation{DOI: isakmp.DOIIPsec, Situation: isakmp.SituationIdentityOnly, Proposals: proposals}
}

func v1Phase1SA(suites []v1Suite) *isakmp.SecurityAssociation {
	p := isakmp.Proposal{Number: 1, Protocol: isakmp.ProtoISAKMP}
	for i, s := range suites {
		p.Transforms = append(p.Transforms, s.transform(uint8(i+1)))
	}
	return v1SAPayload([]isakmp.Proposal{p})
}

// v1ParseSuite reads a phase 1 transform; ok is false for what we do not
// implement (3DES included), with the reason.
func v1ParseSuite(t isakmp.Transform) (v1Suite, string) {
	var s v1Suite
	s.life = 8 * time.Hour // RFC 2407 section 4.5 default
	lifeType := isakmp.LifeSeconds
	var why string
	for _, a := range t.Attributes {
		v, ok := a.Uint()
		if !ok {
			return s, fmt.Sprintf("attribute %v too long", isakmp.P1Attr(a.Type))
		}
		switch isakmp.P1Attr(a.Type) {
		case isakmp.P1Encryption:
			switch uint16(v) {
			case isakmp.P1EncrAESCBC:
				s.encr = transform.ENCR_AES_CBC
			case isakmp.P1Encr3DES:
				s.encr = transform.ENCR_3DES
				why = "3DES is refused by default (64-bit blocks, Sweet32)"
			default:
				why = fmt.Sprintf("encryption algorithm %d not supported", v)
			}
		case isakmp.P1KeyLength:
			s.encrBits = uint16(v)
		case isakmp.P1Hash:
			found := false
			for prf, h := range v1HashOfPRF {
				if uint64(h) == v {
					s.prf, found = prf, true
				}
			}
			if !found && why == "" {
				why = fmt.Sprintf("hash algorithm %d not supported", v)
			}
		case isakmp.P1AuthMethod:
			s.auth = isakmp.AuthMethod(v)
		case isakmp.P1Group:
			s.group = transform.KEID(v)
		case isakmp.P1LifeType:
			lifeType = uint16(v)
		case isakmp.P1LifeDuration:
			if lifeType == isakmp.LifeSeconds && v > 0 && v < uint64(math64/time.Second) {
				s.life = time.Duration(v) * time.Second
			}
		default:
			if why == "" {
				why = fmt.Sprintf("attribute %v not supported", isakmp.P1Attr(a.Type))
			}
		}
	}
	if why == "" && (s.encr == 0 || s.prf == 0 || s.group == 0 || s.auth == 0) {
		why = "incomplete transform"
	}
	if why == "" && !s.group.Supported() {
		why = fmt.Sprintf("%v not supported", s.group)
	}
	if why == "" && s.encr == transform.ENCR_AES_CBC && s.encrBits == 0 {
		why = "AES without key length"
	}
	return s, why
}

const math64 = time.Duration(1<<63 - 1)

// selectV1Suite picks, as the responder, the first of the initiator's
// transforms that one of our suites matches; the lifetime is the shorter.
func (sa *v1SA) selectV1Suite(p *isakmp.SecurityAssociation) (v1Suite, isakmp.Transform, bool) {
	ours := sa.conn.v1Suites(0)
	var received []string
	isakmpOnly := func(pr isakmp.Proposal) bool { return pr.Protocol == isakmp.ProtoISAKMP }
	for offer := range v1Offers(sa.log, "", p, isakmpOnly, v1ParseSuite, &received) {
		s := offer.suite
		if !sa.authAcceptable(s.auth) {
			continue
		}
		for _, o := range ours {
			if o.encr == s.encr && o.encrBits == s.encrBits && o.prf == s.prf && o.group == s.group {
				s.life = min(s.life, o.life)
				sa.log.Info("selected proposal: " + s.String())
				return s, offer.transform, true
			}
		}
	}
	sa.log.Info("received proposals: " + strings.Join(received, ", "))
	var conf []string
	for _, o := range ours {
		conf = append(conf, o.String())
	}
	sa.log.Info("configured proposals: " + strings.Join(conf, ", "))
	return v1Suite{}, isakmp.Transform{}, false
}

// v1Offer is one transform a peer proposed, with its proposal and what
// it parsed to.
type v1Offer[S any] struct {
	proposal  isakmp.Proposal
	transform isakmp.Transform
	suite     S
}

// v1Offers yields, as the responder walks them (in the peer's order), the
// transforms of the proposals of an SA payload that keep takes, parsed.
// It logs those that do not parse (kind names their protocol in the log)
// and notes every transform walked in received, for charon's log of what
// was received when none is taken.
func v1Offers[S fmt.Stringer](log *slog.Logger, kind string, p *isakmp.SecurityAssociation, keep func(isakmp.Proposal) bool,
	parse func(isakmp.Transform) (S, string), received *[]string) iter.Seq[v1Offer[S]] {
	return func(yield func(v1Offer[S]) bool) {
		for _, pr := range p.Proposals {
			if !keep(pr) {
				continue
			}
			for _, t := range pr.Transforms {
				s, why := parse(t)
				*received = append(*received, s.String())
				if why != "" {
					infof(log, "received %stransform %d not acceptable: %s", kind, t.Number, why)
					continue
				}
				if !yield(v1Offer[S]{proposal: pr, transform: t, suite: s}) {
					return
				}
			}
		}
	}
}

// authAcceptable tells whether the initiator's method fits our remote
// round (what the peer uses) and local round.
func (sa *v1SA) authAcceptable(m isakmp.AuthMethod) bool {
	base, xauth := m.XAuthBase()
	if xauth {
		// INIT: the initiator, our peer, is the XAuth client.
		init := m == isakmp.AuthXAuthInitPSK || m == isakmp.AuthXAuthInitRSA
		if (init && !sa.conn.xauthServer()) || (!init && !sa.conn.xauthClient()) {
			return false
		}
		m = base
	} else if sa.conn.xauthServer() || sa.conn.xauthClient() {
		return false
	}
	switch m {
	case isakmp.AuthPSK:
		return sa.conn.remote.Auth == AuthPSK && sa.conn.local.Auth == AuthPSK
	case isakmp.AuthRSA, isakmp.AuthECDSA256, isakmp.AuthECDSA384, isakmp.AuthECDSA521:
		return sa.conn.remote.Auth == AuthPubkey && sa.conn.local.Auth == AuthPubkey
	}
	return false
}

// ESP proposals of Quick Mode.

var v1AuthAlgOfInteg = map[transform.IntegID]uint16{
	transform.AUTH_HMAC_SHA1_96: isakmp.P2AuthHMACSHA1, transform.AUTH_HMAC_SHA2_256_128: isakmp.P2AuthHMACSHA256,
	transform.AUTH_HMAC_SHA2_384_192: isakmp.P2AuthHMACSHA384, transform.AUTH_HMAC_SHA2_512_256: isakmp.P2AuthHMACSHA512,
	transform.AUTH_AES_XCBC_96: isakmp.P2AuthAESXCBC,
}

// v1ESPSuite is a selected ESP transform.
type v1ESPSuite struct {
	suite transform.ChildSuite
	life  time.Duration
	encap uint16
}

func (s v1ESPSuite) String() string {
	var str string
	if s.suite.AH {
		str = "AH:" + transform.Transform{Type: transform.TransformINTEG, ID: uint16(s.suite.Integ)}.String()
	} else {
		str = fmt.Sprintf("ESP:%v", transform.Transform{Type: transform.TransformENCR, ID: uint16(s.suite.Encr), KeyLength: s.suite.EncrKeyBits})
		if s.suite.Integ != 0 {
			str += "/" + transform.Transform{Type: transform.TransformINTEG, ID: uint16(s.suite.Integ)}.String()
		}
	}
	if s.suite.KE != 0 {
		str += "/" + s.suite.KE.String()
	}
	return str + "/NO_EXT_SEQ"
}

// v1ESPTransforms expands ESP proposals into IKEv1 transforms: with PFS
// only the first group is used (IKEv1 proposes one group per exchange).
func v1ESPTransforms(ps []transform.Proposal, pfs transform.KEID, life time.Duration, encap uint16) []isakmp.Transform {
	var out []isakmp.Transform
	for _, p := range ps {
		integs := p.Algorithms(transform.TransformINTEG)
		if len(integs) == 0 {
			integs = []transform.Transform{{}}
		}
		for _, e := range p.Algorithms(transform.TransformENCR) {
			for _, in := range integs {
				id := uint8(e.ID) // ESP transform IDs equal IKEv2's ENCR IDs
				var attrs []isakmp.Attribute
				attrs = append(attrs, isakmp.BasicAttr(isakmp.P2LifeType, isakmp.LifeSeconds),
					isakmp.NumberAttr(isakmp.P2LifeDuration, uint64(life/time.Second)))
				if pfs != 0 {
					attrs = append(attrs, isakmp.BasicAttr(isakmp.P2Group, uint16(pfs)))
				}
				attrs = append(attrs, isakmp.BasicAttr(isakmp.P2EncapMode, encap))
				if in.ID != 0 {
					attrs = append(attrs, isakmp.BasicAttr(isakmp.P2AuthAlg, v1AuthAlgOfInteg[transform.IntegID(in.ID)]))
				}
				if e.KeyLength != 0 {
					attrs = append(attrs, isakmp.BasicAttr(isakmp.P2KeyLength, e.KeyLength))
				}
				out = append(out, isakmp.Transform{Number: uint8(len(out) + 1), ID: id, Attributes: attrs})
			}
		}
	}
	return out
}

// v1ParseESP reads an ESP transform.
func v1ParseESP(t isakmp.Transform) (v1ESPSuite, string) {
	s := v1ESPSuite{life: 8 * time.Hour}
	s.suite.Encr = transform.EncrID(t.ID)
	if s.suite.Encr == transform.ENCR_3DES {
		return s, "3DES is refused by default (64-bit blocks, Sweet32)"
	}
	lifeType := isakmp.LifeSeconds
	for _, a := range t.Attributes {
		v, ok := a.Uint()
		if !ok {
			return s, "attribute too long"
		}
		switch isakmp.P2Attr(a.Type) {
		case isakmp.P2LifeType:
			lifeType = uint16(v)
		case isakmp.P2LifeDuration:
			if lifeType == isakmp.LifeSeconds && v > 0 && v < uint64(math64/time.Second) {
				s.life = time.Duration(v) * time.Second
			}
		case isakmp.P2Group:
			s.suite.KE = transform.KEID(v)
		case isakmp.P2EncapMode:
			s.encap = uint16(v)
		case isakmp.P2AuthAlg:
			found := false
			for integ, id := range v1AuthAlgOfInteg {
				if uint64(id) == v {
					s.suite.Integ, found = integ, true
				}
			}
			if !found {
				return s, fmt.Sprintf("authentication algorithm %d not supported", v)
			}
		case isakmp.P2KeyLength:
			s.suite.EncrKeyBits = uint16(v)
		case isakmp.P2ESN:
			if v != 0 {
				return s, "extended sequence numbers not supported"
			}
		default:
			return s, fmt.Sprintf("attribute %v not supported", isakmp.P2Attr(a.Type))
		}
	}
	if err := s.suite.Validate(); err != nil {
		return s, err.Error()
	}
	return s, ""
}

// matchESP tells whether one of our proposals (ESP or AH) allows a
// received suite of the same protocol.
func matchESP(ours []transform.Proposal, s transform.ChildSuite, pfs transform.KEID) bool {
	for _, p := range ours {
		if (p.Protocol == transform.ProtoAH) != s.AH {
			continue
		}
		if s.AH {
			for _, i := range p.Algorithms(transform.TransformINTEG) {
				if transform.IntegID(i.ID) == s.Integ && s.KE == pfs {
					return true
				}
			}
			continue
		}
		okE, okI := false, s.Integ == 0 && len(p.Algorithms(transform.TransformINTEG)) == 0
		for _, e := range p.Algorithms(transform.TransformENCR) {
			okE = okE || (transform.EncrID(e.ID) == s.Encr && e.KeyLength == s.EncrKeyBits)
		}
		for _, i := range p.Algorithms(transform.TransformINTEG) {
			okI = okI || transform.IntegID(i.ID) == s.Integ
		}
		if okE && okI && s.KE == pfs {
			return true
		}
	}
	return false
}

// AH proposals of Quick Mode (RFC 2407 section 4.4.3, IANA "IPsec AH
// Transform Identifiers"): the transform ID names the integrity
// algorithm, and the Authentication Algorithm attribute, mandatory for
// AH (RFC 2407 section 4.5), names the same one.

var v1AHTransformOfInteg = map[transform.IntegID]uint8{
	transform.AUTH_HMAC_SHA1_96:      3, // AH_SHA
	transform.AUTH_HMAC_SHA2_256_128: 5, // AH_SHA2-256
	transform.AUTH_HMAC_SHA2_384_192: 6, // AH_SHA2-384
	transform.AUTH_HMAC_SHA2_512_256: 7, // AH_SHA2-512
	transform.AUTH_AES_XCBC_96:       9, // AH_AES-XCBC-MAC
}

// v1AHTransforms expands AH proposals into IKEv1 transforms, one per
// integrity algorithm; with PFS only the first group is used.
func v1AHTransforms(ps []transform.Proposal, pfs transform.KEID, life time.Duration, encap uint16) []isakmp.Transform {
	var out []isakmp.Transform
	for _, p := range ps {
		for _, in := range p.Algorithms(transform.TransformINTEG) {
			id, ok := v1AHTransformOfInteg[transform.IntegID(in.ID)]
			if !ok {
				continue
			}
			attrs := []isakmp.Attribute{isakmp.BasicAttr(isakmp.P2LifeType, isakmp.LifeSeconds),
				isakmp.NumberAttr(isakmp.P2LifeDuration, uint64(life/time.Second))}
			if pfs != 0 {
				attrs = append(attrs, isakmp.BasicAttr(isakmp.P2Group, uint16(pfs)))
			}
			attrs = append(attrs, isakmp.BasicAttr(isakmp.P2EncapMode, encap),
				isakmp.BasicAttr(isakmp.P2AuthAlg, v1AuthAlgOfInteg[transform.IntegID(in.ID)]))
			out = append(out, isakmp.Transform{Number: uint8(len(out) + 1), ID: id, Attributes: attrs})
		}
	}
	return out
}

// v1ParseAH reads an AH transform: its ID and Authentication Algorithm
// attribute must name the same integrity algorithm.
func v1ParseAH(t isakmp.Transform) (v1ESPSuite, string) {
	s := v1ESPSuite{life: 8 * time.Hour, suite: transform.ChildSuite{AH: true}}
	for integ, id := range v1AHTransformOfInteg {
		if id == t.ID {
			s.suite.Integ = integ
		}
	}
	if s.suite.Integ == 0 {
		return s, fmt.Sprintf("AH transform %d not supported", t.ID)
	}
	var auth uint64
	lifeType := isakmp.LifeSeconds
	for _, a := range t.Attributes {
		v, ok := a.Uint()
		if !ok {
			return s, "attribute too long"
		}
		switch isakmp.P2Attr(a.Type) {
		case isakmp.P2LifeType:
			lifeType = uint16(v)
		case isakmp.P2LifeDuration:
			if lifeType == isakmp.LifeSeconds && v > 0 && v < uint64(math64/time.Second) {
				s.life = time.Duration(v) * time.Second
			}
		case isakmp.P2Group:
			s.suite.KE = transform.KEID(v)
		case isakmp.P2EncapMode:
			s.encap = uint16(v)
		case isakmp.P2AuthAlg:
			auth = v
		case isakmp.P2ESN:
			if v != 0 {
				return s, "extended sequence numbers not supported"
			}
		default:
			return s, fmt.Sprintf("attribute %v not supported", isakmp.P2Attr(a.Type))
		}
	}
	if auth != uint64(v1AuthAlgOfInteg[s.suite.Integ]) {
		return s, fmt.Sprintf("authentication algorithm %d does not match AH transform %d", auth, t.ID)
	}
	if err := s.suite.Validate(); err != nil {
		return s, err.Error()
	}
	return s, ""
}
