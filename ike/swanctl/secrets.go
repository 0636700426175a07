package swanctl

import (
	"encoding/base64"
	"encoding/hex"
	"path"
	"strings"
)

// Secrets are the credentials of the "secrets" section and of the
// private key folders.
type Secrets struct {
	// IKE are the pre-shared keys (secrets.ike<suffix>), in file order.
	IKE []*IKESecret
	// EAP are the EAP and XAuth users' passwords (secrets.eap<suffix>
	// and xauth<suffix>), in file order.
	EAP []*IKESecret
	// PrivateKeys are the private key files: those named in
	// secrets.private<suffix>, rsa<suffix>, ecdsa<suffix> and
	// pkcs8<suffix> sections (with their passphrase) and every other file
	// in the private/, rsa/, ecdsa/ and pkcs8/ folders of the configuration
	// directory, as swanctl --load-creds loads them.
	PrivateKeys []*PrivateKey
}

// IKESecret is a pre-shared key and the identities it is for.
type IKESecret struct {
	Name   string // section name, "ike-site"
	Pos    Pos
	Secret Secret
	// IDs are the IKE identities the key belongs to (id<suffix> keys);
	// empty means any identity.
	IDs []string
}

// Matches reports whether the secret may be used for one of the
// identities ids, as charon's shared key lookup does: a secret without
// identities (or with %any) matches everyone, otherwise one of its
// identities must be among ids.
func (s *IKESecret) Matches(ids ...string) bool {
	if len(s.IDs) == 0 {
		return true
	}
	for _, id := range s.IDs {
		if id == "%any" {
			return true
		}
		for _, want := range ids {
			if want != "" && id == want {
				return true
			}
		}
	}
	return false
}

// PrivateKey is a private key file and, if configured, its passphrase.
type PrivateKey struct {
	Name string // secrets section naming it, "" if only found in a folder
	Pos  Pos
	// Folder is the swanctl folder kind: "private", "rsa", "ecdsa" or
	// "pkcs8".
	Folder     string
	Path       string // absolute path
	Passphrase Secret
}

// keyFolders are the swanctl folders holding private keys, each named
// after the secrets section prefix for its passphrases.
var keyFolders = []string{"private", "rsa", "ecdsa", "pkcs8"}

// decodeSecret decodes a secret value: hex with a 0x prefix, base64 with a
// 0s prefix, the string itself otherwise.
func decodeSecret(v string) (Secret, error) {
	switch {
	case hasPrefixFold(v, "0x"):
		b, err := hex.DecodeString(v[2:])
		if err != nil {
			return Secret{}, wrapf(ErrValue, "secret with 0x prefix is not valid hex")
		}
		return NewSecret(b), nil
	case strings.HasPrefix(v, "0s"):
		b, err := base64.StdEncoding.DecodeString(v[2:])
		if err != nil {
			if b, err = base64.RawStdEncoding.DecodeString(v[2:]); err != nil {
				return Secret{}, wrapf(ErrValue, "secret with 0s prefix is not valid base64")
			}
		}
		return NewSecret(b), nil
	}
	return NewSecret([]byte(v)), nil
}

type keySecret struct {
	file   string
	secret Secret
}

var keySecretKeys = keyTable[keySecret]{
	"file": supported(func(k *keySecret, v string) error { k.file = v; return nil }),
	"secret": supported(func(k *keySecret, v string) error {
		s, err := decodeSecret(v)
		k.secret = s
		return err
	}),
}

// loadSecrets reads the "secrets" section.
func (l *loader) loadSecrets(sec *section) {
	for _, s := range sec.subs {
		key := "secrets." + s.name
		switch {
		case hasPrefixFold(s.name, "ike"):
			if is := l.loadIKESecret(s, key, "pre-shared key"); is != nil {
				l.cfg.Secrets.IKE = append(l.cfg.Secrets.IKE, is)
			}
		case hasPrefixFold(s.name, "eap"):
			if is := l.loadIKESecret(s, key, "EAP secret"); is != nil {
				if len(is.IDs) == 0 {
					l.errs.add(s.pos(), key, wrapf(ErrInvalid, "EAP secret without id: name the user it is for"))
					continue
				}
				l.cfg.Secrets.EAP = append(l.cfg.Secrets.EAP, is)
			}
		case hasPrefixFold(s.name, "xauth"):
			// charon keeps XAuth passwords as EAP secrets: an XAuth
			// user may as well log in with EAP over IKEv2, and the
			// other way round.
			if is := l.loadIKESecret(s, key, "XAuth secret"); is != nil {
				if len(is.IDs) == 0 {
					l.errs.add(s.pos(), key, wrapf(ErrInvalid, "XAuth secret without id: name the user it is for"))
					continue
				}
				l.cfg.Secrets.EAP = append(l.cfg.Secrets.EAP, is)
			}
		case hasPrefixFold(s.name, "private"), hasPrefixFold(s.name, "rsa"),
			hasPrefixFold(s.name, "ecdsa"), hasPrefixFold(s.name, "pkcs8"):
			l.loadKeySecret(s, key)
		case hasPrefixFold(s.name, "ntlm"), hasPrefixFold(s.name, "ppk"),
			hasPrefixFold(s.name, "pkcs12"), hasPrefixFold(s.name, "token"):
			l.errs.add(s.pos(), key, wrapf(ErrUnsupported, "%s secrets are not supported yet", secretKind(s.name)))
		default:
			l.errs.add(s.pos(), key, wrapf(ErrUnknownKey, "unknown secret section (expected a prefix ike, eap, private, rsa, ecdsa or pkcs8)"))
		}
	}
	for _, k := range sec.keys {
		l.errs.add(sec.settings[k].pos, "secrets."+k, wrapf(ErrUnknownKey, "unknown key"))
	}
}

func secretKind(name string) string {
	for _, p := range []string{"eap", "xauth", "ntlm", "ppk", "pkcs12", "token"} {
		if hasPrefixFold(name, p) {
			return strings.ToUpper(p)
		}
	}
	return name
}

// secretFiles notes every file that contributes to a secrets section, for
// the permission check.
func (l *loader) secretFiles(s *section) {
	for _, p := range s.opens {
		l.secretFile[p.File] = true
	}
	for _, st := range s.settings {
		l.secretFile[st.pos.File] = true
	}
	for _, c := range s.subs {
		l.secretFiles(c)
	}
}

// loadIKESecret reads a secrets.ike<suffix> or eap<suffix> section (the
// same keys: secret and id<suffix>); kind names the secret in errors.
func (l *loader) loadIKESecret(s *section, key, kind string) *IKESecret {
	is := &IKESecret{Name: s.name, Pos: s.pos()}
	for _, k := range s.keys {
		st := s.settings[k]
		switch {
		case k == "secret":
			v, err := decodeSecret(st.value)
			if err == nil && v.IsZero() {
				err = wrapf(ErrValue, "empty %s", kind)
			}
			if err != nil {
				l.errs.add(st.pos, key+"."+k, err)
				continue
			}
			is.Secret = v
		case hasPrefixFold(k, "id"):
			if st.value != "" {
				is.IDs = append(is.IDs, st.value)
			}
		default:
			l.errs.add(st.pos, key+"."+k, wrapf(ErrUnknownKey, "unknown key"))
		}
	}
	for _, c := range s.subs {
		l.errs.add(c.pos(), key+"."+c.name, wrapf(ErrUnknownKey, "unknown section"))
	}
	if is.Secret.IsZero() {
		if _, ok := s.settings["secret"]; !ok {
			l.errs.add(s.pos(), key, wrapf(ErrInvalid, "missing secret"))
		}
		return nil
	}
	return is
}

func (l *loader) loadKeySecret(s *section, key string) {
	var ks keySecret
	applyKeys(&ks, s, keySecretKeys, key, l.errs)
	for _, c := range s.subs {
		l.errs.add(c.pos(), key+"."+c.name, wrapf(ErrUnknownKey, "unknown section"))
	}
	folder := ""
	for _, f := range keyFolders {
		if hasPrefixFold(s.name, f) {
			folder = f
		}
	}
	if ks.file == "" {
		l.errs.add(s.pos(), key, wrapf(ErrInvalid, "missing file"))
		return
	}
	p := ks.file
	if !path.IsAbs(p) {
		p = path.Join(l.cfg.Dir, folder, p)
	}
	pos := s.pos()
	if st, ok := s.settings["file"]; ok {
		pos = st.pos
	}
	if _, err := l.fsys.Stat(p); err != nil {
		l.errs.add(pos, key+".file", wrapf(ErrValue, "private key %q: %v", p, err))
		return
	}
	l.cfg.Secrets.PrivateKeys = append(l.cfg.Secrets.PrivateKeys, &PrivateKey{
		Name: s.name, Pos: pos, Folder: folder, Path: p, Passphrase: ks.secret,
	})
}

// loadKeyFolders adds the files of the private key folders that no secrets
// section named, and checks the permissions of every private key.
func (l *loader) loadKeyFolders() {
	named := map[string]bool{}
	for _, k := range l.cfg.Secrets.PrivateKeys {
		named[path.Clean(k.Path)] = true
	}
	for _, folder := range keyFolders {
		dir := path.Join(l.cfg.Dir, folder)
		entries, err := l.fsys.ReadDir(dir)
		if err != nil {
			continue // swanctl skips missing folders too
		}
		for _, e := range entries {
			if e.IsDir() {
				continue
			}
			p := path.Join(dir, e.Name())
			if named[p] {
				continue
			}
			l.cfg.Secrets.PrivateKeys = append(l.cfg.Secrets.PrivateKeys, &PrivateKey{Folder: folder, Path: p, Pos: Pos{File: p}})
		}
	}
	for _, k := range l.cfg.Secrets.PrivateKeys {
		if err := checkSecretFile(l.fsys, k.Path); err != nil {
			l.errs.add(Pos{File: k.Path}, "", err)
		}
	}
}
