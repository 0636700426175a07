package e2e

import (
	"crypto/aes"
	"crypto/cipher"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"net/netip"
	"regexp"
	"testing"
)

// gcmKeyRE finds an SA's block in `ip xfrm state` by its destination and
// SPI (both ends may have drawn the same SPI: SPIs are per destination),
// and its AEAD key: the 16-byte AES key followed by the 4-byte salt (RFC
// 4106).
func gcmKeyRE(dst netip.Addr, spi uint32) *regexp.Regexp {
	return regexp.MustCompile(fmt.Sprintf(`(?s)dst %s\s+proto esp spi 0x%08x .*?aead rfc4106\(gcm\(aes\)\) 0x([0-9a-f]{40}) 128`,
		regexp.QuoteMeta(dst.String()), spi))
}

// checkKeysDecrypt captures an ESP packet of the tunnel on B's WAN while A's
// LAN host pings B's, takes the key `ip xfrm state` shows on B for that SA,
// and decrypts the packet with it outside the kernel (RFC 4106: nonce =
// salt | IV, AAD = SPI | sequence number): what the kernel shows is the
// key the traffic is really encrypted with, and the ping is inside.
func checkKeysDecrypt(t *testing.T, dp *daemonPair) {
	t.Helper()
	p := dp.pair
	c := dp.gb.child("net")
	if c.Encap {
		return // ESP in UDP: captureESP reads plain ESP only
	}
	spi := parseSPI(t, c.SPIIn)
	esp := captureESP(t, p.b, p.a.outer, spi, func() { ping(t, p.a.lanH, p.a.lanA, p.b.lanA, 3, 5) })
	out, err := run(p.b.Netns, "", "ip", "xfrm", "state")
	if err != nil {
		t.Fatalf("ip xfrm state: %v", err)
	}
	m := gcmKeyRE(p.b.outer, spi).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("site B: no AES-GCM-128 key for SPI %#x in `ip xfrm state`:\n%s", spi, out)
	}
	key, _ := hex.DecodeString(m[1])
	inner, err := openESPGCM(key, esp)
	if err != nil {
		t.Fatalf("the key `ip xfrm state` shows for SA %#x does not decrypt its traffic: %v", spi, err)
	}
	var src, dst netip.Addr
	var proto, icmp byte
	switch {
	case p.fam == ipv4 && len(inner) >= 20 && inner[0]>>4 == 4:
		src, dst = netip.AddrFrom4([4]byte(inner[12:16])), netip.AddrFrom4([4]byte(inner[16:20]))
		proto, icmp = inner[9], 1
	case p.fam == ipv6 && len(inner) >= 40 && inner[0]>>4 == 6:
		src, dst = netip.AddrFrom16([16]byte(inner[8:24])), netip.AddrFrom16([16]byte(inner[24:40]))
		proto, icmp = inner[6], 58
	default:
		t.Fatalf("decrypted SA %#x: not an IPv%d packet: %x", spi, p.fam, inner[:min(len(inner), 40)])
	}
	if src != p.a.lanA || dst != p.b.lanA || proto != icmp {
		t.Errorf("decrypted SA %#x: protocol %d from %s to %s, want ICMP from %s to %s", spi, proto, src, dst, p.a.lanA, p.b.lanA)
	}
	t.Logf("site B: the key `ip xfrm state` shows for SA %#x decrypts its ESP: ICMP %s → %s", spi, src, dst)
}

// openESPGCM decrypts a tunnel-mode ESP packet (from the ESP header on)
// of an rfc4106(gcm(aes)) SA with a 16-byte ICV and returns the inner IP
// packet.
func openESPGCM(key, esp []byte) ([]byte, error) {
	const hdr, ivLen = 8, 8
	if len(key) < 5 || len(esp) < hdr+ivLen+16+2 {
		return nil, fmt.Errorf("short key or packet")
	}
	block, err := aes.NewCipher(key[:len(key)-4])
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	nonce := append(append([]byte(nil), key[len(key)-4:]...), esp[hdr:hdr+ivLen]...)
	plain, err := aead.Open(nil, nonce, esp[hdr+ivLen:], esp[:hdr])
	if err != nil {
		return nil, fmt.Errorf("sequence %d: %w", binary.BigEndian.Uint32(esp[4:8]), err)
	}
	// Trailer: padding, pad length, next header (4: IPv4, 41: IPv6).
	padLen, next := int(plain[len(plain)-2]), plain[len(plain)-1]
	if (next != 4 && next != 41) || padLen+2 > len(plain) {
		return nil, fmt.Errorf("trailer: pad length %d, next header %d", padLen, next)
	}
	return plain[:len(plain)-2-padLen], nil
}
