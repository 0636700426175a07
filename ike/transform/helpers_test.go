package transform

import (
	"encoding/hex"
	"strings"
	"testing"
)

// unhex decodes a hex string that may contain spaces and newlines, as test
// vectors are printed in RFCs.
func unhex(t testing.TB, s string) []byte {
	t.Helper()
	s = strings.Join(strings.Fields(s), "")
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatalf("bad hex in test vector: %v", err)
	}
	return b
}

func equalHex(t testing.TB, what string, got []byte, want string) {
	t.Helper()
	w := strings.ToLower(strings.Join(strings.Fields(want), ""))
	if g := hex.EncodeToString(got); g != w {
		t.Errorf("%s:\n got %s\nwant %s", what, g, w)
	}
}

// fixedReader returns the same bytes over and over, to pin IVs in tests.
type fixedReader struct{ b []byte }

func (r fixedReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = r.b[i%len(r.b)]
	}
	return len(p), nil
}

func seq(from, to byte) []byte {
	var b []byte
	for c := int(from); c <= int(to); c++ {
		b = append(b, byte(c))
	}
	return b
}
