package bpf

import (
	"crypto/sha256"
	"encoding/hex"
)

// ObjectHash is the SHA-256 of the dataplane's BPF object embedded in this
// binary (xdpsec_bpfel.o), what `sha256sum bpf/xdpsec_bpfel.o` prints for
// the source tree it was built from.
func ObjectHash() string {
	h := sha256.Sum256(_XdpsecBytes)
	return hex.EncodeToString(h[:])
}
