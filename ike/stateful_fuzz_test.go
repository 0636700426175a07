package ike_test

import (
	"bytes"
	"encoding/binary"
	"flag"
	"fmt"
	"github.com/xdpsec/xdpsec/ike/transform"
	mrand "math/rand/v2"
	"net/netip"
	"os"
	"runtime/debug"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/xdpsec/xdpsec/ike"
	"github.com/xdpsec/xdpsec/ike/dataplanetest"
	"github.com/xdpsec/xdpsec/ike/message"
)

// Stateful fuzzing: each input is a program run against two engines that
// negotiate for real over the fake network. Its steps deliver the real
// datagrams in order or out of order, lose or replay them, start
// exchanges (initiate, rekeys, deletes, new CHILD_SAs), let time pass
// (retransmits, DPD, lifetimes), and inject spoofed datagrams made from
// what was on the wire (the SPIs and cookies of live SAs are there in
// clear): replays, truncations, flipped octets, other message IDs,
// exchange types, flags and next payloads, from the peer's address or
// another one. So each IKE SA is met in every state, phase 1 and
// IKE_SA_INIT included, with forgeries interleaved.
//
// After the program, the network heals and what must hold is checked:
// nothing panicked (the engines' safety net reports to the target), the
// two ends agree on their IKE SAs, a CHILD_SA rekey on the newest one
// succeeds with the same keys on both sides (no forgery broke its state),
// and once everything is deleted nothing is left in either dataplane.
//
//	go test ./ike -run '^$' -fuzz FuzzStatefulV1 -fuzztime 5m
//	go test ./ike -run '^$' -fuzz FuzzStatefulV2 -fuzztime 5m
//
// The regression corpus (testdata/fuzz/FuzzStateful*) holds the programs
// of issue 13's crash and what earlier runs found; go test runs them.

// statefulBed is the fuzz targets' testbed.
type statefulBed struct {
	*testbed
	t       *testing.T
	version int
	// losses is how many real datagrams the program may lose: each
	// exchange survives that many by retransmission. IKEv1 gets none: a
	// lost HASH(3) or informational message is never retransmitted, and
	// the ends disagree for good (TestV1QuickModeHash3Lost), which is
	// IKEv1, not a bug.
	losses int
	// reorders is how many real datagrams may be delivered out of order.
	reorders int
	// sealed is set once sealedAsPeer sent an authentic message: the
	// peer it speaks for did something its engine did not (used a
	// message ID, completed or ended an exchange), so the two ends may
	// rightly disagree; check then asks only that nothing panicked, the
	// network falls quiet, and deleting everything leaves nothing.
	sealed bool
}

var spoofer = netip.MustParseAddr("203.0.113.66")

func newStatefulBed(t *testing.T, version int, seed byte) *statefulBed {
	// Deterministic randomness (SPIs, cookies, nonces, message IDs, key
	// exchanges): a program does the same each time it runs, so that
	// what the fuzzer found reproduces. Each engine gets its own stream,
	// and the snapshot's engines others again (their SPIs and cookies
	// must not come round again in the engines that take them back).
	role := byte(0)
	onPanic := func(c *ike.Config) {
		c.OnPanic = func(r any) { t.Fatalf("the engine panicked: %v", r) }
		// Short retransmission and half-open timeouts: an exchange
		// completes or gives up within 10 s (half-open SAs too), so a
		// program heals in 20 s of fake time, in few timer steps.
		c.RetransmitTimeout, c.RetransmitBase, c.RetransmitTries = time.Second, 1.5, 3
		c.HalfOpenTimeout = 10 * time.Second
		role++
		c.Rand = mrand.NewChaCha8([32]byte{role, byte(version), seed})
	}
	conn := func(c *ike.Connection) {
		c.DPDDelay = 30 * time.Second
		c.Children[0].DPDAction = ike.ActionNone
		if version == versionPQ {
			c.Proposals = transform.MustParseProposals(transform.ProtoIKE, "aes128gcm16-prfsha256-x25519-ke1_mlkem768")
			c.Children[0].ESPProposals = transform.MustParseProposals(transform.ProtoESP, "aes128gcm16-x25519-ke1_mlkem768")
		}
		if version == 1 {
			c.Version = 1
			c.Proposals = transform.MustParseProposals(transform.ProtoIKE, "aes128-sha256-x25519")
			c.Children[0].ESPProposals = transform.MustParseProposals(transform.ProtoESP, "aes128-sha256")
		}
	}
	// XDPSEC_FUZZ_LOG=1 keeps the engines' logs, shown when a program
	// fails: for reading a failure, not for fuzzing (it is slow).
	quiet := os.Getenv("XDPSEC_FUZZ_LOG") == ""
	tb := newTestbed(t, bedOptions{connA: conn, connB: conn, cfgA: onPanic, cfgB: onPanic, quiet: quiet})
	b := &statefulBed{testbed: tb, t: t, version: version, losses: 2, reorders: 4}
	if version == 1 {
		b.losses, b.reorders = 0, 0
	}
	return b
}

// A program starts on an established IKE SA taken back from a snapshot:
// that skips the key exchanges of the establishment, most of an
// execution's cost. One that starts with fromScratch starts from nothing
// (IKE_SA_INIT, Main Mode and their forgeries); fromSnapshot says the
// default explicitly.
const (
	fromScratch  = 0x5a
	fromSnapshot = 0xa5
)

// start sets up the two ends as a program's first byte says and returns
// the rest of the program.
func (b *statefulBed) start(prog []byte) []byte {
	if len(prog) > 0 && prog[0] == fromScratch {
		return prog[1:]
	}
	b.restore()
	if len(prog) > 0 && prog[0] == fromSnapshot {
		return prog[1:]
	}
	return prog
}

// snapshot is an established pair of engines, exported once per process
// and version.
type snapshot struct {
	a, b     ike.EngineState
	dpA, dpB *dataplanetest.Dataplane
	wire     []ike.Datagram
}

var (
	snapshotsMu sync.Mutex
	snapshots   = map[int]*snapshot{}
)

// restore makes b's engines carry on from the version's snapshot, as a
// restarted daemon does: its dataplane holds the SAs, Import takes the
// IKE SAs back and adds the policies again.
func (b *statefulBed) restore() {
	snapshotsMu.Lock()
	defer snapshotsMu.Unlock()
	s := snapshots[b.version]
	if s == nil {
		tmpl := newStatefulBed(b.t, b.version, 0xff)
		tmpl.a.e.Initiate("gw")
		tmpl.advance(time.Second)
		// Copies: the template's engines and dataplanes go with the
		// test that made them (Close deletes and zeroes their SAs).
		s = &snapshot{a: tmpl.a.e.Export(), b: tmpl.b.e.Export(), dpA: dataplanetest.New(0), dpB: dataplanetest.New(0),
			wire: slices.Clone(tmpl.net.Log)}
		s.dpA.TakeSAs(tmpl.a.dp)
		s.dpB.TakeSAs(tmpl.b.dp)
		snapshots[b.version] = s
	}
	b.a.dp.TakeSAs(s.dpA)
	b.b.dp.TakeSAs(s.dpB)
	for _, x := range []struct {
		p  *peer
		st ike.EngineState
	}{{b.a, s.a}, {b.b, s.b}} {
		if errs := x.p.e.Import(x.st); len(errs) > 0 {
			b.t.Fatalf("%s: taking the snapshot back: %v", x.p.name, errs)
		}
	}
	b.net.Log = append(b.net.Log, s.wire...)
}

// program reads a fuzz input byte by byte; past its end it reads zeros.
type program struct {
	b []byte
	i int
}

func (p *program) done() bool { return p.i >= len(p.b) }

func (p *program) next() byte {
	if p.i >= len(p.b) {
		return 0
	}
	p.i++
	return p.b[p.i-1]
}

func (p *program) bytes(n int) []byte {
	out := make([]byte, 0, n)
	for range n {
		out = append(out, p.next())
	}
	return out
}

// run interprets the program: at most 64 steps.
func (b *statefulBed) run(p *program) {
	for step := 0; step < 64 && !p.done(); step++ {
		switch op := p.next(); op % 10 {
		case 0, 1: // deliver the oldest queued datagram
			b.net.Deliver()
		case 2: // deliver a later one first
			if k := int(p.next()); b.reorders > 0 && len(b.net.Queued()) > 1 {
				b.reorders--
				b.net.DeliverAt(1 + k%(len(b.net.Queued())-1))
			}
		case 3: // lose one
			if k := int(p.next()); b.losses > 0 && len(b.net.Queued()) > 0 {
				b.losses--
				b.net.DropAt(k % len(b.net.Queued()))
			}
		case 4, 5: // a forgery made from what was on the wire
			b.spoofFromWire(p)
		case 6:
			if op >= 200 && b.version != 1 {
				// An authentic message with chosen payloads.
				b.sealedAsPeer(p)
				break
			}
			// A forgery with the SPIs of a live SA and a made-up body.
			b.spoofSynthetic(p)
		case 7: // an operator's command
			b.command(p.next())
		case 8: // time passes: retransmits, DPD, lifetimes
			// The network delivers as time passes, timer by timer: a
			// datagram held longer than the peer retransmits is a
			// loss, and losses are budgeted above (IKEv1 does not
			// survive them).
			b.advance(time.Duration(1+p.next()%64) * time.Second)
		case 9: // the network delivers everything
			b.flush()
		}
	}
}

// command starts what an operator would.
func (b *statefulBed) command(k byte) {
	a := b.a
	// IKEv1 commands come from one end only. IKEv1 cannot make two ends
	// that act at once agree: it has no rekey collision handling, and its
	// informational messages are never retransmitted, so a DELETE sent on
	// an ISAKMP SA the peer is deleting in that moment (reauthentication)
	// is lost, and the IPsec SA it deletes lives on at the peer until it
	// expires. FuzzStatefulV1 found both; the IKEv2 target runs commands
	// from both ends.
	if k&0x80 != 0 && b.version != 1 {
		a = b.b
	}
	var ikeSA *ike.IKESAInfo
	for _, sa := range a.e.IKESAs() {
		if sa.State == ike.IKESAEstablished {
			ikeSA = &sa
		}
	}
	switch k % 8 {
	case 0:
		// Only a has the peer's address to initiate to. IKEv1 gets a
		// second ISAKMP SA only when the first is gone: with two up
		// at once, nothing in IKEv1 lets the ends agree which one the
		// IPsec SAs move to when one is deleted.
		if a == b.a && (b.version != 1 || len(a.e.IKESAs()) == 0) {
			a.e.Initiate("gw")
		}
	case 1, 2:
		if ikeSA != nil && len(ikeSA.Children) > 0 {
			a.e.RekeyChildSA(ikeSA.Children[0].ID)
		}
	case 3:
		if ikeSA != nil {
			a.e.RekeyIKESA(ikeSA.ID)
		}
	case 4:
		if ikeSA != nil {
			a.e.CreateChildSA(ikeSA.ID, "net")
		}
	case 5:
		if ikeSA != nil && len(ikeSA.Children) > 0 {
			a.e.DeleteChildSA(ikeSA.Children[len(ikeSA.Children)-1].ID)
		}
	case 6:
		if ikeSA != nil {
			a.e.DeleteIKESA(ikeSA.ID)
		}
	case 7:
		b.flush()
	}
}

// target picks the side a forgery goes to and where it claims to come
// from: the peer's own address, its NAT-T port, or a third address.
func (b *statefulBed) target(k byte) (to *peer, d ike.Datagram) {
	to, from := b.a, b.b
	if k&1 != 0 {
		to, from = b.b, b.a
	}
	port := uint16(500)
	if k&2 != 0 {
		port = 4500
	}
	src := from.addr
	if k&4 != 0 {
		src = spoofer
	}
	return to, ike.Datagram{Local: netip.AddrPortFrom(to.addr, port), Remote: netip.AddrPortFrom(src, port)}
}

// spoofFromWire sends a datagram that was on the wire, changed.
func (b *statefulBed) spoofFromWire(p *program) {
	if len(b.net.Log) == 0 {
		return
	}
	// Recent datagrams are likelier: they belong to live exchanges.
	back := int(p.next()) % min(len(b.net.Log), 16)
	orig := b.net.Log[len(b.net.Log)-1-back]
	data := append([]byte(nil), orig.Data...)
	if orig.Local.Port() == 4500 && len(data) >= 4 {
		data = data[4:] // the non-ESP marker goes back on if sent to 4500
	}
	mut, arg := p.next(), p.next()
	switch mut % 9 {
	case 0: // replayed as it was
	case 1: // truncated
		data = data[:int(arg)%(len(data)+1)]
	case 2: // one octet changed
		if len(data) > 0 {
			data[int(p.next())%len(data)] ^= arg | 1
		}
	case 3: // another message ID
		if len(data) >= 24 {
			mid := binary.BigEndian.Uint32(data[20:])
			mids := []uint32{0, 1, 2, 3, mid + 1, mid - 1, mid + 2, uint32(arg) << 24}
			binary.BigEndian.PutUint32(data[20:], mids[arg%8])
		}
	case 4: // another exchange type
		if len(data) >= 28 {
			types := []byte{2, 4, 5, 32, 34, 35, 36, 37, 43, arg}
			data[18] = types[int(arg)%len(types)]
		}
	case 5: // other flags
		if len(data) >= 28 {
			data[19] = arg
		}
	case 6: // another first payload
		if len(data) >= 28 {
			data[16] = arg
		}
	case 7: // another body, length fixed up
		if len(data) >= 28 {
			data = append(data[:28], p.bytes(int(arg)%96)...)
			binary.BigEndian.PutUint32(data[24:], uint32(len(data)))
		}
	case 8: // the last ciphertext block changed: decrypts, does not verify
		if len(data) > 44 {
			for i := len(data) - 16; i < len(data); i++ {
				data[i] ^= arg | 1
			}
		}
	}
	to, d := b.target(p.next())
	if d.Local.Port() == 4500 {
		data = append([]byte{0, 0, 0, 0}, data...)
	}
	d.Data = data
	to.e.HandleDatagram(d)
}

// spoofSynthetic sends a header with the SPIs (cookies) of a live SA of
// the receiver, chosen exchange, flags and message ID, and a made-up body.
func (b *statefulBed) spoofSynthetic(p *program) {
	to, d := b.target(p.next())
	sas := to.e.IKESAs()
	if len(sas) == 0 {
		return
	}
	sa := sas[int(p.next())%len(sas)]
	exch, flags, next := p.next(), p.next(), p.next()
	mid := uint32(p.next() % 4)
	body := p.bytes(int(p.next()) % 80)
	h := make([]byte, 28, 28+len(body))
	binary.BigEndian.PutUint64(h[0:], sa.SPIi)
	binary.BigEndian.PutUint64(h[8:], sa.SPIr)
	h[16] = next
	h[17] = 0x20
	if sa.Version == 1 {
		h[17] = 0x10
	}
	h[18], h[19] = exch, flags
	binary.BigEndian.PutUint32(h[20:], mid)
	h = append(h, body...)
	binary.BigEndian.PutUint32(h[24:], uint32(len(h)))
	if d.Local.Port() == 4500 {
		h = append([]byte{0, 0, 0, 0}, h...)
	}
	d.Data = h
	to.e.HandleDatagram(d)
}

// sealedAsPeer sends an IKEv2 message sealed with the keys of a live IKE
// SA of the receiver, as its peer would (authentic, so it reaches the
// exchange tasks): a chosen exchange type, flags and message ID, and a KE
// payload and an ADDITIONAL_KEY_EXCHANGE notify of chosen method, length
// and link data. For the IKE_FOLLOWUP_KE exchanges (RFC 9370): key
// exchange data of the wrong method or length, link data that is the
// pending exchange's, changed, empty or made up, payloads left out or in
// another order, requests out of turn and responses nobody asked for.
func (b *statefulBed) sealedAsPeer(p *program) {
	to, d := b.target(p.next())
	sas := to.e.IKESAs()
	if len(sas) == 0 {
		return
	}
	sa := sas[int(p.next())%len(sas)]
	if sa.Version != 2 {
		return
	}
	exchanges := []message.ExchangeType{message.IKE_FOLLOWUP_KE, message.CREATE_CHILD_SA, message.INFORMATIONAL, message.IKE_INTERMEDIATE}
	exch := exchanges[int(p.next())%len(exchanges)]
	var flags message.Flags
	if !sa.Initiator { // from the original initiator
		flags = message.FlagInitiator
	}
	switch k := p.next(); k % 4 {
	case 1:
		flags |= message.FlagResponse
	case 2:
		flags ^= message.FlagInitiator
	case 3:
		flags = message.Flags(k)
	}
	mid := uint32(p.next() % 8)
	shape := p.next()
	methods := []transform.KEID{transform.ML_KEM_768, transform.CURVE_25519, transform.ML_KEM_512, transform.KEID(p.next())}
	method := methods[int(shape)%len(methods)]
	ekLen := transform.ML_KEM_768.PublicValueSize()
	lens := []int{ekLen, 1088, 32, 0, 1, ekLen - 1, ekLen + 1, int(p.next())}
	data := bytes.Repeat([]byte{p.next()}, lens[int(shape>>2)%len(lens)])
	ke := binary.BigEndian.AppendUint16([]byte{0, 0, 0, 0}, uint16(method))
	ke = append(append(ke, 0, 0), data...)
	binary.BigEndian.PutUint16(ke[2:], uint16(len(ke)))
	link := to.e.FollowupLink(sa.ID)
	switch p.next() % 4 {
	case 1:
		if len(link) > 0 {
			link = bytes.Clone(link)
			link[len(link)-1] ^= 1
		}
	case 2:
		link = nil
	case 3:
		link = p.bytes(8)
	}
	n := binary.BigEndian.AppendUint16([]byte{0, 0, 0, 0, 0, 0}, uint16(message.ADDITIONAL_KEY_EXCHANGE))
	n = append(n, link...)
	binary.BigEndian.PutUint16(n[2:], uint16(len(n)))
	var first message.PayloadType
	var plain []byte
	switch shape >> 5 % 4 {
	case 0: // KE, N
		first, plain = message.PayloadKE, append(ke, n...)
		plain[0] = byte(message.PayloadN)
	case 1: // N, KE
		first, plain = message.PayloadN, append(n, ke...)
		plain[0] = byte(message.PayloadKE)
	case 2: // KE alone
		first, plain = message.PayloadKE, ke
	case 3: // N alone
		first, plain = message.PayloadN, n
	}
	data, err := to.e.SealAsPeer(sa.ID, message.Header{ExchangeType: exch, Flags: flags, MessageID: mid}, first, plain)
	if err != nil {
		return
	}
	if d.Local.Port() == 4500 {
		data = append([]byte{0, 0, 0, 0}, data...)
	}
	d.Data = data
	b.sealed = true
	to.e.HandleDatagram(d)
}

// flush delivers every queued datagram; a network that does not fall
// quiet (the fake network's limit of 10,000 datagrams reached) is two
// ends answering each other for ever, which fails the program.
func (b *statefulBed) flush() {
	if n := b.net.Flush(); n >= 10000 {
		b.t.Fatalf("the network does not fall quiet: %d datagrams in one flush: %s", n, b.describe())
	}
}

// advance moves time on timer by timer, flushing after each.
func (b *statefulBed) advance(d time.Duration) {
	b.flush()
	for d > 0 {
		step, ok := b.clock.Next()
		if !ok || step > d {
			step = d
		}
		b.clock.Advance(step)
		b.flush()
		d -= step
	}
}

// heal lets the network deliver everything and time pass until every
// exchange in flight completed or gave up.
func (b *statefulBed) heal() {
	b.net.Filter = nil
	b.advance(20 * time.Second)
}

// check is what must hold after any program: the two ends agree on the
// newest IKE SA, and a CHILD_SA rekey on it succeeds with equal keys.
func (b *statefulBed) check() {
	t := b.t
	b.heal()
	if b.sealed {
		b.deleteAll()
		return
	}
	newest := func(p *peer) *ike.IKESAInfo {
		var n *ike.IKESAInfo
		for _, sa := range p.e.IKESAs() {
			if sa.State == ike.IKESAEstablished && (n == nil || sa.ID > n.ID) {
				n = &sa
			}
		}
		return n
	}
	sa := newest(b.a)
	if sa == nil {
		if _, err := b.a.e.Initiate("gw"); err != nil {
			t.Fatalf("initiate after the program: %v", err)
		}
		b.advance(20 * time.Second)
		if sa = newest(b.a); sa == nil {
			t.Fatalf("a cannot establish an IKE SA after the program: %s", b.describe())
		}
	}
	twin := func() *ike.IKESAInfo {
		for _, x := range b.b.e.IKESAs() {
			if x.SPIi == sa.SPIi && x.SPIr == sa.SPIr {
				return &x
			}
		}
		return nil
	}
	if x := twin(); x == nil || x.State != ike.IKESAEstablished {
		t.Fatalf("a's IKE SA %016x_i %016x_r is not established on b: %s", sa.SPIi, sa.SPIr, b.describe())
	}
	// A CHILD_SA on it: rekeyed (or made, if it has none) with keys that
	// agree; this runs the exchange whose state forgeries could break.
	var before uint32
	if len(sa.Children) > 0 {
		before = sa.Children[0].SPIIn
		if err := b.a.e.RekeyChildSA(sa.Children[0].ID); err != nil {
			t.Fatal(err)
		}
	} else if err := b.a.e.CreateChildSA(sa.ID, "net"); err != nil {
		t.Fatal(err)
	}
	b.advance(20 * time.Second)
	var after *ike.IKESAInfo
	for _, x := range b.a.e.IKESAs() {
		if x.SPIi == sa.SPIi && x.SPIr == sa.SPIr && x.State == ike.IKESAEstablished {
			after = &x
		}
	}
	if after == nil {
		t.Fatalf("a's IKE SA went during the CHILD_SA exchange: %s", b.describe())
	}
	made := false
	for _, c := range after.Children {
		if c.State == ike.ChildSAInstalled && c.SPIIn != before {
			made = true
			want := b.b.dp.SA(c.SPIOut)
			got := b.a.dp.SA(c.SPIOut)
			if want == nil || got == nil || string(want.EncrKey) != string(got.EncrKey) || string(want.IntegKey) != string(got.IntegKey) {
				t.Fatalf("CHILD_SA %08x_i %08x_o: outbound keys of a and inbound keys of b differ or are missing: %s", c.SPIIn, c.SPIOut, b.describe())
			}
		}
	}
	if !made {
		t.Fatalf("no new CHILD_SA on a's IKE SA after the program: %s", b.describe())
	}
	b.deleteAll()
}

// deleteAll deletes every IKE SA on both ends: nothing may be left behind.
func (b *statefulBed) deleteAll() {
	t := b.t
	for _, p := range []*peer{b.a, b.b} {
		for _, x := range p.e.IKESAs() {
			p.e.DeleteIKESA(x.ID)
		}
	}
	b.advance(20 * time.Second)
	for _, p := range []*peer{b.a, b.b} {
		if n := len(p.e.IKESAs()); n != 0 {
			t.Fatalf("%s kept %d IKE SAs after deleting all: %s", p.name, n, b.describe())
		}
		if sas, pols := p.dp.SAs(), p.dp.Policies(); len(sas) != 0 || len(pols) != 0 {
			t.Fatalf("%s left %d SAs and %d policies in its dataplane: %s", p.name, len(sas), len(pols), b.describe())
		}
	}
}

func (b *statefulBed) describe() string {
	s := ""
	for _, p := range []*peer{b.a, b.b} {
		s += fmt.Sprintf("\n%s: %+v\n  stats %+v", p.name, p.e.IKESAs(), p.e.Stats())
	}
	return s
}

// lazyGC makes the garbage collector of the fuzzing process lazier
// (GOGC 400) for the rest of it: programs allocate much and keep little,
// and this makes them about a fifth faster. Only while fuzzing: a plain
// go test runs the corpus with the default.
func lazyGC() {
	if flag.Lookup("test.fuzz").Value.String() != "" {
		debug.SetGCPercent(400)
	}
}

func seedStateful(f *testing.F) {
	f.Add([]byte{fromScratch})
	f.Add([]byte{fromScratch, 7, 0})                               // initiate, then heal
	f.Add([]byte{fromScratch, 7, 0, 0, 0, 4, 0, 0, 0, 1, 0, 0, 0}) // first datagram replayed to b
	f.Add([]byte{fromScratch, 7, 0, 9, 7, 1, 0, 4, 0, 8, 1, 1, 0, 9})
	f.Add([]byte{fromScratch, 7, 0, 9, 7, 3, 0, 2, 3, 0, 0, 9, 6, 1, 0, 34, 0x08, 33, 2, 12})
	f.Add([]byte{fromScratch, 7, 0, 9, 8, 40, 8, 40, 7, 1, 5, 0, 8, 200, 7, 1, 9})
	f.Add([]byte{fromScratch, 7, 0, 1, 1, 4, 0, 7, 3, 1, 1, 4, 1, 3, 0, 0, 1, 9})
	// From an established IKE SA: rekeys, forgeries, losses, time.
	f.Add([]byte{fromSnapshot})
	f.Add([]byte{fromSnapshot, 7, 1, 4, 0, 8, 1, 0, 0, 9})
	f.Add([]byte{fromSnapshot, 7, 3, 0, 4, 1, 3, 0, 1, 0, 9, 7, 0x81, 2, 1, 5, 3, 0, 9})
	f.Add([]byte{fromSnapshot, 7, 4, 6, 1, 0, 37, 8, 46, 0, 16, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 9})
	f.Add([]byte{fromSnapshot, 8, 30, 8, 30, 4, 0, 2, 200, 7, 4, 1, 3, 0, 9})
}

// FuzzStatefulV2 runs programs against two IKEv2 engines.
func FuzzStatefulV2(f *testing.F) {
	lazyGC()
	seedStateful(f)
	f.Fuzz(func(t *testing.T, prog []byte) {
		b := newStatefulBed(t, 2, 0)
		b.run(&program{b: b.start(prog)})
		b.check()
	})
}

// versionPQ is the stateful targets' IKEv2 with an additional key
// exchange (x25519-ke1_mlkem768, for the CHILD_SAs too): IKE_INTERMEDIATE
// between IKE_SA_INIT and IKE_AUTH, its forgeries, losses and retransmits
// under the keys that change in the middle of the establishment, and
// IKE_FOLLOWUP_KE after each CHILD_SA's CREATE_CHILD_SA.
const versionPQ = 3

// FuzzStatefulPQ runs programs against two IKEv2 engines that establish
// with an additional key exchange.
func FuzzStatefulPQ(f *testing.F) {
	lazyGC()
	seedStateful(f)
	// From scratch: initiate, then lose or replay datagrams around the
	// IKE_INTERMEDIATE exchange (the third and fourth datagrams).
	f.Add([]byte{fromScratch, 7, 0, 1, 1, 1, 2, 4, 2, 9})
	f.Add([]byte{fromScratch, 7, 0, 1, 1, 1, 1, 1, 0, 0, 3, 0, 9})
	for _, prog := range pqFollowupSeeds() {
		f.Add(prog)
	}
	f.Fuzz(func(t *testing.T, prog []byte) {
		b := newStatefulBed(t, versionPQ, 0)
		b.run(&program{b: b.start(prog)})
		b.check()
	})
}

// pqFollowupSeeds are FuzzStatefulPQ programs that reach the
// IKE_FOLLOWUP_KE exchanges (RFC 9370) of CHILD_SA rekeys, new CHILD_SAs
// and IKE SA rekeys: collisions (crossing, and a request after the first
// IKE_FOLLOWUP_KE), real followups out of order, and authentic forged
// ones (sealedAsPeer) of the wrong length or method, with link data that
// is changed or that nothing waits for, without KE or notify, and as a
// response nobody asked for.
func pqFollowupSeeds() [][]byte {
	// op 206: sealedAsPeer to b from a (target 1), b's first IKE SA,
	// exchange (0 IKE_FOLLOWUP_KE, 3 IKE_INTERMEDIATE), flags (0 a
	// request, 1 a response), message ID, shape (bits 0-1 the method:
	// ML-KEM-768, X25519, ML-KEM-512, the next byte; bits 2-4 the
	// length: the ML-KEM-768 key, its ciphertext, 32, 0, 1, one short,
	// one long, the next byte; bits 5-6: KE+N, N+KE, KE, N), a method,
	// a length, the data's octet, the link (0 the pending one, 1
	// changed, 2 empty, 3 the next 8 bytes).
	sealed := func(exch, flags, mid, shape, link byte) []byte {
		return []byte{206, 1, 0, exch, flags, mid, shape, 0, 0, 0, link}
	}
	const (
		shortKey   = 5 << 2    // ML-KEM-768, one octet short
		x25519     = 1         // X25519 with an ML-KEM-768 key's length
		goodKey    = 0         // ML-KEM-768 key of zeros (valid)
		notifyOnly = 3<<5 | 0  // N(ADD_KE) alone
		keOnly     = 2<<5 | 0  // KE alone
		notifyKE   = 1<<5 | 20 // N then KE, one octet short
	)
	cat := func(parts ...[]byte) []byte {
		var out []byte
		for _, p := range parts {
			out = append(out, p...)
		}
		return append(out, 9)
	}
	// From the snapshot (next request of a: message ID 3), a's
	// operation, its request and b's response delivered, a's
	// IKE_FOLLOWUP_KE request (two fragments) lost: message ID 4, or 5
	// for a new CHILD_SA after the old one is deleted.
	childRekeyFULost := []byte{fromSnapshot, 7, 1, 0, 0, 3, 0, 3, 0}
	newChildFULost := []byte{fromSnapshot, 7, 5, 9, 7, 4, 0, 0, 3, 0, 3, 0}
	ikeRekeyFULost := []byte{fromSnapshot, 7, 3, 0, 0, 3, 0, 3, 0}
	var seeds [][]byte
	for _, c := range []struct {
		pre []byte
		mid byte
	}{{childRekeyFULost, 4}, {newChildFULost, 5}, {ikeRekeyFULost, 4}} {
		pre, mid := c.pre, c.mid
		seeds = append(seeds,
			cat(pre, sealed(0, 0, mid, shortKey, 0)),   // wrong length: INVALID_SYNTAX
			cat(pre, sealed(0, 0, mid, x25519, 0)),     // wrong method: INVALID_SYNTAX
			cat(pre, sealed(0, 0, mid, goodKey, 1)),    // link not ours: STATE_NOT_FOUND
			cat(pre, sealed(0, 0, mid, goodKey, 0)),    // authentic and right: a's secret differs
			cat(pre, sealed(0, 0, mid, notifyOnly, 0)), // no KE
			cat(pre, sealed(0, 0, mid, keOnly, 0)),     // no notify
			cat(pre, sealed(0, 0, mid, notifyKE, 0)),   // other order, short
			cat(pre, sealed(0, 1, mid, goodKey, 0)),    // a response nobody asked for
			cat(pre, sealed(0, 0, mid+1, goodKey, 0)),  // the next message ID: out of turn
		)
	}
	seeds = append(seeds,
		// IKE_FOLLOWUP_KE that nothing waits for, made-up link.
		cat([]byte{fromSnapshot}, sealed(0, 0, 3, goodKey, 3)),
		// Collisions: crossing CREATE_CHILD_SA requests (CHILD_SA, IKE
		// SA), and b's request after a's first IKE_FOLLOWUP_KE.
		[]byte{fromSnapshot, 7, 1, 7, 0x81, 0, 0, 9},
		[]byte{fromSnapshot, 7, 3, 7, 0x83, 0, 0, 9},
		[]byte{fromSnapshot, 7, 1, 7, 0x81, 0, 2, 0, 0, 9},
		[]byte{fromSnapshot, 7, 3, 7, 0x83, 0, 2, 0, 0, 9},
		// Crossing collisions whose pending half at one end is given up
		// (a short key in the other's name: b's message ID 1, a's 4)
		// before that end's response decides the collision.
		cat([]byte{fromSnapshot, 7, 1, 7, 0x81, 0, 0}, []byte{206, 0, 0, 0, 0, 1, shortKey, 0, 0, 0, 0}),
		cat([]byte{fromSnapshot, 7, 3, 7, 0x83, 0, 0}, []byte{206, 0, 0, 0, 0, 1, shortKey, 0, 0, 0, 0}),
		cat([]byte{fromSnapshot, 7, 1, 7, 0x81, 0, 0}, sealed(0, 0, 4, shortKey, 0)),
		cat([]byte{fromSnapshot, 7, 3, 7, 0x83, 0, 0}, sealed(0, 0, 4, shortKey, 0)),
		// The two fragments of a real IKE_FOLLOWUP_KE request reordered,
		// and its response lost.
		[]byte{fromSnapshot, 7, 1, 0, 0, 2, 0, 0, 3, 0, 8, 5, 9},
		[]byte{fromSnapshot, 7, 0x83, 0, 0, 2, 0, 0, 3, 0, 8, 5, 9},
	)
	return seeds
}

// FuzzStatefulV1 runs programs against two IKEv1 engines (Main Mode, PSK).
func FuzzStatefulV1(f *testing.F) {
	lazyGC()
	seedStateful(f)
	// Issue 13's crash, as programs: phase 1 and a Quick Mode complete,
	// then to b, with the SA's cookies, an unencrypted informational with
	// message ID 0 (or a Quick Mode with message ID 0 and garbage), and
	// an encrypted Main Mode message with message ID 0 and garbage.
	garbage := make([]byte, 64)
	for i := range garbage {
		garbage[i] = byte(i*37 + 11)
	}
	// op 6: to b from a's address, its first SA, exchange, flags, next
	// payload, message ID, body length, body.
	synthetic := func(exch, flags, next byte, body []byte) []byte {
		return append([]byte{6, 1, 0, exch, flags, next, 0, byte(len(body))}, body...)
	}
	notify := []byte{0, 0, 0, 12, 0, 0, 0, 1, 1, 0, 0, 1}
	mainMode := synthetic(2, 1, 5, garbage)
	for _, first := range [][]byte{synthetic(5, 0, 11, notify), synthetic(5, 1, 8, garbage), synthetic(32, 1, 8, garbage)} {
		f.Add(append(append([]byte{fromScratch, 7, 0, 9}, first...), mainMode...))
		f.Add(append(append([]byte{fromSnapshot}, first...), mainMode...))
	}
	f.Fuzz(func(t *testing.T, prog []byte) {
		b := newStatefulBed(t, 1, 0)
		b.run(&program{b: b.start(prog)})
		b.check()
	})
}
