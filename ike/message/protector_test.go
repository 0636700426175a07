package message

import (
	"encoding/binary"
	"errors"
	"hash/fnv"
)

// fakeProtector stands in for the crypto package: a CBC-shaped body (IV,
// ciphertext padded to a block with a Pad Length octet, checksum) made of
// an XOR keystream and an FNV checksum over associated data, IV and
// ciphertext. It protects nothing; it only has the shape and the failure
// modes of the real thing.
type fakeProtector struct {
	key uint64
	iv  uint64 // next IV; incremented per Seal
}

const (
	fakeIVLen    = 8
	fakeBlockLen = 8
	fakeICVLen   = 8
)

var errFakeAuth = errors.New("fake protector: checksum mismatch")

func (p *fakeProtector) SealedLen(n int) int {
	padded := (n + 1 + fakeBlockLen - 1) / fakeBlockLen * fakeBlockLen
	return fakeIVLen + padded + fakeICVLen
}

func (p *fakeProtector) keystream(iv []byte, b []byte) {
	s := p.key ^ binary.BigEndian.Uint64(iv) | 1
	for i := range b {
		s ^= s << 13
		s ^= s >> 7
		s ^= s << 17
		b[i] ^= byte(s)
	}
}

func (p *fakeProtector) checksum(ad, ivct []byte) []byte {
	h := fnv.New64a()
	var k [8]byte
	binary.BigEndian.PutUint64(k[:], p.key)
	h.Write(k[:])
	h.Write(ad)
	h.Write(ivct)
	return h.Sum(nil)
}

func (p *fakeProtector) Seal(ad, plaintext []byte) ([]byte, error) {
	n := p.SealedLen(len(plaintext))
	body := make([]byte, fakeIVLen, n)
	p.iv++
	binary.BigEndian.PutUint64(body, p.iv)
	ct := append(body[fakeIVLen:], plaintext...)
	pad := n - fakeIVLen - fakeICVLen - len(plaintext) - 1
	for range pad {
		ct = append(ct, 0)
	}
	ct = append(ct, byte(pad))
	p.keystream(body[:fakeIVLen], ct)
	body = body[:fakeIVLen+len(ct)]
	return append(body, p.checksum(ad, body)...), nil
}

func (p *fakeProtector) Open(ad, body []byte) ([]byte, error) {
	if len(body) < fakeIVLen+fakeBlockLen+fakeICVLen || (len(body)-fakeIVLen-fakeICVLen)%fakeBlockLen != 0 {
		return nil, errors.New("fake protector: body size")
	}
	ivct, icv := body[:len(body)-fakeICVLen], body[len(body)-fakeICVLen:]
	if string(p.checksum(ad, ivct)) != string(icv) {
		return nil, errFakeAuth
	}
	pt := append([]byte(nil), ivct[fakeIVLen:]...)
	p.keystream(ivct[:fakeIVLen], pt)
	pad := int(pt[len(pt)-1])
	if pad+1 > len(pt) {
		return nil, errors.New("fake protector: pad length")
	}
	return pt[:len(pt)-1-pad], nil
}
