package ike

import "crypto/x509"

// SharedKey is a secrets.ike<suffix> entry: a pre-shared key and the
// identities it is for (an empty list matches any).
type SharedKey struct {
	IDs    []string
	Secret []byte
}

// EAPSecret is a secrets.eap<suffix> entry: a user's password and the
// EAP identities it is for (id<suffix>).
type EAPSecret struct {
	IDs    []string
	Secret []byte
}

// Credentials are what swanctl loads outside connections: shared secrets,
// EAP users' passwords and trusted CA certificates (x509ca/, authorities).
type Credentials struct {
	Shared []SharedKey
	EAP    []EAPSecret
	CAs    []*x509.Certificate
}
