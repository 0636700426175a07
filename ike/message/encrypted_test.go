package message

import (
	"bytes"
	"encoding/binary"
	"errors"
	"reflect"
	"testing"
)

// TestSealedPassThrough: plain Unmarshal keeps SK and SKF sealed, and
// Marshal writes them back octet for octet.
func TestSealedPassThrough(t *testing.T) {
	p := &fakeProtector{key: 9}
	m := bigMessage()
	sk, err := m.MarshalEncrypted(p)
	if err != nil {
		t.Fatal(err)
	}
	frags, err := m.MarshalFragments(p, 1280)
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range append([][]byte{sk}, frags...) {
		got, err := Unmarshal(b)
		if err != nil {
			t.Fatal(err)
		}
		switch q := got.Payloads[0].(type) {
		case *Encrypted:
			if q.NextPayload != PayloadIDi || len(q.Body) != len(b)-skAADLen {
				t.Errorf("SK %v, %d octets", q.NextPayload, len(q.Body))
			}
		case *EncryptedFragment:
			if q.Total != uint16(len(frags)) || len(q.Body) != len(b)-skfAADLen {
				t.Errorf("SKF %d/%d, %d octets", q.Number, q.Total, len(q.Body))
			}
		default:
			t.Fatalf("%T", q)
		}
		again, err := got.Marshal()
		if err != nil || !bytes.Equal(again, b) {
			t.Fatalf("re-encode differs (%v)", err)
		}
	}
}

// lyingProtector promises one length and delivers another.
type lyingProtector struct{ fakeProtector }

func (p *lyingProtector) Seal(ad, plaintext []byte) ([]byte, error) {
	b, err := p.fakeProtector.Seal(ad, plaintext)
	return b[1:], err
}

type failingProtector struct{ fakeProtector }

var errSeal = errors.New("no keys")

func (p *failingProtector) Seal(ad, plaintext []byte) ([]byte, error) { return nil, errSeal }

func TestProtectorContract(t *testing.T) {
	m := bigMessage()
	if _, err := m.MarshalEncrypted(&lyingProtector{}); !errors.Is(err, ErrProtector) {
		t.Errorf("SK: %v", err)
	}
	if _, err := m.MarshalFragments(&lyingProtector{}, 1280); !errors.Is(err, ErrProtector) {
		t.Errorf("SKF: %v", err)
	}
	if _, err := m.MarshalEncrypted(&failingProtector{}); !errors.Is(err, errSeal) {
		t.Errorf("SK: %v", err)
	}
	if _, err := m.MarshalFragments(&failingProtector{}, 1280); !errors.Is(err, errSeal) {
		t.Errorf("SKF: %v", err)
	}
	huge := &Message{Payloads: []Payload{&VendorID{Data: make([]byte, 65500)}}}
	if _, err := huge.MarshalEncrypted(&fakeProtector{}); !errors.Is(err, ErrTooLarge) {
		t.Errorf("SK over 64 KiB: %v", err)
	}
	// Fragmentation is what carries it.
	if frags, err := huge.MarshalFragments(&fakeProtector{}, 1280); err != nil || len(frags) < 50 {
		t.Errorf("fragmented: %d, %v", len(frags), err)
	}
}

// TestSealAssociatedData: Seal sees exactly the octets that precede the
// body, with the final length in the header.
func TestSealAssociatedData(t *testing.T) {
	rec := &recordingProtector{}
	m := &Message{Header: testHeader(), Payloads: []Payload{&Nonce{Data: seq(0, 20)}}}
	b, err := m.MarshalEncrypted(rec)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(rec.ad, [][]byte{b[:skAADLen]}) {
		t.Fatalf("SK associated data\n% x\nmessage\n% x", rec.ad, b)
	}
	rec.ad = nil
	frags, err := bigMessage().MarshalFragments(rec, 600)
	if err != nil {
		t.Fatal(err)
	}
	for i, f := range frags {
		if !bytes.Equal(rec.ad[i], f[:skfAADLen]) {
			t.Fatalf("SKF %d associated data\n% x\nmessage\n% x", i+1, rec.ad[i], f[:skfAADLen])
		}
	}
}

type recordingProtector struct {
	fakeProtector
	ad [][]byte
}

func (p *recordingProtector) Seal(ad, plaintext []byte) ([]byte, error) {
	p.ad = append(p.ad, bytes.Clone(ad))
	// Appending to ad must not disturb the message being built.
	_ = append(ad, 0xff)
	return p.fakeProtector.Seal(ad, plaintext)
}

func TestAccessors(t *testing.T) {
	id := IDi{Identification{IDType: ID_FQDN, Data: []byte("a.example")}}
	if got := id.IDBytes(); !bytes.Equal(got, cat([]byte{2, 0, 0, 0}, []byte("a.example"))) {
		t.Errorf("IDBytes % x", got)
	}
	e := &EAP{Message: []byte{2, 7, 0, 4}}
	if e.Code() != 2 || e.Identifier() != 7 || (&EAP{}).Code() != 0 || (&EAP{}).Identifier() != 0 {
		t.Error("EAP accessors")
	}
}

// TestVerifiedContent: only errors in inner payloads that passed the
// integrity check wrap ErrVerifiedContent; framing in front of the check,
// the check itself and reassembly bookkeeping do not, since their octets
// may come from anybody.
func TestVerifiedContent(t *testing.T) {
	p := &fakeProtector{key: 3}
	h := Header{InitiatorSPI: 1, ResponderSPI: 2, ExchangeType: INFORMATIONAL, MessageID: 5, Flags: FlagInitiator}
	good, err := sealSK(&h, PayloadD, []byte{0, 0, 0, 12, 3, 4, 0, 1, 0xc2, 0, 0, 1}, p)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := UnmarshalEncrypted(good, p); err != nil {
		t.Fatal(err)
	}
	// Inner Delete payload longer than the plaintext: verified, undecodable.
	inner, err := sealSK(&h, PayloadD, []byte{0, 0, 0, 40, 3}, p)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := UnmarshalEncrypted(inner, p); !errors.Is(err, ErrVerifiedContent) || !errors.Is(err, ErrTruncated) {
		t.Errorf("inner error: %v", err)
	}
	trailing := append(bytes.Clone(good), 0, 0, 0, 0)
	binary.BigEndian.PutUint32(trailing[24:], uint32(len(trailing)))
	badICV := bytes.Clone(good)
	badICV[len(badICV)-1] ^= 1
	shortSK := bytes.Clone(good)
	binary.BigEndian.PutUint16(shortSK[HeaderLen+2:], 2)
	for name, b := range map[string][]byte{"trailing octets": trailing, "bad ICV": badICV, "SK length": shortSK} {
		if _, err := UnmarshalEncrypted(b, p); err == nil || errors.Is(err, ErrVerifiedContent) {
			t.Errorf("%s: %v", name, err)
		}
	}

	frag, err := sealSKF(&h, PayloadD, 1, 2, []byte{0, 0, 0, 40}, p)
	if err != nil {
		t.Fatal(err)
	}
	zero := bytes.Clone(frag)
	binary.BigEndian.PutUint16(zero[HeaderLen+4:], 0)
	if _, err := UnmarshalFragment(zero, p); err == nil || errors.Is(err, ErrVerifiedContent) {
		t.Errorf("fragment number 0: %v", err)
	}
	f1, err := UnmarshalFragment(frag, p)
	if err != nil {
		t.Fatal(err)
	}
	last, err := sealSKF(&h, PayloadNone, 2, 2, []byte{3}, p)
	if err != nil {
		t.Fatal(err)
	}
	f2, err := UnmarshalFragment(last, p)
	if err != nil {
		t.Fatal(err)
	}
	r := NewReassembler(ReassemblyLimits{})
	if _, err := r.Add(f1); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Add(f1); !errors.Is(err, ErrFragmentDuplicate) || errors.Is(err, ErrVerifiedContent) {
		t.Errorf("duplicate: %v", err)
	}
	if _, err := r.Add(f2); !errors.Is(err, ErrVerifiedContent) || !errors.Is(err, ErrTruncated) {
		t.Errorf("reassembled inner error: %v", err)
	}
}
