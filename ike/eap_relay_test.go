package ike_test

import (
	"context"
	"crypto/rand"
	"errors"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/xdpsec/xdpsec/ike"
	"github.com/xdpsec/xdpsec/ike/eap"
	"github.com/xdpsec/xdpsec/ike/pool"
)

// fakeBackend is an EAP backend in the process: each conversation runs
// our own EAP-MSCHAPv2 server with the users' passwords, as a RADIUS
// server would, and answers with Challenge, Accept (with the MSK) or
// Reject. down makes it not answer; hold makes each Exchange wait until a
// value arrives on it (or the IKE SA goes).
type fakeBackend struct {
	users map[string]string
	down  bool
	hold  chan struct{}
	// framed is the Framed-IP-Address an Accept carries, class its Class
	// values and interim its interim interval; interval is the default
	// interval.
	framed   netip.Addr
	class    [][]byte
	interim  time.Duration
	interval time.Duration

	mu        sync.Mutex // guards what follows
	exchanges int        // Exchange calls
	inFlight  int        // Exchange calls not returned
	peers     []ike.EAPPeer
	starts    []ike.EAPSession
	stops     []ike.EAPUsage
	interims  []ike.EAPUsage
	sessions  []ike.EAPSession // of the interims and stops, in order
}

func (b *fakeBackend) accounting() ([]ike.EAPSession, []ike.EAPUsage) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.starts), slices.Clone(b.stops)
}

func (b *fakeBackend) interimRecords() []ike.EAPUsage {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.interims)
}

func (b *fakeBackend) AccountingInterim(s ike.EAPSession, u ike.EAPUsage) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.interims = append(b.interims, u)
	b.sessions = append(b.sessions, s)
}

func (b *fakeBackend) AccountingInterval() time.Duration { return b.interval }

func (b *fakeBackend) AccountingStart(s ike.EAPSession) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.starts = append(b.starts, s)
}

func (b *fakeBackend) AccountingStop(s ike.EAPSession, u ike.EAPUsage) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.stops = append(b.stops, u)
	b.sessions = append(b.sessions, s)
}

func (b *fakeBackend) NewConversation(p ike.EAPPeer) (ike.EAPConversation, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.peers = append(b.peers, p)
	return &fakeConversation{b: b, identity: p.Identity}, nil
}

func (b *fakeBackend) counts() (exchanges, inFlight int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.exchanges, b.inFlight
}

type fakeConversation struct {
	b        *fakeBackend
	identity string
	srv      *eap.Server
}

func (c *fakeConversation) Exchange(ctx context.Context, msg []byte) (ike.EAPReply, error) {
	b := c.b
	b.mu.Lock()
	b.exchanges++
	b.inFlight++
	b.mu.Unlock()
	defer func() {
		b.mu.Lock()
		b.inFlight--
		b.mu.Unlock()
	}()
	if b.hold != nil {
		select {
		case <-b.hold:
		case <-ctx.Done():
			return ike.EAPReply{}, ctx.Err()
		}
	}
	if b.down {
		return ike.EAPReply{}, errors.New("RADIUS server 'r1' (192.0.2.9:1812) is not responding: no answer to 3 Access-Requests")
	}
	if c.srv == nil {
		// The first message is the peer's EAP-Response/Identity.
		srv, err := eap.NewServer(eap.ServerConfig{
			Methods:  []eap.Type{eap.TypeMSCHAPv2},
			Identity: c.identity,
			Credentials: eap.CredentialsFunc(func(id string) (eap.Secret, error) {
				if pw, ok := b.users[id]; ok {
					return eap.PasswordSecret([]byte(pw)), nil
				}
				return eap.Secret{}, eap.ErrUnknownUser
			}),
			Rand: rand.Reader,
		})
		if err != nil {
			return ike.EAPReply{}, err
		}
		c.srv = srv
		out, err := srv.Start()
		return ike.EAPReply{Outcome: ike.EAPChallenge, EAP: out, Server: "r1"}, err
	}
	out, err := c.srv.Process(msg)
	if err != nil {
		return ike.EAPReply{}, err
	}
	if !c.srv.Done() {
		return ike.EAPReply{Outcome: ike.EAPChallenge, EAP: out, Server: "r1"}, nil
	}
	if res := c.srv.Result(); res.Err == nil {
		return ike.EAPReply{Outcome: ike.EAPAccept, EAP: out, MSK: res.MSK, FramedIP: b.framed,
			Class: b.class, InterimInterval: b.interim, Server: "r1"}, nil
	}
	return ike.EAPReply{Outcome: ike.EAPReject, EAP: out, Server: "r1"}, nil
}

// settle delivers datagrams until done, giving the backend's goroutines
// time to answer; it fails after a few seconds of real time.
func (rb *raBed) settle(done func() bool) {
	rb.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !done() {
		if time.Now().After(deadline) {
			rb.t.Fatalf("not settled; a: %+v, b: %+v", rb.a.sas(), rb.b.sas())
		}
		rb.net.Flush()
		time.Sleep(time.Millisecond)
	}
	rb.net.Flush()
}

func established(p *peer) bool {
	for _, sa := range p.sas() {
		if sa.State == ike.IKESAEstablished {
			return true
		}
	}
	return false
}

func gone(ps ...*peer) func() bool {
	return func() bool {
		for _, p := range ps {
			if len(p.sas()) > 0 {
				return false
			}
		}
		return true
	}
}

func newRadiusBed(t *testing.T, b *fakeBackend, eapID string, o raOptions) *raBed {
	o.backend, o.eapID = b, eapID
	return newRABed(t, o)
}

var radiusUsers = map[string]string{"carol": "carol's password"}

// TestEAPRadiusAccept: the gateway relays the client's EAP-MSCHAPv2 to
// the backend, asking the identity itself (eap_id = %any) or sending the
// IKE identity as the first EAP-Response/Identity; on Accept both AUTH
// payloads use the backend's MSK and the client gets an address from the
// pool.
func TestEAPRadiusAccept(t *testing.T) {
	for _, eapID := range []string{"%any", ""} {
		t.Run("eap_id="+eapID, func(t *testing.T) {
			b := &fakeBackend{users: radiusUsers}
			rb := newRadiusBed(t, b, eapID, raOptions{})
			if _, err := rb.a.e.Initiate("gw"); err != nil {
				t.Fatal(err)
			}
			rb.settle(func() bool { return established(rb.a) && established(rb.b) })
			g := rb.established(rb.b)
			if g.EAPIdentity != "carol" {
				t.Errorf("gateway's EAP identity %q", g.EAPIdentity)
			}
			if !slices.Equal(g.RemoteVIPs, []netip.Addr{netip.MustParseAddr("10.3.200.1")}) {
				t.Errorf("virtual IPs %v", g.RemoteVIPs)
			}
			rb.checkKeys()
			wantLog(t, rb.b, "EAP method EAP_RADIUS succeeded, MSK established", "authentication of 'carol' with EAP successful")
			wantLog(t, rb.a, "authentication of 'sun.example.org' with EAP successful")
			if len(b.peers) != 1 || b.peers[0].Identity != "carol" || b.peers[0].Connection != "gw" || b.peers[0].Remote.Addr() != rb.a.addr {
				t.Errorf("backend conversations: %+v", b.peers)
			}
		})
	}
}

// TestEAPRadiusReject: the backend's Access-Reject reaches the client as
// EAP-Failure with AUTHENTICATION_FAILED; nothing stays behind.
func TestEAPRadiusReject(t *testing.T) {
	b := &fakeBackend{users: radiusUsers}
	rb := newRadiusBed(t, b, "%any", raOptions{password: "not carol's password"})
	if _, err := rb.a.e.Initiate("gw"); err != nil {
		t.Fatal(err)
	}
	rb.settle(gone(rb.a, rb.b))
	wantLog(t, rb.b, "EAP method EAP_RADIUS failed for peer carol: rejected by r1")
	wantLog(t, rb.a, "received AUTHENTICATION_FAILED notify error")
	rb.wantNoSAs(rb.a)
	rb.wantNoSAs(rb.b)
	if n := rb.b.e.Stats().EAPFailures; n != 1 {
		t.Errorf("EAPFailures %d, want 1", n)
	}
	if _, online, offline := rb.pool.Leases.Stats(); online+offline != 0 {
		t.Errorf("%d online, %d offline leases after a reject", online, offline)
	}
}

// TestEAPRadiusDown: no answer from the backend fails the client with
// AUTHENTICATION_FAILED and a log line naming the server.
func TestEAPRadiusDown(t *testing.T) {
	b := &fakeBackend{users: radiusUsers, down: true}
	rb := newRadiusBed(t, b, "", raOptions{})
	if _, err := rb.a.e.Initiate("gw"); err != nil {
		t.Fatal(err)
	}
	rb.settle(gone(rb.a, rb.b))
	wantLog(t, rb.b, "RADIUS server 'r1' (192.0.2.9:1812) is not responding", "EAP method EAP_RADIUS failed for peer carol")
	wantLog(t, rb.a, "received AUTHENTICATION_FAILED notify error")
	rb.wantNoSAs(rb.b)
}

// TestEAPRadiusNoBackend: eap-radius without a backend refuses the peer.
func TestEAPRadiusNoBackend(t *testing.T) {
	rb := newRABed(t, raOptions{})
	rb.gwConn.Remote[0].Auth = ike.AuthEAPRadius
	rb.gwConn.Remote[0].EAPMethods = nil
	if err := rb.b.e.AddConnection(rb.gwConn); err != nil {
		t.Fatal(err)
	}
	rb.establish()
	wantLog(t, rb.b, "no EAP backend (RADIUS) configured for eap-radius")
	rb.wantNoSAs(rb.a)
	rb.wantNoSAs(rb.b)
}

// TestEAPRadiusSlow: while the backend takes its time, the client's
// retransmits of the pending IKE_AUTH request start no second round trip,
// another client's IKE SA goes on (up to its own round trip), and the
// responses go out when the answers come.
func TestEAPRadiusSlow(t *testing.T) {
	b := &fakeBackend{users: map[string]string{"carol": "carol's password", "dave": "dave's password"}, hold: make(chan struct{})}
	rb := newRadiusBed(t, b, "", raOptions{})
	if _, err := rb.a.e.Initiate("gw"); err != nil {
		t.Fatal(err)
	}
	// IKE_SA_INIT, then the first IKE_AUTH request waits for the backend.
	rb.settle(func() bool { _, inFlight := b.counts(); return inFlight == 1 })
	// The client retransmits twice (4s, then 7.2s later).
	rb.advance(12 * time.Second)
	if n, _ := b.counts(); n != 1 {
		t.Fatalf("%d exchanges with the backend after retransmits, want 1", n)
	}
	if !rb.a.log.contains("sending retransmit 2 of request") {
		t.Errorf("the client did not retransmit")
	}
	wantLog(t, rb.b, "response still pending")
	// Another client is served meanwhile: its IKE_SA_INIT is answered
	// and its IKE_AUTH goes to the backend too, beside carol's.
	dave := rb.client("dave", addrC, "dave", "dave's password", 0xc3000000)
	if _, err := dave.e.Initiate("gw"); err != nil {
		t.Fatal(err)
	}
	rb.settle(func() bool { _, inFlight := b.counts(); return inFlight == 2 })
	go func() {
		for range 16 {
			b.hold <- struct{}{}
		}
	}()
	rb.settle(func() bool { return established(rb.a) && established(dave) && len(rb.b.sas()) == 2 })
	ex, _ := b.counts()
	// Identity, challenge response, success response: three rounds each.
	if ex != 6 {
		t.Errorf("%d exchanges with the backend, want 6", ex)
	}
}

// TestEAPRadiusFramedIP: the backend's Framed-IP-Address is the client's
// virtual IP: outside the pools without a lease; inside a pool leased
// there to the client (online while it is connected, kept for it after);
// refused with INTERNAL_ADDRESS_FAILURE when the pool has it online for
// someone else.
func TestEAPRadiusFramedIP(t *testing.T) {
	for _, tc := range []struct {
		name, framed string
		taken        bool // leased online to dave first
	}{
		{"outside-pools", "10.9.0.7", false},
		{"in-pool", "10.3.200.2", false},
		{"in-pool-in-use", "10.3.200.1", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			framed := netip.MustParseAddr(tc.framed)
			b := &fakeBackend{users: radiusUsers, framed: framed}
			rb := newRadiusBed(t, b, "%any", raOptions{})
			inPool := rb.pool.Leases.Contains(framed)
			if tc.taken {
				if a, _, err := rb.pool.Leases.Acquire("dave", netip.Addr{}); err != nil || a != framed {
					t.Fatalf("dave's lease %v, %v; want %v", a, err, framed)
				}
			}
			if _, err := rb.a.e.Initiate("gw"); err != nil {
				t.Fatal(err)
			}
			if tc.taken {
				rb.settle(func() bool { return rb.b.log.contains("INT_ADDR_FAIL") })
				wantLog(t, rb.b, "virtual IP "+tc.framed+" assigned by the EAP backend refused")
				wantLog(t, rb.b, "address in use by \"dave\"")
				if _, online, offline := rb.pool.Leases.Stats(); online != 1 || offline != 0 {
					t.Errorf("%d online, %d offline leases, want dave's alone", online, offline)
				}
				return
			}
			rb.settle(func() bool { return established(rb.a) && established(rb.b) })
			want := []netip.Addr{framed}
			if c, g := rb.established(rb.a), rb.established(rb.b); !slices.Equal(c.LocalVIPs, want) || !slices.Equal(g.RemoteVIPs, want) {
				t.Errorf("virtual IPs: client %v, gateway %v, want %v", c.LocalVIPs, g.RemoteVIPs, want)
			}
			wantOnline := 0
			if inPool {
				wantOnline = 1
			}
			if _, online, _ := rb.pool.Leases.Stats(); online != wantOnline {
				t.Errorf("%d leases online, want %d", online, wantOnline)
			}
			wantLog(t, rb.b, "assigning virtual IP "+tc.framed+" to peer 'carol'")
			if err := rb.a.e.DeleteIKESA(rb.established(rb.a).ID); err != nil {
				t.Fatal(err)
			}
			rb.net.Flush()
			rb.wantNoSAs(rb.b)
			if inPool {
				// Offline now, and still carol's: the pool would give
				// it to her again without the backend.
				leases := rb.pool.Leases.Leases()
				if len(leases) != 1 || leases[0].Addr != framed || leases[0].Identity != "carol" || leases[0].Online {
					t.Errorf("leases after the delete: %+v, want carol's %v offline", leases, framed)
				}
			}
		})
	}
}

// TestEAPRadiusAccounting: accounting starts with the CHILD_SA, once, and
// stops when the IKE SA goes, with the CHILD_SA's counters.
func TestEAPRadiusAccounting(t *testing.T) {
	b := &fakeBackend{users: radiusUsers}
	rb := newRadiusBed(t, b, "%any", raOptions{})
	if _, err := rb.a.e.Initiate("gw"); err != nil {
		t.Fatal(err)
	}
	rb.settle(func() bool { return established(rb.a) && established(rb.b) })
	starts, stops := b.accounting()
	if len(starts) != 1 || starts[0].Identity != "carol" || !slices.Equal(starts[0].VIPs, []netip.Addr{netip.MustParseAddr("10.3.200.1")}) {
		t.Fatalf("accounting starts %+v", starts)
	}
	if len(stops) != 0 {
		t.Fatalf("stopped early: %+v", stops)
	}
	for _, s := range rb.b.dp.SAs() {
		rb.b.dp.SetStats(ike.SAID{Dst: s.Dst, SPI: s.SPI}, ike.SAStats{Bytes: 1000, Packets: 10})
	}
	rb.advance(3 * time.Second)
	if err := rb.a.e.DeleteIKESA(rb.established(rb.a).ID); err != nil {
		t.Fatal(err)
	}
	rb.net.Flush()
	_, stops = b.accounting()
	if len(stops) != 1 {
		t.Fatalf("accounting stops %+v", stops)
	}
	u := stops[0]
	if u.BytesIn != 1000 || u.BytesOut != 1000 || u.PacketsIn != 10 || u.PacketsOut != 10 || u.Duration < 3*time.Second {
		t.Errorf("usage %+v", u)
	}
}

var _ ike.EAPAccounting = (*fakeBackend)(nil)

// TestEAPRadiusAccountingSession: one accounting session per client
// across an IKE rekey and a restart that takes the IKE SA back: one
// Start, interim records at the interval the Accept asked for (else the
// backend's), the Accept's Class in every record, and a Stop that says
// why the IKE SA went.
func TestEAPRadiusAccountingSession(t *testing.T) {
	b := &fakeBackend{users: radiusUsers, class: [][]byte{[]byte("group-7")}, interim: time.Minute, interval: time.Hour}
	rb := newRadiusBed(t, b, "%any", raOptions{})
	if _, err := rb.a.e.Initiate("gw"); err != nil {
		t.Fatal(err)
	}
	rb.settle(func() bool { return established(rb.a) && established(rb.b) })
	starts, _ := b.accounting()
	if len(starts) != 1 || len(starts[0].Class) != 1 || string(starts[0].Class[0]) != "group-7" {
		t.Fatalf("accounting starts %+v, want one with Class group-7", starts)
	}
	session := starts[0].IKESAID
	for _, s := range rb.b.dp.SAs() {
		rb.b.dp.SetStats(ike.SAID{Dst: s.Dst, SPI: s.SPI}, ike.SAStats{Bytes: 1000, Packets: 10})
	}
	rb.advance(61 * time.Second)
	if in := b.interimRecords(); len(in) != 1 || in[0].BytesIn != 1000 || in[0].PacketsOut != 10 || in[0].Duration < time.Minute {
		t.Fatalf("interim records after a minute: %+v", in)
	}
	// The client rekeys its IKE SA: the session goes on over the new one.
	if err := rb.a.e.RekeyIKESA(rb.established(rb.a).ID); err != nil {
		t.Fatal(err)
	}
	rb.net.Flush()
	rb.advance(61 * time.Second)
	if in := b.interimRecords(); len(in) != 2 || in[1].BytesIn != 1000 {
		t.Fatalf("interim records after the IKE rekey: %+v", in)
	}
	// A restart takes the IKE SA back with its session.
	st := rb.b.e.Detach()
	leases, _ := pool.FromRange("rw", netip.MustParseAddr("10.3.200.1"), netip.MustParseAddr("10.3.200.2"))
	rb.b = rb.restartPeer(rb.b, st, rb.gwConn, 0xc5000000, func(c *ike.Config) {
		c.Pools = []*ike.Pool{{Leases: leases, DNS: rb.pool.DNS}}
		c.EAPBackend = b
	})
	rb.advance(61 * time.Second)
	if in := b.interimRecords(); len(in) != 3 {
		t.Fatalf("%d interim records after the restart, want 3", len(in))
	}
	if err := rb.a.e.DeleteIKESA(rb.established(rb.a).ID); err != nil {
		t.Fatal(err)
	}
	rb.net.Flush()
	starts, stops := b.accounting()
	if len(starts) != 1 || len(stops) != 1 {
		t.Fatalf("%d starts, %d stops, want one each", len(starts), len(stops))
	}
	if stops[0].Cause != ike.EndPeerDeleted || stops[0].Duration < 3*time.Minute {
		t.Errorf("stop %+v, want cause peer-deleted after 3 minutes", stops[0])
	}
	for i, s := range b.sessions {
		if s.IKESAID != session || !s.Started.Equal(starts[0].Started) || len(s.Class) != 1 || string(s.Class[0]) != "group-7" {
			t.Errorf("record %d of session %+v, want that of the Start %+v", i, s, starts[0])
		}
	}
}

// TestEAPRadiusAccountingCause: the Stop says who ended the session.
func TestEAPRadiusAccountingCause(t *testing.T) {
	for _, tc := range []struct {
		name string
		end  func(rb *raBed)
		want ike.EndCause
	}{
		{"admin", func(rb *raBed) { rb.b.e.DeleteIKESA(rb.established(rb.b).ID) }, ike.EndAdmin},
		{"admin-unanswered", func(rb *raBed) {
			rb.net.Filter = func(ike.Datagram) []ike.Datagram { return nil }
			rb.b.e.DeleteIKESA(rb.established(rb.b).ID) // its DELETE goes unanswered: still admin
		}, ike.EndAdmin},
		{"peer-dead", func(rb *raBed) {
			rb.net.Filter = func(ike.Datagram) []ike.Datagram { return nil }
			rb.b.e.RekeyIKESA(rb.established(rb.b).ID) // unanswered
		}, ike.EndPeerDead},
		{"peer-deleted", func(rb *raBed) { rb.a.e.DeleteIKESA(rb.established(rb.a).ID) }, ike.EndPeerDeleted},
		{"shutdown", func(rb *raBed) { rb.b.e.Close() }, ike.EndShutdown},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := &fakeBackend{users: radiusUsers}
			rb := newRadiusBed(t, b, "%any", raOptions{})
			if _, err := rb.a.e.Initiate("gw"); err != nil {
				t.Fatal(err)
			}
			rb.settle(func() bool { return established(rb.a) && established(rb.b) })
			tc.end(rb)
			rb.net.Flush()
			rb.advance(5 * time.Minute)
			if _, stops := b.accounting(); len(stops) != 1 || stops[0].Cause != tc.want {
				t.Fatalf("stops %+v, want one with cause %v", stops, tc.want)
			}
			if in := b.interimRecords(); len(in) != 0 {
				t.Errorf("interim records without an interval: %+v", in)
			}
		})
	}
}

// scriptedBackend answers every round with the same reply.
type scriptedBackend struct{ reply ike.EAPReply }

func (b scriptedBackend) NewConversation(ike.EAPPeer) (ike.EAPConversation, error) { return b, nil }
func (b scriptedBackend) Exchange(context.Context, []byte) (ike.EAPReply, error) {
	return b.reply, nil
}

// TestEAPRadiusHostileBackend: replies that make no sense refuse the
// client with AUTHENTICATION_FAILED and leave nothing behind.
func TestEAPRadiusHostileBackend(t *testing.T) {
	for _, tc := range []struct {
		name  string
		reply ike.EAPReply
		log   string
	}{
		{"challenge-without-eap", ike.EAPReply{Outcome: ike.EAPChallenge, Server: "r1"}, "sent a challenge without an EAP-Request"},
		{"challenge-with-success", ike.EAPReply{Outcome: ike.EAPChallenge, EAP: []byte{3, 1, 0, 4}, Server: "r1"}, "sent a challenge without an EAP-Request"},
		{"challenge-garbage", ike.EAPReply{Outcome: ike.EAPChallenge, EAP: []byte{1, 1, 0, 200, 4}, Server: "r1"}, "sent a challenge without an EAP-Request"},
		{"reject-without-eap", ike.EAPReply{Outcome: ike.EAPReject, Server: "r1"}, "rejected by r1"},
		{"unknown-outcome", ike.EAPReply{Outcome: 77, Server: "r1"}, "rejected by r1"},
		// An Accept before any method: the gateway takes the server's
		// word, the client refuses an EAP-Success it did not earn and
		// goes; the gateway's half-open IKE SA times out.
		{"accept-at-once", ike.EAPReply{Outcome: ike.EAPAccept, MSK: make([]byte, 64), Server: "r1"}, "EAP method EAP_RADIUS succeeded"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rb := newRABed(t, raOptions{backend: scriptedBackend{tc.reply}})
			if _, err := rb.a.e.Initiate("gw"); err != nil {
				t.Fatal(err)
			}
			rb.settle(gone(rb.a))
			rb.advance(31 * time.Second) // half_open_timeout, should the gateway wait
			wantLog(t, rb.b, tc.log)
			rb.wantNoSAs(rb.b)
		})
	}
}
