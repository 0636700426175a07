package transform

import (
	"bytes"
	"testing"
)

func TestIntegKnownAnswers(t *testing.T) {
	tests := []struct {
		id        IntegID
		key, data []byte
		want      string
		source    string
	}{
		// RFC 4868 section 2.7.2.1, test case AUTH256-1.
		{AUTH_HMAC_SHA2_256_128, bytes.Repeat([]byte{0x0b}, 32), []byte("Hi There"),
			"198a607eb44bfbc69903a0f1cf2bbdc5", "RFC 4868 AUTH256-1"},
		// RFC 2202 #1 truncated to 96 bits (RFC 2404).
		{AUTH_HMAC_SHA1_96, bytes.Repeat([]byte{0x0b}, 20), []byte("Hi There"),
			"b617318655057264e28bc0b6", "RFC 2202 #1, 96 bits"},
		// RFC 4231 4.2 truncated as RFC 4868 specifies; the key length
		// differs from the IPsec key length, which Compute allows.
		{AUTH_HMAC_SHA2_384_192, bytes.Repeat([]byte{0x0b}, 20), []byte("Hi There"),
			"afd03944d84895626b0825f4ab46907f15f9dadbe4101ec6", "RFC 4231 4.2, 192 bits"},
		{AUTH_HMAC_SHA2_512_256, bytes.Repeat([]byte{0x0b}, 20), []byte("Hi There"),
			"87aa7cdea5ef619d4ff0b4241a1d6cb02379f4e2ce4ec2787ad0b30545e17cde", "RFC 4231 4.2, 256 bits"},
		// RFC 3566 section 4, test case 4, 96 bits.
		{AUTH_AES_XCBC_96, seq(0, 15), seq(0x00, 0x13), "47f51b4564966215b8985c63", "RFC 3566 #4"},
	}
	for _, tc := range tests {
		got, err := tc.id.Compute(tc.key, tc.data)
		if err != nil {
			t.Fatal(err)
		}
		equalHex(t, tc.id.String()+" "+tc.source, got, tc.want)
	}
}

func TestIntegSizes(t *testing.T) {
	for id, sizes := range map[IntegID][2]int{
		AUTH_HMAC_SHA1_96:      {20, 12},
		AUTH_AES_XCBC_96:       {16, 12},
		AUTH_HMAC_SHA2_256_128: {32, 16},
		AUTH_HMAC_SHA2_384_192: {48, 24},
		AUTH_HMAC_SHA2_512_256: {64, 32},
		AUTH_HMAC_MD5_96:       {0, 0},
	} {
		if id.KeySize() != sizes[0] || id.ICVSize() != sizes[1] {
			t.Errorf("%v: key %d ICV %d, want %v", id, id.KeySize(), id.ICVSize(), sizes)
		}
	}
}
