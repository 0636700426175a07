package ike_test

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"testing"
	"time"

	"github.com/xdpsec/xdpsec/ike"
	"github.com/xdpsec/xdpsec/ike/message"
)

func failOnPanic(t *testing.T) func(*ike.Config) {
	return func(c *ike.Config) { c.OnPanic = func(r any) { t.Fatalf("the engine panicked: %v", r) } }
}

// FuzzRedirectInit answers a client's IKE_SA_INIT request with a forged
// lone N(REDIRECT) whose data is arbitrary, with or without the client's
// real Ni appended: nothing panics, and the client either drops it
// (counted) or starts again towards a valid unicast gateway.
func FuzzRedirectInit(f *testing.F) {
	f.Add([]byte{1, 4, 192, 0, 2, 3}, true)
	f.Add([]byte{1, 4, 192, 0, 2, 3}, false)
	f.Add(append([]byte{3, 15}, "gw3.example.net"...), true)
	f.Add([]byte{2, 16, 0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}, true)
	f.Add([]byte{1, 4, 224, 0, 0, 1}, true)
	f.Add([]byte{}, true)
	f.Fuzz(func(t *testing.T, data []byte, withNonce bool) {
		tb := newTestbed(t, bedOptions{quiet: true, cfgA: func(c *ike.Config) {
			failOnPanic(t)(c)
			c.ResolveGateway = func(name string, done func(netip.Addr, error)) { done(addrC, nil) }
		}})
		if _, err := tb.a.e.Initiate("gw"); err != nil {
			t.Fatal(err)
		}
		q := tb.net.Queued()
		if len(q) != 1 {
			t.Fatalf("%d datagrams queued", len(q))
		}
		req, err := message.Unmarshal(q[0].Data)
		if err != nil {
			t.Fatal(err)
		}
		tb.net.Drop()
		var ni []byte
		for _, p := range req.Payloads {
			if n, ok := p.(*message.Nonce); ok {
				ni = n.Data
			}
		}
		nd := append([]byte(nil), data...)
		if withNonce {
			nd = append(nd, ni...)
		}
		resp := &message.Message{Header: message.Header{InitiatorSPI: req.Header.InitiatorSPI, ExchangeType: message.IKE_SA_INIT,
			Flags: message.FlagResponse}, Payloads: []message.Payload{&message.Notify{NotifyType: message.REDIRECT, Data: nd}}}
		b, err := resp.Marshal()
		if err != nil {
			return
		}
		tb.a.e.HandleDatagram(ike.Datagram{Local: q[0].Local, Remote: q[0].Remote, Data: b})
		r, derr := message.UnmarshalRedirect(nd)
		valid := derr == nil && bytes.Equal(r.Nonce, ni)
		if got := tb.a.e.Stats().InvalidRedirects; (got == 0) != valid {
			t.Fatalf("valid %v (%v), InvalidRedirects %d", valid, derr, got)
		}
		for _, d := range tb.net.Queued() {
			a := d.Remote.Addr()
			if !a.IsValid() || a.IsUnspecified() || a.IsMulticast() {
				t.Fatalf("sent to %v", d.Remote)
			}
			if valid && a != addrB {
				want := r.Gateway.Addr
				if r.Gateway.IsFQDN() {
					want = addrC
				}
				if a != want {
					t.Fatalf("redirected to %v, want %v", a, want)
				}
			}
		}
		tb.advance(60 * time.Second)
	})
}

// FuzzRedirectInformational has the gateway of an established IKE SA
// send the client an authentic INFORMATIONAL with a REDIRECT of arbitrary
// data (and, if asked, the other payloads given): nothing panics, and the
// client keeps its IKE SA or moves to a valid gateway.
func FuzzRedirectInformational(f *testing.F) {
	f.Add([]byte{1, 4, 192, 0, 2, 3}, []byte{})
	f.Add([]byte{1, 4, 192, 0, 2, 3, 9, 9}, []byte{})
	f.Add(append([]byte{3, 15}, "gw3.example.net"...), []byte{})
	f.Add([]byte{0xff}, []byte{0, 0, 0, 8, 1, 0, 0, 0})
	f.Fuzz(func(t *testing.T, data, more []byte) {
		tb := newTestbed(t, bedOptions{quiet: true, cfgA: func(c *ike.Config) {
			failOnPanic(t)(c)
			c.ResolveGateway = func(name string, done func(netip.Addr, error)) { done(addrC, nil) }
		}})
		tb.gateway("c", addrC, 0xc3000000, nil, failOnPanic(t))
		tb.establish()
		sa := tb.established(tb.a)
		// N(REDIRECT) as the first payload, then the fuzzer's octets.
		n := []byte{0, 0, 0, 0, 0, 0, 0x40, 0x17}
		n[0] = 0
		if len(more) > 0 {
			n[0] = byte(message.PayloadD)
		}
		n = append(n, data...)
		if len(n) > 0xffff {
			return
		}
		binary.BigEndian.PutUint16(n[2:], uint16(len(n)))
		plain := append(n, more...)
		h := message.Header{ExchangeType: message.INFORMATIONAL, MessageID: 0}
		b, err := tb.a.e.SealAsPeer(sa.ID, h, message.PayloadN, plain)
		if err != nil {
			return
		}
		tb.a.e.HandleDatagram(ike.Datagram{Local: netip.AddrPortFrom(addrA, 500), Remote: netip.AddrPortFrom(addrB, 500), Data: b})
		tb.net.Flush()
		tb.advance(60 * time.Second)
		r, err := message.UnmarshalRedirect(data)
		follows := err == nil && len(r.Nonce) == 0 && len(more) == 0
		for _, s := range tb.a.sas() {
			if a := s.Remote.Addr(); a != addrB && a != addrC && !(follows && a == r.Gateway.Addr) {
				t.Fatalf("a has an IKE SA with %v", a)
			}
		}
		if follows && (r.Gateway.IsFQDN() || r.Gateway.Addr == addrC) {
			if got := tb.established(tb.a); got.Remote.Addr() != addrC || len(got.Children) != 1 {
				t.Fatalf("a did not follow to c: %+v", got)
			}
		}
	})
}
