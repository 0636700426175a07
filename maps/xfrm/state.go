package xfrm

import (
	"errors"
	"fmt"
	"math"
	"net/netip"
	"time"

	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"
)

// Mode is the IPsec mode of an SA or a policy template.
type Mode uint8

const (
	ModeTransport Mode = 0 // XFRM_MODE_TRANSPORT
	ModeTunnel    Mode = 1 // XFRM_MODE_TUNNEL
)

func (m Mode) String() string {
	switch m {
	case ModeTransport:
		return "transport"
	case ModeTunnel:
		return "tunnel"
	}
	return fmt.Sprintf("mode(%d)", uint8(m))
}

// Mark is an XFRM mark: an SA or policy applies to packets whose mark
// ANDed with Mask equals Value. The zero Mark is none; a Value with a zero
// Mask means an exact match.
type Mark struct {
	Value, Mask uint32
}

func (m Mark) isSet() bool { return m != Mark{} }

func (m Mark) encode() []byte {
	mk := nl.XfrmMark{Value: m.Value, Mask: m.Mask}
	if mk.Mask == 0 {
		mk.Mask = 0xffffffff
	}
	return structBytes(&mk)
}

// Lifetime limits an SA; zero values mean no limit. Soft limits make the
// kernel send an expire event (rekey time), hard limits remove the SA.
type Lifetime struct {
	SoftBytes, HardBytes     uint64
	SoftPackets, HardPackets uint64
	SoftAdd, HardAdd         time.Duration // since the SA was installed
	SoftUse, HardUse         time.Duration // since its first packet
}

func (l Lifetime) encode() nl.XfrmLifetimeCfg {
	inf := func(v uint64) uint64 {
		if v == 0 {
			return nl.XFRM_INF
		}
		return v
	}
	return nl.XfrmLifetimeCfg{
		SoftByteLimit:         inf(l.SoftBytes),
		HardByteLimit:         inf(l.HardBytes),
		SoftPacketLimit:       inf(l.SoftPackets),
		HardPacketLimit:       inf(l.HardPackets),
		SoftAddExpiresSeconds: uint64(l.SoftAdd / time.Second),
		HardAddExpiresSeconds: uint64(l.HardAdd / time.Second),
		SoftUseExpiresSeconds: uint64(l.SoftUse / time.Second),
		HardUseExpiresSeconds: uint64(l.HardUse / time.Second),
	}
}

func lifetimeFrom(c *nl.XfrmLifetimeCfg) Lifetime {
	lim := func(v uint64) uint64 {
		if v == nl.XFRM_INF {
			return 0
		}
		return v
	}
	sec := func(v uint64) time.Duration { return time.Duration(v) * time.Second }
	return Lifetime{
		SoftBytes: lim(c.SoftByteLimit), HardBytes: lim(c.HardByteLimit),
		SoftPackets: lim(c.SoftPacketLimit), HardPackets: lim(c.HardPacketLimit),
		SoftAdd: sec(c.SoftAddExpiresSeconds), HardAdd: sec(c.HardAddExpiresSeconds),
		SoftUse: sec(c.SoftUseExpiresSeconds), HardUse: sec(c.HardUseExpiresSeconds),
	}
}

// Encap is UDP encapsulation of ESP (NAT traversal, RFC 3948): ports of
// the outer UDP header, ours first for outbound SAs.
type Encap struct {
	SrcPort, DstPort uint16
}

// Proto is an SA's IPsec protocol. The zero value is ESP.
type Proto uint8

const (
	ProtoESP Proto = iota // ESP (RFC 4303)
	ProtoAH               // AH (RFC 4302): integrity only
)

func (p Proto) String() string {
	if p == ProtoAH {
		return "AH"
	}
	return "ESP"
}

// ipproto is the protocol's IP protocol number, as XFRM names it.
func (p Proto) ipproto() uint8 {
	if p == ProtoAH {
		return unix.IPPROTO_AH
	}
	return unix.IPPROTO_ESP
}

// State is an ESP or AH SA to install. An AH SA's Crypto has an integrity
// algorithm only.
type State struct {
	Src, Dst netip.Addr // outer addresses; Dst with Proto and SPI names the SA
	SPI      uint32
	Proto    Proto
	Mode     Mode
	Reqid    uint32
	// Inbound marks an SA that decrypts (Dst is ours). It only matters for
	// offload, which the device sets up per direction.
	Inbound bool
	Crypto  Crypto
	// ESN turns on 64-bit sequence numbers (RFC 4303 2.2.1); it needs a
	// replay window of at least 1.
	ESN bool
	// ReplayWindow is the anti-replay window in packets, up to 4096.
	ReplayWindow uint32
	Encap        *Encap
	IfID         uint32 // XFRM interface ID (route-based mode), 0 for none
	Mark         Mark
	Lifetime     Lifetime
	// Selector restricts the traffic a transport-mode SA carries; zero for
	// any. Tunnel-mode SAs with a zero selector carry both families.
	Selector Selector
	Offload  Offload
	// OutSeq and InSeq start the SA's replay state: the outbound SA's
	// next packet gets OutSeq+1, the inbound SA's window ends at InSeq
	// (an SA a fleet member takes over). Zero for a new SA; without ESN
	// they must fit 32 bits.
	OutSeq, InSeq uint64
}

// ID names the SA for Get and Delete.
func (s *State) ID() SAID {
	return SAID{Dst: s.Dst, SPI: s.SPI, Proto: s.Proto, Src: s.Src, Mark: s.Mark}
}

func (s State) String() string {
	if s.Proto == ProtoAH {
		return fmt.Sprintf("AH SA %#08x %s → %s", s.SPI, s.Src, s.Dst)
	}
	return fmt.Sprintf("SA %#08x %s → %s", s.SPI, s.Src, s.Dst)
}

// SAID names one SA: destination and SPI, with the mark it was installed
// with (the kernel matches it) and optionally its source.
type SAID struct {
	Dst   netip.Addr
	SPI   uint32
	Proto Proto
	Src   netip.Addr // optional
	Mark  Mark
}

func (id SAID) String() string {
	if id.Proto == ProtoAH {
		return fmt.Sprintf("AH SA %#08x dst %s", id.SPI, id.Dst)
	}
	return fmt.Sprintf("SA %#08x dst %s", id.SPI, id.Dst)
}

// StateInfo is an SA as the kernel reports it (`ip -s xfrm state`), without
// its keys.
type StateInfo struct {
	Src, Dst     netip.Addr
	SPI          uint32
	Proto        Proto
	Mode         Mode
	Reqid        uint32
	Algorithms   Algorithms
	ESN          bool
	ReplayWindow uint32
	Encap        *Encap
	IfID         uint32
	Mark         Mark
	Lifetime     Lifetime
	Selector     Selector
	Offload      *OffloadInfo // nil when the SA is not offloaded
	// Larval is a state made by AllocSPI and not yet completed.
	Larval   bool
	Counters Counters
}

// Counters are what the kernel counted on an SA.
type Counters struct {
	Bytes, Packets    uint64 // through the SA
	AddTime, UseTime  time.Time
	OutSeq, InSeq     uint64 // highest sequence numbers sent and received (64-bit with ESN)
	ReplayWindowDrops uint32 // packets outside the window
	ReplayDrops       uint32 // replayed packets
	IntegrityFailures uint32
}

// ErrNoESP means the kernel cannot make ESP SAs (no esp4/esp6).
var ErrNoESP = errors.New("kernel has no ESP transform")

// ErrNoAlgorithm means the kernel's crypto API lacks an SA's algorithm.
var ErrNoAlgorithm = errors.New("kernel has no such algorithm")

// ErrNoSA means the kernel has no such SA.
var ErrNoSA = errors.New("no such SA")

// ErrExists means an SA or policy with that identity is already installed.
var ErrExists = errors.New("already installed")

// classify adds this package's sentinels to kernel errors whose meaning is
// known, keeping the kernel's text.
func classify(err error, notFound error) error {
	var ke *KernelError
	if !errors.As(err, &ke) {
		return err
	}
	switch ke.Errno {
	case unix.EPROTONOSUPPORT:
		return fmt.Errorf("%w: %w", ErrNoESP, err)
	case unix.ENOSYS:
		return fmt.Errorf("%w: %w", ErrNoAlgorithm, err)
	case unix.ESRCH, unix.ENOENT:
		if notFound != nil {
			return fmt.Errorf("%w: %w", notFound, err)
		}
	case unix.EEXIST:
		return fmt.Errorf("%w: %w", ErrExists, err)
	}
	return err
}

// Flags of xfrm_usersa_info.
const (
	stateAFUnspec = 32  // XFRM_STATE_AF_UNSPEC: the selector may be of either family
	stateAlign4   = 64  // XFRM_STATE_ALIGN4: IPv4 AH pads its ICV to 4 octets, not 8
	stateESN      = 128 // XFRM_STATE_ESN
)

// UDP_ENCAP_ESPINUDP and limits
const (
	encapESPinUDP = 2
	maxESNWindow  = 128 * 32 // bitmap of at most 128 words
	xfrmAlgoName  = 64
)

// encodeState builds an XFRM_MSG_NEWSA or XFRM_MSG_UPDSA request. off is
// the offload attribute to add, nil for none.
func encodeState(typ uint16, s *State, off *offloadAttr) (*request, error) {
	var alg Algorithms
	var err error
	if s.Proto == ProtoAH {
		alg, err = s.Crypto.ahAlgorithms()
		if err == nil && s.Encap != nil {
			err = errors.New("AH cannot be UDP-encapsulated (RFC 3948 is ESP only)")
		}
	} else {
		alg, err = s.Crypto.algorithms()
	}
	if err != nil {
		return nil, err
	}
	if !s.Src.IsValid() || !s.Dst.IsValid() {
		return nil, errors.New("SA needs source and destination addresses")
	}
	if s.Src.Unmap().Is4() != s.Dst.Unmap().Is4() {
		return nil, errors.New("SA mixes IPv4 and IPv6 outer addresses")
	}
	if s.SPI == 0 {
		return nil, errors.New("SPI 0 is reserved (RFC 4303 2.1)")
	}
	if s.Mode != ModeTransport && s.Mode != ModeTunnel {
		return nil, fmt.Errorf("unsupported %v", s.Mode)
	}
	if s.ESN && s.ReplayWindow == 0 {
		return nil, errors.New("ESN needs a replay window of at least 1")
	}
	if s.ReplayWindow > maxESNWindow {
		return nil, fmt.Errorf("replay window %d larger than %d", s.ReplayWindow, maxESNWindow)
	}
	if !s.ESN && (s.OutSeq > math.MaxUint32 || s.InSeq > math.MaxUint32) {
		return nil, fmt.Errorf("sequence numbers %d/%d need ESN", s.OutSeq, s.InSeq)
	}
	info := nl.XfrmUsersaInfo{
		Saddr:  xfrmAddr(s.Src),
		Lft:    s.Lifetime.encode(),
		Reqid:  s.Reqid,
		Family: familyOf(s.Dst),
		Mode:   uint8(s.Mode),
	}
	info.Id.Daddr = xfrmAddr(s.Dst)
	info.Id.Spi = be32(s.SPI)
	info.Id.Proto = s.Proto.ipproto()
	if !s.Selector.IsZero() {
		if info.Sel, err = s.Selector.encode(); err != nil {
			return nil, err
		}
	} else if s.Mode == ModeTunnel {
		info.Flags |= stateAFUnspec
	}
	// The legacy 8-bit field is cut to the kernel's 32-bit legacy bitmap
	// (seen on 6.12: 64 read back as 32), so windows above 32 and ESN need
	// the replay_esn attribute, and then the legacy field must be 0.
	useESNAttr := s.ESN || s.ReplayWindow > legacyReplayWindow
	if s.ESN {
		info.Flags |= stateESN
	}
	if s.Proto == ProtoAH && s.Dst.Unmap().Is4() {
		// RFC 4302 3.3.3.2.1: IPv4 aligns the AH header to 32 bits; the
		// kernel's 64-bit default (IPv6's) breaks interoperability (charon
		// sets the flag too).
		info.Flags |= stateAlign4
	}
	if !useESNAttr {
		info.ReplayWindow = uint8(s.ReplayWindow)
	}

	req := newRequest(typ, unix.NLM_F_ACK)
	req.fixed(structBytes(&info))
	if s.Proto == ProtoAH {
		req.attr(nl.XFRMA_ALG_AUTH_TRUNC, algoHeader(alg.Integ, len(s.Crypto.IntegKey), uint32(alg.ICVBits)), s.Crypto.IntegKey)
	} else if alg.AEAD != "" {
		hdr := algoHeader(alg.AEAD, len(s.Crypto.EncrKey), uint32(alg.ICVBits))
		req.attr(nl.XFRMA_ALG_AEAD, hdr, s.Crypto.EncrKey)
	} else {
		req.attr(nl.XFRMA_ALG_CRYPT, algoHeader(alg.Encr, len(s.Crypto.EncrKey)), s.Crypto.EncrKey)
		req.attr(nl.XFRMA_ALG_AUTH_TRUNC, algoHeader(alg.Integ, len(s.Crypto.IntegKey), uint32(alg.ICVBits)), s.Crypto.IntegKey)
	}
	if s.Encap != nil {
		e := nl.XfrmEncapTmpl{
			EncapType:  encapESPinUDP,
			EncapSport: be16(s.Encap.SrcPort),
			EncapDport: be16(s.Encap.DstPort),
		}
		req.attr(nl.XFRMA_ENCAP, structBytes(&e))
	}
	if useESNAttr {
		req.attr(nl.XFRMA_REPLAY_ESN_VAL, replayESN(s.ReplayWindow, s.OutSeq, s.InSeq))
	} else if s.OutSeq != 0 || s.InSeq != 0 {
		// struct xfrm_replay_state: oseq, seq, bitmap (nothing seen yet
		// below seq).
		b := make([]byte, 0, 12)
		b = native.AppendUint32(b, uint32(s.OutSeq))
		b = native.AppendUint32(b, uint32(s.InSeq))
		req.attr(nl.XFRMA_REPLAY_VAL, native.AppendUint32(b, 0))
	}
	if s.Mark.isSet() {
		req.attr(nl.XFRMA_MARK, s.Mark.encode())
	}
	if s.IfID != 0 {
		req.attrU32(nl.XFRMA_IF_ID, s.IfID)
	}
	if off != nil {
		req.attr(nl.XFRMA_OFFLOAD_DEV, off.encode())
	}
	return req, nil
}

// algoHeader is the fixed part of xfrm_algo (name, key bits) or of
// xfrm_algo_auth / xfrm_algo_aead (with trunc or ICV bits); the key follows.
func algoHeader(name string, keyLen int, extra ...uint32) []byte {
	b := make([]byte, xfrmAlgoName, xfrmAlgoName+8)
	copy(b, name)
	b = native.AppendUint32(b, uint32(8*keyLen))
	for _, v := range extra {
		b = native.AppendUint32(b, v)
	}
	return b
}

// legacyReplayWindow is the most the kernel keeps of xfrm_usersa_info's
// replay_window: the bitmap of struct xfrm_replay_state is 32 bits.
const legacyReplayWindow = 32

// replayESN is struct xfrm_replay_state_esn for a new SA: counters at
// oseq and seq (0 for a new SA) and a zeroed bitmap of ceil(window/32)
// words.
func replayESN(window uint32, oseq, seq uint64) []byte {
	words := (window + 31) / 32
	b := make([]byte, 0, 24+4*words)
	b = native.AppendUint32(b, words) // bmp_len
	b = native.AppendUint32(b, uint32(oseq))
	b = native.AppendUint32(b, uint32(seq))
	b = native.AppendUint32(b, uint32(oseq>>32)) // oseq_hi
	b = native.AppendUint32(b, uint32(seq>>32))  // seq_hi
	b = native.AppendUint32(b, window)
	return append(b, make([]byte, 4*words)...)
}

// encodeSAID builds a request naming one SA (XFRM_MSG_GETSA, DELSA).
func encodeSAID(typ uint16, id SAID) (*request, error) {
	if !id.Dst.IsValid() || id.SPI == 0 {
		return nil, errors.New("SA needs a destination and a non-zero SPI")
	}
	v := nl.XfrmUsersaId{
		Daddr:  xfrmAddr(id.Dst),
		Spi:    be32(id.SPI),
		Family: familyOf(id.Dst),
		Proto:  id.Proto.ipproto(),
	}
	req := newRequest(typ, unix.NLM_F_ACK)
	req.fixed(structBytes(&v))
	if id.Mark.isSet() {
		req.attr(nl.XFRMA_MARK, id.Mark.encode())
	}
	if id.Src.IsValid() {
		a := xfrmAddr(id.Src)
		req.attr(nl.XFRMA_SRCADDR, a[:])
	}
	return req, nil
}

// AddState installs a new SA (XFRM_MSG_NEWSA). With offload asked for, the
// result says whether the device took it.
func (c *Conn) AddState(s State) (OffloadResult, error) {
	res, err := c.install(nl.XFRM_MSG_NEWSA, &s)
	if err != nil {
		return res, fmt.Errorf("add %s: %w", s.ID(), err)
	}
	return res, nil
}

// UpdateState completes the larval SA AllocSPI made (XFRM_MSG_UPDSA, as
// strongSwan does for inbound SAs). On an SA already complete, the kernel
// changes only its encapsulation and lifetimes (a NAT mapping moved).
// If the larval SA already expired, the SA is added instead.
func (c *Conn) UpdateState(s State) (OffloadResult, error) {
	res, err := c.install(nl.XFRM_MSG_UPDSA, &s)
	if errors.Is(err, ErrNoSA) {
		res, err = c.install(nl.XFRM_MSG_NEWSA, &s)
	}
	if err != nil {
		return res, fmt.Errorf("update %s: %w", s.ID(), err)
	}
	return res, nil
}

// sendState sends one add or update.
func (c *Conn) sendState(typ uint16, s *State, off *offloadAttr) error {
	req, err := encodeState(typ, s, off)
	if err != nil {
		return err
	}
	return classify(c.exec(c.xfrm, req, nil), ErrNoSA)
}

// DeleteState removes an SA.
func (c *Conn) DeleteState(id SAID) error {
	req, err := encodeSAID(nl.XFRM_MSG_DELSA, id)
	if err == nil {
		err = classify(c.exec(c.xfrm, req, nil), ErrNoSA)
	}
	if err != nil {
		return fmt.Errorf("delete %s: %w", id, err)
	}
	return nil
}

// GetState reads one SA with its counters.
func (c *Conn) GetState(id SAID) (StateInfo, error) {
	req, err := encodeSAID(nl.XFRM_MSG_GETSA, id)
	if err != nil {
		return StateInfo{}, fmt.Errorf("get %s: %w", id, err)
	}
	var (
		out   StateInfo
		found bool
	)
	err = c.exec(c.xfrm, req, func(typ uint16, data []byte) error {
		if typ != nl.XFRM_MSG_NEWSA {
			return nil
		}
		var perr error
		out, perr = parseState(data)
		found = perr == nil
		return perr
	})
	if err == nil && !found {
		err = ErrNoSA
	}
	if err != nil {
		return StateInfo{}, fmt.Errorf("get %s: %w", id, classify(err, ErrNoSA))
	}
	return out, nil
}

// ListStates returns every ESP and AH SA of the namespace.
func (c *Conn) ListStates() ([]StateInfo, error) {
	var out []StateInfo
	err := c.dump(c.xfrm, func() *request {
		return newRequest(nl.XFRM_MSG_GETSA, unix.NLM_F_DUMP)
	}, func(typ uint16, data []byte) error {
		if typ != nl.XFRM_MSG_NEWSA {
			return nil
		}
		if len(data) >= nl.SizeofXfrmUsersaInfo {
			if p := nl.DeserializeXfrmUsersaInfo(data).Id.Proto; p != unix.IPPROTO_ESP && p != unix.IPPROTO_AH {
				return nil
			}
		}
		s, err := parseState(data)
		if err != nil {
			return err
		}
		out = append(out, s)
		return nil
	}, func() { out = out[:0] })
	if err != nil {
		return nil, fmt.Errorf("list SAs: %w", err)
	}
	return out, nil
}

// parseState reads an xfrm_usersa_info message. Keys in it are skipped,
// and the caller's buffer is zeroed by exec.
func parseState(data []byte) (StateInfo, error) {
	info, err := fromBytes[nl.XfrmUsersaInfo](data)
	if err != nil {
		return StateInfo{}, err
	}
	a, err := attrs(data[align4(nl.SizeofXfrmUsersaInfo):])
	if err != nil {
		return StateInfo{}, err
	}
	s := StateInfo{
		Src:          addrFrom(info.Family, info.Saddr),
		Dst:          addrFrom(info.Family, info.Id.Daddr),
		SPI:          fromBE32(info.Id.Spi),
		Mode:         Mode(info.Mode),
		Proto:        protoOf(info.Id.Proto),
		Reqid:        info.Reqid,
		ESN:          info.Flags&stateESN != 0,
		ReplayWindow: uint32(info.ReplayWindow),
		Lifetime:     lifetimeFrom(&info.Lft),
		Selector:     selectorFrom(&info.Sel),
		Counters: Counters{
			Bytes:             info.Curlft.Bytes,
			Packets:           info.Curlft.Packets,
			AddTime:           unixTime(info.Curlft.AddTime),
			UseTime:           unixTime(info.Curlft.UseTime),
			ReplayWindowDrops: info.Stats.ReplayWindow,
			ReplayDrops:       info.Stats.Replay,
			IntegrityFailures: info.Stats.IntegrityFailed,
		},
	}
	if v, ok := a[nl.XFRMA_ALG_AEAD]; ok && len(v) >= xfrmAlgoName+8 {
		s.Algorithms.AEAD = unix.ByteSliceToString(v[:xfrmAlgoName])
		s.Algorithms.EncrKeyBits = int(native.Uint32(v[xfrmAlgoName:]))
		s.Algorithms.ICVBits = int(native.Uint32(v[xfrmAlgoName+4:]))
	}
	if v, ok := a[nl.XFRMA_ALG_CRYPT]; ok && len(v) >= xfrmAlgoName+4 {
		s.Algorithms.Encr = unix.ByteSliceToString(v[:xfrmAlgoName])
		s.Algorithms.EncrKeyBits = int(native.Uint32(v[xfrmAlgoName:]))
	}
	if v, ok := a[nl.XFRMA_ALG_AUTH_TRUNC]; ok && len(v) >= xfrmAlgoName+8 {
		s.Algorithms.Integ = unix.ByteSliceToString(v[:xfrmAlgoName])
		s.Algorithms.IntegBits = int(native.Uint32(v[xfrmAlgoName:]))
		s.Algorithms.ICVBits = int(native.Uint32(v[xfrmAlgoName+4:]))
	}
	if v, ok := a[nl.XFRMA_ENCAP]; ok {
		e, err := fromBytes[nl.XfrmEncapTmpl](v)
		if err != nil {
			return StateInfo{}, err
		}
		s.Encap = &Encap{SrcPort: fromBE16(e.EncapSport), DstPort: fromBE16(e.EncapDport)}
	}
	if v, ok := a[nl.XFRMA_MARK]; ok {
		m, err := fromBytes[nl.XfrmMark](v)
		if err != nil {
			return StateInfo{}, err
		}
		s.Mark = Mark{Value: m.Value, Mask: m.Mask}
	}
	if v, ok := a[nl.XFRMA_IF_ID]; ok && len(v) >= 4 {
		s.IfID = native.Uint32(v)
	}
	if v, ok := a[nl.XFRMA_REPLAY_VAL]; ok {
		r, err := fromBytes[nl.XfrmReplayState](v)
		if err != nil {
			return StateInfo{}, err
		}
		s.Counters.OutSeq, s.Counters.InSeq = uint64(r.OSeq), uint64(r.Seq)
	}
	if v, ok := a[nl.XFRMA_REPLAY_ESN_VAL]; ok && len(v) >= 24 {
		oseq, seq := native.Uint32(v[4:]), native.Uint32(v[8:])
		oseqHi, seqHi := native.Uint32(v[12:]), native.Uint32(v[16:])
		s.Counters.OutSeq = uint64(oseqHi)<<32 | uint64(oseq)
		s.Counters.InSeq = uint64(seqHi)<<32 | uint64(seq)
		s.ReplayWindow = native.Uint32(v[20:])
	}
	if v, ok := a[nl.XFRMA_OFFLOAD_DEV]; ok && len(v) >= 5 {
		o := parseOffload(v)
		s.Offload = &o
	}
	s.Larval = s.Algorithms.AEAD == "" && s.Algorithms.Encr == ""
	if s.Proto == ProtoAH {
		s.Larval = s.Algorithms.Integ == ""
	}
	return s, nil
}

// protoOf is the Proto of an IP protocol number (ESP for any but AH).
func protoOf(ipproto uint8) Proto {
	if ipproto == unix.IPPROTO_AH {
		return ProtoAH
	}
	return ProtoESP
}

func unixTime(sec uint64) time.Time {
	if sec == 0 {
		return time.Time{}
	}
	return time.Unix(int64(sec), 0)
}
