package transform

// IKEv1 key derivation and message protection (RFC 2409). They reuse the
// PRFs of this package: IKEv1 negotiates a hash algorithm and uses its
// HMAC as prf (RFC 2409 section 4), so the hash is named here by the PRF
// built on it.

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
)

// V1Hash returns the plain hash behind an HMAC PRF, which IKEv1 uses for
// the phase 1 IV and NAT-D payloads.
func (id PRFID) V1Hash() (func() hash.Hash, error) {
	switch id {
	case PRF_HMAC_SHA1:
		return sha1.New, nil
	case PRF_HMAC_SHA2_256:
		return sha256.New, nil
	case PRF_HMAC_SHA2_384:
		return sha512.New384, nil
	case PRF_HMAC_SHA2_512:
		return sha512.New, nil
	}
	return nil, fmt.Errorf("IKEv1 hash for %v: %w", id, ErrUnsupported)
}

// SKEYIDPSK is SKEYID for pre-shared keys: prf(pre-shared-key, Ni_b | Nr_b).
func SKEYIDPSK(prf PRFID, psk, ni, nr []byte) ([]byte, error) {
	return prf.Compute(psk, ni, nr)
}

// SKEYIDSig is SKEYID for signatures: prf(Ni_b | Nr_b, g^xy).
func SKEYIDSig(prf PRFID, ni, nr, gxy []byte) ([]byte, error) {
	key := concat(ni, nr)
	defer clear(key)
	return prf.Compute(key, gxy)
}

// V1Keys are the keys of an ISAKMP SA.
type V1Keys struct {
	SKEYID, SKEYIDd, SKEYIDa, SKEYIDe []byte
	// Encr is the encryption key, SKEYID_e expanded or cut to its length.
	Encr []byte
}

// Zero overwrites the keys.
func (k *V1Keys) Zero() {
	if k == nil {
		return
	}
	for _, b := range [][]byte{k.SKEYID, k.SKEYIDd, k.SKEYIDa, k.SKEYIDe, k.Encr} {
		clear(b)
	}
}

// DeriveV1Keys derives SKEYID_d, _a and _e from SKEYID (RFC 2409 section 5):
//
//	SKEYID_d = prf(SKEYID, g^xy | CKY-I | CKY-R | 0)
//	SKEYID_a = prf(SKEYID, SKEYID_d | g^xy | CKY-I | CKY-R | 1)
//	SKEYID_e = prf(SKEYID, SKEYID_a | g^xy | CKY-I | CKY-R | 2)
//
// and the encryption key of encrKeyLen octets from SKEYID_e.
func DeriveV1Keys(prf PRFID, skeyid, gxy []byte, ckyI, ckyR uint64, encrKeyLen int) (*V1Keys, error) {
	cky := binary.BigEndian.AppendUint64(binary.BigEndian.AppendUint64(nil, ckyI), ckyR)
	k := &V1Keys{SKEYID: append([]byte(nil), skeyid...)}
	var err error
	if k.SKEYIDd, err = prf.Compute(skeyid, gxy, cky, []byte{0}); err != nil {
		return nil, err
	}
	k.SKEYIDa, _ = prf.Compute(skeyid, k.SKEYIDd, gxy, cky, []byte{1})
	k.SKEYIDe, _ = prf.Compute(skeyid, k.SKEYIDa, gxy, cky, []byte{2})
	if k.Encr, err = V1EncryptionKey(prf, k.SKEYIDe, encrKeyLen); err != nil {
		k.Zero()
		return nil, err
	}
	return k, nil
}

// V1EncryptionKey makes an encryption key of n octets from SKEYID_e: its
// first n octets when it is long enough, else the expansion of RFC 2409
// appendix B, Ka = K1 | K2 | ..., K1 = prf(SKEYID_e, 0), Ki = prf(SKEYID_e,
// Ki-1), cut to n.
func V1EncryptionKey(prf PRFID, skeyidE []byte, n int) ([]byte, error) {
	if n <= len(skeyidE) {
		return append([]byte(nil), skeyidE[:n]...), nil
	}
	out := make([]byte, 0, n+prf.Size())
	prev := []byte{0}
	for len(out) < n {
		k, err := prf.Compute(skeyidE, prev)
		if err != nil {
			return nil, err
		}
		out = append(out, k...)
		prev = out[len(out)-len(k):]
	}
	clear(out[n:cap(out)])
	return out[:n:n], nil
}

// V1PhaseOneIV is the IV of the first encrypted phase 1 message:
// hash(g^xi | g^xr) cut to the cipher's block size (RFC 2409 appendix B).
func V1PhaseOneIV(prf PRFID, gxi, gxr []byte, blockSize int) ([]byte, error) {
	newHash, err := prf.V1Hash()
	if err != nil {
		return nil, err
	}
	h := newHash()
	h.Write(gxi)
	h.Write(gxr)
	return h.Sum(nil)[:blockSize], nil
}

// V1ExchangeIV is the IV of the first message of a phase 2 or
// informational exchange: hash(last phase 1 CBC block | M-ID), cut.
func V1ExchangeIV(prf PRFID, phaseOneLastBlock []byte, messageID uint32, blockSize int) ([]byte, error) {
	newHash, err := prf.V1Hash()
	if err != nil {
		return nil, err
	}
	h := newHash()
	h.Write(phaseOneLastBlock)
	h.Write(binary.BigEndian.AppendUint32(nil, messageID))
	return h.Sum(nil)[:blockSize], nil
}

// V1HashI is the initiator's phase 1 hash:
// prf(SKEYID, g^xi | g^xr | CKY-I | CKY-R | SAi_b | IDii_b).
// V1HashR is the responder's with the DH values and cookies swapped and
// IDir_b (RFC 2409 section 5). Signatures sign these hashes.
func V1HashI(prf PRFID, skeyid, gxi, gxr []byte, ckyI, ckyR uint64, saiB, idiiB []byte) ([]byte, error) {
	return prf.Compute(skeyid, gxi, gxr, u64(ckyI), u64(ckyR), saiB, idiiB)
}

// V1HashR: see V1HashI.
func V1HashR(prf PRFID, skeyid, gxi, gxr []byte, ckyI, ckyR uint64, saiB, idirB []byte) ([]byte, error) {
	return prf.Compute(skeyid, gxr, gxi, u64(ckyR), u64(ckyI), saiB, idirB)
}

func u64(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }
func u32(v uint32) []byte { return binary.BigEndian.AppendUint32(nil, v) }

// V1QuickHash1 is Quick Mode's HASH(1) = prf(SKEYID_a, M-ID | rest), rest
// being the message after the HASH payload (SA | Ni [| KE] [| IDci | IDcr]);
// informational exchanges use the same form with N or D.
func V1QuickHash1(prf PRFID, skeyidA []byte, messageID uint32, rest []byte) ([]byte, error) {
	return prf.Compute(skeyidA, u32(messageID), rest)
}

// V1QuickHash2 is HASH(2) = prf(SKEYID_a, M-ID | Ni_b | rest).
func V1QuickHash2(prf PRFID, skeyidA []byte, messageID uint32, niB, rest []byte) ([]byte, error) {
	return prf.Compute(skeyidA, u32(messageID), niB, rest)
}

// V1QuickHash3 is HASH(3) = prf(SKEYID_a, 0 | M-ID | Ni_b | Nr_b).
func V1QuickHash3(prf PRFID, skeyidA []byte, messageID uint32, niB, nrB []byte) ([]byte, error) {
	return prf.Compute(skeyidA, []byte{0}, u32(messageID), niB, nrB)
}

// V1KEYMAT is the keying material of one IPsec SA (RFC 2409 section 5.5):
//
//	KEYMAT = K1 | K2 | ...
//	K1 = prf(SKEYID_d, [g(qm)^xy |] protocol | SPI | Ni_b | Nr_b)
//	Ki = prf(SKEYID_d, Ki-1 | [g(qm)^xy |] protocol | SPI | Ni_b | Nr_b)
//
// cut to n octets. SPI is the SPI of the SA (chosen by its receiver);
// gqm is nil without PFS.
func V1KEYMAT(prf PRFID, skeyidD, gqm []byte, protocol uint8, spi uint32, ni, nr []byte, n int) ([]byte, error) {
	seed := concat(gqm, []byte{protocol}, u32(spi), ni, nr)
	defer clear(seed)
	return v1Expand(prf, skeyidD, seed, n)
}

// v1Expand is the KEYMAT expansion: K1 = prf(key, seed), Ki = prf(key,
// Ki-1 | seed), cut to n octets.
func v1Expand(prf PRFID, key, seed []byte, n int) ([]byte, error) {
	out := make([]byte, 0, n+prf.Size())
	var prev []byte
	for len(out) < n {
		k, err := prf.Compute(key, prev, seed)
		if err != nil {
			return nil, err
		}
		out = append(out, k...)
		prev = out[len(out)-len(k):]
	}
	clear(out[n:cap(out)])
	return out[:n:n], nil
}

// V1ChildKeys splits the KEYMAT of an ESP SA: encryption key, then
// integrity key (RFC 2409 section 5.5 leaves the split to the DOI; every
// implementation takes the cipher's key first).
func V1ChildKeys(prf PRFID, skeyidD, gqm []byte, s ChildSuite, spi uint32, ni, nr []byte) (SAKeys, error) {
	if err := s.Validate(); err != nil {
		return SAKeys{}, err
	}
	ne, protocol := 0, uint8(ProtoESP)
	if s.AH {
		// KEYMAT's protocol octet is the SA's (RFC 2409 section 5.5).
		protocol = uint8(ProtoAH)
	} else {
		ne, _ = encrKeySize(s.Encr, s.EncrKeyBits)
	}
	ni2 := s.Integ.KeySize()
	km, err := V1KEYMAT(prf, skeyidD, gqm, protocol, spi, ni, nr, ne+ni2)
	if err != nil {
		return SAKeys{}, err
	}
	return SAKeys{Encr: km[:ne:ne], Integ: km[ne:]}, nil
}

// V1Cipher encrypts and decrypts IKEv1 message bodies in CBC mode; the
// caller keeps the IV chain (RFC 2409 appendix B).
type V1Cipher struct {
	block cipher.Block
}

// ErrV1Decrypt is returned for ciphertext that is not a whole number of
// blocks; a wrong key is only noticed by what the plaintext holds.
var ErrV1Decrypt = errors.New("IKEv1 decryption failed")

// ErrV1IV is returned for an IV that is not one block: the exchange has
// no IV chain (a bug, or state a message was not allowed to change).
var ErrV1IV = errors.New("IKEv1 IV invalid")

// NewV1Cipher returns the cipher of a phase 1 suite: only AES-CBC (3DES
// and the other IKEv1 ciphers are refused).
func NewV1Cipher(encr EncrID, key []byte) (*V1Cipher, error) {
	if encr != ENCR_AES_CBC {
		return nil, fmt.Errorf("IKEv1 cipher %v: %w", encr, ErrUnsupported)
	}
	b, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return &V1Cipher{block: b}, nil
}

// BlockSize is the cipher's block size, the length of IVs.
func (c *V1Cipher) BlockSize() int { return c.block.BlockSize() }

// Encrypt pads plaintext with zeros to whole blocks and encrypts it; the
// next IV of the chain is the last block of the result.
func (c *V1Cipher) Encrypt(iv, plaintext []byte) ([]byte, error) {
	bs := c.block.BlockSize()
	if len(iv) != bs {
		return nil, fmt.Errorf("IV of %d octets for a %d-octet block: %w", len(iv), bs, ErrV1IV)
	}
	n := (len(plaintext) + bs - 1) / bs * bs
	if n == 0 {
		n = bs
	}
	out := make([]byte, n)
	copy(out, plaintext)
	cipher.NewCBCEncrypter(c.block, iv).CryptBlocks(out, out)
	return out, nil
}

// Decrypt decrypts a body; the padding stays and is skipped by the payload
// parser.
func (c *V1Cipher) Decrypt(iv, ciphertext []byte) ([]byte, error) {
	bs := c.block.BlockSize()
	if len(ciphertext) == 0 || len(ciphertext)%bs != 0 {
		return nil, fmt.Errorf("%d octets: %w", len(ciphertext), ErrV1Decrypt)
	}
	if len(iv) != bs {
		return nil, fmt.Errorf("IV of %d octets for a %d-octet block: %w", len(iv), bs, ErrV1IV)
	}
	out := make([]byte, len(ciphertext))
	cipher.NewCBCDecrypter(c.block, iv).CryptBlocks(out, ciphertext)
	return out, nil
}

// V1EncrKeyLen is the key length in octets of a phase 1 cipher.
func V1EncrKeyLen(encr EncrID, keyBits uint16) (int, error) {
	return encrKeySize(encr, keyBits)
}

// CheckV1Keys checks that the keys of an ISAKMP SA have the lengths its
// PRF and cipher give them: SKEYID_d and SKEYID_a are PRF outputs, the
// encryption key is the cipher's.
func CheckV1Keys(prf PRFID, encr EncrID, keyBits uint16, k *V1Keys) error {
	if _, err := prf.V1Hash(); err != nil {
		return err
	}
	n, err := V1EncrKeyLen(encr, keyBits)
	if err != nil {
		return err
	}
	for _, x := range []struct {
		name string
		key  []byte
		want int
		alg  fmt.Stringer
	}{{"SKEYID_d", k.SKEYIDd, prf.Size(), prf}, {"SKEYID_a", k.SKEYIDa, prf.Size(), prf}, {"encryption key", k.Encr, n, encr}} {
		if len(x.key) != x.want {
			return fmt.Errorf("%s of %d octets, %v needs %d", x.name, len(x.key), x.alg, x.want)
		}
	}
	return nil
}
