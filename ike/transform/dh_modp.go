package transform

import (
	"crypto/subtle"
	"fmt"
	"io"
	"math/big"
)

// MODP groups (RFC 2409 and RFC 3526) with generator 2. The primes are safe primes
// (p = 2q+1, q prime), so the only elements of small order are 1 and p-1:
// rejecting those, as the range check 1 < y < p-1 of RFC 7296 section 3.4 and
// NIST SP 800-56A section 5.6.2.3.1 does, keeps a peer from confining the
// shared secret to a small subgroup. (dh_test.go rebuilds the primes
// from the RFCs' formula and checks both p and q for primality.)
//
// MODP_1024 (RFC 2409's second Oakley group) and MODP_1536 (RFC 3526
// group 5) are weak (80 and 96 bits of strength) and in no default
// proposal: they are there for clients that offer nothing better, such as
// Windows' built-in IKEv2 client, whose default proposals all use
// MODP_1024, and must be configured by name (modp1024, modp1536) as with
// strongSwan.
//
// The private exponent is not the full size of q: it is uniformly random
// with 2s bits, s being the group's security strength per NIST SP 800-56A
// rev. 3 (112, 128 and 152 bits), rounded up to 64. math/big's Exp is not
// constant-time; the exponent is ephemeral and used for one exponentiation
// of our own public value and one of the peer's.

const (
	// RFC 2409 section 6.2: 1024-bit MODP group, generator 2.
	modp1024P = "" +
		"FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74" +
		"020BBEA63B139B22514A08798E3404DDEF9519B3CD3A431B302B0A6DF25F1437" +
		"4FE1356D6D51C245E485B576625E7EC6F44C42E9A637ED6B0BFF5CB6F406B7ED" +
		"EE386BFB5A899FA5AE9F24117C4B1FE649286651ECE65381FFFFFFFFFFFFFFFF"

	// RFC 3526 section 2: 1536-bit MODP group, generator 2.
	modp1536P = "" +
		"FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74" +
		"020BBEA63B139B22514A08798E3404DDEF9519B3CD3A431B302B0A6DF25F1437" +
		"4FE1356D6D51C245E485B576625E7EC6F44C42E9A637ED6B0BFF5CB6F406B7ED" +
		"EE386BFB5A899FA5AE9F24117C4B1FE649286651ECE45B3DC2007CB8A163BF05" +
		"98DA48361C55D39A69163FA8FD24CF5F83655D23DCA3AD961C62F356208552BB" +
		"9ED529077096966D670C354E4ABC9804F1746C08CA237327FFFFFFFFFFFFFFFF"

	// RFC 3526 section 3: 2048-bit MODP group, generator 2.
	modp2048P = "" +
		"FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74" +
		"020BBEA63B139B22514A08798E3404DDEF9519B3CD3A431B302B0A6DF25F1437" +
		"4FE1356D6D51C245E485B576625E7EC6F44C42E9A637ED6B0BFF5CB6F406B7ED" +
		"EE386BFB5A899FA5AE9F24117C4B1FE649286651ECE45B3DC2007CB8A163BF05" +
		"98DA48361C55D39A69163FA8FD24CF5F83655D23DCA3AD961C62F356208552BB" +
		"9ED529077096966D670C354E4ABC9804F1746C08CA18217C32905E462E36CE3B" +
		"E39E772C180E86039B2783A2EC07A28FB5C55DF06F4C52C9DE2BCBF695581718" +
		"3995497CEA956AE515D2261898FA051015728E5A8AACAA68FFFFFFFFFFFFFFFF"
	// RFC 3526 section 4: 3072-bit MODP group, generator 2.
	modp3072P = "" +
		"FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74" +
		"020BBEA63B139B22514A08798E3404DDEF9519B3CD3A431B302B0A6DF25F1437" +
		"4FE1356D6D51C245E485B576625E7EC6F44C42E9A637ED6B0BFF5CB6F406B7ED" +
		"EE386BFB5A899FA5AE9F24117C4B1FE649286651ECE45B3DC2007CB8A163BF05" +
		"98DA48361C55D39A69163FA8FD24CF5F83655D23DCA3AD961C62F356208552BB" +
		"9ED529077096966D670C354E4ABC9804F1746C08CA18217C32905E462E36CE3B" +
		"E39E772C180E86039B2783A2EC07A28FB5C55DF06F4C52C9DE2BCBF695581718" +
		"3995497CEA956AE515D2261898FA051015728E5A8AAAC42DAD33170D04507A33" +
		"A85521ABDF1CBA64ECFB850458DBEF0A8AEA71575D060C7DB3970F85A6E1E4C7" +
		"ABF5AE8CDB0933D71E8C94E04A25619DCEE3D2261AD2EE6BF12FFA06D98A0864" +
		"D87602733EC86A64521F2B18177B200CBBE117577A615D6C770988C0BAD946E2" +
		"08E24FA074E5AB3143DB5BFCE0FD108E4B82D120A93AD2CAFFFFFFFFFFFFFFFF"
	// RFC 3526 section 5: 4096-bit MODP group, generator 2.
	modp4096P = "" +
		"FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74" +
		"020BBEA63B139B22514A08798E3404DDEF9519B3CD3A431B302B0A6DF25F1437" +
		"4FE1356D6D51C245E485B576625E7EC6F44C42E9A637ED6B0BFF5CB6F406B7ED" +
		"EE386BFB5A899FA5AE9F24117C4B1FE649286651ECE45B3DC2007CB8A163BF05" +
		"98DA48361C55D39A69163FA8FD24CF5F83655D23DCA3AD961C62F356208552BB" +
		"9ED529077096966D670C354E4ABC9804F1746C08CA18217C32905E462E36CE3B" +
		"E39E772C180E86039B2783A2EC07A28FB5C55DF06F4C52C9DE2BCBF695581718" +
		"3995497CEA956AE515D2261898FA051015728E5A8AAAC42DAD33170D04507A33" +
		"A85521ABDF1CBA64ECFB850458DBEF0A8AEA71575D060C7DB3970F85A6E1E4C7" +
		"ABF5AE8CDB0933D71E8C94E04A25619DCEE3D2261AD2EE6BF12FFA06D98A0864" +
		"D87602733EC86A64521F2B18177B200CBBE117577A615D6C770988C0BAD946E2" +
		"08E24FA074E5AB3143DB5BFCE0FD108E4B82D120A92108011A723C12A787E6D7" +
		"88719A10BDBA5B2699C327186AF4E23C1A946834B6150BDA2583E9CA2AD44CE8" +
		"DBBBC2DB04DE8EF92E8EFC141FBECAA6287C59474E6BC05D99B2964FA090C3A2" +
		"233BA186515BE7ED1F612970CEE2D7AFB81BDD762170481CD0069127D5B05AA9" +
		"93B4EA988D8FDDC186FFB7DC90A6C08F4DF435C934063199FFFFFFFFFFFFFFFF"
)

type modpGroup struct {
	id      KEID
	p       *big.Int
	pMinus1 *big.Int
	size    int // bytes of p, the length of public values and g^ir
	expBits int
}

var modpGroups = map[KEID]*modpGroup{
	MODP_1024: newMODPGroup(MODP_1024, modp1024P, 192),
	MODP_1536: newMODPGroup(MODP_1536, modp1536P, 192),
	MODP_2048: newMODPGroup(MODP_2048, modp2048P, 256),
	MODP_3072: newMODPGroup(MODP_3072, modp3072P, 256),
	MODP_4096: newMODPGroup(MODP_4096, modp4096P, 320),
}

func newMODPGroup(id KEID, hex string, expBits int) *modpGroup {
	p, ok := new(big.Int).SetString(hex, 16)
	if !ok {
		panic("transform: bad MODP prime for " + id.String())
	}
	return &modpGroup{
		id:      id,
		p:       p,
		pMinus1: new(big.Int).Sub(p, big.NewInt(1)),
		size:    (p.BitLen() + 7) / 8,
		expBits: expBits,
	}
}

var modpGenerator = big.NewInt(2)

type modpKE struct {
	g   *modpGroup
	x   *big.Int // private exponent
	pub []byte
}

func newMODP(g *modpGroup, rand io.Reader) (*modpKE, error) {
	buf := make([]byte, g.expBits/8)
	defer clear(buf)
	for {
		if _, err := io.ReadFull(rand, buf); err != nil {
			return nil, fmt.Errorf("%v private value: %w", g.id, err)
		}
		x := new(big.Int).SetBytes(buf)
		if x.Cmp(big.NewInt(1)) > 0 {
			return newMODPFromPrivate(g, x), nil
		}
	}
}

func newMODPFromPrivate(g *modpGroup, x *big.Int) *modpKE {
	y := new(big.Int).Exp(modpGenerator, x, g.p)
	return &modpKE{g: g, x: x, pub: y.FillBytes(make([]byte, g.size))}
}

func (k *modpKE) Method() KEID        { return k.g.id }
func (k *modpKE) PublicValue() []byte { return append([]byte(nil), k.pub...) }

// SharedSecret returns g^ir as an octet string the length of the modulus,
// zero-padded on the left (RFC 7296 section 2.14).
func (k *modpKE) SharedSecret(peer []byte) ([]byte, error) {
	if k.x == nil {
		return nil, errKEClosed
	}
	if len(peer) != k.g.size {
		return nil, fmt.Errorf("%v: %d-byte public value, want %d: %w", k.g.id, len(peer), k.g.size, ErrInvalidPublicValue)
	}
	y := new(big.Int).SetBytes(peer)
	if y.Cmp(big.NewInt(1)) <= 0 || y.Cmp(k.g.pMinus1) >= 0 {
		return nil, fmt.Errorf("%v: public value not in (1, p-1): %w", k.g.id, ErrInvalidPublicValue)
	}
	z := new(big.Int).Exp(y, k.x, k.g.p)
	out := z.FillBytes(make([]byte, k.g.size))
	clear(z.Bits())
	// With a safe prime and 1 < y < p-1, z == 1 cannot happen; refuse it
	// anyway rather than derive keys from a known value.
	one := make([]byte, k.g.size)
	one[len(one)-1] = 1
	if subtle.ConstantTimeCompare(out, one) == 1 {
		return nil, fmt.Errorf("%v: %w", k.g.id, ErrInvalidPublicValue)
	}
	return out, nil
}

func (k *modpKE) Close() {
	if k.x != nil {
		clear(k.x.Bits())
		k.x = nil
	}
}
