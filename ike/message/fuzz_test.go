package message

import (
	"bytes"
	"encoding/binary"
	"math/rand/v2"
	"reflect"
	"testing"
)

// seedMessages are well-formed encodings to start the fuzzers from.
func seedMessages(tb testing.TB) [][]byte {
	empty, err := (&Message{Header: testHeader()}).Marshal()
	if err != nil {
		tb.Fatal(err)
	}
	seeds := [][]byte{ikeSAInitRequest, rawMessage(PayloadSA, createChildSAInner), empty}
	for _, tt := range everyPayload {
		b, err := (&Message{Header: testHeader(), Payloads: []Payload{tt.p}}).Marshal()
		if err != nil {
			tb.Fatal(err)
		}
		seeds = append(seeds, b)
	}
	return seeds
}

// FuzzDecode: Unmarshal never panics, and what it accepts re-encodes to a
// message of the same length that decodes to the same value. Each input is
// also tried with its header's version and length fields made right, or
// most mutations would stop at the header.
func FuzzDecode(f *testing.F) {
	for _, s := range seedMessages(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		checkDecode(t, b)
		if len(b) >= HeaderLen && len(b) <= MaxMessageLen {
			fixed := bytes.Clone(b)
			fixed[17] = MajorVersion<<4 | fixed[17]&0x0f
			binary.BigEndian.PutUint32(fixed[24:], uint32(len(fixed)))
			checkDecode(t, fixed)
		}
	})
}

func checkDecode(t *testing.T, b []byte) {
	m, err := Unmarshal(b)
	if err != nil {
		return
	}
	b2, err := m.Marshal()
	if err != nil {
		t.Fatalf("decoded message does not encode: %v", err)
	}
	if len(b2) != len(b) {
		t.Fatalf("re-encoded %d octets, decoded from %d", len(b2), len(b))
	}
	m2, err := Unmarshal(b2)
	if err != nil {
		t.Fatalf("re-encoded message does not decode: %v", err)
	}
	if !reflect.DeepEqual(m, m2) {
		t.Fatalf("decode(encode(m)) != m\n%#v\n%#v", m, m2)
	}
}

// FuzzDecodeEncrypted: UnmarshalEncrypted never panics, on whole messages
// (which rarely pass the checksum) and on arbitrary inner octets sealed
// with the fake protector (first octet: SK's Next Payload); what it
// accepts re-encodes and decodes to the same value.
func FuzzDecodeEncrypted(f *testing.F) {
	p := &fakeProtector{key: 11}
	f.Add(append([]byte{byte(PayloadSA)}, createChildSAInner...))
	// IKE_INTERMEDIATE and IKE_FOLLOWUP_KE (RFC 9242, RFC 9370): a KE, and
	// a KE followed by N(ADDITIONAL_KEY_EXCHANGE).
	f.Add(append([]byte{byte(PayloadKE)}, intermediateInner...))
	f.Add(append([]byte{byte(PayloadKE)}, followupInner...))
	for _, s := range seedMessages(f) {
		m, err := Unmarshal(s)
		if err != nil {
			f.Fatal(err)
		}
		sealed, err := m.MarshalEncrypted(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(sealed)
		f.Add(append([]byte{s[16]}, s[HeaderLen:]...))
	}
	check := func(t *testing.T, m *Message) {
		b2, err := m.MarshalEncrypted(p)
		if err != nil {
			t.Fatalf("decoded message does not encode: %v", err)
		}
		m2, err := UnmarshalEncrypted(b2, p)
		if err != nil {
			t.Fatalf("re-encoded message does not decode: %v", err)
		}
		if !reflect.DeepEqual(m, m2) {
			t.Fatalf("decode(encode(m)) != m\n%#v\n%#v", m, m2)
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if m, err := UnmarshalEncrypted(b, p); err == nil {
			check(t, m)
		}
		if len(b) == 0 {
			return
		}
		h := testHeader()
		sealed, err := sealSK(&h, PayloadType(b[0]), b[1:], p)
		if err != nil {
			return // too large for one message
		}
		if m, err := UnmarshalEncrypted(sealed, p); err == nil {
			check(t, m)
		}
	})
}

// FuzzReassemble feeds the Reassembler a stream of fragments described by
// the input, checking that it keeps within its limits and that what it
// completes re-encodes; then, if the input decodes as a message, cuts it
// into fragments and reassembles them in a shuffled order.
func FuzzReassemble(f *testing.F) {
	f.Add([]byte{1, 1, 2, 0, 3, 0, 0, 0, 1, 2, 2, 2, 0, 5, 8, 1, 2, 3, 4})
	f.Add([]byte{0, 1, 1, 2, 8, 0, 0, 0, 8, 1, 2, 3, 4})
	for _, s := range seedMessages(f) {
		f.Add(s)
	}
	f.Fuzz(checkReassemble)
}

func checkReassemble(t *testing.T, b []byte) {
	checkFragmentStream(t, b)
	checkFragmentMessage(t, b)
}

// checkFragmentStream reads b as fragments: message ID, number, total,
// flag bits (R, Next Payload) and plaintext length, then plaintext.
func checkFragmentStream(t *testing.T, b []byte) {
	limits := ReassemblyLimits{MaxFragments: 8, MaxBytes: 256, MaxMessages: 3}
	nexts := []PayloadType{PayloadNone, PayloadNonce, PayloadV, PayloadN, PayloadSK, 200}
	r := NewReassembler(limits)
	for len(b) >= 5 {
		id, number, total, bits := uint32(b[0]%4), uint16(b[1]%10), uint16(b[2]%10), b[3]
		n := min(int(b[4]%64), len(b)-5)
		fr := frag(id, number, total, nexts[int(bits>>1)%len(nexts)], b[5:5+n])
		if bits&1 != 0 {
			fr.Header.Flags = FlagResponse
		}
		b = b[5+n:]
		m, err := r.Add(fr)
		if len(r.pending) > limits.MaxMessages {
			t.Fatalf("%d messages pending", len(r.pending))
		}
		for _, pm := range r.pending {
			if pm.bytes > limits.MaxBytes || int(pm.total) > limits.MaxFragments || pm.received >= int(pm.total) {
				t.Fatalf("partial message over limits: %d octets, %d/%d fragments", pm.bytes, pm.received, pm.total)
			}
		}
		if err != nil || m == nil {
			continue
		}
		inner, err := appendChain(nil, m.Payloads, true)
		if err != nil {
			t.Fatalf("reassembled payloads do not encode: %v", err)
		}
		again, err := decodeChain(inner, firstType(m.Payloads), true)
		if err != nil || !reflect.DeepEqual(again, m.Payloads) {
			t.Fatalf("reassembled payloads do not round-trip: %v", err)
		}
	}
}

// checkFragmentMessage: if b decodes as a plaintext message, its payloads
// cut into fragments (size from b[0]) and reassembled in a shuffled order
// come back equal.
func checkFragmentMessage(t *testing.T, b []byte) {
	m, err := Unmarshal(b)
	if err != nil {
		return
	}
	if n := len(m.Payloads); n > 0 {
		switch m.Payloads[n-1].(type) {
		case *Encrypted, *EncryptedFragment:
			return
		}
	}
	p := &fakeProtector{key: 13}
	maxLen := skfAADLen + p.SealedLen(1) + int(b[0])
	frags, err := m.MarshalFragments(p, maxLen)
	if err != nil {
		t.Fatalf("MarshalFragments(%d): %v", maxLen, err)
	}
	r := NewReassembler(ReassemblyLimits{MaxFragments: len(frags), MaxBytes: len(b)})
	order := rand.New(rand.NewPCG(uint64(len(b)), uint64(b[0]))).Perm(len(frags))
	var got *Message
	for k, i := range order {
		if len(frags[i]) > maxLen {
			t.Fatalf("fragment %d: %d octets over %d", i+1, len(frags[i]), maxLen)
		}
		fr, err := UnmarshalFragment(frags[i], p)
		if err != nil {
			t.Fatalf("fragment %d/%d: %v", i+1, len(frags), err)
		}
		if got, err = r.Add(fr); err != nil {
			t.Fatalf("Add %d/%d: %v", i+1, len(frags), err)
		}
		if (got != nil) != (k == len(frags)-1) {
			t.Fatalf("complete after %d of %d fragments", k+1, len(frags))
		}
	}
	if !reflect.DeepEqual(got.Payloads, m.Payloads) {
		t.Fatal("reassembled payloads differ")
	}
}

var (
	intermediateInner = []byte{0, 0, 0, 12, 0, 36, 0, 0, 1, 2, 3, 4}
	followupInner     = []byte{byte(PayloadN), 0, 0, 12, 0, 36, 0, 0, 1, 2, 3, 4,
		0, 0, 0, 12, 0, 0, 0x40, 0x39, 'l', 'i', 'n', 'k'}
)

// FuzzIntAuthOctets: for every inner payload chain that decodes,
// IntAuthOctets is the message as it would be unencrypted: the header
// and SK's generic header with lengths that add up, then the payloads.
func FuzzIntAuthOctets(f *testing.F) {
	p := &fakeProtector{key: 3}
	f.Add(append([]byte{byte(PayloadKE)}, intermediateInner...))
	f.Add(append([]byte{byte(PayloadKE)}, followupInner...))
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) == 0 {
			return
		}
		h := testHeader()
		h.ExchangeType = IKE_INTERMEDIATE
		sealed, err := sealSK(&h, PayloadType(b[0]), b[1:], p)
		if err != nil {
			return
		}
		m, err := UnmarshalEncrypted(sealed, p)
		if err != nil {
			return
		}
		octets, err := IntAuthOctets(m)
		if err != nil {
			t.Fatalf("decoded message has no IntAuth octets: %v", err)
		}
		if len(octets) < skAADLen || int(binary.BigEndian.Uint32(octets[24:28])) != len(octets) ||
			int(binary.BigEndian.Uint16(octets[HeaderLen+2:]))+HeaderLen != len(octets) || octets[16] != byte(PayloadSK) {
			t.Fatalf("lengths do not add up: %x", octets)
		}
		if len(m.Payloads) > 0 && octets[HeaderLen] != byte(firstType(m.Payloads)) {
			t.Fatalf("SK's next payload %d, first payload %v", octets[HeaderLen], firstType(m.Payloads))
		}
		// The payloads, decoded again, are the message's.
		m2, err := decodeChain(octets[skAADLen:], PayloadType(octets[HeaderLen]), true)
		if err != nil || !reflect.DeepEqual(m2, m.Payloads) {
			t.Fatalf("IntAuth_P does not decode to the payloads: %v", err)
		}
	})
}
