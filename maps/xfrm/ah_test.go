package xfrm

import (
	"bytes"
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"

	"github.com/xdpsec/xdpsec/ike/transform"
	"github.com/xdpsec/xdpsec/maps"
)

func ahState(spi uint32, src, dst netip.Addr) State {
	return State{Src: src, Dst: dst, SPI: spi, Proto: ProtoAH, Mode: ModeTunnel, Reqid: 7, ReplayWindow: 32,
		Crypto: Crypto{Integ: transform.AUTH_HMAC_SHA2_256_128, IntegKey: make([]byte, 32)}}
}

// TestEncodeAH: an AH state is IPPROTO_AH with XFRMA_ALG_AUTH_TRUNC and
// no cipher; an encryption algorithm, an encryption key or UDP
// encapsulation is refused.
func TestEncodeAH(t *testing.T) {
	s := ahState(0x1234, addrA, addrB)
	requireLittleEndian(t)
	req, err := encodeState(nl.XFRM_MSG_NEWSA, &s, nil)
	if err != nil {
		t.Fatal(err)
	}
	p := req.payload()
	if proto := nl.DeserializeXfrmUsersaInfo(p).Id.Proto; proto != unix.IPPROTO_AH {
		t.Errorf("id.proto %d, want %d (AH)", proto, unix.IPPROTO_AH)
	}
	if f := nl.DeserializeXfrmUsersaInfo(p).Flags; f&stateAlign4 == 0 {
		t.Errorf("IPv4 AH state without XFRM_STATE_ALIGN4: flags %#x", f)
	}
	s6 := ahState(0x1234, addrA6, addrB6)
	if req6, err := encodeState(nl.XFRM_MSG_NEWSA, &s6, nil); err != nil || nl.DeserializeXfrmUsersaInfo(req6.payload()).Flags&stateAlign4 != 0 {
		t.Errorf("IPv6 AH state with XFRM_STATE_ALIGN4 (its AH is 64-bit aligned): %v", err)
	}
	a, _ := attrs(p[nl.SizeofXfrmUsersaInfo:])
	if _, ok := a[nl.XFRMA_ALG_CRYPT]; ok {
		t.Error("AH state with XFRMA_ALG_CRYPT")
	}
	if _, ok := a[nl.XFRMA_ALG_AEAD]; ok {
		t.Error("AH state with XFRMA_ALG_AEAD")
	}
	auth := make([]byte, 64)
	copy(auth, "hmac(sha256)")
	auth = append(auth, 0, 1, 0, 0, 128, 0, 0, 0) // 256-bit key, 128-bit ICV
	auth = append(auth, make([]byte, 32)...)
	if !bytes.Equal(a[nl.XFRMA_ALG_AUTH_TRUNC], auth) {
		t.Errorf("XFRMA_ALG_AUTH_TRUNC\n got % x\nwant % x", a[nl.XFRMA_ALG_AUTH_TRUNC], auth)
	}
	id, err := encodeSAID(nl.XFRM_MSG_GETSA, SAID{Dst: addrB, SPI: 0x1234, Proto: ProtoAH})
	if err != nil || nl.DeserializeXfrmUsersaId(id.payload()).Proto != unix.IPPROTO_AH {
		t.Errorf("SA ID not AH: %v", err)
	}
	for name, bad := range map[string]func(*State){
		"encryption":     func(s *State) { s.Crypto.Encr = transform.ENCR_AES_CBC },
		"encryption key": func(s *State) { s.Crypto.EncrKey = make([]byte, 16) },
		"encap":          func(s *State) { s.Encap = &Encap{SrcPort: 4500, DstPort: 4500} },
		"short key":      func(s *State) { s.Crypto.IntegKey = make([]byte, 20) },
	} {
		s := ahState(0x1234, addrA, addrB)
		bad(&s)
		if _, err := encodeState(0, &s, nil); err == nil {
			t.Errorf("AH state with %s accepted", name)
		}
	}
	if enc, integ, err := KeyLengths(0, 0, transform.AUTH_HMAC_SHA2_512_256); err != nil || enc != 0 || integ != 64 {
		t.Errorf("AH key lengths %d %d %v", enc, integ, err)
	}
}

// TestAHState installs AH SAs (needs a kernel with AH: the VM's):
// allocated and completed, read back as AH, listed, deleted by their
// protocol; an ESP SA with the same SPI and destination is another SA.
func TestAHState(t *testing.T) {
	requireESP(t)
	c, ns := newConn(t)
	r := maps.SPIRange{Base: maps.DefaultSPIBase, Count: 0x1000}
	spi, err := c.AllocSPI(ProtoAH, addrB, addrA, r)
	if err != nil {
		if strings.Contains(err.Error(), "not found") || strings.Contains(err.Error(), "not supported") {
			t.Skipf("skipped: kernel has no AH transform: %v", err)
		}
		t.Fatal(err)
	}
	s := ahState(spi, addrB, addrA)
	if _, err := c.UpdateState(s); err != nil {
		t.Fatal(err)
	}
	got, err := c.GetState(s.ID())
	if err != nil {
		t.Fatal(err)
	}
	if got.Proto != ProtoAH || got.Larval || got.Algorithms.Integ != "hmac(sha256)" || got.Algorithms.Encr != "" || got.SPI != spi {
		t.Errorf("read back %+v", got)
	}
	if out := ns.MustRun(t, "ip", "xfrm", "state"); !strings.Contains(out, "proto ah spi") {
		t.Errorf("ip xfrm state lacks the AH SA:\n%s", out)
	}
	if _, err := c.GetState(SAID{Dst: addrA, SPI: spi}); !errors.Is(err, ErrNoSA) {
		t.Errorf("the AH SA found as ESP: %v", err)
	}
	list, err := c.ListStates()
	if err != nil || len(list) != 1 || list[0].Proto != ProtoAH {
		t.Errorf("list %+v %v", list, err)
	}
	if err := c.DeleteState(s.ID()); err != nil {
		t.Fatal(err)
	}
	if _, err := c.GetState(s.ID()); !errors.Is(err, ErrNoSA) {
		t.Errorf("after delete: %v", err)
	}
}
