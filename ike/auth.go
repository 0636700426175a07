package ike

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/x509"
	"errors"
	"fmt"
	"slices"

	"github.com/xdpsec/xdpsec/ike/message"
	"github.com/xdpsec/xdpsec/ike/transform"
)

// errAuth is wrapped by every authentication failure.
var errAuth = errors.New("authentication failed")

// trustedCAs are the anchors a remote round's certificates must chain to.
func (sa *ikeSA) trustedCAs(r AuthConfig) []*x509.Certificate {
	if len(r.CACerts) > 0 {
		return r.CACerts
	}
	return sa.e.cfg.Credentials.CAs
}

// certRequests name our trust anchors by the SHA-1 hash of their
// SubjectPublicKeyInfo (RFC 7296 section 3.7).
func (sa *ikeSA) certRequests() []message.Payload {
	var authority []byte
	for _, ca := range sa.trustedCAs(sa.conn.remote) {
		h := sha1.Sum(ca.RawSubjectPublicKeyInfo)
		authority = append(authority, h[:]...)
	}
	return []message.Payload{&message.CertificateRequest{Encoding: message.CertX509Signature, Authority: authority}}
}

// sharedKey finds the PSK for a pair of identities, preferring entries
// naming both, then one, then none (charon's shared key lookup).
func (sa *ikeSACommon) sharedKey(me, other Identity) ([]byte, bool) {
	best, bestScore := []byte(nil), -1
	for _, k := range sa.e.cfg.Credentials.Shared {
		score := 0
		if len(k.IDs) > 0 {
			for _, s := range k.IDs {
				id, err := ParseIdentity(s)
				if err != nil {
					continue
				}
				if !id.IsAny() && id.Equal(me) {
					score |= 1
				}
				if !id.IsAny() && id.Equal(other) {
					score |= 2
				}
			}
			if score == 0 {
				continue
			}
		}
		if score > bestScore {
			best, bestScore = k.Secret, score
		}
	}
	return best, bestScore >= 0
}

// signedOctets builds what an AUTH payload covers (RFC 7296 section 2.15)
// for the original initiator's (forInitiator) or responder's AUTH.
func (sa *ikeSA) signedOctets(forInitiator bool, idBytes []byte) ([]byte, error) {
	if forInitiator {
		return sa.setup.intAuthOctets(transform.SignedOctets(sa.suite.PRF, sa.setup.initRequest(), sa.nr, sa.keys.PI, idBytes))
	}
	return sa.setup.intAuthOctets(transform.SignedOctets(sa.suite.PRF, sa.setup.initResponse(), sa.ni, sa.keys.PR, idBytes))
}

// buildAuth makes our AUTH payload, and the CERT payloads that go with it.
func (sa *ikeSA) buildAuth(id Identity, idBytes []byte) (*message.Authentication, []message.Payload, error) {
	octets, err := sa.signedOctets(sa.initiator, idBytes)
	if err != nil {
		return nil, nil, err
	}
	r := sa.conn.local
	switch r.Auth {
	case AuthPSK:
		secret, ok := sa.sharedKey(id, sa.remoteID)
		if !ok {
			return nil, nil, fmt.Errorf("no shared key found for '%s' - '%s'", id, sa.remoteID)
		}
		data, err := transform.PSKAuth(sa.suite.PRF, secret, octets)
		if err != nil {
			return nil, nil, err
		}
		infof(sa.log, "authentication of '%s' (myself) with pre-shared key", id)
		return &message.Authentication{Method: message.AuthSharedKeyMIC, Data: data}, nil, nil
	case AuthPubkey:
		scheme, err := sa.signatureScheme(r)
		if err != nil {
			return nil, nil, err
		}
		data, err := transform.SignAuth(sa.e.rand, r.PrivateKey, scheme, octets)
		if err != nil {
			return nil, nil, err
		}
		infof(sa.log, "authentication of '%s' (myself) with %v successful", id, scheme)
		var certs []message.Payload
		if sa.conn.SendCert == SendCertAlways || (sa.conn.SendCert == SendCertIfAsked && sa.peerCertReq) {
			for _, c := range r.Certs {
				certs = append(certs, &message.Certificate{Encoding: message.CertX509Signature, Data: c.Raw})
				infof(sa.log, "sending end entity cert \"%s\"", formatDN(c.RawSubject))
			}
		}
		return &message.Authentication{Method: message.AuthDigitalSignature, Data: data}, certs, nil
	}
	return nil, nil, fmt.Errorf("no authentication method")
}

// signatureScheme picks the scheme we sign with: the configured one, or
// the key's default, with a hash the peer announced if it announced any.
func (sa *ikeSA) signatureScheme(r AuthConfig) (transform.SignatureScheme, error) {
	if r.Scheme != nil {
		return *r.Scheme, nil
	}
	s, err := transform.DefaultSignatureScheme(r.PrivateKey.Public())
	if err != nil {
		return s, err
	}
	if len(sa.peerHashes) > 0 && !slices.Contains(sa.peerHashes, s.Hash) && s.Algorithm != transform.SigECDSA {
		for _, h := range []transform.HashAlgorithm{transform.HashSHA2_256, transform.HashSHA2_384, transform.HashSHA2_512} {
			if slices.Contains(sa.peerHashes, h) {
				s.Hash = h
				break
			}
		}
	}
	return s, nil
}

// verifyAuth checks the peer's AUTH payload against the remote round.
func (sa *ikeSA) verifyAuth(r AuthConfig, id Identity, idBytes []byte, auth *message.Authentication, certs []*message.Certificate) error {
	octets, err := sa.signedOctets(!sa.initiator, idBytes)
	if err != nil {
		return err
	}
	switch r.Auth {
	case AuthPSK:
		if auth.Method != message.AuthSharedKeyMIC {
			return fmt.Errorf("%w: peer used %v, pre-shared key expected", errAuth, auth.Method)
		}
		secret, ok := sa.sharedKey(sa.localID, id)
		if !ok {
			return fmt.Errorf("%w: no shared key found for '%s' - '%s'", errAuth, sa.localID, id)
		}
		if err := transform.VerifyPSKAuth(sa.suite.PRF, secret, octets, auth.Data); err != nil {
			// charon's wording; we only ever try the one key found.
			return fmt.Errorf("%w: tried 1 shared key for '%s' - '%s', but MAC mismatched", errAuth, sa.localID, id)
		}
		infof(sa.log, "authentication of '%s' with pre-shared key successful", id)
		return nil
	case AuthPubkey:
		if auth.Method != message.AuthDigitalSignature {
			return fmt.Errorf("%w: peer used %v, only RFC 7427 signatures are supported", errAuth, auth.Method)
		}
		cert, err := sa.verifyChain(r, id, certs)
		if err != nil {
			return err
		}
		scheme, err := transform.VerifyAuth(cert.PublicKey, auth.Data, octets, transform.SupportedHashes)
		if err != nil {
			return fmt.Errorf("%w: signature validation of '%s' failed: %v", errAuth, id, err)
		}
		infof(sa.log, "authentication of '%s' with %v successful", id, scheme)
		return nil
	}
	return fmt.Errorf("%w: no authentication method", errAuth)
}

// verifyChain validates the peer's end entity certificate up to one of our
// trust anchors and checks that it is issued to the identity the peer claims.
func (sa *ikeSA) verifyChain(r AuthConfig, id Identity, certs []*message.Certificate) (*x509.Certificate, error) {
	var parsed []*x509.Certificate
	for _, c := range certs {
		if c.Encoding != message.CertX509Signature {
			continue
		}
		x, err := x509.ParseCertificate(c.Data)
		if err != nil {
			return nil, fmt.Errorf("%w: invalid certificate: %v", errAuth, err)
		}
		parsed = append(parsed, x)
	}
	if len(parsed) == 0 {
		return nil, fmt.Errorf("%w: no trusted public key found for '%s'", errAuth, id)
	}
	leaf := parsed[0]
	infof(sa.log, "received end entity cert \"%s\"", formatDN(leaf.RawSubject))
	if len(r.Certs) > 0 && !slices.ContainsFunc(r.Certs, leaf.Equal) {
		return nil, fmt.Errorf("%w: certificate of '%s' is not the configured one", errAuth, id)
	}
	roots, inter := x509.NewCertPool(), x509.NewCertPool()
	for _, ca := range sa.trustedCAs(r) {
		roots.AddCert(ca)
	}
	for _, c := range parsed[1:] {
		inter.AddCert(c)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{
		Roots: roots, Intermediates: inter, CurrentTime: sa.e.clock.Now(),
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
	}); err != nil {
		// charon: "no trusted ECDSA public key found for 'id'", with Go's reason.
		return nil, fmt.Errorf("%w: no trusted %s public key found for '%s' (%v)", errAuth, keyTypeName(leaf.PublicKey), id, err)
	}
	if !certHasIdentity(leaf, id) {
		return nil, fmt.Errorf("%w: certificate \"%s\" is not issued to '%s'", errAuth, formatDN(leaf.RawSubject), id)
	}
	return leaf, nil
}

// keyTypeName names a public key's type as charon's logs do.
func keyTypeName(k any) string {
	switch k.(type) {
	case *rsa.PublicKey:
		return "RSA"
	case *ecdsa.PublicKey:
		return "ECDSA"
	case ed25519.PublicKey:
		return "ED25519"
	}
	return "ANY"
}
