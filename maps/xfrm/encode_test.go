package xfrm

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"

	"github.com/xdpsec/xdpsec/ike/transform"
	"github.com/xdpsec/xdpsec/maps"
)

// The literal byte strings below are for little-endian hosts (x86, arm64),
// where native-order netlink fields are little-endian.
func requireLittleEndian(t *testing.T) {
	t.Helper()
	if native.Uint16([]byte{1, 0}) != 1 {
		t.Skip("skipped: literal netlink bytes are written for little-endian hosts")
	}
}

// Offsets in struct xfrm_usersa_info (linux/xfrm.h).
const (
	offSPI    = 56 + 16 // after sel and id.daddr
	offProto  = offSPI + 4
	offSaddr  = 56 + 24
	offLft    = offSaddr + 16
	offReqid  = 208
	offFamily = 212
	offMode   = 214
	offReplay = 215
	offFlags  = 216
)

func gcmState() State {
	return State{
		Src: netip.MustParseAddr("192.0.2.1"), Dst: netip.MustParseAddr("192.0.2.2"),
		SPI: 0xc0000102, Mode: ModeTunnel, Reqid: 7,
		Crypto: Crypto{
			Encr: transform.ENCR_AES_GCM_16, KeyBits: 128,
			EncrKey: append(testKey(16, 0xa5), 0xde, 0xad, 0xbe, 0xef),
		},
		ReplayWindow: 32,
	}
}

func TestEncodeStateAEAD(t *testing.T) {
	requireLittleEndian(t)
	s := gcmState()
	req, err := encodeState(nl.XFRM_MSG_NEWSA, &s, nil)
	if err != nil {
		t.Fatal(err)
	}
	if req.msgType() != nl.XFRM_MSG_NEWSA {
		t.Errorf("type %#x", req.msgType())
	}
	p := req.payload()
	if got := p[offSPI : offSPI+4]; !bytes.Equal(got, []byte{0xc0, 0, 0x01, 0x02}) {
		t.Errorf("SPI bytes % x, want network order c0 00 01 02", got)
	}
	if p[offProto] != 50 {
		t.Errorf("proto %d", p[offProto])
	}
	if got := p[56:60]; !bytes.Equal(got, []byte{192, 0, 2, 2}) {
		t.Errorf("daddr % x", got)
	}
	if got := p[offSaddr : offSaddr+4]; !bytes.Equal(got, []byte{192, 0, 2, 1}) {
		t.Errorf("saddr % x", got)
	}
	if native.Uint32(p[offReqid:]) != 7 || native.Uint16(p[offFamily:]) != unix.AF_INET || p[offMode] != 1 {
		t.Errorf("reqid %d family %d mode %d", native.Uint32(p[offReqid:]), native.Uint16(p[offFamily:]), p[offMode])
	}
	if p[offReplay] != 32 || p[offFlags] != stateAFUnspec {
		t.Errorf("replay_window %d flags %#x, want 32 and XFRM_STATE_AF_UNSPEC", p[offReplay], p[offFlags])
	}
	// No limits: XFRM_INF for bytes and packets, 0 for times.
	for i := 0; i < 4; i++ {
		if v := native.Uint64(p[offLft+8*i:]); v != nl.XFRM_INF {
			t.Errorf("lifetime field %d = %#x, want XFRM_INF", i, v)
		}
	}
	a, err := attrs(p[nl.SizeofXfrmUsersaInfo:])
	if err != nil {
		t.Fatal(err)
	}
	aead := a[nl.XFRMA_ALG_AEAD]
	want := make([]byte, 64)
	copy(want, "rfc4106(gcm(aes))")
	want = append(want, 160, 0, 0, 0, 128, 0, 0, 0) // 20 key bytes (salt included) in bits, ICV 128 bits
	want = append(want, testKey(16, 0xa5)...)
	want = append(want, 0xde, 0xad, 0xbe, 0xef) // the salt last
	if !bytes.Equal(aead, want) {
		t.Errorf("XFRMA_ALG_AEAD\n got % x\nwant % x", aead, want)
	}
	for _, typ := range []uint16{nl.XFRMA_ALG_CRYPT, nl.XFRMA_ALG_AUTH_TRUNC, nl.XFRMA_REPLAY_ESN_VAL, nl.XFRMA_ENCAP, nl.XFRMA_MARK, nl.XFRMA_IF_ID, nl.XFRMA_OFFLOAD_DEV} {
		if _, ok := a[typ]; ok {
			t.Errorf("unexpected attribute %d", typ)
		}
	}
	req.zero()
	if !bytes.Equal(req.b, make([]byte, len(req.b))) {
		t.Error("request not zeroed")
	}
}

func TestEncodeStateCBC(t *testing.T) {
	requireLittleEndian(t)
	s := State{
		Src: netip.MustParseAddr("2001:db8::1"), Dst: netip.MustParseAddr("2001:db8::2"),
		SPI: 0x1234, Mode: ModeTransport,
		Crypto: Crypto{
			Encr: transform.ENCR_AES_CBC, KeyBits: 256, Integ: transform.AUTH_HMAC_SHA2_384_192,
			EncrKey: testKey(32, 0xa5), IntegKey: testKey(48, 0x5a),
		},
		Selector: Selector{Src: netip.MustParsePrefix("2001:db8::1/128"), Dst: netip.MustParsePrefix("2001:db8::2/128"), Proto: unix.IPPROTO_UDP, DstPort: 4789},
		Lifetime: Lifetime{SoftBytes: 1 << 30, HardPackets: 1 << 20, SoftAdd: 50 * time.Minute, HardAdd: time.Hour},
	}
	req, err := encodeState(nl.XFRM_MSG_UPDSA, &s, nil)
	if err != nil {
		t.Fatal(err)
	}
	p := req.payload()
	if native.Uint16(p[offFamily:]) != unix.AF_INET6 || p[offMode] != 0 || p[offFlags] != 0 {
		t.Errorf("family %d mode %d flags %#x", native.Uint16(p[offFamily:]), p[offMode], p[offFlags])
	}
	lft := []uint64{1 << 30, nl.XFRM_INF, nl.XFRM_INF, 1 << 20, 3000, 3600, 0, 0}
	for i, want := range lft {
		if v := native.Uint64(p[offLft+8*i:]); v != want {
			t.Errorf("lifetime field %d = %d, want %d", i, v, want)
		}
	}
	// Selector: daddr, saddr, dport (network order) with mask, family, prefix lengths, proto.
	if !bytes.Equal(p[32:36], []byte{0x12, 0xb5, 0xff, 0xff}) {
		t.Errorf("dport/mask % x", p[32:36])
	}
	if native.Uint16(p[40:]) != unix.AF_INET6 || p[42] != 128 || p[43] != 128 || p[44] != unix.IPPROTO_UDP {
		t.Errorf("selector family/prefixes/proto % x", p[40:45])
	}
	a, _ := attrs(p[nl.SizeofXfrmUsersaInfo:])
	crypt := make([]byte, 64)
	copy(crypt, "cbc(aes)")
	crypt = append(crypt, 0, 1, 0, 0) // 256 bits
	crypt = append(crypt, testKey(32, 0xa5)...)
	if !bytes.Equal(a[nl.XFRMA_ALG_CRYPT], crypt) {
		t.Errorf("XFRMA_ALG_CRYPT\n got % x\nwant % x", a[nl.XFRMA_ALG_CRYPT], crypt)
	}
	auth := make([]byte, 64)
	copy(auth, "hmac(sha384)")
	auth = append(auth, 0x80, 1, 0, 0, 192, 0, 0, 0) // 384-bit key, 192-bit ICV
	auth = append(auth, testKey(48, 0x5a)...)
	if !bytes.Equal(a[nl.XFRMA_ALG_AUTH_TRUNC], auth) {
		t.Errorf("XFRMA_ALG_AUTH_TRUNC\n got % x\nwant % x", a[nl.XFRMA_ALG_AUTH_TRUNC], auth)
	}
}

func TestEncodeStateOptions(t *testing.T) {
	requireLittleEndian(t)
	s := gcmState()
	s.ESN = true
	s.ReplayWindow = 100
	s.Encap = &Encap{SrcPort: 4500, DstPort: 31337}
	s.IfID = 0x2a
	s.Mark = Mark{Value: 0x10}
	req, err := encodeState(nl.XFRM_MSG_NEWSA, &s, nil)
	if err != nil {
		t.Fatal(err)
	}
	p := req.payload()
	if p[offReplay] != 0 || p[offFlags] != stateESN|stateAFUnspec {
		t.Errorf("replay_window %d flags %#x, want 0 and ESN|AF_UNSPEC", p[offReplay], p[offFlags])
	}
	a, _ := attrs(p[nl.SizeofXfrmUsersaInfo:])
	esn := []byte{
		4, 0, 0, 0, // bmp_len: ceil(100/32) words
		0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, // oseq, seq, oseq_hi, seq_hi
		100, 0, 0, 0, // replay_window
	}
	esn = append(esn, make([]byte, 16)...) // the bitmap
	if !bytes.Equal(a[nl.XFRMA_REPLAY_ESN_VAL], esn) {
		t.Errorf("XFRMA_REPLAY_ESN_VAL\n got % x\nwant % x", a[nl.XFRMA_REPLAY_ESN_VAL], esn)
	}
	encap := append([]byte{2, 0, 0x11, 0x94, 0x7a, 0x69, 0, 0}, make([]byte, 16)...) // ESPINUDP, 4500, 31337, no OA
	if !bytes.Equal(a[nl.XFRMA_ENCAP], encap) {
		t.Errorf("XFRMA_ENCAP % x, want % x", a[nl.XFRMA_ENCAP], encap)
	}
	if !bytes.Equal(a[nl.XFRMA_MARK], []byte{0x10, 0, 0, 0, 0xff, 0xff, 0xff, 0xff}) {
		t.Errorf("XFRMA_MARK % x", a[nl.XFRMA_MARK])
	}
	if !bytes.Equal(a[nl.XFRMA_IF_ID], []byte{0x2a, 0, 0, 0}) {
		t.Errorf("XFRMA_IF_ID % x", a[nl.XFRMA_IF_ID])
	}

	// A window above 32 without ESN also needs the ESN attribute: the
	// legacy field would be cut to 32.
	s.ESN = false
	s.ReplayWindow = 64
	req, err = encodeState(nl.XFRM_MSG_NEWSA, &s, nil)
	if err != nil {
		t.Fatal(err)
	}
	if p := req.payload(); p[offReplay] != 0 {
		t.Errorf("window 64: legacy replay_window %d, want 0", p[offReplay])
	} else if a, _ := attrs(p[nl.SizeofXfrmUsersaInfo:]); a[nl.XFRMA_REPLAY_ESN_VAL] == nil {
		t.Error("window 64 without the replay_esn attribute")
	}

	// A window above 255 without ESN also needs the ESN attribute.
	s.ESN = false
	s.ReplayWindow = 1024
	req, _ = encodeState(nl.XFRM_MSG_NEWSA, &s, nil)
	p = req.payload()
	a, _ = attrs(p[nl.SizeofXfrmUsersaInfo:])
	if p[offReplay] != 0 || p[offFlags]&stateESN != 0 || len(a[nl.XFRMA_REPLAY_ESN_VAL]) != 24+4*32 {
		t.Errorf("window 1024: replay_window %d flags %#x esn attribute %d bytes", p[offReplay], p[offFlags], len(a[nl.XFRMA_REPLAY_ESN_VAL]))
	}
}

func TestEncodeStateErrors(t *testing.T) {
	for name, mod := range map[string]func(*State){
		"no SPI":           func(s *State) { s.SPI = 0 },
		"no source":        func(s *State) { s.Src = netip.Addr{} },
		"mixed families":   func(s *State) { s.Dst = netip.MustParseAddr("2001:db8::1") },
		"ESN no window":    func(s *State) { s.ESN, s.ReplayWindow = true, 0 },
		"window too large": func(s *State) { s.ReplayWindow = 5000 },
		"bad mode":         func(s *State) { s.Mode = 4 },
	} {
		s := gcmState()
		mod(&s)
		if _, err := encodeState(nl.XFRM_MSG_NEWSA, &s, nil); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

// The offload attribute is struct xfrm_user_offload: int ifindex, __u8
// flags, padding to 8 bytes, after a 4-byte attribute header of type 28.
func TestEncodeOffloadAttribute(t *testing.T) {
	requireLittleEndian(t)
	tests := []struct {
		name    string
		mod     func(*State)
		ifindex int
		want    []byte
	}{
		{"crypto outbound IPv4", func(s *State) { s.Offload.Mode = OffloadYes }, 7,
			[]byte{0x0c, 0x00, 0x1c, 0x00, 0x07, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00}},
		{"crypto inbound IPv4", func(s *State) { s.Offload.Mode, s.Inbound = OffloadAuto, true }, 7,
			[]byte{0x0c, 0x00, 0x1c, 0x00, 0x07, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00}},
		{"packet outbound IPv6", func(s *State) {
			s.Offload.Mode = OffloadPacket
			s.Src, s.Dst = netip.MustParseAddr("2001:db8::1"), netip.MustParseAddr("2001:db8::2")
		}, 0x0102,
			[]byte{0x0c, 0x00, 0x1c, 0x00, 0x02, 0x01, 0x00, 0x00, 0x05, 0x00, 0x00, 0x00}},
		{"packet inbound IPv6", func(s *State) {
			s.Offload.Mode, s.Inbound = OffloadPacket, true
			s.Src, s.Dst = netip.MustParseAddr("2001:db8::1"), netip.MustParseAddr("2001:db8::2")
		}, 3,
			[]byte{0x0c, 0x00, 0x1c, 0x00, 0x03, 0x00, 0x00, 0x00, 0x07, 0x00, 0x00, 0x00}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := gcmState()
			tt.mod(&s)
			req, err := encodeState(nl.XFRM_MSG_NEWSA, &s, newOffloadAttr(tt.ifindex, &s))
			if err != nil {
				t.Fatal(err)
			}
			b := req.finish(1, 0)
			// The offload attribute is the last one of the message.
			if got := b[len(b)-12:]; !bytes.Equal(got, tt.want) {
				t.Errorf("XFRMA_OFFLOAD_DEV\n got % x\nwant % x", got, tt.want)
			}
			if int(native.Uint32(b)) != len(b) {
				t.Errorf("nlmsg_len %d, message %d bytes", native.Uint32(b), len(b))
			}
			// Without offload, the message is the same minus those 12 bytes.
			plain, _ := encodeState(nl.XFRM_MSG_NEWSA, &s, nil)
			if pb := plain.finish(1, 0); !bytes.Equal(pb[4:], b[4:len(b)-12]) {
				t.Error("offload changed more than the appended attribute")
			}
		})
	}
}

// A kernel reply has the layout of our request, so parsing what we encode
// checks both directions.
func TestParseStateRoundTrip(t *testing.T) {
	s := gcmState()
	s.ESN, s.ReplayWindow = true, 64
	s.Encap = &Encap{SrcPort: 4500, DstPort: 4501}
	s.IfID = 9
	s.Mark = Mark{Value: 3, Mask: 0xff}
	s.Lifetime = Lifetime{SoftBytes: 100, HardBytes: 200, SoftAdd: time.Minute, HardUse: time.Hour}
	req, err := encodeState(nl.XFRM_MSG_NEWSA, &s, &offloadAttr{ifindex: 4, flags: offloadInbound})
	if err != nil {
		t.Fatal(err)
	}
	got, err := parseState(req.payload())
	if err != nil {
		t.Fatal(err)
	}
	want := StateInfo{
		Src: s.Src, Dst: s.Dst, SPI: s.SPI, Mode: ModeTunnel, Reqid: 7,
		Algorithms:   Algorithms{AEAD: "rfc4106(gcm(aes))", EncrKeyBits: 160, ICVBits: 128},
		ESN:          true,
		ReplayWindow: 64,
		IfID:         9,
		Mark:         s.Mark,
		Lifetime:     s.Lifetime,
		Offload:      &OffloadInfo{Ifindex: 4, Inbound: true},
	}
	if *got.Encap != *s.Encap || *got.Offload != *want.Offload {
		t.Errorf("encap %+v offload %+v", got.Encap, got.Offload)
	}
	got.Encap, got.Offload, want.Offload = nil, nil, nil
	if got != want {
		t.Errorf("parsed\n %+v\nwant\n %+v", got, want)
	}
}

func TestEncodeSAID(t *testing.T) {
	requireLittleEndian(t)
	req, err := encodeSAID(nl.XFRM_MSG_DELSA, SAID{Dst: netip.MustParseAddr("192.0.2.2"), SPI: 0xc0000001, Mark: Mark{Value: 5, Mask: 0xf}})
	if err != nil {
		t.Fatal(err)
	}
	want := append([]byte{192, 0, 2, 2}, make([]byte, 12)...)
	want = append(want, 0xc0, 0, 0, 1, 2, 0, 50, 0) // spi, family AF_INET, proto ESP, pad
	want = append(want, 12, 0, 21, 0, 5, 0, 0, 0, 0xf, 0, 0, 0)
	if !bytes.Equal(req.payload(), want) {
		t.Errorf("xfrm_usersa_id\n got % x\nwant % x", req.payload(), want)
	}
}

func TestEncodeAllocSPI(t *testing.T) {
	requireLittleEndian(t)
	req, err := encodeAllocSPI(ProtoESP, netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2"), maps.SPIRange{Base: maps.DefaultSPIBase, Count: 0x10000})
	if err != nil {
		t.Fatal(err)
	}
	p := req.payload()
	if len(p) != nl.SizeofXfrmUserSpiInfo || req.msgType() != nl.XFRM_MSG_ALLOCSPI {
		t.Fatalf("%d bytes, type %#x", len(p), req.msgType())
	}
	if min, max := native.Uint32(p[224:]), native.Uint32(p[228:]); min != 0xc0000000 || max != 0xc000ffff {
		t.Errorf("min %#x max %#x", min, max)
	}
	if p[offProto] != 50 || !bytes.Equal(p[offSaddr:offSaddr+4], []byte{192, 0, 2, 1}) || !bytes.Equal(p[56:60], []byte{192, 0, 2, 2}) {
		t.Error("addresses or proto wrong")
	}
	for _, r := range []maps.SPIRange{{Base: 0xc0000000}, {Base: 1, Count: 10}, {Base: 0xffffff00, Count: 0x200}} {
		if _, err := encodeAllocSPI(ProtoESP, probeSrc4, probeDst4, r); err == nil {
			t.Errorf("range %+v accepted", r)
		}
	}
}

// Offsets in struct xfrm_userpolicy_info and struct xfrm_user_tmpl.
const (
	offPolPriority = 152
	offPolDir      = 160
	offPolAction   = 161
)

func TestEncodePolicy(t *testing.T) {
	requireLittleEndian(t)
	ps, err := RouteBasedPolicies(Tunnel{
		Local: netip.MustParseAddr("192.0.2.1"), Remote: netip.MustParseAddr("198.51.100.2"),
		Reqid: 5, IfID: 7, Priority: 100,
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(ps) != 6 {
		t.Fatalf("%d policies, want 6", len(ps))
	}
	in6 := ps[4] // ::/0, direction in
	req, err := encodePolicy(nl.XFRM_MSG_NEWPOLICY, &in6)
	if err != nil {
		t.Fatal(err)
	}
	p := req.payload()
	if native.Uint16(p[40:]) != unix.AF_INET6 || p[42] != 0 || p[43] != 0 || !bytes.Equal(p[:32], make([]byte, 32)) {
		t.Errorf("selector % x", p[:56])
	}
	if native.Uint32(p[offPolPriority:]) != 100 || p[offPolDir] != 0 || p[offPolAction] != 0 {
		t.Errorf("priority %d dir %d action %d", native.Uint32(p[offPolPriority:]), p[offPolDir], p[offPolAction])
	}
	a, _ := attrs(p[nl.SizeofXfrmUserpolicyInfo:])
	tmpl := append([]byte{192, 0, 2, 1}, make([]byte, 12)...) // id.daddr: the peer sends to us
	tmpl = append(tmpl, 0, 0, 0, 0, 50, 0, 0, 0)              // spi any, proto ESP
	tmpl = append(tmpl, 2, 0, 0, 0)                           // outer family AF_INET, pad
	tmpl = append(tmpl, 198, 51, 100, 2)                      // saddr: the peer
	tmpl = append(tmpl, make([]byte, 12)...)
	tmpl = append(tmpl, 5, 0, 0, 0, 1, 0, 0, 0) // reqid, mode tunnel, share, optional, pad
	tmpl = append(tmpl, bytes.Repeat([]byte{0xff}, 12)...)
	if !bytes.Equal(a[nl.XFRMA_TMPL], tmpl) {
		t.Errorf("XFRMA_TMPL\n got % x\nwant % x", a[nl.XFRMA_TMPL], tmpl)
	}
	if !bytes.Equal(a[nl.XFRMA_IF_ID], []byte{7, 0, 0, 0}) {
		t.Errorf("XFRMA_IF_ID % x", a[nl.XFRMA_IF_ID])
	}
	got, err := parsePolicy(p)
	if err != nil {
		t.Fatal(err)
	}
	if got.Selector != in6.Selector || got.Dir != DirIn || got.IfID != 7 || got.Priority != 100 || len(got.Templates) != 1 || got.Templates[0] != in6.Templates[0] {
		t.Errorf("parsed %+v, want %+v", got, in6)
	}

	del, err := encodePolicyID(&in6)
	if err != nil {
		t.Fatal(err)
	}
	if del.msgType() != nl.XFRM_MSG_DELPOLICY || len(del.payload()) != nl.SizeofXfrmUserpolicyId+8 || del.payload()[60] != 0 {
		t.Errorf("delete request type %#x, %d bytes", del.msgType(), len(del.payload()))
	}
}

func TestPolicySets(t *testing.T) {
	tun := Tunnel{Local: netip.MustParseAddr("192.0.2.1"), Remote: netip.MustParseAddr("198.51.100.2"), Reqid: 5, IfID: 7}
	ps, _ := RouteBasedPolicies(tun)
	var dirs []Dir
	for i, p := range ps {
		fam, _ := p.Selector.family()
		wantFam := uint16(unix.AF_INET)
		if i >= 3 {
			wantFam = unix.AF_INET6
		}
		if fam != wantFam || p.Selector.Src.Bits() != 0 || p.Selector.Dst.Bits() != 0 || p.IfID != 7 {
			t.Errorf("policy %d: %v", i, &p)
		}
		dirs = append(dirs, p.Dir)
		tm := p.Templates[0]
		if p.Dir == DirOut && (tm.Src != tun.Local || tm.Dst != tun.Remote) || p.Dir != DirOut && (tm.Src != tun.Remote || tm.Dst != tun.Local) {
			t.Errorf("policy %d %v: template %+v", i, p.Dir, tm)
		}
	}
	if want := []Dir{DirOut, DirIn, DirFwd, DirOut, DirIn, DirFwd}; !equalDirs(dirs, want) {
		t.Errorf("directions %v, want %v", dirs, want)
	}
	if _, err := RouteBasedPolicies(Tunnel{Local: tun.Local, Remote: tun.Remote}); err == nil {
		t.Error("if_id 0 accepted")
	}

	tun.IfID = 0
	ps, err := PolicyBasedPolicies(tun, ModeTunnel, TrafficSelectors{
		Local: netip.MustParsePrefix("10.1.0.0/16"), Remote: netip.MustParsePrefix("10.2.0.0/16"),
		Proto: unix.IPPROTO_TCP, RemotePort: 22,
	})
	if err != nil {
		t.Fatal(err)
	}
	out, in := ps[0].Selector, ps[1].Selector
	if out.Src.String() != "10.1.0.0/16" || out.Dst.String() != "10.2.0.0/16" || out.DstPort != 22 || out.SrcPort != 0 {
		t.Errorf("out selector %v", out)
	}
	if in.Src.String() != "10.2.0.0/16" || in.Dst.String() != "10.1.0.0/16" || in.SrcPort != 22 || ps[2].Selector != in {
		t.Errorf("in selector %v", in)
	}
}

func equalDirs(a, b []Dir) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestSelectorEncoding(t *testing.T) {
	requireLittleEndian(t)
	s := Selector{Src: netip.MustParsePrefix("10.1.2.3/16"), Dst: netip.MustParsePrefix("::ffff:10.2.0.0/112"), Proto: 6, SrcPort: 1024}
	sel, err := s.encode()
	if err != nil {
		t.Fatal(err)
	}
	if sel.Family != unix.AF_INET || sel.PrefixlenS != 16 || sel.PrefixlenD != 16 ||
		!bytes.Equal(sel.Saddr[:4], []byte{10, 1, 0, 0}) || !bytes.Equal(sel.Daddr[:4], []byte{10, 2, 0, 0}) {
		t.Errorf("selector %+v", sel)
	}
	if b := structBytes(&sel); !bytes.Equal(b[36:40], []byte{0x04, 0x00, 0xff, 0xff}) || !bytes.Equal(b[32:36], []byte{0, 0, 0, 0}) {
		t.Errorf("ports % x", b[32:40])
	}
	for _, bad := range []Selector{{}, {Src: netip.MustParsePrefix("10.0.0.0/8"), Dst: netip.MustParsePrefix("::/0")}} {
		if _, err := bad.encode(); err == nil {
			t.Errorf("%v accepted", bad)
		}
	}
	if got := (Selector{Dst: netip.MustParsePrefix("2001:db8::/32"), Proto: 17, DstPort: 53}).String(); got != "::/0 === 2001:db8::/32[53] proto 17" {
		t.Errorf("String() = %q", got)
	}
}

func TestEncodeInterface(t *testing.T) {
	requireLittleEndian(t)
	req, err := encodeNewInterface(Interface{Name: "xfrm7", IfID: 7, Up: true}, 3)
	if err != nil {
		t.Fatal(err)
	}
	p := req.payload()
	want := []byte{
		0, 0, 0, 0, 0, 0, 0, 0, // ifinfomsg: family, type, index
		1, 0, 0, 0, 1, 0, 0, 0, // flags IFF_UP, change IFF_UP
		10, 0, 3, 0, 'x', 'f', 'r', 'm', '7', 0, 0, 0, // IFLA_IFNAME
		36, 0, 18, 0x80, // IFLA_LINKINFO, nested
		9, 0, 1, 0, 'x', 'f', 'r', 'm', 0, 0, 0, 0, // IFLA_INFO_KIND
		20, 0, 2, 0x80, // IFLA_INFO_DATA, nested
		8, 0, 1, 0, 3, 0, 0, 0, // IFLA_XFRM_LINK
		8, 0, 2, 0, 7, 0, 0, 0, // IFLA_XFRM_IF_ID
	}
	if !bytes.Equal(p, want) {
		t.Errorf("RTM_NEWLINK\n got % x\nwant % x", p, want)
	}
	req, err = encodeNewInterface(Interface{Name: "xfrm0", External: true}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if tail := req.payload()[len(req.payload())-8:]; !bytes.Equal(tail, []byte{8, 0, 2, 0x80, 4, 0, 3, 0}) {
		t.Errorf("collect_md data % x", tail)
	}
	for _, bad := range []Interface{{Name: "x"}, {Name: "x", External: true, IfID: 1}, {IfID: 1}, {Name: "much-too-long-name", IfID: 1}} {
		if _, err := encodeNewInterface(bad, 0); err == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
}

// An NLMSG_ERROR with NETLINK_CAP_ACK: errno, the echoed header only, then
// the extended ack.
func TestParseAck(t *testing.T) {
	b := binary.NativeEndian.AppendUint32(nil, uint32(0x100000000-int64(unix.EOPNOTSUPP)))
	hdr := make([]byte, 16)
	binary.NativeEndian.PutUint32(hdr, 4000) // the original length, not what follows
	b = append(b, hdr...)
	msg := "Device failed to offload this state\x00"
	b = binary.NativeEndian.AppendUint16(b, uint16(4+len(msg)))
	b = binary.NativeEndian.AppendUint16(b, nlmsgerrAttrMsg)
	b = append(b, msg...)
	err := parseAck(b, unix.NLM_F_CAPPED|unix.NLM_F_ACK_TLVS)
	var ke *KernelError
	if !errors.As(err, &ke) || !errors.Is(err, unix.EOPNOTSUPP) || ke.Message != "Device failed to offload this state" {
		t.Fatalf("err = %#v", err)
	}
	if err.Error() != "operation not supported (Device failed to offload this state)" {
		t.Errorf("Error() = %q", err)
	}
	if err := parseAck(make([]byte, 20), 0); err != nil {
		t.Errorf("ack 0: %v", err)
	}
}

func TestOffloadText(t *testing.T) {
	for s, want := range map[string]OffloadMode{"no": OffloadNo, "yes": OffloadYes, "auto": OffloadAuto, "packet": OffloadPacket, "crypto": OffloadYes} {
		if m, err := ParseOffloadMode(s); err != nil || m != want {
			t.Errorf("%q: %v %v", s, m, err)
		}
	}
	if _, err := ParseOffloadMode("maybe"); err == nil {
		t.Error("maybe accepted")
	}
	r := OffloadResult{Device: "eth0", Refused: &OffloadError{Device: "eth0", Err: unix.EOPNOTSUPP}}
	if got := r.String(); got != "hw offload on eth0 refused: operation not supported, falling back to software" {
		t.Errorf("String() = %q", got)
	}
	if !errors.Is(ErrNotOffloaded, unix.EOPNOTSUPP) {
		t.Error("ErrNotOffloaded is not EOPNOTSUPP")
	}
}

// An ICMP selector has the type in sport and the code in dport; type 0
// (echo reply) and code 0 are made exact by their masks, and the kernel's
// selector reads back as it was written.
func TestSelectorEncodingICMP(t *testing.T) {
	requireLittleEndian(t)
	tests := []struct {
		s     Selector
		ports []byte // dport, dport_mask, sport, sport_mask as in struct xfrm_selector
		str   string
	}{
		{Selector{Src: netip.MustParsePrefix("10.1.0.0/16"), Dst: netip.MustParsePrefix("10.2.0.0/16"), Proto: 1, SrcPort: 8, DstPort: 0, DstPortMask: 0xffff},
			[]byte{0, 0, 0xff, 0xff, 0, 8, 0xff, 0xff}, "10.1.0.0/16[8] === 10.2.0.0/16[0] proto 1"},
		{Selector{Src: netip.MustParsePrefix("10.1.0.0/16"), Dst: netip.MustParsePrefix("10.2.0.0/16"), Proto: 1, SrcPortMask: 0xffff},
			[]byte{0, 0, 0, 0, 0, 0, 0xff, 0xff}, "10.1.0.0/16[0] === 10.2.0.0/16 proto 1"},
		{Selector{Src: netip.MustParsePrefix("fec1::/16"), Dst: netip.MustParsePrefix("fec2::/16"), Proto: 58, SrcPort: 1, DstPort: 4},
			[]byte{0, 4, 0xff, 0xff, 0, 1, 0xff, 0xff}, "fec1::/16[1] === fec2::/16[4] proto 58"},
	}
	for _, tt := range tests {
		sel, err := tt.s.encode()
		if err != nil {
			t.Fatal(err)
		}
		if b := structBytes(&sel); !bytes.Equal(b[32:40], tt.ports) {
			t.Errorf("%v: ports % x, want % x", tt.s, b[32:40], tt.ports)
		}
		if back := selectorFrom(&sel); back != tt.s {
			t.Errorf("%v reads back as %+v", tt.s, back)
		}
		if got := tt.s.String(); got != tt.str {
			t.Errorf("String() = %q, want %q", got, tt.str)
		}
	}
}

// TestEncodeStateSeq: an SA taken over by a fleet member starts its
// replay state at the sequence numbers given: XFRMA_REPLAY_VAL (oseq,
// seq, bitmap) with the legacy window, XFRMA_REPLAY_ESN_VAL with the high
// halves where ESN (or a large window) needs that attribute; none for a
// new SA, and a number beyond 32 bits without ESN is refused.
func TestEncodeStateSeq(t *testing.T) {
	requireLittleEndian(t)
	s := gcmState()
	s.ReplayWindow = 32
	req, err := encodeState(nl.XFRM_MSG_NEWSA, &s, nil)
	if err != nil {
		t.Fatal(err)
	}
	if a, _ := attrs(req.payload()[nl.SizeofXfrmUsersaInfo:]); a[nl.XFRMA_REPLAY_VAL] != nil {
		t.Errorf("new SA carries XFRMA_REPLAY_VAL % x", a[nl.XFRMA_REPLAY_VAL])
	}

	s.OutSeq, s.InSeq = 0x01020304, 0x0a0b0c0d
	req, err = encodeState(nl.XFRM_MSG_NEWSA, &s, nil)
	if err != nil {
		t.Fatal(err)
	}
	p := req.payload()
	if p[offReplay] != 32 {
		t.Errorf("legacy replay_window %d, want 32", p[offReplay])
	}
	a, _ := attrs(p[nl.SizeofXfrmUsersaInfo:])
	want := []byte{4, 3, 2, 1, 0x0d, 0x0c, 0x0b, 0x0a, 0, 0, 0, 0} // oseq, seq, bitmap
	if !bytes.Equal(a[nl.XFRMA_REPLAY_VAL], want) {
		t.Errorf("XFRMA_REPLAY_VAL\n got % x\nwant % x", a[nl.XFRMA_REPLAY_VAL], want)
	}
	if a[nl.XFRMA_REPLAY_ESN_VAL] != nil {
		t.Error("legacy window with XFRMA_REPLAY_ESN_VAL too")
	}

	s.ESN, s.ReplayWindow = true, 64
	s.OutSeq, s.InSeq = 0x0000000500000007, 0x0000000600000009
	req, err = encodeState(nl.XFRM_MSG_NEWSA, &s, nil)
	if err != nil {
		t.Fatal(err)
	}
	a, _ = attrs(req.payload()[nl.SizeofXfrmUsersaInfo:])
	esn := []byte{
		2, 0, 0, 0, // bmp_len
		7, 0, 0, 0, // oseq
		9, 0, 0, 0, // seq
		5, 0, 0, 0, // oseq_hi
		6, 0, 0, 0, // seq_hi
		64, 0, 0, 0, // replay_window
	}
	esn = append(esn, make([]byte, 8)...)
	if !bytes.Equal(a[nl.XFRMA_REPLAY_ESN_VAL], esn) {
		t.Errorf("XFRMA_REPLAY_ESN_VAL\n got % x\nwant % x", a[nl.XFRMA_REPLAY_ESN_VAL], esn)
	}
	if a[nl.XFRMA_REPLAY_VAL] != nil {
		t.Error("ESN SA with XFRMA_REPLAY_VAL too")
	}

	s.ESN, s.ReplayWindow = false, 32
	if _, err := encodeState(nl.XFRM_MSG_NEWSA, &s, nil); err == nil {
		t.Error("64-bit sequence numbers without ESN accepted")
	}
}

// An ALLOCSPI interrupted by a signal (ERESTARTSYS, EINTR) is tried
// again; other errors and success end the tries, and a request that is
// interrupted every time gives up with the kernel's error.
func TestRetryInterrupted(t *testing.T) {
	for _, c := range []struct {
		name  string
		errs  []error // fn's answers in turn; past the end: nil
		calls int
		want  error
	}{
		{"success", nil, 1, nil},
		{"restart then success", []error{&KernelError{Errno: errRestartSys}, &KernelError{Errno: unix.EINTR}}, 3, nil},
		{"other error", []error{&KernelError{Errno: errRestartSys}, &KernelError{Errno: unix.ENOENT}}, 2, unix.ENOENT},
		{"always interrupted", slices.Repeat([]error{&KernelError{Errno: errRestartSys}}, interruptedTries+1), interruptedTries, errRestartSys},
	} {
		t.Run(c.name, func(t *testing.T) {
			calls := 0
			err := retryInterrupted(func() error {
				calls++
				if calls <= len(c.errs) {
					return c.errs[calls-1]
				}
				return nil
			})
			if calls != c.calls || !errors.Is(err, c.want) || (c.want == nil) != (err == nil) {
				t.Errorf("%d calls, error %v; want %d calls, error %v", calls, err, c.calls, c.want)
			}
		})
	}
}
