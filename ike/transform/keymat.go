package transform

import (
	"encoding/binary"
	"fmt"
	"io"
)

// IKESuite is the set of algorithms negotiated for an IKE SA.
type IKESuite struct {
	Encr        EncrID
	EncrKeyBits uint16  // Key Length attribute, 0 when absent
	Integ       IntegID // AUTH_NONE with an AEAD
	PRF         PRFID
	KE          KEID
}

// Validate checks that the suite is implemented and consistent: an AEAD
// comes without integrity algorithm, a classic cipher with one.
func (s IKESuite) Validate() error {
	if _, err := encrKeySize(s.Encr, s.EncrKeyBits); err != nil {
		return err
	}
	if s.Encr.IsAEAD() != (s.Integ == AUTH_NONE) {
		return fmt.Errorf("IKE suite %v with %v: %w", s.Encr, s.Integ, ErrUnsupported)
	}
	if !s.Encr.IsAEAD() && !s.Integ.Supported() {
		return fmt.Errorf("IKE suite: %v: %w", s.Integ, ErrUnsupported)
	}
	if !s.PRF.Supported() {
		return fmt.Errorf("IKE suite: %v: %w", s.PRF, ErrUnsupported)
	}
	if !s.KE.Supported() {
		return fmt.Errorf("IKE suite: %v: %w", s.KE, ErrUnsupported)
	}
	return nil
}

// IKEKeys are the seven secrets of an IKE SA (RFC 7296 section 2.14).
// For an AEAD, AI and AR are empty and EI/ER end with the 4-byte salt.
type IKEKeys struct {
	D      []byte // SK_d: keys Child SAs and the next IKE SA
	AI, AR []byte // SK_ai, SK_ar: integrity, initiator's and responder's messages
	EI, ER []byte // SK_ei, SK_er: encryption, initiator's and responder's messages
	PI, PR []byte // SK_pi, SK_pr: for the AUTH payloads
}

// Zero overwrites all seven keys. Call it when the IKE SA is gone.
func (k *IKEKeys) Zero() {
	for _, b := range [][]byte{k.D, k.AI, k.AR, k.EI, k.ER, k.PI, k.PR} {
		clear(b)
	}
}

// Protectors builds the SK payload protectors of the IKE SA: one for the
// messages the original initiator sends (SK_ei, SK_ai), one for those the
// responder sends (SK_er, SK_ar). Close both when the IKE SA dies.
func (k *IKEKeys) Protectors(s IKESuite, rand io.Reader) (fromInitiator, fromResponder *SKProtector, err error) {
	fromInitiator, err = NewProtector(s.Encr, s.EncrKeyBits, s.Integ, k.EI, k.AI, rand)
	if err != nil {
		return nil, nil, err
	}
	fromResponder, err = NewProtector(s.Encr, s.EncrKeyBits, s.Integ, k.ER, k.AR, rand)
	if err != nil {
		fromInitiator.Close()
		return nil, nil, err
	}
	return fromInitiator, fromResponder, nil
}

// SKEYSEED computes prf(Ni | Nr, g^ir) (RFC 7296 section 2.14). For
// AES-XCBC-PRF-128 and AES-CMAC-PRF-128, whose key is 128 bits, only the
// first 64 bits of each nonce form the key.
func SKEYSEED(prf PRFID, ni, nr, gir []byte) ([]byte, error) {
	var key []byte
	switch prf {
	case PRF_AES128_XCBC, PRF_AES128_CMAC:
		if len(ni) < 8 || len(nr) < 8 {
			return nil, fmt.Errorf("SKEYSEED with %v: nonces shorter than 64 bits", prf)
		}
		key = concat(ni[:8], nr[:8])
	default:
		key = concat(ni, nr)
	}
	return prf.Compute(key, gir)
}

// RekeySKEYSEED computes the SKEYSEED of an IKE SA created by rekeying:
// prf(SK_d (old), g^ir (new) | Ni | Nr), with the old IKE SA's PRF, the
// nonces of the CREATE_CHILD_SA exchange and its new shared secret
// (RFC 7296 section 2.18).
func RekeySKEYSEED(oldPRF PRFID, oldSKd, girNew, ni, nr []byte) ([]byte, error) {
	return oldPRF.Compute(oldSKd, girNew, ni, nr)
}

// IKEKeyLength is the number of prf+ bytes the suite consumes for its seven
// keys.
func (s IKESuite) IKEKeyLength() (int, error) {
	encr, err := encrKeySize(s.Encr, s.EncrKeyBits)
	if err != nil {
		return 0, err
	}
	return 3*s.PRF.KeySize() + 2*s.Integ.KeySize() + 2*encr, nil
}

// DeriveIKEKeys takes SK_d, SK_ai, SK_ar, SK_ei, SK_er, SK_pi and SK_pr in
// that order from prf+(SKEYSEED, Ni | Nr | SPIi | SPIr), with the lengths
// the suite needs (RFC 7296 sections 2.13 and 2.14). SKEYSEED is the
// caller's to zero.
func DeriveIKEKeys(s IKESuite, skeyseed, ni, nr []byte, spiI, spiR uint64) (*IKEKeys, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	n, err := s.IKEKeyLength()
	if err != nil {
		return nil, err
	}
	var spis [16]byte
	binary.BigEndian.PutUint64(spis[:8], spiI)
	binary.BigEndian.PutUint64(spis[8:], spiR)
	keymat, err := s.PRF.Plus(skeyseed, concat(ni, nr, spis[:]), n)
	if err != nil {
		return nil, err
	}
	encr, _ := encrKeySize(s.Encr, s.EncrKeyBits)
	prfLen, integLen := s.PRF.KeySize(), s.Integ.KeySize()
	take := splitter(keymat)
	return &IKEKeys{
		D:  take(prfLen),
		AI: take(integLen),
		AR: take(integLen),
		EI: take(encr),
		ER: take(encr),
		PI: take(prfLen),
		PR: take(prfLen),
	}, nil
}

// NewIKEKeys derives the keys of an IKE SA set up by IKE_SA_INIT from its
// nonces, shared secret and SPIs; the intermediate SKEYSEED is zeroed.
func NewIKEKeys(s IKESuite, ni, nr, gir []byte, spiI, spiR uint64) (*IKEKeys, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	skeyseed, err := SKEYSEED(s.PRF, ni, nr, gir)
	if err != nil {
		return nil, err
	}
	defer clear(skeyseed)
	return DeriveIKEKeys(s, skeyseed, ni, nr, spiI, spiR)
}

// RekeyIKEKeys derives the keys of the new IKE SA of a rekeying
// CREATE_CHILD_SA exchange: SKEYSEED from the old SA's PRF and SK_d, the
// seven keys with the new suite, nonces and SPIs (RFC 7296 section 2.18).
func RekeyIKEKeys(s IKESuite, oldPRF PRFID, oldSKd, girNew, ni, nr []byte, spiI, spiR uint64) (*IKEKeys, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	skeyseed, err := RekeySKEYSEED(oldPRF, oldSKd, girNew, ni, nr)
	if err != nil {
		return nil, err
	}
	defer clear(skeyseed)
	return DeriveIKEKeys(s, skeyseed, ni, nr, spiI, spiR)
}

// ChildSuite is the set of algorithms negotiated for a Child SA: ESP, or
// AH (RFC 4302) with AH set, which has an integrity algorithm only (Encr
// is 0). The zero value of AH is ESP, as every Child SA was before AH.
type ChildSuite struct {
	Encr        EncrID
	EncrKeyBits uint16
	Integ       IntegID // AUTH_NONE with an AEAD
	KE          KEID    // KE_NONE without PFS
	ESN         ESNID
	AH          bool
}

// Validate checks that the suite is one this package can key.
func (s ChildSuite) Validate() error {
	if s.AH {
		if s.Encr != 0 || s.EncrKeyBits != 0 {
			return fmt.Errorf("AH suite with encryption %v: %w", s.Encr, ErrUnsupported)
		}
		if !s.Integ.Supported() {
			return fmt.Errorf("AH suite: %v: %w", s.Integ, ErrUnsupported)
		}
		if s.KE != KE_NONE && !s.KE.Supported() {
			return fmt.Errorf("AH suite: %v: %w", s.KE, ErrUnsupported)
		}
		return nil
	}
	if _, err := encrKeySize(s.Encr, s.EncrKeyBits); err != nil {
		return err
	}
	if s.Encr.IsAEAD() != (s.Integ == AUTH_NONE) {
		return fmt.Errorf("ESP suite %v with %v: %w", s.Encr, s.Integ, ErrUnsupported)
	}
	if !s.Encr.IsAEAD() && !s.Integ.Supported() {
		return fmt.Errorf("ESP suite: %v: %w", s.Integ, ErrUnsupported)
	}
	if s.KE != KE_NONE && !s.KE.Supported() {
		return fmt.Errorf("ESP suite: %v: %w", s.KE, ErrUnsupported)
	}
	return nil
}

// SAKeys are the keys of one ESP or AH SA, one direction of a Child SA.
// For an AEAD, Encr ends with the 4-byte salt (RFC 4106 section 8.1, RFC
// 7634 section 2) and Integ is empty; for AH Encr is empty.
type SAKeys struct {
	Encr, Integ []byte
}

// CheckKeys checks that k has the key lengths the suite needs (a saved
// SA's keys before they go into the kernel).
func (s ChildSuite) CheckKeys(k SAKeys) error {
	if err := s.Validate(); err != nil {
		return err
	}
	encr := 0
	if !s.AH {
		encr, _ = encrKeySize(s.Encr, s.EncrKeyBits)
	}
	if len(k.Encr) != encr || len(k.Integ) != s.Integ.KeySize() {
		return fmt.Errorf("keys of %d and %d octets, want %d and %d: %w", len(k.Encr), len(k.Integ), encr, s.Integ.KeySize(), errKeyLength)
	}
	return nil
}

// ChildKeys are the keys of both SAs of a Child SA.
type ChildKeys struct {
	InitiatorToResponder SAKeys
	ResponderToInitiator SAKeys
}

// Outbound returns the keys of the SA we send on.
func (k *ChildKeys) Outbound(weAreInitiator bool) SAKeys {
	if weAreInitiator {
		return k.InitiatorToResponder
	}
	return k.ResponderToInitiator
}

// Inbound returns the keys of the SA we receive on.
func (k *ChildKeys) Inbound(weAreInitiator bool) SAKeys {
	if weAreInitiator {
		return k.ResponderToInitiator
	}
	return k.InitiatorToResponder
}

// Zero overwrites the four keys. Call it once they are installed in the
// kernel (or the Child SA failed).
func (k *ChildKeys) Zero() {
	for _, b := range [][]byte{k.InitiatorToResponder.Encr, k.InitiatorToResponder.Integ,
		k.ResponderToInitiator.Encr, k.ResponderToInitiator.Integ} {
		clear(b)
	}
}

// ChildKEYMAT returns n bytes of prf+(SK_d, [g^ir (new) |] Ni | Nr)
// (RFC 7296 section 2.17); girNew is nil when the exchange had no
// Diffie-Hellman.
func ChildKEYMAT(prf PRFID, skd, girNew, ni, nr []byte, n int) ([]byte, error) {
	return prf.Plus(skd, concat(girNew, ni, nr), n)
}

// DeriveChildKeys keys an ESP or AH Child SA. The keys of the SA carrying traffic
// from the initiator come first, and within each SA the encryption key
// precedes the integrity key (RFC 7296 section 2.17, RFC 4301). ni and nr
// are the IKE_SA_INIT nonces for the Child SA of IKE_AUTH, the fresh ones of
// CREATE_CHILD_SA otherwise; girNew is the PFS shared secret or nil.
func DeriveChildKeys(prf PRFID, skd []byte, s ChildSuite, girNew, ni, nr []byte) (*ChildKeys, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	encr := 0
	if !s.AH {
		encr, _ = encrKeySize(s.Encr, s.EncrKeyBits)
	}
	integ := s.Integ.KeySize()
	keymat, err := ChildKEYMAT(prf, skd, girNew, ni, nr, 2*(encr+integ))
	if err != nil {
		return nil, err
	}
	take := splitter(keymat)
	k := &ChildKeys{}
	k.InitiatorToResponder.Encr = take(encr)
	k.InitiatorToResponder.Integ = take(integ)
	k.ResponderToInitiator.Encr = take(encr)
	k.ResponderToInitiator.Integ = take(integ)
	return k, nil
}

// splitter hands out consecutive pieces of b with full slice expressions,
// so that no piece can grow into its neighbour.
func splitter(b []byte) func(n int) []byte {
	return func(n int) []byte {
		piece := b[:n:n]
		b = b[n:]
		return piece
	}
}

func concat(parts ...[]byte) []byte {
	n := 0
	for _, p := range parts {
		n += len(p)
	}
	out := make([]byte, 0, n)
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

// CheckKeys checks that the seven keys have the lengths the suite gives
// them (a saved IKE SA taken back, for one): a key of another length is
// not the key that was negotiated.
func (s IKESuite) CheckKeys(k *IKEKeys) error {
	if err := s.Validate(); err != nil {
		return err
	}
	encr, _ := encrKeySize(s.Encr, s.EncrKeyBits)
	prf, integ := s.PRF.KeySize(), s.Integ.KeySize()
	for _, x := range []struct {
		name string
		key  []byte
		want int
		alg  fmt.Stringer
	}{
		{"SK_d", k.D, prf, s.PRF}, {"SK_ai", k.AI, integ, s.Integ}, {"SK_ar", k.AR, integ, s.Integ},
		{"SK_ei", k.EI, encr, s.Encr}, {"SK_er", k.ER, encr, s.Encr}, {"SK_pi", k.PI, prf, s.PRF}, {"SK_pr", k.PR, prf, s.PRF},
	} {
		if len(x.key) != x.want {
			return fmt.Errorf("%s of %d octets, %v needs %d", x.name, len(x.key), x.alg, x.want)
		}
	}
	return nil
}
