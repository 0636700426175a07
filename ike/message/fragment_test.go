package message

import (
	"bytes"
	"errors"
	"reflect"
	"testing"
)

func bigMessage() *Message {
	return &Message{
		Header: testHeader(),
		Payloads: []Payload{
			&IDi{Identification{IDType: ID_FQDN, Data: []byte("client.example")}},
			&Certificate{Encoding: CertX509Signature, Data: seq(0, 3000)},
			&Certificate{Encoding: CertX509Signature, Data: seq(7, 1500)},
			&Authentication{Method: AuthDigitalSignature, Data: seq(3, 300)},
			&Notify{NotifyType: INITIAL_CONTACT},
		},
	}
}

// ipv4Min is the IKE message size RFC 7383 suggests without a known path
// MTU: a 576-octet IPv4 datagram less IP (20), UDP (8) and non-ESP marker
// (4) headers.
const ipv4Min = 576 - 20 - 8 - 4

func TestFragmentRoundTrip(t *testing.T) {
	m := bigMessage()
	p := &fakeProtector{key: 3}
	frags, err := m.MarshalFragments(p, ipv4Min)
	if err != nil {
		t.Fatal(err)
	}
	if len(frags) < 2 {
		t.Fatalf("%d fragments", len(frags))
	}
	var parsed []*Fragment
	for i, b := range frags {
		if len(b) > ipv4Min {
			t.Errorf("fragment %d: %d octets", i+1, len(b))
		}
		// Every fragment but the last is filled to the brim: one more
		// plaintext octet would not fit.
		if i < len(frags)-1 && len(b)+fakeBlockLen <= ipv4Min {
			t.Errorf("fragment %d: %d octets, room left", i+1, len(b))
		}
		f, err := UnmarshalFragment(b, p)
		if err != nil {
			t.Fatalf("fragment %d: %v", i+1, err)
		}
		if f.Number != uint16(i+1) || f.Total != uint16(len(frags)) {
			t.Errorf("fragment %d: numbered %d/%d", i+1, f.Number, f.Total)
		}
		wantNext := PayloadNone
		if i == 0 {
			wantNext = PayloadIDi
		}
		if f.NextPayload != wantNext {
			t.Errorf("fragment %d: next payload %v", i+1, f.NextPayload)
		}
		if h := f.Header; h.MessageID != m.Header.MessageID || h.ExchangeType != IKE_AUTH || h.NextPayload != PayloadSKF {
			t.Errorf("fragment %d: header %+v", i+1, h)
		}
		// Plain Unmarshal sees the sealed SKF.
		if pm, err := Unmarshal(b); err != nil || pm.Payloads[0].(*EncryptedFragment).Number != uint16(i+1) {
			t.Errorf("fragment %d: Unmarshal %v", i+1, err)
		}
		parsed = append(parsed, f)
	}

	r := NewReassembler(ReassemblyLimits{})
	for i := len(parsed) - 1; i >= 0; i-- {
		got, err := r.Add(parsed[i])
		if err != nil {
			t.Fatalf("Add %d: %v", i+1, err)
		}
		if i > 0 {
			if got != nil {
				t.Fatalf("complete after fragment %d", i+1)
			}
			continue
		}
		if got == nil {
			t.Fatal("not complete")
		}
		if !reflect.DeepEqual(got.Payloads, m.Payloads) {
			t.Fatal("reassembled payloads differ")
		}
		if got.Header.MessageID != m.Header.MessageID || got.Header.InitiatorSPI != m.Header.InitiatorSPI {
			t.Errorf("header %+v", got.Header)
		}
	}
	if r.Pending() != 0 {
		t.Errorf("%d pending", r.Pending())
	}
}

func TestFragmentSingle(t *testing.T) {
	p := &fakeProtector{}
	m := &Message{Header: testHeader(), Payloads: []Payload{&Nonce{Data: seq(0, 32)}}}
	frags, err := m.MarshalFragments(p, 1280)
	if err != nil || len(frags) != 1 {
		t.Fatalf("%d fragments, %v", len(frags), err)
	}
	f, err := UnmarshalFragment(frags[0], p)
	if err != nil || f.Number != 1 || f.Total != 1 {
		t.Fatalf("%+v %v", f, err)
	}
	got, err := NewReassembler(ReassemblyLimits{}).Add(f)
	if err != nil || got == nil || !reflect.DeepEqual(got.Payloads, m.Payloads) {
		t.Fatalf("%v %v", got, err)
	}

	if _, err := m.MarshalFragments(p, skfAADLen+p.SealedLen(1)-1); !errors.Is(err, ErrTooLarge) {
		t.Errorf("no room: %v", err)
	}
	// The fake cipher pads to 8-octet blocks with a Pad Length octet: a
	// body that holds 1 plaintext octet holds 7. 40 octets of inner
	// payloads make 6 fragments.
	if frags, err := m.MarshalFragments(p, skfAADLen+p.SealedLen(1)); err != nil || len(frags) != 6 {
		t.Errorf("smallest room: %d fragments, %v", len(frags), err)
	}
}

func TestUnmarshalFragmentRefuses(t *testing.T) {
	p := &fakeProtector{key: 5}
	frags, err := bigMessage().MarshalFragments(p, 1000)
	if err != nil {
		t.Fatal(err)
	}
	good := frags[1]
	mod := func(i int, v byte) []byte { b := bytes.Clone(good); b[i] = v; return b }
	tests := []struct {
		name string
		in   []byte
		want error
	}{
		{"SK message", func() []byte {
			b, _ := bigMessage().MarshalEncrypted(p)
			return b
		}(), ErrPayloadPlacement},
		{"fragment number 0", mod(HeaderLen+5, 0), ErrMalformed},
		{"fragment number above total", mod(HeaderLen+5, 200), ErrMalformed},
		// The fragment fields are associated data: changing the number
		// to another valid one breaks the checksum.
		{"fragment number changed", mod(HeaderLen+5, 1), errFakeAuth},
		{"total changed", mod(HeaderLen+7, good[HeaderLen+7]+1), errFakeAuth},
		{"SKF length short", mod(HeaderLen+3, good[HeaderLen+3]-1), ErrPayloadPlacement},
		{"SKF header cut", rawMessage(PayloadSKF, []byte{0, 0, 0, 8, 0, 1}), ErrTruncated},
		{"SKF length 7", rawMessage(PayloadSKF, []byte{0, 0, 0, 7, 0, 1, 0, 1}), ErrBadLength},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := UnmarshalFragment(tt.in, p); !errors.Is(err, tt.want) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
		})
	}
}

// frag builds a verified fragment directly, as UnmarshalFragment would
// return it.
func frag(id uint32, number, total uint16, next PayloadType, plaintext []byte) *Fragment {
	h := testHeader()
	h.MessageID = id
	h.NextPayload = PayloadSKF
	return &Fragment{Header: h, Number: number, Total: total, NextPayload: next, Plaintext: plaintext}
}

// nonceChain is a one-payload inner chain cut in two at 3 octets.
var nonceChain = []byte{0, 0, 0, 8, 1, 2, 3, 4}

func TestReassemblerRules(t *testing.T) {
	t.Run("duplicate", func(t *testing.T) {
		r := NewReassembler(ReassemblyLimits{})
		mustAdd(t, r, frag(1, 1, 2, PayloadNonce, nonceChain[:3]))
		if _, err := r.Add(frag(1, 1, 2, PayloadNonce, nonceChain[:3])); !errors.Is(err, ErrFragmentDuplicate) {
			t.Fatalf("%v", err)
		}
		m := mustAdd(t, r, frag(1, 2, 2, 0, nonceChain[3:]))
		if m == nil || !reflect.DeepEqual(m.Payloads, []Payload{&Nonce{Data: []byte{1, 2, 3, 4}}}) {
			t.Fatalf("%v", m)
		}
	})
	t.Run("fewer total fragments is stale", func(t *testing.T) {
		r := NewReassembler(ReassemblyLimits{})
		mustAdd(t, r, frag(1, 1, 3, PayloadNonce, nonceChain[:3]))
		if _, err := r.Add(frag(1, 2, 2, 0, nonceChain[3:])); !errors.Is(err, ErrFragmentStale) {
			t.Fatalf("%v", err)
		}
		if r.Pending() != 1 {
			t.Fatal("lost the collected fragments")
		}
	})
	t.Run("more total fragments restarts", func(t *testing.T) {
		r := NewReassembler(ReassemblyLimits{})
		mustAdd(t, r, frag(1, 1, 2, PayloadNonce, []byte{0xee}))
		mustAdd(t, r, frag(1, 2, 3, 0, []byte{0xee})) // smaller cut: replaces the 2-fragment set
		if _, err := r.Add(frag(1, 1, 2, PayloadNonce, nonceChain[:3])); !errors.Is(err, ErrFragmentStale) {
			t.Fatalf("older cut: %v", err)
		}
		mustAdd(t, r, frag(1, 3, 4, 0, nonceChain[3:5])) // smaller still: replaces the 3-fragment set
		mustAdd(t, r, frag(1, 1, 4, PayloadNonce, nonceChain[:3]))
		mustAdd(t, r, frag(1, 2, 4, 0, nil))
		m := mustAdd(t, r, frag(1, 4, 4, 0, nonceChain[5:]))
		if m == nil || !reflect.DeepEqual(m.Payloads, []Payload{&Nonce{Data: []byte{1, 2, 3, 4}}}) {
			t.Fatalf("%v", m)
		}
	})
	t.Run("header mismatch", func(t *testing.T) {
		r := NewReassembler(ReassemblyLimits{})
		mustAdd(t, r, frag(1, 1, 2, PayloadNonce, nonceChain[:3]))
		f := frag(1, 2, 2, 0, nonceChain[3:])
		f.Header.ExchangeType = CREATE_CHILD_SA
		if _, err := r.Add(f); !errors.Is(err, ErrFragmentMismatch) {
			t.Fatalf("%v", err)
		}
	})
	t.Run("requests and responses apart", func(t *testing.T) {
		r := NewReassembler(ReassemblyLimits{})
		mustAdd(t, r, frag(1, 1, 2, PayloadNonce, nonceChain[:3]))
		f := frag(1, 1, 2, PayloadNonce, nonceChain[:3])
		f.Header.Flags = FlagResponse
		mustAdd(t, r, f)
		if r.Pending() != 2 {
			t.Fatalf("%d pending", r.Pending())
		}
		r.Discard(&f.Header)
		if r.Pending() != 1 {
			t.Fatalf("%d pending after Discard", r.Pending())
		}
	})
	t.Run("max fragments", func(t *testing.T) {
		r := NewReassembler(ReassemblyLimits{MaxFragments: 4})
		if _, err := r.Add(frag(1, 1, 5, PayloadNonce, nil)); !errors.Is(err, ErrFragmentLimit) {
			t.Fatalf("%v", err)
		}
		if r.Pending() != 0 {
			t.Fatal("kept state for a refused fragment")
		}
	})
	t.Run("max bytes drops the message", func(t *testing.T) {
		r := NewReassembler(ReassemblyLimits{MaxBytes: 10})
		mustAdd(t, r, frag(1, 1, 3, PayloadNonce, make([]byte, 6)))
		if _, err := r.Add(frag(1, 2, 3, 0, make([]byte, 5))); !errors.Is(err, ErrFragmentLimit) {
			t.Fatalf("%v", err)
		}
		if r.Pending() != 0 {
			t.Fatal("kept a message over the byte limit")
		}
	})
	t.Run("max messages evicts the oldest", func(t *testing.T) {
		r := NewReassembler(ReassemblyLimits{MaxMessages: 2})
		mustAdd(t, r, frag(1, 1, 2, PayloadNonce, nonceChain[:3]))
		mustAdd(t, r, frag(2, 1, 2, PayloadNonce, nonceChain[:3]))
		mustAdd(t, r, frag(3, 1, 2, PayloadNonce, nonceChain[:3]))
		if r.Pending() != 2 {
			t.Fatalf("%d pending", r.Pending())
		}
		// Message 1 is gone: its second fragment starts a new set.
		mustAdd(t, r, frag(1, 2, 2, 0, nonceChain[3:]))
		if m := mustAdd(t, r, frag(3, 2, 2, 0, nonceChain[3:])); m == nil {
			t.Fatal("message 3 was evicted instead of 1")
		}
	})
	t.Run("bad inner chain", func(t *testing.T) {
		r := NewReassembler(ReassemblyLimits{})
		if _, err := r.Add(frag(1, 1, 1, PayloadNonce, nonceChain[:7])); !errors.Is(err, ErrTruncated) {
			t.Fatalf("%v", err)
		}
		if _, err := r.Add(frag(1, 1, 1, PayloadSK, []byte{0, 0, 0, 4})); !errors.Is(err, ErrPayloadPlacement) {
			t.Fatalf("%v", err)
		}
		if _, err := r.Add(frag(1, 0, 1, PayloadNonce, nil)); !errors.Is(err, ErrMalformed) {
			t.Fatalf("%v", err)
		}
		if r.Pending() != 0 {
			t.Fatal("state left")
		}
	})
}

func mustAdd(t *testing.T, r *Reassembler, f *Fragment) *Message {
	t.Helper()
	m, err := r.Add(f)
	if err != nil {
		t.Fatalf("Add %d/%d: %v", f.Number, f.Total, err)
	}
	return m
}
