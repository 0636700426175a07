package transform

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
)

func TestKeysDoNotPrint(t *testing.T) {
	secret := bytes.Repeat([]byte{0xab}, 16)
	ike := &IKEKeys{D: secret, EI: secret}
	child := &ChildKeys{InitiatorToResponder: SAKeys{Encr: secret}}
	for _, v := range []any{ike, *ike, child, *child, child.InitiatorToResponder} {
		for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%x", "%X", "%q"} {
			out := fmt.Sprintf(verb, v)
			if strings.Contains(strings.ToLower(out), "abab") || strings.Contains(out, "171 171") {
				t.Errorf("%s of %T prints key bytes: %s", verb, v, out)
			}
		}
	}
}
