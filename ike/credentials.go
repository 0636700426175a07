package ike

import "crypto/x509"

// SharedKey is a secrets.ike<suffix> entry: a pre-shared key and the
// identities it is for (an empty list matches any).
type SharedKey struct {
	IDs    []string
	Secret []byte
}

// Credentials are what swanctl loads outside connections: shared secrets
// and trusted CA certificates (x509ca/, authorities).
type Credentials struct {
	Shared []SharedKey
	CAs    []*x509.Certificate
}
