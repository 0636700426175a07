package swanctl

import (
	"path"
	"strings"

	"github.com/xdpsec/xdpsec/ike"
	"github.com/xdpsec/xdpsec/ike/eap"
	"github.com/xdpsec/xdpsec/ike/transform"
)

// Revocation is the certificate revocation policy of a remote round.
type Revocation uint8

const (
	RevocationRelaxed Revocation = iota // fail only if known revoked
	RevocationIfURI                     // fail if a CRL/OCSP URI exists but checking fails
	RevocationStrict                    // fail unless known good
)

func (r Revocation) String() string { return [...]string{"relaxed", "ifuri", "strict"}[r] }

var revocationValues = map[string]Revocation{"relaxed": RevocationRelaxed, "ifuri": RevocationIfURI, "strict": RevocationStrict}

// AuthRound is one local<suffix> or remote<suffix> section. The engine's
// round is embedded: auth and id are parsed into it; its certificates and
// key are loaded by the daemon from the files named here.
type AuthRound struct {
	*ike.AuthConfig
	Name  string // "local", "remote-cert", ...
	Pos   Pos
	Round uint32
	// AuthSpec is the auth value as written ("pubkey", "rsa-2048-sha256",
	// "ike:ecdsa-sha384", "psk"): with pubkey it carries the key type,
	// strength and hash constraints for the signature checks.
	AuthSpec string
	// IDSpec is the id as written: ours for local rounds (empty: the
	// address or the certificate's subject), the one expected for remote
	// rounds ("%any" by default).
	IDSpec string
	// CertFiles, CACertFiles and PubKeyFiles are certs, cacerts and
	// pubkeys: file paths, made absolute against the x509/, x509ca/ and
	// pubkey/ folders of the configuration directory.
	CertFiles   []string
	CACertFiles []string
	PubKeyFiles []string
	Revocation  Revocation // remote rounds only
}

func newAuthRound(name string, pos Pos, local bool) *AuthRound {
	a := &AuthRound{AuthConfig: &ike.AuthConfig{}, Name: name, Pos: pos, AuthSpec: "pubkey"}
	if !local {
		a.IDSpec = "%any"
	}
	return a
}

func parseAuth(a *AuthRound, v string) error {
	lv := strings.ToLower(v)
	switch {
	case lv == "psk":
		a.Auth = ike.AuthPSK
	case strings.HasPrefix(lv, "pubkey"), strings.HasPrefix(lv, "rsa"),
		strings.HasPrefix(lv, "ecdsa"), strings.HasPrefix(lv, "ike:"):
		a.Auth = ike.AuthPubkey
	case lv == "eap-radius":
		// The RADIUS server chooses the method; the daemon's radius
		// settings say where it is.
		a.Auth = ike.AuthEAPRadius
	case strings.HasPrefix(lv, "eap"):
		methods, ok := eapMethods[lv]
		if !ok {
			return wrapf(ErrUnsupported, "EAP authentication %q is not supported yet (eap-mschapv2, eap-md5, eap-tls, eap-dynamic or eap-radius)", v)
		}
		a.Auth = ike.AuthEAP
		a.EAPMethods = methods
	case lv == "xauth" || lv == "xauth-generic":
		// IKEv1's second round: the user's password in the EAP/XAuth
		// secrets.
		a.Auth = ike.AuthXAuth
	case lv == "xauth-radius":
		// The password goes to the daemon's RADIUS server.
		a.Auth = ike.AuthXAuthRadius
	case strings.HasPrefix(lv, "xauth"):
		return wrapf(ErrUnsupported, "XAuth backend %q is not supported (xauth, xauth-generic or xauth-radius)", v)
	case strings.HasPrefix(lv, "bliss"):
		return wrapf(ErrUnsupported, "BLISS signatures (%q) are not supported", v)
	default:
		return wrapf(ErrValue, "%q is not an authentication method (psk, pubkey, rsa..., ecdsa...)", v)
	}
	a.AuthSpec = v
	return nil
}

// eapMethods are the EAP auth values and the methods each offers, in
// order: eap-dynamic starts with EAP-MSCHAPv2 and lets the peer's Nak
// choose EAP-MD5 or EAP-TLS instead. EAP-TLS comes last, and only where
// the round has the certificates it needs: the engine drops it from
// eap-dynamic otherwise (a gateway whose local round is not pubkey, a
// client without certs), and refuses eap-tls alone.
var eapMethods = map[string][]eap.Type{
	"eap-mschapv2": {eap.TypeMSCHAPv2},
	"eap-md5":      {eap.TypeMD5},
	"eap-tls":      {eap.TypeTLS},
	"eap-dynamic":  {eap.TypeMSCHAPv2, eap.TypeMD5, eap.TypeTLS},
}

func parseID(a *AuthRound, v string) error {
	id, err := ike.ParseIdentity(v)
	if err != nil {
		return wrapErr(ErrValue, err)
	}
	a.ID, a.IDSpec = id, v
	return nil
}

// forcedScheme is the signature scheme a local auth value asks for: RSA
// PKCS#1 v1.5 for "rsa...", RSA-PSS for "rsa/pss...", none (chosen from
// the key and the peer) otherwise.
func forcedScheme(spec string) *transform.SignatureScheme {
	spec = strings.ToLower(spec)
	switch {
	case strings.HasPrefix(spec, "rsa/pss"):
		return &transform.SignatureScheme{Algorithm: transform.SigRSAPSS, Hash: transform.HashSHA2_256}
	case strings.HasPrefix(spec, "rsa"):
		return &transform.SignatureScheme{Algorithm: transform.SigRSAPKCS1, Hash: transform.HashSHA2_256}
	}
	return nil
}

var authKeys = keyTable[AuthRound]{
	"auth":    supported(parseAuth),
	"id":      supported(parseID),
	"round":   supported(func(a *AuthRound, v string) (err error) { a.Round, err = parseUint32(v); return }),
	"certs":   supported(func(a *AuthRound, v string) error { a.CertFiles = splitList(v); return nil }),
	"cacerts": supported(func(a *AuthRound, v string) error { a.CACertFiles = splitList(v); return nil }),
	"pubkeys": supported(func(a *AuthRound, v string) error { a.PubKeyFiles = splitList(v); return nil }),
	"revocation": supported(func(a *AuthRound, v string) (err error) {
		a.Revocation, err = parseEnum(v, revocationValues, "strict, ifuri or relaxed")
		return
	}),

	// Documented by strongSwan, not supported by xdpsec yet.
	"eap_id": supported(func(a *AuthRound, v string) error {
		if v != "%any" {
			if _, err := ike.ParseIdentity(v); err != nil {
				return wrapErr(ErrValue, err)
			}
		}
		a.EAPID = v
		return nil
	}),
	"aaa_id": unsupported[AuthRound](),
	"xauth_id": supported(func(a *AuthRound, v string) error {
		if v == "" {
			return wrapf(ErrValue, "empty xauth_id")
		}
		a.XAuthID = v
		return nil
	}),
	"groups":      unsupported[AuthRound](),
	"cert_policy": unsupported[AuthRound](),
}

// loadAuthRound reads a local<suffix> or remote<suffix> section.
func (l *loader) loadAuthRound(s *section, key string, local bool) *AuthRound {
	a := newAuthRound(s.name, s.pos(), local)
	set := applyKeys(a, s, authKeys, key, l.errs)
	l.notePositions(key, set)
	if _, ok := set["revocation"]; ok && local {
		l.errs.add(set["revocation"], key+".revocation", wrapf(ErrUnknownKey, "revocation applies to remote rounds only"))
	}
	if _, ok := set["eap_id"]; ok && a.Auth != ike.AuthEAP && a.Auth != ike.AuthEAPRadius {
		l.errs.add(set["eap_id"], key+".eap_id", wrapf(ErrInvalid, "eap_id applies to rounds with EAP authentication only"))
		a.EAPID = ""
	}
	if _, ok := set["eap_id"]; ok && local && a.EAPID == "%any" {
		l.errs.add(set["eap_id"], key+".eap_id", wrapf(ErrValue, "%%any is for remote rounds: a local eap_id is the identity we send"))
		a.EAPID = ""
	}
	if _, ok := set["xauth_id"]; ok && !a.Auth.IsXAuth() {
		l.errs.add(set["xauth_id"], key+".xauth_id", wrapf(ErrInvalid, "xauth_id applies to rounds with XAuth authentication only"))
		a.XAuthID = ""
	}
	if _, ok := set["cacerts"]; ok && local {
		l.errs.add(set["cacerts"], key+".cacerts", wrapf(ErrUnknownKey, "cacerts applies to remote rounds only"))
	}
	a.CertFiles = l.credentialPaths(a.CertFiles, "x509", key, "certs", set)
	a.CACertFiles = l.credentialPaths(a.CACertFiles, "x509ca", key, "cacerts", set)
	a.PubKeyFiles = l.credentialPaths(a.PubKeyFiles, "pubkey", key, "pubkeys", set)
	if local && a.Auth == ike.AuthPubkey {
		a.Scheme = forcedScheme(a.AuthSpec)
	}
	for _, sub := range s.subs {
		subKey := key + "." + sub.name
		if hasPrefixFold(sub.name, "cert") || hasPrefixFold(sub.name, "cacert") {
			l.errs.add(sub.pos(), subKey, wrapf(ErrUnsupported, "certificate sections (tokens, file=) are not supported yet; use certs or cacerts"))
			continue
		}
		l.errs.add(sub.pos(), subKey, wrapf(ErrUnknownKey, "unknown section"))
	}
	return a
}

// credentialPaths makes credential file names absolute, relative ones
// against a folder of the configuration directory as swanctl does, and
// checks that they exist.
func (l *loader) credentialPaths(names []string, folder, key, k string, set map[string]Pos) []string {
	var out []string
	for _, n := range names {
		p := n
		if !path.IsAbs(p) {
			p = path.Join(l.cfg.Dir, folder, n)
		}
		if fi, err := l.fsys.Stat(p); err != nil || fi.IsDir() {
			l.errs.add(set[k], key+"."+k, wrapf(ErrValue, "%q: no such file", p))
			continue
		}
		out = append(out, p)
	}
	return out
}
