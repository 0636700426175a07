package transform

import (
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"errors"
	"fmt"
	"hash"
	"sync"
)

// Errors shared by the transforms. They never carry key material.
var (
	// ErrUnsupported is returned for an algorithm this package does not
	// implement.
	ErrUnsupported = errors.New("transform: unsupported algorithm")
	errKeyLength   = errors.New("transform: wrong key length")
)

// Supported reports whether this package implements the PRF.
func (id PRFID) Supported() bool { return id.Size() != 0 }

// Size is the PRF's output length in bytes, 0 for an unsupported PRF.
func (id PRFID) Size() int {
	switch id {
	case PRF_HMAC_SHA1:
		return sha1.Size
	case PRF_AES128_XCBC:
		return xcbcBlock
	case PRF_HMAC_SHA2_256:
		return sha256.Size
	case PRF_HMAC_SHA2_384:
		return sha512.Size384
	case PRF_HMAC_SHA2_512:
		return sha512.Size
	}
	return 0
}

// KeySize is the PRF's preferred key length in bytes (RFC 7296 section 2.13):
// the length of SK_d, SK_pi and SK_pr. For HMAC it is the hash output size,
// for AES-XCBC-PRF-128 it is 16 (RFC 4434).
func (id PRFID) KeySize() int { return id.Size() }

// newHash returns the keyed PRF as a hash.Hash. HMAC accepts keys of any
// length; AES-XCBC-PRF-128 pads or shortens the key as RFC 4434 says.
func (id PRFID) newHash(key []byte) (hash.Hash, error) {
	switch id {
	case PRF_HMAC_SHA1:
		return hmac.New(sha1.New, key), nil
	case PRF_HMAC_SHA2_256:
		return hmac.New(sha256.New, key), nil
	case PRF_HMAC_SHA2_384:
		return hmac.New(sha512.New384, key), nil
	case PRF_HMAC_SHA2_512:
		return hmac.New(sha512.New, key), nil
	case PRF_AES128_XCBC:
		return newXCBCPRF(key)
	}
	return nil, fmt.Errorf("prf %v: %w", id, ErrUnsupported)
}

// Compute returns prf(key, data[0] | data[1] | ...).
func (id PRFID) Compute(key []byte, data ...[]byte) ([]byte, error) {
	if hh := hmacHashOf(id); hh != nil {
		st := hh.get()
		defer hh.put(st)
		return st.sum(make([]byte, 0, hh.size), key, data...), nil
	}
	h, err := id.newHash(key)
	if err != nil {
		return nil, err
	}
	for _, d := range data {
		h.Write(d)
	}
	out := h.Sum(nil)
	wipeHash(h)
	return out, nil
}

// Plus returns the first n bytes of prf+(key, seed) (RFC 7296 section 2.13):
//
//	prf+ (K,S) = T1 | T2 | T3 | T4 | ...
//	T1 = prf (K, S | 0x01)
//	T2 = prf (K, T1 | S | 0x02)
//
// prf+ is not defined beyond 255 blocks.
func (id PRFID) Plus(key, seed []byte, n int) ([]byte, error) {
	size := id.Size()
	if size == 0 {
		return nil, fmt.Errorf("prf %v: %w", id, ErrUnsupported)
	}
	if n < 0 || n > 255*size {
		return nil, fmt.Errorf("prf+ %v: %d bytes requested, at most %d: %w",
			id, n, 255*size, errKeyLength)
	}
	out := make([]byte, 0, (n+size-1)/size*size)
	if hh := hmacHashOf(id); hh != nil {
		st := hh.get()
		defer hh.put(st)
		for i := 1; len(out) < n; i++ {
			st.counter[0] = byte(i)
			// T(i-1) is read before T(i) is appended after it, within
			// out's capacity.
			out = st.sum(out, key, out[len(out)-min(len(out), size):], seed, st.counter[:])
		}
	} else {
		h, err := id.newHash(key)
		if err != nil {
			return nil, err
		}
		defer wipeHash(h)
		var prev []byte
		for i := 1; len(out) < n; i++ {
			if i > 1 {
				h.Reset() // a new PRF is reset already
			}
			h.Write(prev)
			h.Write(seed)
			h.Write([]byte{byte(i)})
			out = h.Sum(out)
			prev = out[len(out)-size:]
		}
	}
	clear(out[n:cap(out)])
	return out[:n:n], nil
}

// hmacHash computes HMAC (RFC 2104) with one hash function, on states
// kept in a pool. crypto/hmac allocates a keyed state for every key (two
// hash states, the padded keys, and the hash states after them for its
// Reset), and IKE uses a new key for almost every PRF computation
// (SKEYSEED, prf+, each AUTH payload): its states were an eighth of all
// the bytes a responder allocated per IKE SA.
type hmacHash struct {
	size, block int
	pool        sync.Pool // of *hmacState
}

// hmacState is a hash state with room for the padded key and the inner
// hash, so that a computation allocates nothing.
type hmacState struct {
	h       hash.Hash
	block   int
	pad     [128]byte // the largest block: SHA-384's and SHA-512's
	inner   [64]byte  // the largest output
	counter [1]byte   // prf+'s
}

var (
	hmacSHA1   = newHMACHash(sha1.New)
	hmacSHA256 = newHMACHash(sha256.New)
	hmacSHA384 = newHMACHash(sha512.New384)
	hmacSHA512 = newHMACHash(sha512.New)
)

func newHMACHash(newHash func() hash.Hash) *hmacHash {
	h := newHash()
	hh := &hmacHash{size: h.Size(), block: h.BlockSize()}
	hh.pool.New = func() any { return &hmacState{h: newHash(), block: hh.block} }
	return hh
}

func hmacHashOf(id PRFID) *hmacHash {
	switch id {
	case PRF_HMAC_SHA1:
		return hmacSHA1
	case PRF_HMAC_SHA2_256:
		return hmacSHA256
	case PRF_HMAC_SHA2_384:
		return hmacSHA384
	case PRF_HMAC_SHA2_512:
		return hmacSHA512
	}
	return nil
}

func (hh *hmacHash) get() *hmacState { return hh.pool.Get().(*hmacState) }

// put returns st to the pool with its key material overwritten (what the
// hash state's own buffer keeps of the last block cannot be reached).
func (hh *hmacHash) put(st *hmacState) {
	clear(st.pad[:])
	clear(st.inner[:])
	st.h.Reset()
	hh.pool.Put(st)
}

// sum appends HMAC(key, data[0] | data[1] | ...) to out:
// H(K XOR opad | H(K XOR ipad | data)), K padded to the block size with
// zeros, or hashed first when longer than a block.
func (st *hmacState) sum(out, key []byte, data ...[]byte) []byte {
	pad := st.pad[:st.block]
	clear(pad)
	st.h.Reset()
	if len(key) > st.block {
		st.h.Write(key)
		st.h.Sum(pad[:0])
		st.h.Reset()
	} else {
		copy(pad, key)
	}
	for i := range pad {
		pad[i] ^= 0x36
	}
	st.h.Write(pad)
	for _, d := range data {
		st.h.Write(d)
	}
	inner := st.h.Sum(st.inner[:0])
	for i := range pad {
		pad[i] ^= 0x36 ^ 0x5c
	}
	st.h.Reset()
	st.h.Write(pad)
	st.h.Write(inner)
	return st.h.Sum(out)
}

// wipeHash clears what can be cleared of a keyed PRF once it is done:
// AES-XCBC's keys. crypto/hmac has no way to clear its padded keys: a
// Reset does not clear them either (it replaces them by the hash states
// after the padded keys, leaving the old buffers as they are), and costs
// two hash blocks and two allocations, once per PRF use.
func wipeHash(h hash.Hash) {
	if x, ok := h.(*xcbc); ok {
		x.zero()
	}
}
