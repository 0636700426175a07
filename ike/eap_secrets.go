package ike

import (
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/xdpsec/xdpsec/ike/eap"
	"github.com/xdpsec/xdpsec/ike/message"
)

// eapSecretIndex finds a user's secrets.eap entry without walking them
// all: a remote-access gateway holds thousands of users, and the EAP
// server looks one up in every authentication (the peer side in every
// IKE SA it opens). The answer is the one a walk in file order gives:
// the first entry one of whose IDs is the identity as written, or parses
// to an identity equal to it.
type eapSecretIndex struct {
	list []EAPSecret
	// exact is each ID as written, to the first entry naming it.
	exact map[string]int
	// equal is each ID's identityKey, to the first entry with an ID
	// that parses to it.
	equal map[string]int
	// folded says an FQDN or email ID outside ASCII was left out of
	// equal (Equal folds Unicode case, which a key cannot follow): an
	// identity missing from the maps is then looked for by walking.
	folded bool
}

func newEAPSecretIndex(list []EAPSecret) *eapSecretIndex {
	x := &eapSecretIndex{list: list, exact: map[string]int{}, equal: map[string]int{}}
	for i, s := range list {
		for _, want := range s.IDs {
			if _, ok := x.exact[want]; !ok {
				x.exact[want] = i
			}
			w, err := ParseIdentity(want)
			if err != nil || w.IsAny() {
				continue
			}
			k, ok := identityKey(w)
			if !ok {
				x.folded = true
				continue
			}
			if _, ok := x.equal[k]; !ok {
				x.equal[k] = i
			}
		}
	}
	return x
}

// identityKey is a string two identities share exactly when they are
// Equal, false for an FQDN or email outside ASCII.
func identityKey(id Identity) (string, bool) {
	switch id.Type {
	case message.ID_FQDN, message.ID_RFC822_ADDR:
		for _, b := range id.Data {
			if b >= utf8.RuneSelf {
				return "", false
			}
		}
		return fmt.Sprintf("%d:%s", id.Type, strings.ToLower(string(id.Data))), true
	case message.ID_DER_ASN1_DN:
		return fmt.Sprintf("%d:%s", id.Type, formatDN(id.Data)), true
	}
	return fmt.Sprintf("%d:%x", id.Type, id.Data), true
}

// lookup is the index of the entry for identity, -1 if none.
func (x *eapSecretIndex) lookup(identity string) int {
	found := -1
	if i, ok := x.exact[identity]; ok {
		found = i
	}
	id, err := ParseIdentity(identity)
	if err != nil || id.IsAny() {
		return found
	}
	k, ok := identityKey(id)
	if !ok || x.folded {
		// Some entry can only be matched by Equal itself: walk the
		// entries before the one found so far.
		end := len(x.list)
		if found >= 0 {
			end = found
		}
		for i, s := range x.list[:end] {
			for _, want := range s.IDs {
				if w, err := ParseIdentity(want); err == nil && !w.IsAny() && w.Equal(id) {
					return i
				}
			}
		}
		return found
	}
	if i, ok := x.equal[k]; ok && (found < 0 || i < found) {
		found = i
	}
	return found
}

// eapSecret is the EAP servers' credential lookup (and our EAP peer's):
// the secrets.eap entry naming the identity. The index is built with
// the credentials (New, SetCredentials).
func (e *Engine) eapSecret(identity string) (eap.Secret, error) {
	if i := e.eapSecrets.lookup(identity); i >= 0 {
		return eap.PasswordSecret(e.eapSecrets.list[i].Secret), nil
	}
	return eap.Secret{}, fmt.Errorf("no EAP secret for '%s': %w", identity, eap.ErrUnknownUser)
}
