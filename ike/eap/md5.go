package eap

import (
	"crypto/md5"
	"errors"
	"fmt"
	"io"
)

// EAP-MD5-Challenge (RFC 3748 section 5.4), CHAP's computation (RFC 1994
// section 4.1) carried in EAP. Type-Data of Request and Response:
//
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|  Value-Size   |  Value ...  |  Name ...
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//
// The Request's Value is the challenge; the Response's is
// MD5(Identifier | secret | challenge), 16 octets. The method proves the
// peer to the server only, derives no MSK and needs the cleartext
// password; RFC 7296 section 2.16 allows it only with a server
// authenticated by its certificate.
const md5ChallengeLen = 16

func parseMD5(data []byte) (value, name []byte, err error) {
	if len(data) < 1 {
		return nil, nil, fmt.Errorf("EAP-MD5 without Value-Size: %w", ErrTruncated)
	}
	n := int(data[0])
	if n == 0 {
		return nil, nil, fmt.Errorf("EAP-MD5 Value-Size 0: %w", ErrMalformed)
	}
	if 1+n > len(data) {
		return nil, nil, fmt.Errorf("EAP-MD5 Value-Size %d, %d octets follow: %w", n, len(data)-1, ErrTruncated)
	}
	return data[1 : 1+n], data[1+n:], nil
}

func md5Response(id uint8, secret, challenge []byte) [md5.Size]byte {
	h := md5.New()
	h.Write([]byte{id})
	h.Write(secret)
	h.Write(challenge)
	var sum [md5.Size]byte
	h.Sum(sum[:0])
	return sum
}

type md5Server struct {
	identity  string
	name      string
	creds     Credentials
	rand      io.Reader
	id        uint8
	challenge [md5ChallengeLen]byte
}

func newMD5Server(identity, name string, creds Credentials, rand io.Reader) *md5Server {
	return &md5Server{identity: identity, name: name, creds: creds, rand: rand}
}

func (*md5Server) Type() Type { return TypeMD5 }

func (m *md5Server) Begin(id uint8) (Packet, error) {
	if _, err := io.ReadFull(m.rand, m.challenge[:]); err != nil {
		return Packet{}, fmt.Errorf("EAP-MD5 challenge: %w", err)
	}
	m.id = id
	data := make([]byte, 0, 1+md5ChallengeLen+len(m.name))
	data = append(data, md5ChallengeLen)
	data = append(data, m.challenge[:]...)
	data = append(data, m.name...)
	return Packet{Code: CodeRequest, Identifier: id, Type: TypeMD5, Data: data}, nil
}

func (m *md5Server) Process(resp Packet) (Packet, Status, error) {
	value, _, err := parseMD5(resp.Data)
	if err != nil {
		return Packet{}, Failed, failure(TypeMD5, ReasonMalformed, m.identity, err)
	}
	if len(value) != md5.Size {
		err := fmt.Errorf("EAP-MD5 response of %d octets: %w", len(value), ErrMalformed)
		return Packet{}, Failed, failure(TypeMD5, ReasonMalformed, m.identity, err)
	}
	secret, lookupErr := m.creds.Secret(m.identity)
	defer secret.Wipe()
	reason := Reason(0)
	switch {
	case lookupErr != nil:
		reason = lookupReason(lookupErr)
	case secret.password == nil:
		reason, lookupErr = ReasonNoSecret, fmt.Errorf("EAP-MD5 needs the password, only its NT hash is known")
	}
	// Unknown users cost what known ones do.
	want := md5Response(m.id, secret.password, m.challenge[:])
	ok := equalConstantTime(want[:], value)
	clear(want[:])
	if reason != 0 {
		return Packet{}, Failed, failure(TypeMD5, reason, m.identity, lookupErr)
	}
	if !ok {
		return Packet{}, Failed, failure(TypeMD5, ReasonWrongPassword, m.identity, nil)
	}
	return Packet{}, Succeeded, nil
}

func (m *md5Server) Identity() string { return m.identity }
func (*md5Server) MSK() []byte        { return nil }
func (m *md5Server) Wipe()            { clear(m.challenge[:]) }

// lookupReason tells an unknown user from a lookup that failed.
func lookupReason(err error) Reason {
	if errors.Is(err, ErrUnknownUser) {
		return ReasonUnknownUser
	}
	return ReasonNoSecret
}

// md5Peer borrows the Peer's secret; the Peer wipes it.
type md5Peer struct {
	identity string
	secret   *Secret
}

func newMD5Peer(identity string, secret *Secret) *md5Peer {
	return &md5Peer{identity: identity, secret: secret}
}

func (*md5Peer) Type() Type { return TypeMD5 }

func (m *md5Peer) Process(req Packet) (*Packet, Status, error) {
	challenge, _, err := parseMD5(req.Data)
	if err != nil {
		return nil, Failed, failure(TypeMD5, ReasonMalformed, m.identity, err)
	}
	if m.secret.password == nil {
		err := fmt.Errorf("EAP-MD5 needs the password, only its NT hash is configured")
		return nil, Failed, failure(TypeMD5, ReasonNoSecret, m.identity, err)
	}
	sum := md5Response(req.Identifier, m.secret.password, challenge)
	data := make([]byte, 0, 1+md5.Size+len(m.identity))
	data = append(data, md5.Size)
	data = append(data, sum[:]...)
	data = append(data, m.identity...)
	clear(sum[:])
	return &Packet{Code: CodeResponse, Identifier: req.Identifier, Type: TypeMD5, Data: data}, Succeeded, nil
}

func (*md5Peer) MSK() []byte { return nil }
func (*md5Peer) Wipe()       {}
