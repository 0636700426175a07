package radius

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"layeh.com/radius"

	"github.com/xdpsec/xdpsec/internal/radius/radiustest"
)

// closedPort is a UDP port of 127.0.0.1 nothing listens on: the kernel
// answers with port unreachable.
func closedPort(t *testing.T) uint16 {
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	port := uint16(c.LocalAddr().(*net.UDPAddr).Port)
	c.Close()
	return port
}

// The first server takes requests and never answers: after its tries the
// client moves to the second, and the rest of the conversation stays
// there.
func TestFailoverToSecondServer(t *testing.T) {
	silent := radiustest.NewServer(t, secret, nil)
	second := radiustest.NewServer(t, secret, md5Server(t, false))
	first := fakeServer("primary", silent, secret)
	first.Preference = 10
	backup := fakeServer("backup", second, secret)
	// The backup comes first in the configuration; preference orders.
	c, logs := testClient(t, nil, backup, first)
	s, _ := c.NewSession(testPeer)
	start := time.Now()
	r, err := s.Exchange(ctxT(t), identity)
	if err != nil {
		t.Fatal(err)
	}
	if r.Server != "backup" || r.Outcome != Challenge {
		t.Fatalf("reply %+v", r)
	}
	if d := time.Since(start); d < 2*60*time.Millisecond {
		t.Errorf("failover after %v, before the primary's two tries ran out", d)
	}
	if n := len(silent.Requests()); n != 2 {
		t.Errorf("primary got %d transmissions, want 2", n)
	}
	if _, err := s.Exchange(ctxT(t), md5Answer); err != nil {
		t.Fatal(err)
	}
	if n := len(silent.Requests()); n != 2 {
		t.Errorf("second round went to the primary too (%d requests)", n)
	}
	st := c.Stats()
	if st.Timeouts != 1 || st.Retransmits != 1 || st.Accepts != 1 {
		t.Errorf("stats %+v", st)
	}
	mustContain(t, logs.String(), "retransmit 1 of RADIUS Access-Request (timeout: 0.1s)",
		"RADIUS server 'primary' (127.0.0.1:", "is not responding: RADIUS Access-Request timed out after 2 attempts")
	// The retransmission is the same datagram (RFC 2865 §2.5).
	reqs := silent.Requests()
	if string(reqs[0].Wire) != string(reqs[1].Wire) {
		t.Error("retransmission differs from the first transmission")
	}
}

// A conversation whose server stops answering fails, even though another
// server answers: that one does not know the State.
func TestNoFailoverMidConversation(t *testing.T) {
	a := radiustest.NewServer(t, secret, md5Server(t, false))
	b := radiustest.NewServer(t, secret, md5Server(t, false))
	c, _ := testClient(t, nil, fakeServer("a", a, secret), fakeServer("b", b, secret))
	s, _ := c.NewSession(testPeer)
	if _, err := s.Exchange(ctxT(t), identity); err != nil {
		t.Fatal(err)
	}
	a.SetHandler(nil)
	_, err := s.Exchange(ctxT(t), md5Answer)
	if !errors.Is(err, ErrNotResponding) || !strings.Contains(err.Error(), "'a'") {
		t.Fatalf("got %v", err)
	}
	if len(b.Requests()) != 0 {
		t.Error("the conversation moved to server b")
	}
}

// Both servers down (port unreachable) or silent: the error names each.
func TestAllServersDown(t *testing.T) {
	silent := radiustest.NewServer(t, secret, nil)
	down := Server{Name: "down", Address: "127.0.0.1", AuthPort: closedPort(t), Secret: NewSecret(secret)}
	c, _ := testClient(t, nil, down, fakeServer("silent", silent, secret))
	s, _ := c.NewSession(testPeer)
	_, err := s.Exchange(ctxT(t), identity)
	var nr *NotRespondingError
	if !errors.As(err, &nr) || !errors.Is(err, ErrNotResponding) {
		t.Fatalf("got %v", err)
	}
	if len(nr.Failures) != 2 || nr.Failures[0].Server != "down" || nr.Failures[0].Err == nil || nr.Failures[1].Err != nil {
		t.Errorf("failures %+v", nr.Failures)
	}
	mustContain(t, err.Error(), "no RADIUS server is responding: ",
		"RADIUS server 'down' (127.0.0.1:", "RADIUS Access-Request failed after 1 attempt:", "connection refused",
		"RADIUS server 'silent' (127.0.0.1:", "timed out after 2 attempts")
	t.Log(err)
}

// Cancelling the context ends the wait at once.
func TestContextCancel(t *testing.T) {
	silent := radiustest.NewServer(t, secret, nil)
	c, _ := testClient(t, func(c *Config) { c.Timeout = 5 * time.Second }, fakeServer("silent", silent, secret))
	s, _ := c.NewSession(testPeer)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := s.Exchange(ctx, identity)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("returned after %v", d)
	}
}

// Concurrent sessions each get their own answer.
func TestConcurrentSessions(t *testing.T) {
	srv := radiustest.NewServer(t, secret, func(req *radiustest.Request) *radiustest.Reply {
		return &radiustest.Reply{Code: radius.CodeAccessChallenge, Attributes: eapAttrs(challenge)}
	})
	c, _ := testClient(t, func(c *Config) { c.Timeout = time.Second }, fakeServer("fake", srv, secret))
	errs := make(chan error, 100)
	for range 100 {
		go func() {
			s, _ := c.NewSession(testPeer)
			_, err := s.Exchange(ctxT(t), identity)
			errs <- err
		}()
	}
	for range 100 {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	if st := c.Stats(); st.Challenges != 100 || st.DroppedTotal() != 0 {
		t.Errorf("stats %+v", st)
	}
}
