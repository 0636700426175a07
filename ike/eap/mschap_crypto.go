package eap

import (
	"crypto/des"
	"crypto/sha1"
	"crypto/subtle"
	"encoding/binary"
	"unicode/utf16"
	"unicode/utf8"

	"golang.org/x/crypto/md4"
)

// The MS-CHAPv2 computations of RFC 2759 section 8 and the MPPE master
// keys of RFC 3079 section 3.4, named as the RFCs name them. Every
// function writes into fixed-size arrays the caller owns, so that the
// caller can clear them when it is done.

const (
	challengeLen  = 16 // AuthenticatorChallenge and PeerChallenge (RFC 2759 section 4)
	ntResponseLen = 24 // NT-Response (RFC 2759 section 8.1)
	ntHashLen     = 16 // NtPasswordHash, an MD4 digest
	masterKeyLen  = 16 // MasterKey and the 128-bit start keys (RFC 3079 section 3.4)
	// authResponseHexLen is the length of the 20-octet AuthenticatorResponse
	// as the 40 hexadecimal digits after "S=" (RFC 2759 section 8.7).
	authResponseHexLen = 40
)

// The magic constants of RFC 2759 section 8.7 (Magic1, Magic2) and RFC 3079
// section 3.4 (the master key's Magic1, the start keys' Magic2 and Magic3).
var (
	authMagic1 = []byte("Magic server to client signing constant")
	authMagic2 = []byte("Pad to make it do more than one iteration")

	masterMagic = []byte("This is the MPPE Master Key")
	// keyMagicClientSend selects the client's send key, which is the
	// server's receive key.
	keyMagicClientSend = []byte("On the client side, this is the send key; on the server side, it is the receive key.")
	// keyMagicClientReceive selects the client's receive key, which is the
	// server's send key.
	keyMagicClientReceive = []byte("On the client side, this is the receive key; on the server side, it is the send key.")
)

// ntPasswordHash is NtPasswordHash of RFC 2759 section 8.3: MD4 over the
// password in UTF-16 little-endian. The password is UTF-8 here; invalid
// UTF-8 octets are taken one by one as code points U+0000-U+00FF, which is
// also what a client that widens each octet does.
func ntPasswordHash(password []byte, out *[ntHashLen]byte) {
	u := make([]byte, 0, 2*len(password))
	for rest := password; len(rest) > 0; {
		r, n := utf8.DecodeRune(rest)
		if r == utf8.RuneError && n <= 1 {
			r = rune(rest[0])
			n = 1
		}
		if r1, r2 := utf16.EncodeRune(r); r1 != utf8.RuneError {
			u = binary.LittleEndian.AppendUint16(u, uint16(r1))
			u = binary.LittleEndian.AppendUint16(u, uint16(r2))
		} else {
			u = binary.LittleEndian.AppendUint16(u, uint16(r))
		}
		rest = rest[n:]
	}
	h := md4.New()
	h.Write(u)
	clear(u)
	h.Sum(out[:0])
}

// hashNtPasswordHash is HashNtPasswordHash of RFC 2759 section 8.4.
func hashNtPasswordHash(hash *[ntHashLen]byte, out *[ntHashLen]byte) {
	h := md4.New()
	h.Write(hash[:])
	h.Sum(out[:0])
}

// challengeHash is ChallengeHash of RFC 2759 section 8.2: the first 8
// octets of SHA-1(PeerChallenge | AuthenticatorChallenge | UserName), where
// UserName has any "DOMAIN\" prefix removed, as Windows and charon do.
func challengeHash(peerChallenge, authChallenge *[challengeLen]byte, userName string) [8]byte {
	h := sha1.New()
	h.Write(peerChallenge[:])
	h.Write(authChallenge[:])
	h.Write([]byte(userNameOnly(userName)))
	var sum [sha1.Size]byte
	h.Sum(sum[:0])
	var c [8]byte
	copy(c[:], sum[:8])
	return c
}

// userNameOnly removes a "DOMAIN\" prefix: the challenge hash covers the
// user name alone, while the Name field carries the whole identity.
func userNameOnly(name string) string {
	for i := 0; i < len(name); i++ {
		if name[i] == '\\' {
			return name[i+1:]
		}
	}
	return name
}

// generateNTResponse is GenerateNTResponse of RFC 2759 section 8.1, with
// the password given by its NT hash.
func generateNTResponse(authChallenge, peerChallenge *[challengeLen]byte, userName string, hash *[ntHashLen]byte, out *[ntResponseLen]byte) {
	c := challengeHash(peerChallenge, authChallenge, userName)
	challengeResponse(&c, hash, out)
}

// challengeResponse is ChallengeResponse of RFC 2759 section 8.5: the NT
// hash, zero-padded to 21 octets, gives three DES keys of 7 octets that
// each encrypt the 8-octet challenge.
func challengeResponse(challenge *[8]byte, hash *[ntHashLen]byte, out *[ntResponseLen]byte) {
	var z [21]byte
	copy(z[:], hash[:])
	for i := 0; i < 3; i++ {
		var key [8]byte
		desKey(z[7*i:7*i+7], &key)
		block, err := des.NewCipher(key[:])
		if err != nil {
			panic("eap: DES refused an 8-octet key: " + err.Error()) // cannot happen: the key has the size DES takes
		}
		block.Encrypt(out[8*i:8*i+8], challenge[:])
		clear(key[:])
	}
	clear(z[:])
}

// desKey spreads 56 key bits over 8 octets, 7 bits in each, as DES takes
// them (RFC 2759 section 8.6). The parity bits are left zero: DES ignores
// them.
func desKey(k []byte, out *[8]byte) {
	out[0] = k[0]
	for i := 1; i < 7; i++ {
		out[i] = k[i-1]<<(8-i) | k[i]>>i
	}
	out[7] = k[6] << 1
	for i := range out {
		out[i] &^= 1
	}
}

// generateAuthenticatorResponse is GenerateAuthenticatorResponse of RFC
// 2759 section 8.7, as the 20-octet digest (the wire carries it as "S="
// and 40 upper-case hexadecimal digits).
func generateAuthenticatorResponse(hash *[ntHashLen]byte, ntResponse *[ntResponseLen]byte, peerChallenge, authChallenge *[challengeLen]byte, userName string, out *[sha1.Size]byte) {
	var hashHash [ntHashLen]byte
	hashNtPasswordHash(hash, &hashHash)
	h := sha1.New()
	h.Write(hashHash[:])
	h.Write(ntResponse[:])
	h.Write(authMagic1)
	var digest [sha1.Size]byte
	h.Sum(digest[:0])
	clear(hashHash[:])

	c := challengeHash(peerChallenge, authChallenge, userName)
	h.Reset()
	h.Write(digest[:])
	h.Write(c[:])
	h.Write(authMagic2)
	h.Sum(out[:0])
	clear(digest[:])
}

// getMasterKey is GetMasterKey of RFC 3079 section 3.4: the first 16
// octets of SHA-1(PasswordHashHash | NT-Response | Magic1).
func getMasterKey(hashHash *[ntHashLen]byte, ntResponse *[ntResponseLen]byte, out *[masterKeyLen]byte) {
	h := sha1.New()
	h.Write(hashHash[:])
	h.Write(ntResponse[:])
	h.Write(masterMagic)
	var sum [sha1.Size]byte
	h.Sum(sum[:0])
	copy(out[:], sum[:masterKeyLen])
	clear(sum[:])
}

// getAsymmetricStartKey is GetAsymmetricStartKey of RFC 3079 section 3.4
// for 128-bit keys: the first 16 octets of
// SHA-1(MasterKey | SHSpad1 | magic | SHSpad2), where SHSpad1 is 40 zero
// octets and SHSpad2 40 octets of 0xF2. magic is keyMagicClientSend or
// keyMagicClientReceive; RFC 3079 picks it from IsSend and IsServer.
func getAsymmetricStartKey(masterKey *[masterKeyLen]byte, magic []byte, out *[masterKeyLen]byte) {
	var pad1, pad2 [40]byte
	for i := range pad2 {
		pad2[i] = 0xf2
	}
	h := sha1.New()
	h.Write(masterKey[:])
	h.Write(pad1[:])
	h.Write(magic)
	h.Write(pad2[:])
	var sum [sha1.Size]byte
	h.Sum(sum[:0])
	copy(out[:], sum[:masterKeyLen])
	clear(sum[:])
}

// MSCHAPv2MSKLen is the length of the EAP-MSCHAPv2 MSK: RFC 7296 section
// 2.16 asks for at least 64 octets.
const MSCHAPv2MSKLen = 64

// mschapv2MSK derives the EAP-MSCHAPv2 MSK the way strongSwan's
// eap-mschapv2 plugin does (its GenerateMSK), so that the AUTH payloads a
// charon peer or server computes from its MSK verify here:
//
//	MasterKey = GetMasterKey(PasswordHashHash, NT-Response)     RFC 3079 3.4
//	MSK[0:16]  = start key with the client-send magic    (the server's MasterReceiveKey)
//	MSK[16:32] = start key with the client-receive magic (the server's MasterSendKey)
//	MSK[32:64] = 32 zero octets
//
// Both sides compute the same 64 octets: strongSwan's server and peer
// both order the keys from the server's point of view (receive key
// first), and neither applies RFC 3079's GetNewKeyFromSHA step to them.
func mschapv2MSK(hash *[ntHashLen]byte, ntResponse *[ntResponseLen]byte) []byte {
	var hashHash [ntHashLen]byte
	var master, receive, send [masterKeyLen]byte
	hashNtPasswordHash(hash, &hashHash)
	getMasterKey(&hashHash, ntResponse, &master)
	getAsymmetricStartKey(&master, keyMagicClientSend, &receive)
	getAsymmetricStartKey(&master, keyMagicClientReceive, &send)
	msk := make([]byte, MSCHAPv2MSKLen)
	copy(msk[0:16], receive[:])
	copy(msk[16:32], send[:])
	clear(hashHash[:])
	clear(master[:])
	clear(receive[:])
	clear(send[:])
	return msk
}

// equalConstantTime compares secrets without an early exit.
func equalConstantTime(a, b []byte) bool {
	return subtle.ConstantTimeCompare(a, b) == 1
}
