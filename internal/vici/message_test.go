package vici

import (
	"bytes"
	"encoding/binary"
	"errors"
	"reflect"
	"strings"
	"testing"
)

// readmeExample is the encoding example of strongSwan's VICI README.
var readmeExample = []byte{
	3, 4, 'k', 'e', 'y', '1', 0, 6, 'v', 'a', 'l', 'u', 'e', '1',
	1, 8, 's', 'e', 'c', 't', 'i', 'o', 'n', '1',
	1, 11, 's', 'u', 'b', '-', 's', 'e', 'c', 't', 'i', 'o', 'n',
	3, 4, 'k', 'e', 'y', '2', 0, 6, 'v', 'a', 'l', 'u', 'e', '2',
	2,
	4, 5, 'l', 'i', 's', 't', '1',
	5, 0, 5, 'i', 't', 'e', 'm', '1',
	5, 0, 5, 'i', 't', 'e', 'm', '2',
	6,
	2,
}

func TestEncodeReadmeExample(t *testing.T) {
	m := NewMessage().Set("key1", "value1")
	s := m.Section("section1")
	s.Section("sub-section").Set("key2", "value2")
	s.SetList("list1", []string{"item1", "item2"})
	b, err := m.Encode(nil)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b, readmeExample) {
		t.Fatalf("encoding\n got %v\nwant %v", b, readmeExample)
	}
	d, err := Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	if d.Get("key1") != "value1" || d.GetSection("section1").GetSection("sub-section").Get("key2") != "value2" ||
		!reflect.DeepEqual(d.GetSection("section1").GetList("list1"), []string{"item1", "item2"}) {
		t.Fatalf("decoded:\n%s", d)
	}
}

func TestPacketRoundTrip(t *testing.T) {
	for _, p := range []Packet{
		{Type: CmdRequest, Name: "list-sas", Msg: NewMessage().Set("noblock", "yes")},
		{Type: CmdResponse, Msg: NewMessage().Set("success", "no").Set("errmsg", "x")},
		{Type: EventRegister, Name: "ike-updown", Msg: NewMessage()},
		{Type: EventConfirm, Msg: NewMessage()},
		{Type: Event, Name: "list-sa", Msg: NewMessage().SetList("empty", nil)},
	} {
		b, err := p.Encode()
		if err != nil {
			t.Fatal(err)
		}
		if int(binary.BigEndian.Uint32(b)) != len(b)-4 {
			t.Errorf("%v: length header %d for %d bytes", p, binary.BigEndian.Uint32(b), len(b)-4)
		}
		got, err := ReadPacket(bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		if got.Type != p.Type || got.Name != p.Name || got.Msg.String() != p.Msg.String() {
			t.Errorf("round trip: got %+v, want %+v", got, p)
		}
	}
}

func TestDecodeHostile(t *testing.T) {
	deep := bytes.Repeat([]byte{1, 1, 'a'}, MaxDepth+2)
	for _, tc := range []struct {
		name string
		data []byte
	}{
		{"truncated name", []byte{3, 4, 'k'}},
		{"name past end", []byte{3, 200, 'k', 0, 0}},
		{"truncated value length", []byte{3, 1, 'k', 0}},
		{"value past end", []byte{3, 1, 'k', 0, 9, 'v'}},
		{"unclosed section", []byte{1, 1, 's'}},
		{"section end at root", []byte{2}},
		{"unclosed list", []byte{4, 1, 'l', 5, 0, 1, 'x'}},
		{"key/value in list", []byte{4, 1, 'l', 3, 1, 'k', 0, 0, 6}},
		{"unknown element", []byte{9}},
		{"deep nesting", deep},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := Decode(tc.data); !errors.Is(err, ErrMessage) {
				t.Fatalf("Decode(%v) = %v, want ErrMessage", tc.data, err)
			}
		})
	}
}

func TestReadPacketLimits(t *testing.T) {
	var hdr [4]byte
	binary.BigEndian.PutUint32(hdr[:], MaxSegment+1)
	// Refused from the header alone: nothing that large is read.
	if _, err := ReadPacket(bytes.NewReader(hdr[:])); !errors.Is(err, ErrMessage) || !strings.Contains(err.Error(), "more than") {
		t.Fatalf("oversized: %v", err)
	}
	binary.BigEndian.PutUint32(hdr[:], 10)
	if _, err := ReadPacket(bytes.NewReader(append(hdr[:], 0, 1))); !errors.Is(err, ErrMessage) {
		t.Fatalf("truncated segment: %v", err)
	}
	if _, err := ReadPacket(bytes.NewReader([]byte{0, 0, 0, 0})); !errors.Is(err, ErrMessage) {
		t.Fatalf("empty segment: %v", err)
	}
	if _, err := DecodePacket([]byte{8}); !errors.Is(err, ErrMessage) {
		t.Fatalf("unknown packet type: %v", err)
	}
	if _, err := DecodePacket([]byte{CmdRequest}); !errors.Is(err, ErrMessage) {
		t.Fatalf("named packet without name: %v", err)
	}
	if _, err := DecodePacket([]byte{CmdRequest, 0}); !errors.Is(err, ErrMessage) {
		t.Fatalf("named packet with an empty name: %v", err)
	}
	// An empty key is fine in a message (charon's get-counters uses one).
	if m, err := Decode([]byte{1, 0, 3, 1, 'k', 0, 1, 'v', 2}); err != nil || m.GetSection("").Get("k") != "v" {
		t.Fatalf("empty section name: %v %v", m, err)
	}
}

func TestEncodeLimits(t *testing.T) {
	if _, err := NewMessage().Set(strings.Repeat("k", 256), "v").Encode(nil); err == nil {
		t.Error("a 256-byte key encoded")
	}
	if _, err := NewMessage().Set("k", strings.Repeat("v", 65536)).Encode(nil); err == nil {
		t.Error("a 64 KiB value encoded")
	}
	m := NewMessage()
	for i := 0; i < 10; i++ {
		m.SetList("k"+strings.Repeat("x", i), []string{strings.Repeat("v", 60000)})
	}
	if _, err := (Packet{Type: CmdResponse, Msg: m}).Encode(); err == nil {
		t.Error("a packet over 512 KiB encoded")
	}
}

func FuzzDecode(f *testing.F) {
	f.Add(readmeExample)
	f.Add([]byte{1, 1, 's', 2})
	f.Add([]byte{4, 1, 'l', 5, 0, 0, 6})
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := Decode(data)
		if err != nil {
			return
		}
		// What decodes encodes again, to the same bytes.
		b, err := m.Encode(nil)
		if err != nil {
			t.Fatalf("decoded message does not encode: %v", err)
		}
		if !bytes.Equal(b, data) {
			t.Fatalf("re-encoding differs:\n%v\n%v", data, b)
		}
	})
}

func FuzzDecodePacket(f *testing.F) {
	for _, p := range []Packet{
		{Type: CmdRequest, Name: "load-conn", Msg: NewMessage().Section("c").Set("remote_addrs", "192.0.2.1").SetList("proposals", []string{"default"})},
		{Type: EventRegister, Name: "log"},
		{Type: CmdResponse, Msg: NewMessage().Set("success", "yes")},
	} {
		b, err := p.Encode()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b[4:])
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := DecodePacket(data)
		if err != nil {
			return
		}
		b, err := p.Encode()
		if err != nil {
			t.Fatalf("decoded packet does not encode: %v", err)
		}
		if !bytes.Equal(b[4:], data) {
			t.Fatalf("re-encoding differs:\n%v\n%v", data, b[4:])
		}
	})
}
