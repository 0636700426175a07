package eap

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/tls"
	"encoding/hex"
	"fmt"
	"hash"
	"strings"
)

// The MSK of EAP-TLS is the first 64 octets of 128 exported from the TLS
// session:
//
//   - TLS 1.2 (RFC 5216 section 2.3): TLS-PRF-128(master_secret,
//     "client EAP encryption", client.random || server.random).
//   - TLS 1.3 (RFC 9190 section 2.3): TLS-Exporter(
//     "EXPORTER_EAP_TLS_Key_Material", 0x0D, 128).
//
// crypto/tls exports TLS 1.2 keying material only with the Extended
// Master Secret (RFC 7627), which not every EAP-TLS implementation
// negotiates; so for TLS 1.2 the PRF is computed here, from the master
// secret crypto/tls hands its KeyLogWriter (kept in memory, never
// written anywhere, zeroed in Wipe) and the server random read from the
// ServerHello that crosses the pipe. With the Extended Master Secret the
// result is the same as ExportKeyingMaterial's, which a test checks.
const (
	tls12MSKLabel  = "client EAP encryption"
	tls13MSKLabel  = "EXPORTER_EAP_TLS_Key_Material"
	tlsKeyMaterial = 128
	tlsMSKLen      = 64
)

// tlsMSK derives the MSK of a finished session.
func tlsMSK(st *tls.ConnectionState, kl *keyLog, serverRandom []byte) ([]byte, error) {
	var km []byte
	switch st.Version {
	case tls.VersionTLS13:
		var err error
		if km, err = st.ExportKeyingMaterial(tls13MSKLabel, []byte{byte(TypeTLS)}, tlsKeyMaterial); err != nil {
			return nil, err
		}
	case tls.VersionTLS12:
		if kl.master == nil || len(serverRandom) != 32 {
			return nil, fmt.Errorf("TLS 1.2 master secret or server random not seen")
		}
		h := sha256.New
		if strings.HasSuffix(tls.CipherSuiteName(st.CipherSuite), "_SHA384") {
			h = sha512.New384
		}
		seed := append(append([]byte(tls12MSKLabel), kl.clientRandom...), serverRandom...)
		km = prf12(h, kl.master, seed, tlsKeyMaterial)
	default:
		return nil, fmt.Errorf("TLS version %#04x", st.Version)
	}
	msk := bytes.Clone(km[:tlsMSKLen])
	clear(km)
	return msk, nil
}

// prf12 is TLS 1.2's P_hash (RFC 5246 section 5), label included in seed.
func prf12(h func() hash.Hash, secret, seed []byte, n int) []byte {
	out := make([]byte, 0, n+64)
	mac := hmac.New(h, secret)
	mac.Write(seed)
	a := mac.Sum(nil)
	for len(out) < n {
		mac.Reset()
		mac.Write(a)
		mac.Write(seed)
		out = mac.Sum(out)
		mac.Reset()
		mac.Write(a)
		clear(a)
		a = mac.Sum(a[:0])
	}
	clear(a)
	clear(out[n:cap(out)])
	return out[:n]
}

// keyLog is the KeyLogWriter of one conversation: it keeps the TLS 1.2
// master secret (NSS key log line "CLIENT_RANDOM <random> <master>") and
// drops every other line.
type keyLog struct {
	clientRandom, master []byte
}

func (k *keyLog) Write(line []byte) (int, error) {
	f := bytes.Fields(line)
	if len(f) == 3 && string(f[0]) == "CLIENT_RANDOM" && len(f[1]) == 64 && len(f[2]) == 96 {
		k.wipe()
		k.clientRandom = make([]byte, 32)
		k.master = make([]byte, 48)
		if _, err := hex.Decode(k.clientRandom, f[1]); err != nil {
			return 0, err
		}
		if _, err := hex.Decode(k.master, f[2]); err != nil {
			return 0, err
		}
	}
	return len(line), nil
}

func (k *keyLog) wipe() {
	clear(k.master)
	k.master, k.clientRandom = nil, nil
}

// serverHelloRandom finds the server random in the first record of the
// server's first flight: a handshake record (22) whose first message is a
// ServerHello (2): type, 3-octet length, 2-octet version, 32-octet random.
func serverHelloRandom(flight []byte) []byte {
	const rec = 5
	if len(flight) < rec+6+32 || flight[0] != 22 || flight[rec] != 2 {
		return nil
	}
	return bytes.Clone(flight[rec+6 : rec+6+32])
}
