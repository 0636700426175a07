package transform

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Protocol is the Protocol ID of a proposal (RFC 7296 section 3.3.1).
type Protocol uint8

// Protocol IDs.
const (
	ProtoIKE Protocol = 1
	ProtoAH  Protocol = 2
	ProtoESP Protocol = 3
)

func (p Protocol) String() string {
	switch p {
	case ProtoIKE:
		return "IKE"
	case ProtoAH:
		return "AH"
	case ProtoESP:
		return "ESP"
	}
	return "PROTO_" + strconv.Itoa(int(p))
}

// Proposal is a set of transforms offered together: for each transform
// type, the algorithms in order of preference.
type Proposal struct {
	Protocol   Protocol
	Transforms []Transform
}

// typeOrder is the order in which charon prints transform types (it swaps
// INTEG before PRF "to not change the previous order").
// The additional key exchanges of RFC 9370 follow the KE method.
var typeOrder = []TransformType{TransformENCR, TransformINTEG, TransformPRF, TransformKE,
	TransformADDKE1, TransformADDKE1 + 1, TransformADDKE1 + 2, TransformADDKE1 + 3,
	TransformADDKE1 + 4, TransformADDKE1 + 5, TransformADDKE7, TransformESN}

// Algorithms returns the proposal's transforms of one type, in order.
func (p Proposal) Algorithms(t TransformType) []Transform {
	var out []Transform
	for _, tr := range p.Transforms {
		if tr.Type == t {
			out = append(out, tr)
		}
	}
	return out
}

func (p Proposal) has(t Transform) bool { return slices.Contains(p.Transforms, t) }

func (p *Proposal) add(t Transform) {
	if !p.has(t) {
		p.Transforms = append(p.Transforms, t)
	}
}

func (p *Proposal) remove(t TransformType) {
	p.Transforms = slices.DeleteFunc(p.Transforms, func(tr Transform) bool { return tr.Type == t })
}

// String formats the proposal as charon logs it, for example
// "IKE:AES_GCM_16_128/PRF_HMAC_SHA2_256/CURVE_25519" or
// "ESP:AES_CBC_256/HMAC_SHA2_256_128/NO_EXT_SEQ".
func (p Proposal) String() string {
	// Built in one buffer: the observers get every SA's proposal as a
	// string when it comes up.
	var buf [128]byte
	b := append(buf[:0], p.Protocol.String()...)
	b = append(b, ':')
	first := true
	for _, t := range typeOrder {
		n, none := 0, false
		for _, tr := range p.Transforms {
			if tr.Type == t {
				n++
				none = tr.ID == uint16(KE_NONE)
			}
		}
		if t.IsAdditionalKE() && n == 1 && none {
			// An optional exchange left out (a selected proposal): charon
			// does not print it.
			continue
		}
		for _, tr := range p.Transforms {
			if tr.Type != t {
				continue
			}
			if !first {
				b = append(b, '/')
			}
			first = false
			b = tr.appendName(b)
		}
	}
	return string(b)
}

// FormatProposals joins proposals as charon's "received proposals: ..." and
// "configured proposals: ..." lines do.
func FormatProposals(ps []Proposal) string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = p.String()
	}
	return strings.Join(s, ", ")
}

// Keywords formats the proposal in the configuration syntax, for example
// "aes128gcm16-prfsha256-x25519" or "aes256-sha256-modp2048". A PRF that
// would be derived from the integrity algorithms and ESP's default "noesn"
// are left out; ParseProposal of the result gives the proposal back.
func (p Proposal) Keywords() string {
	var words []string
	skipPRF := p.Protocol == ProtoIKE && slices.Equal(p.Algorithms(TransformPRF), derivedPRFs(p))
	skipESN := slices.Equal(p.Algorithms(TransformESN), []Transform{esnT(NO_ESN)})
	for _, t := range typeOrder {
		if (t == TransformPRF && skipPRF) || (t == TransformESN && skipESN) {
			continue
		}
		for _, tr := range p.Algorithms(t) {
			w, ok := transformKeywords[tr]
			if t.IsAdditionalKE() {
				w, ok = transformKeywords[keT(KEID(tr.ID))]
				w = "ke" + strconv.Itoa(int(t-TransformADDKE1)+1) + "_" + w
			}
			if !ok {
				w = strings.ToLower(tr.String())
			}
			words = append(words, w)
		}
	}
	return strings.Join(words, "-")
}

// ErrProposal is wrapped by every proposal string error.
var ErrProposal = errors.New("invalid proposal")

// ParseProposals parses a comma-separated list of proposals in strongSwan's
// syntax, as in swanctl.conf's "proposals" and "esp_proposals". Each item is
// a proposal string ("aes256-sha256-modp2048") or "default".
func ParseProposals(protocol Protocol, s string) ([]Proposal, error) {
	var out []Proposal
	for item := range strings.SplitSeq(s, ",") {
		item = strings.TrimSpace(item)
		if item == "default" {
			out = append(out, DefaultProposals(protocol)...)
			continue
		}
		p, err := ParseProposal(protocol, item)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

// ParseProposal parses one proposal string: algorithm keywords separated by
// '-', several per transform type allowed, checked as strongSwan's
// check_proposal does:
//
//   - IKE: without a PRF keyword, the PRFs are derived from the integrity
//     algorithms (sha256 gives prfsha256); a PRF and a DH group are
//     mandatory; "none" is dropped.
//   - ESP: PRF keywords are ignored; without esn/noesn, noesn is assumed.
//   - AH (RFC 4302): integrity algorithms only, one at least; no
//     encryption algorithm; a DH group for PFS and esn/noesn as for ESP.
//   - AEAD and classic ciphers cannot be mixed in one proposal; with AEADs
//     no integrity algorithm is proposed; with classic ciphers one is
//     mandatory (for ESP too, unlike strongSwan, because we do not
//     negotiate ESP without integrity).
//
// Errors name the offending keyword.
func ParseProposal(protocol Protocol, s string) (Proposal, error) {
	fail := func(format string, args ...any) (Proposal, error) {
		return Proposal{}, fmt.Errorf("%w %q: %s", ErrProposal, s, fmt.Sprintf(format, args...))
	}
	if protocol != ProtoIKE && protocol != ProtoESP && protocol != ProtoAH {
		return fail("%v proposals are not supported", protocol)
	}
	p := Proposal{Protocol: protocol}
	for word := range strings.SplitSeq(s, "-") {
		word = strings.TrimSpace(word)
		if word == "" {
			return fail("empty algorithm keyword")
		}
		t, ok := keywordTransforms[strings.ToLower(word)]
		if n, method, isAdd := additionalKEKeyword(strings.ToLower(word)); isAdd {
			// keN_method (RFC 9370): the method's keyword with the
			// number of the additional exchange, "none" optional.
			mt, known := keywordTransforms[method]
			switch {
			case n < 1 || n > 7:
				return fail("additional key exchange %q: the number must be 1 to 7", word)
			case known && mt.Type == TransformKE:
				t, ok = Transform{Type: AdditionalKE(n), ID: mt.ID}, true
			case isUnsupportedKeyword(method):
				return fail("algorithm %q is not supported", word)
			default:
				return fail("algorithm %q not recognized", word)
			}
		}
		switch {
		case ok:
			p.add(t)
		case strings.ToLower(word) == "3des":
			// As a peer's 3DES proposal is refused (ike/v1_proposal.go).
			return fail("algorithm %q is not supported: 3DES is refused by default (64-bit blocks, Sweet32)", word)
		case isUnsupportedKeyword(strings.ToLower(word)):
			return fail("algorithm %q is not supported", word)
		default:
			return fail("algorithm %q not recognized", word)
		}
	}

	if protocol == ProtoIKE {
		if len(p.Algorithms(TransformPRF)) == 0 {
			for _, prf := range derivedPRFs(p) {
				p.add(prf)
			}
		}
		if len(p.Algorithms(TransformPRF)) == 0 {
			return fail("a PRF algorithm is mandatory in IKE proposals")
		}
		p.Transforms = slices.DeleteFunc(p.Transforms, func(t Transform) bool { return t == keT(KE_NONE) })
		if len(p.Algorithms(TransformKE)) == 0 {
			return fail("a DH group is mandatory in IKE proposals")
		}
		if len(p.Algorithms(TransformESN)) != 0 {
			return fail("esn/noesn is not allowed in IKE proposals")
		}
		// Not required by RFC 9370, but a gap is more likely a typo.
		for n, i := p.additionalKETypes(), 1; i < n; i++ {
			if len(p.Algorithms(AdditionalKE(i))) == 0 {
				return fail("additional key exchange %d missing before %d", i, n)
			}
		}
	} else {
		p.remove(TransformPRF)
		if p.additionalKETypes() > 0 && len(p.Algorithms(TransformKE)) == 0 {
			// They follow the KE of CREATE_CHILD_SA (RFC 9370 section 2.2.4).
			return fail("additional key exchanges in %v proposals need a key exchange (PFS)", protocol)
		}
	}

	if protocol == ProtoAH {
		if encrs := p.Algorithms(TransformENCR); len(encrs) != 0 {
			return fail("encryption algorithm %v is not allowed in AH proposals", encrs[0])
		}
		if len(p.Algorithms(TransformINTEG)) == 0 {
			return fail("an integrity algorithm is mandatory in AH proposals")
		}
		if len(p.Algorithms(TransformESN)) == 0 {
			p.add(esnT(NO_ESN))
		}
		p.sort()
		return p, nil
	}

	encrs := p.Algorithms(TransformENCR)
	if len(encrs) == 0 {
		return fail("an encryption algorithm is mandatory in %v proposals", protocol)
	}
	aead := 0
	for _, e := range encrs {
		if EncrID(e.ID).IsAEAD() {
			aead++
		}
	}
	switch {
	case aead > 0 && aead < len(encrs):
		return fail("classic and combined-mode (AEAD) encryption algorithms can't be contained in the same %v proposal", protocol)
	case aead > 0:
		p.remove(TransformINTEG)
	case len(p.Algorithms(TransformINTEG)) == 0:
		return fail("an integrity algorithm is mandatory in %v proposals with classic (non-AEAD) encryption algorithms", protocol)
	}

	if protocol == ProtoESP && len(p.Algorithms(TransformESN)) == 0 {
		p.add(esnT(NO_ESN))
	}
	p.sort()
	return p, nil
}

// additionalKEKeyword splits "keN_method" into N and method.
func additionalKEKeyword(w string) (int, string, bool) {
	if len(w) < 5 || !strings.HasPrefix(w, "ke") || w[3] != '_' || w[2] < '0' || w[2] > '9' {
		return 0, "", false
	}
	return int(w[2] - '0'), w[4:], true
}

// additionalKETypes is the highest N of the proposal's ADDKE types, 0 for none.
func (p Proposal) additionalKETypes() int {
	n := 0
	for _, t := range p.Transforms {
		if t.Type.IsAdditionalKE() {
			n = max(n, int(t.Type-TransformADDKE1)+1)
		}
	}
	return n
}

// AdditionalKEs returns the key exchange methods of a selected proposal's
// additional key exchanges in the order they run (RFC 9370 section
// 2.2.1), those that negotiated NONE left out.
func (p Proposal) AdditionalKEs() []KEID {
	var out []KEID
	for n := 1; n <= 7; n++ {
		for _, t := range p.Algorithms(AdditionalKE(n)) {
			if t.ID != uint16(KE_NONE) {
				out = append(out, KEID(t.ID))
			}
			break
		}
	}
	return out
}

// HasAdditionalKEs reports whether the proposal has transforms of any
// ADDKE type, NONE included.
func (p Proposal) HasAdditionalKEs() bool { return p.additionalKETypes() > 0 }

// WithoutAdditionalKEs returns the proposal without its ADDKE transforms.
func (p Proposal) WithoutAdditionalKEs() Proposal {
	out := Proposal{Protocol: p.Protocol}
	for _, t := range p.Transforms {
		if !t.Type.IsAdditionalKE() {
			out.Transforms = append(out.Transforms, t)
		}
	}
	return out
}

// sort orders the transforms by type as charon prints them, keeping the
// order of preference within each type.
func (p *Proposal) sort() {
	slices.SortStableFunc(p.Transforms, func(a, b Transform) int {
		return slices.Index(typeOrder, a.Type) - slices.Index(typeOrder, b.Type)
	})
}

// integPRF maps an integrity algorithm to the PRF strongSwan derives from
// it when an IKE proposal names none.
var integPRF = map[IntegID]PRFID{
	AUTH_HMAC_SHA1_96:      PRF_HMAC_SHA1,
	AUTH_HMAC_SHA2_256_128: PRF_HMAC_SHA2_256,
	AUTH_HMAC_SHA2_384_192: PRF_HMAC_SHA2_384,
	AUTH_HMAC_SHA2_512_256: PRF_HMAC_SHA2_512,
	AUTH_AES_XCBC_96:       PRF_AES128_XCBC,
}

func derivedPRFs(p Proposal) []Transform {
	var out []Transform
	for _, t := range p.Algorithms(TransformINTEG) {
		if prf, ok := integPRF[IntegID(t.ID)]; ok && !slices.Contains(out, prfT(prf)) {
			out = append(out, prfT(prf))
		}
	}
	return out
}

// MustParseProposals is ParseProposals that panics on an error: for tests
// and fixed configurations.
func MustParseProposals(protocol Protocol, s string) []Proposal {
	ps, err := ParseProposals(protocol, s)
	if err != nil {
		panic(err)
	}
	return ps
}

// DefaultProposals returns what "default" stands for: strongSwan's default
// proposals restricted to the algorithms this package implements. For IKE
// an AEAD proposal comes first, then a classic one; for ESP one classic
// proposal (strongSwan proposes no AEAD for ESP by default); for AH its
// integrity algorithms.
func DefaultProposals(protocol Protocol) []Proposal {
	kes := []Transform{keT(CURVE_25519), keT(ECP_256), keT(ECP_384), keT(ECP_521),
		keT(MODP_3072), keT(MODP_4096), keT(MODP_2048)}
	prfs := []Transform{prfT(PRF_HMAC_SHA2_256), prfT(PRF_HMAC_SHA2_384), prfT(PRF_HMAC_SHA2_512),
		prfT(PRF_AES128_XCBC), prfT(PRF_HMAC_SHA1)}
	cbc := []Transform{encrT(ENCR_AES_CBC, 128), encrT(ENCR_AES_CBC, 192), encrT(ENCR_AES_CBC, 256)}
	integs := []Transform{integT(AUTH_HMAC_SHA2_256_128), integT(AUTH_HMAC_SHA2_384_192), integT(AUTH_HMAC_SHA2_512_256)}
	switch protocol {
	case ProtoIKE:
		var aeads []Transform
		for _, id := range []EncrID{ENCR_AES_GCM_16, ENCR_AES_GCM_12, ENCR_AES_GCM_8} {
			for _, bits := range []uint16{128, 192, 256} {
				aeads = append(aeads, encrT(id, bits))
			}
			if id == ENCR_AES_GCM_16 {
				aeads = append(aeads, encrT(ENCR_CHACHA20_POLY1305, 0))
			}
		}
		return []Proposal{
			{ProtoIKE, concatT(aeads, prfs, kes)},
			{ProtoIKE, concatT(cbc, integs, []Transform{integT(AUTH_AES_XCBC_96), integT(AUTH_HMAC_SHA1_96)}, prfs, kes)},
		}
	case ProtoESP:
		return []Proposal{{ProtoESP, concatT(cbc, integs,
			[]Transform{integT(AUTH_HMAC_SHA1_96), integT(AUTH_AES_XCBC_96), esnT(NO_ESN)})}}
	case ProtoAH:
		return []Proposal{{ProtoAH, concatT(integs,
			[]Transform{integT(AUTH_HMAC_SHA1_96), integT(AUTH_AES_XCBC_96), esnT(NO_ESN)})}}
	}
	return nil
}

func concatT(parts ...[]Transform) []Transform {
	var out []Transform
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

// IKESuite returns the suite of a selected IKE proposal, one that holds a
// single transform of each type (as in an IKE_SA_INIT response).
func (p Proposal) IKESuite() (IKESuite, error) {
	if p.Protocol != ProtoIKE {
		return IKESuite{}, fmt.Errorf("%v proposal is not an IKE proposal: %w", p.Protocol, ErrProposal)
	}
	one, err := p.selected()
	if err != nil {
		return IKESuite{}, err
	}
	s := IKESuite{
		Encr: EncrID(one[TransformENCR].ID), EncrKeyBits: one[TransformENCR].KeyLength,
		Integ: IntegID(one[TransformINTEG].ID), PRF: PRFID(one[TransformPRF].ID), KE: KEID(one[TransformKE].ID),
	}
	return s, s.Validate()
}

// ChildSuite returns the suite of a selected ESP proposal.
func (p Proposal) ChildSuite() (ChildSuite, error) {
	if p.Protocol != ProtoESP && p.Protocol != ProtoAH {
		return ChildSuite{}, fmt.Errorf("%v proposal is not an ESP or AH proposal: %w", p.Protocol, ErrProposal)
	}
	one, err := p.selected()
	if err != nil {
		return ChildSuite{}, err
	}
	s := ChildSuite{
		AH:   p.Protocol == ProtoAH,
		Encr: EncrID(one[TransformENCR].ID), EncrKeyBits: one[TransformENCR].KeyLength,
		Integ: IntegID(one[TransformINTEG].ID), KE: KEID(one[TransformKE].ID), ESN: ESNID(one[TransformESN].ID),
	}
	return s, s.Validate()
}

func (p Proposal) selected() (map[TransformType]Transform, error) {
	one := map[TransformType]Transform{}
	for _, t := range p.Transforms {
		if _, dup := one[t.Type]; dup {
			return nil, fmt.Errorf("%v: more than one %v transform, not a selected proposal: %w", p, t.Type, ErrProposal)
		}
		one[t.Type] = t
	}
	return one, nil
}
