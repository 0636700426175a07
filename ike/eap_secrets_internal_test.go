package ike

import (
	"fmt"
	"testing"
)

// walkEAPSecrets is the lookup the index replaces: the first entry, in
// file order, with an ID that is the identity as written or parses to an
// identity equal to it.
func walkEAPSecrets(list []EAPSecret, identity string) int {
	id, idErr := ParseIdentity(identity)
	for i, s := range list {
		for _, want := range s.IDs {
			if want == identity {
				return i
			}
			if w, err := ParseIdentity(want); idErr == nil && err == nil && !w.IsAny() && w.Equal(id) {
				return i
			}
		}
	}
	return -1
}

func TestEAPSecretIndexAsWalk(t *testing.T) {
	list := []EAPSecret{
		{IDs: []string{"carol"}},
		{IDs: []string{"Bob", "fqdn:dave"}},
		{IDs: []string{"bob"}},               // after Bob: Bob's entry wins for "bob" too
		{IDs: []string{"@alice"}},            // an FQDN written with @
		{IDs: []string{"alice"}},             // the same identity again: the first entry wins
		{IDs: []string{"%any"}},              // matches only "%any" as written
		{IDs: []string{"192.0.2.7"}},         // an address identity
		{IDs: []string{"C=CH, O=x, CN=eve"}}, // a DN
		{IDs: []string{"frank@example.org"}},
	}
	x := newEAPSecretIndex(list)
	for _, identity := range []string{
		"carol", "CAROL", "bob", "BOB", "Bob", "dave", "@dave", "alice", "ALICE", "@alice",
		"%any", "", "192.0.2.7", "ipv4:192.0.2.7", "C=CH, O=x, CN=eve", "C=CH,O=x,CN=eve",
		"Frank@Example.org", "nobody", "keyid:zz",
	} {
		if got, want := x.lookup(identity), walkEAPSecrets(list, identity); got != want {
			t.Errorf("%q: entry %d, a walk finds %d", identity, got, want)
		}
	}
}

// An ID outside ASCII is matched as Equal matches it (Unicode case
// folding), which the index's keys do not follow: such sets are walked.
func TestEAPSecretIndexUnicode(t *testing.T) {
	list := []EAPSecret{{IDs: []string{"user"}}, {IDs: []string{"\u212a.example"}}, {IDs: []string{"k.example"}}}
	x := newEAPSecretIndex(list)
	for _, identity := range []string{"k.example", "K.example", "\u212a.example", "user"} {
		if got, want := x.lookup(identity), walkEAPSecrets(list, identity); got != want {
			t.Errorf("%q: entry %d, a walk finds %d", identity, got, want)
		}
	}
}

// BenchmarkEAPSecretLookup: 10,000 users, each looked up in turn, through
// the index and by the walk it replaced.
func BenchmarkEAPSecretLookup(b *testing.B) {
	var list []EAPSecret
	for i := range 10_000 {
		list = append(list, EAPSecret{IDs: []string{fmt.Sprintf("user%d", i+1)}, Secret: []byte("x")})
	}
	b.Run("index", func(b *testing.B) {
		e := &Engine{eapSecrets: newEAPSecretIndex(list)}
		b.ResetTimer()
		for i := range b.N {
			if _, err := e.eapSecret(fmt.Sprintf("user%d", i%10_000+1)); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("walk", func(b *testing.B) {
		for i := range b.N {
			if walkEAPSecrets(list, fmt.Sprintf("user%d", i%10_000+1)) < 0 {
				b.Fatal("not found")
			}
		}
	})
}
