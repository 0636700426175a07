package transform

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"os"
	"strings"
	"testing"
)

type kdfVector struct {
	prf    PRFID
	fields map[string][]byte
}

// readKDFVectors parses testdata/ikev2_kdf.txt, a file in the layout of
// NIST's CAVP response files: "[SHA-1]" sections of "name = hex" lines.
func readKDFVectors(t *testing.T) []kdfVector {
	t.Helper()
	f, err := os.Open("testdata/ikev2_kdf.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	prfs := map[string]PRFID{"[SHA-1]": PRF_HMAC_SHA1, "[SHA-256]": PRF_HMAC_SHA2_256,
		"[SHA-384]": PRF_HMAC_SHA2_384, "[SHA-512]": PRF_HMAC_SHA2_512}
	var vs []kdfVector
	s := bufio.NewScanner(f)
	for s.Scan() {
		line := strings.TrimSpace(s.Text())
		switch {
		case line == "" || strings.HasPrefix(line, "#"):
		case strings.HasPrefix(line, "["):
			prf, ok := prfs[line]
			if !ok {
				t.Fatalf("unknown section %s", line)
			}
			vs = append(vs, kdfVector{prf: prf, fields: map[string][]byte{}})
		default:
			name, val, ok := strings.Cut(line, " = ")
			if !ok || len(vs) == 0 {
				t.Fatalf("bad line %q", line)
			}
			vs[len(vs)-1].fields[name] = unhex(t, val)
		}
	}
	if len(vs) == 0 {
		t.Fatal("no vectors")
	}
	return vs
}

func TestIKEv2KDFKnownAnswers(t *testing.T) {
	for _, v := range readKDFVectors(t) {
		f := v.fields
		name := v.prf.String()
		ni, nr, gir, girNew := f["Ni"], f["Nr"], f["g^ir"], f["g^ir (new)"]
		spiI, spiR := binary.BigEndian.Uint64(f["SPIi"]), binary.BigEndian.Uint64(f["SPIr"])

		skeyseed, err := SKEYSEED(v.prf, ni, nr, gir)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(skeyseed, f["SKEYSEED"]) {
			t.Errorf("%s: SKEYSEED %x", name, skeyseed)
		}
		dkm := f["DKM"]
		got, err := v.prf.Plus(skeyseed, concat(ni, nr, f["SPIi"], f["SPIr"]), len(dkm))
		if err != nil || !bytes.Equal(got, dkm) {
			t.Errorf("%s: DKM = prf+(SKEYSEED, Ni | Nr | SPIi | SPIr) differs (%v)", name, err)
		}

		// The seven keys are DKM cut in order, whatever the suite.
		for _, s := range []IKESuite{
			{ENCR_AES_CBC, 128, AUTH_HMAC_SHA1_96, v.prf, MODP_2048},
			{ENCR_AES_GCM_16, 256, AUTH_NONE, v.prf, CURVE_25519},
			{ENCR_CHACHA20_POLY1305, 0, AUTH_NONE, v.prf, ECP_256},
		} {
			keys, err := NewIKEKeys(s, ni, nr, gir, spiI, spiR)
			if err != nil {
				t.Fatal(err)
			}
			all := concat(keys.D, keys.AI, keys.AR, keys.EI, keys.ER, keys.PI, keys.PR)
			if n, _ := s.IKEKeyLength(); len(all) != n {
				t.Errorf("%s %v: %d key bytes, want %d", name, s.Encr, len(all), n)
			}
			if !bytes.HasPrefix(all, dkm) && !bytes.HasPrefix(dkm, all) {
				t.Errorf("%s %v: SK_d..SK_pr are not DKM in order", name, s.Encr)
			}
			if len(keys.D) != v.prf.KeySize() || len(keys.PI) != v.prf.KeySize() || len(keys.AI) != s.Integ.KeySize() {
				t.Errorf("%s %v: key lengths %d/%d/%d", name, s.Encr, len(keys.D), len(keys.AI), len(keys.PI))
			}
			keys.Zero()
			if !bytes.Equal(keys.D, make([]byte, len(keys.D))) || !bytes.Equal(keys.ER, make([]byte, len(keys.ER))) {
				t.Error("Zero left key bytes")
			}
		}

		skd := dkm[:v.prf.KeySize()]
		rekey, err := RekeySKEYSEED(v.prf, skd, girNew, ni, nr)
		if err != nil || !bytes.Equal(rekey, f["SKEYSEED(Rekey)"]) {
			t.Errorf("%s: SKEYSEED(Rekey) %x (%v)", name, rekey, err)
		}
		rk, err := RekeyIKEKeys(IKESuite{ENCR_AES_CBC, 256, AUTH_HMAC_SHA2_256_128, PRF_HMAC_SHA2_256, ECP_256},
			v.prf, skd, girNew, ni, nr, spiI, spiR)
		if err != nil {
			t.Fatal(err)
		}
		want, _ := PRF_HMAC_SHA2_256.Plus(rekey, concat(ni, nr, f["SPIi"], f["SPIr"]), 32)
		if !bytes.Equal(rk.D, want) {
			t.Errorf("%s: rekeyed SK_d is not prf+ of SKEYSEED(Rekey) with the new PRF", name)
		}

		for _, c := range []struct {
			field string
			gir   []byte
		}{{"DKM(Child SA)", nil}, {"DKM(Child SA D-H)", girNew}} {
			want, ok := f[c.field]
			if !ok {
				continue
			}
			got, err := ChildKEYMAT(v.prf, skd, c.gir, ni, nr, len(want))
			if err != nil || !bytes.Equal(got, want) {
				t.Errorf("%s: %s differs (%v)", name, c.field, err)
			}
			suite := ChildSuite{Encr: ENCR_AES_CBC, EncrKeyBits: 256, Integ: AUTH_HMAC_SHA2_256_128, ESN: NO_ESN}
			if c.gir != nil {
				suite.KE = MODP_2048
			}
			ck, err := DeriveChildKeys(v.prf, skd, suite, c.gir, ni, nr)
			if err != nil {
				t.Fatal(err)
			}
			i2r, r2i := ck.InitiatorToResponder, ck.ResponderToInitiator
			if !bytes.Equal(concat(i2r.Encr, i2r.Integ, r2i.Encr, r2i.Integ), want[:2*(32+32)]) {
				t.Errorf("%s: %s not split as encr_i | integ_i | encr_r | integ_r", name, c.field)
			}
			if &ck.Outbound(true).Encr[0] != &i2r.Encr[0] || &ck.Inbound(true).Encr[0] != &r2i.Encr[0] ||
				&ck.Outbound(false).Encr[0] != &r2i.Encr[0] || &ck.Inbound(false).Encr[0] != &i2r.Encr[0] {
				t.Errorf("%s: Outbound/Inbound mixed up", name)
			}
			ck.Zero()
		}
	}
}

// RFC 7296 section 2.14: with AES-XCBC-PRF-128 only the first 64 bits of
// each nonce key SKEYSEED. Built so that the key is RFC 4434's test key.
func TestSKEYSEEDXCBCNonceHalves(t *testing.T) {
	ni := unhex(t, "0001020304050607 a0a1a2a3a4a5a6a7")
	nr := unhex(t, "08090a0b0c0d0e0f b0b1b2b3b4b5b6b7")
	got, err := SKEYSEED(PRF_AES128_XCBC, ni, nr, seq(0x00, 0x13))
	if err != nil {
		t.Fatal(err)
	}
	equalHex(t, "SKEYSEED", got, "47f51b4564966215b8985c63055ed308")
	if _, err := SKEYSEED(PRF_AES128_XCBC, ni[:7], nr, nil); err == nil {
		t.Error("short nonce accepted")
	}
	// All of the nonces still go into prf+.
	s := IKESuite{ENCR_AES_CBC, 128, AUTH_AES_XCBC_96, PRF_AES128_XCBC, MODP_2048}
	k1, _ := NewIKEKeys(s, ni, nr, seq(0, 0x13), 1, 2)
	k2, _ := NewIKEKeys(s, append(ni[:8:8], 0xff), nr, seq(0, 0x13), 1, 2)
	if bytes.Equal(k1.D, k2.D) {
		t.Error("nonce tails ignored by prf+")
	}
	if len(k1.D) != 16 || len(k1.AI) != 16 || len(k1.EI) != 16 {
		t.Errorf("XCBC key lengths %d %d %d", len(k1.D), len(k1.AI), len(k1.EI))
	}
}

func TestSuitesValidate(t *testing.T) {
	bad := []IKESuite{
		{ENCR_AES_GCM_16, 128, AUTH_HMAC_SHA2_256_128, PRF_HMAC_SHA2_256, ECP_256},
		{ENCR_AES_CBC, 128, AUTH_NONE, PRF_HMAC_SHA2_256, ECP_256},
		{ENCR_AES_CBC, 128, AUTH_HMAC_SHA2_256_128, PRF_HMAC_MD5, ECP_256},
		{ENCR_AES_CBC, 128, AUTH_HMAC_SHA2_256_128, PRF_HMAC_SHA2_256, MODP_768},
		{ENCR_3DES, 0, AUTH_HMAC_SHA2_256_128, PRF_HMAC_SHA2_256, ECP_256},
	}
	for _, s := range bad {
		if s.Validate() == nil {
			t.Errorf("%+v accepted", s)
		}
	}
	if _, err := DeriveChildKeys(PRF_HMAC_SHA2_256, make([]byte, 32),
		ChildSuite{Encr: ENCR_AES_GCM_16, EncrKeyBits: 128, Integ: AUTH_HMAC_SHA1_96}, nil, nil, nil); err == nil {
		t.Error("AEAD with integrity accepted for ESP")
	}
	ck, err := DeriveChildKeys(PRF_HMAC_SHA2_256, make([]byte, 32),
		ChildSuite{Encr: ENCR_AES_GCM_16, EncrKeyBits: 256}, nil, make([]byte, 32), make([]byte, 32))
	if err != nil || len(ck.InitiatorToResponder.Encr) != 36 || len(ck.InitiatorToResponder.Integ) != 0 {
		t.Errorf("ESP AES-GCM-256 keys: %v", err)
	}
}

// The protectors built from derived keys talk to each other in the right
// directions.
func TestIKEKeysProtectors(t *testing.T) {
	s := IKESuite{ENCR_AES_GCM_16, 256, AUTH_NONE, PRF_HMAC_SHA2_384, ECP_384}
	keys, err := NewIKEKeys(s, make([]byte, 32), make([]byte, 32), make([]byte, 48), 1, 2)
	if err != nil {
		t.Fatal(err)
	}
	iSend, rSend, err := keys.Protectors(s, nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := iSend.Seal([]byte("hdr"), []byte("IDi AUTH SA TSi TSr"))
	if _, err := rSend.Open([]byte("hdr"), body); err == nil {
		t.Error("responder-direction keys opened an initiator message")
	}
	if pt, err := iSend.Open([]byte("hdr"), body); err != nil || string(pt) != "IDi AUTH SA TSi TSr" {
		t.Errorf("open: %q %v", pt, err)
	}
	iSend.Close()
	rSend.Close()
}

func BenchmarkNewIKEKeys(b *testing.B) {
	s := IKESuite{ENCR_AES_GCM_16, 256, AUTH_NONE, PRF_HMAC_SHA2_256, CURVE_25519}
	ni, nr, gir := make([]byte, 32), make([]byte, 32), make([]byte, 32)
	for b.Loop() {
		k, err := NewIKEKeys(s, ni, nr, gir, 1, 2)
		if err != nil {
			b.Fatal(err)
		}
		k.Zero()
	}
}
