package transform

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"strings"
	"testing"
)

// TestV1KDFVectors checks SKEYID for signatures and PSK, SKEYID_d/a/e,
// the appendix B key expansion and the KEYMAT expansion against the
// known answers in testdata/ikev1_kdf.txt (NIST CAVP samples via NSS).
func TestV1KDFVectors(t *testing.T) {
	f, err := os.Open("testdata/ikev1_kdf.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var records []map[string]string
	cur := map[string]string{}
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(line, "#") {
			continue
		}
		if line == "" {
			if len(cur) > 0 {
				records = append(records, cur)
				cur = map[string]string{}
			}
			continue
		}
		k, v, _ := strings.Cut(line, "=")
		cur[strings.TrimSpace(k)] = strings.TrimSpace(v)
	}
	if len(cur) > 0 {
		records = append(records, cur)
	}
	if len(records) < 10 {
		t.Fatalf("%d records", len(records))
	}
	for i, r := range records {
		prf := map[string]PRFID{"sha1": PRF_HMAC_SHA1, "sha256": PRF_HMAC_SHA2_256}[r["prf"]]
		h := func(k string) []byte { return unhex(t, r[k]) }
		switch r["kind"] {
		case "sig":
			skeyid, err := SKEYIDSig(prf, h("ni"), h("nr"), h("gxy"))
			if err != nil {
				t.Fatal(err)
			}
			equalHex(t, "SKEYID", skeyid, r["skeyid"])
			keys, err := DeriveV1Keys(prf, skeyid, h("gxy"), binary.BigEndian.Uint64(h("cky_i")), binary.BigEndian.Uint64(h("cky_r")), 16)
			if err != nil {
				t.Fatal(err)
			}
			equalHex(t, "SKEYID_d", keys.SKEYIDd, r["skeyid_d"])
			equalHex(t, "SKEYID_a", keys.SKEYIDa, r["skeyid_a"])
			equalHex(t, "SKEYID_e", keys.SKEYIDe, r["skeyid_e"])
			if !bytes.Equal(keys.Encr, keys.SKEYIDe[:16]) {
				t.Errorf("record %d: AES-128 key is not SKEYID_e cut", i)
			}
		case "psk":
			skeyid, err := SKEYIDPSK(prf, h("psk"), h("ni"), h("nr"))
			if err != nil {
				t.Fatal(err)
			}
			equalHex(t, "SKEYID", skeyid, r["skeyid"])
		case "appb":
			out, err := V1EncryptionKey(prf, h("key"), len(h("out")))
			if err != nil {
				t.Fatal(err)
			}
			equalHex(t, "appendix B key", out, r["out"])
		case "qm":
			out, err := v1Expand(prf, h("key"), []byte{0}, len(h("out")))
			if err != nil {
				t.Fatal(err)
			}
			equalHex(t, "KEYMAT expansion", out, r["out"])
		default:
			t.Fatalf("record %d: kind %q", i, r["kind"])
		}
	}
}

// TestV1Derivations pins the message hashes and IVs to their RFC 2409
// definitions, computed independently with the PRF.
func TestV1Derivations(t *testing.T) {
	prf := PRF_HMAC_SHA2_256
	skeyid, gxi, gxr := seq(1, 32), seq(40, 90), seq(100, 150)
	sai, idii := seq(3, 9), seq(10, 14)
	hi, _ := V1HashI(prf, skeyid, gxi, gxr, 0x1111, 0x2222, sai, idii)
	want, _ := prf.Compute(skeyid, concat(gxi, gxr, u64(0x1111), u64(0x2222), sai, idii))
	if !bytes.Equal(hi, want) {
		t.Errorf("HASH_I")
	}
	hr, _ := V1HashR(prf, skeyid, gxi, gxr, 0x1111, 0x2222, sai, idii)
	want, _ = prf.Compute(skeyid, concat(gxr, gxi, u64(0x2222), u64(0x1111), sai, idii))
	if !bytes.Equal(hr, want) {
		t.Errorf("HASH_R")
	}
	h3, _ := V1QuickHash3(prf, skeyid, 0x01020304, sai, idii)
	want, _ = prf.Compute(skeyid, concat([]byte{0, 1, 2, 3, 4}, sai, idii))
	if !bytes.Equal(h3, want) {
		t.Errorf("HASH(3)")
	}
	km, _ := V1KEYMAT(prf, skeyid, nil, 3, 0xc0ffee01, sai, idii, 80)
	k1, _ := prf.Compute(skeyid, concat([]byte{3, 0xc0, 0xff, 0xee, 0x01}, sai, idii))
	k2, _ := prf.Compute(skeyid, concat(k1, []byte{3, 0xc0, 0xff, 0xee, 0x01}, sai, idii))
	k3, _ := prf.Compute(skeyid, concat(k2, []byte{3, 0xc0, 0xff, 0xee, 0x01}, sai, idii))
	if !bytes.Equal(km, concat(k1, k2, k3)[:80]) {
		t.Errorf("KEYMAT")
	}
	iv, _ := V1PhaseOneIV(PRF_HMAC_SHA1, gxi, gxr, 16)
	if len(iv) != 16 {
		t.Errorf("IV length %d", len(iv))
	}
	c, err := NewV1Cipher(ENCR_AES_CBC, seq(0, 31))
	if err != nil {
		t.Fatal(err)
	}
	ct, err := c.Encrypt(iv, []byte("seventeen octets!"))
	if err != nil || len(ct) != 32 {
		t.Fatalf("ciphertext %d octets, %v", len(ct), err)
	}
	pt, err := c.Decrypt(iv, ct)
	if err != nil || !bytes.HasPrefix(pt, []byte("seventeen octets!")) {
		t.Fatalf("decrypt: %q %v", pt, err)
	}
	// An exchange without an IV chain is an error, not a panic in CBC.
	for _, bad := range [][]byte{nil, iv[:8], append(iv, 0)} {
		if _, err := c.Decrypt(bad, ct); !errors.Is(err, ErrV1IV) {
			t.Errorf("Decrypt with a %d-octet IV: %v", len(bad), err)
		}
		if _, err := c.Encrypt(bad, ct); !errors.Is(err, ErrV1IV) {
			t.Errorf("Encrypt with a %d-octet IV: %v", len(bad), err)
		}
	}
	if _, err := NewV1Cipher(ENCR_3DES, seq(0, 23)); err == nil {
		t.Errorf("3DES accepted")
	}
}
