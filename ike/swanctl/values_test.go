package swanctl

import (
	"encoding/json"
	"fmt"
	"github.com/xdpsec/xdpsec/ike"
	"strings"
	"testing"
	"time"
)

func TestParseTime(t *testing.T) {
	good := map[string]time.Duration{
		"0": 0, "30": 30 * time.Second, "30s": 30 * time.Second, "30 s": 30 * time.Second,
		"5m": 5 * time.Minute, "5M": 5 * time.Minute, "4h": 4 * time.Hour, "2d": 48 * time.Hour,
		"0x10": 16 * time.Second, "010": 8 * time.Second, // strtoul base 0, as charon
	}
	for in, want := range good {
		got, err := parseTime(in)
		if err != nil || got != want {
			t.Errorf("parseTime(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "h", "1.5h", "-1", "+1", "1w", "1hh", "1 h x", "99999999999999999999", "106752d", "08"} {
		if got, err := parseTime(in); err == nil {
			t.Errorf("parseTime(%q) = %v, want an error", in, got)
		}
	}
}

func TestParseBytes(t *testing.T) {
	good := map[string]uint64{
		"0": 0, "1000": 1000, "1k": 1024, "1K": 1024, "2m": 2 << 20, "3g": 3 << 30, "3 G": 3 << 30,
		"18446744073709551615": 1<<64 - 1,
	}
	for in, want := range good {
		got, err := parseBytes(in)
		if err != nil || got != want {
			t.Errorf("parseBytes(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "k", "1t", "1kb", "18446744073709551616", "17179869184g"} {
		if got, err := parseBytes(in); err == nil {
			t.Errorf("parseBytes(%q) = %v, want an error", in, got)
		}
	}
}

func TestParseTS(t *testing.T) {
	tests := []struct{ in, want string }{
		{"10.0.0.0/16", "10.0.0.0/16"},
		{"10.1.2.3/16", "10.1.0.0/16"},
		{"10.1.2.3", "10.1.2.3/32"},
		{"2001:db8::/32", "2001:db8::/32"},
		{"::ffff:10.0.0.0/104", "10.0.0.0/8"},
		{"dynamic", "dynamic"},
		{"dynamic[udp/500]", "dynamic[udp/500]"},
		{"10.0.0.1-10.0.0.9", "10.0.0.1-10.0.0.9"},
		{"10.0.0.0/16[tcp/443]", "10.0.0.0/16[tcp/443]"},
		{"10.0.0.0/16[6/https]", "10.0.0.0/16[tcp/443]"},
		{"10.0.0.0/16[tcp]", "10.0.0.0/16[tcp]"},
		{"10.0.0.0/16[any/53]", "10.0.0.0/16[any/53]"},
		{"10.0.0.0/16[/53]", "10.0.0.0/16[any/53]"},
		{"10.0.0.0/16[udp/1000-2000]", "10.0.0.0/16[udp/1000-2000]"},
		{"10.0.0.0/16[udp/any]", "10.0.0.0/16[udp]"},
		{"10.0.0.0/16[icmp/8]", "10.0.0.0/16[icmp/8]"},
		{"10.0.0.0/16[sctp/opaque]", "10.0.0.0/16[sctp/opaque]"},
		{"10.0.0.0/16[0x2f]", "10.0.0.0/16[gre]"},
	}
	for _, tt := range tests {
		ts, err := parseTS(tt.in)
		if err != nil {
			t.Errorf("parseTS(%q): %v", tt.in, err)
			continue
		}
		if ts.String() != tt.want {
			t.Errorf("parseTS(%q) = %s, want %s", tt.in, ts, tt.want)
		}
	}
	for _, in := range []string{"", "10.0.0.0/33", "10.0.0.0/16[tcp", "10.0.0.0/16[tcp/99999]", "10.0.0.0/16[tcp/2-1]",
		"10.0.0.0/16[nope]", "10.0.0.0/16[300]", "10.0.0.9-10.0.0.1", "10.0.0.1-2001:db8::1", "host.example", "10.0.0.1-x"} {
		if ts, err := parseTS(in); err == nil {
			t.Errorf("parseTS(%q) = %s, want an error", in, ts)
		}
	}
}

func TestParseAddrs(t *testing.T) {
	got, err := parseAddrs("%any, %any4,%ANY6, 192.0.2.1, 2001:db8::1, 10.0.0.0/8, 10.0.0.1-10.0.0.5, vpn-gw.example.net")
	if err != nil {
		t.Fatal(err)
	}
	want := "%any %any4 %any6 192.0.2.1 2001:db8::1 10.0.0.0/8 10.0.0.1-10.0.0.5 vpn-gw.example.net"
	if s := strings.Join(stringsOf(got), " "); s != want {
		t.Errorf("got %s, want %s", s, want)
	}
	kinds := []AddrKind{AddrAny, AddrAny, AddrAny, AddrIP, AddrIP, AddrPrefix, AddrRange, AddrDNS}
	for i, a := range got {
		if a.Kind != kinds[i] {
			t.Errorf("%v: kind %d, want %d", a, a.Kind, kinds[i])
		}
	}
	for _, in := range []string{"10.0.0.0/40", "bad_host!", "-a.example", "a..b"} {
		if a, err := parseAddrs(in); err == nil {
			t.Errorf("parseAddrs(%q) = %v, want an error", in, a)
		}
	}
}

func TestParseMarkAndIfID(t *testing.T) {
	marks := map[string]Mark{
		"42":               {Value: 42, Mask: 0xffffffff},
		"0x10/0xff":        {Value: 0x10, Mask: 0xff},
		"%unique":          {Unique: UniquePerSA, Mask: 0xffffffff},
		"%unique-dir/0xf0": {Unique: UniquePerDirection, Mask: 0xf0},
	}
	for in, want := range marks {
		if got, err := parseMark(in); err != nil || got != want {
			t.Errorf("parseMark(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"x", "1/x", "0xffffffff", "1/0x100000000"} {
		if m, err := parseMark(in); err == nil {
			t.Errorf("parseMark(%q) = %v, want an error", in, m)
		}
	}
	ifids := map[string]IfID{"0": {}, "7": {ID: 7}, "0xfffffffd": {ID: 0xfffffffd}, "%unique": {Unique: UniquePerSA}, "%UNIQUE-DIR": {Unique: UniquePerDirection}}
	for in, want := range ifids {
		if got, err := parseIfID(in); err != nil || got != want {
			t.Errorf("parseIfID(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"0xfffffffe", "0xffffffff", "4294967296", "-1", "%any"} {
		if got, err := parseIfID(in); err == nil {
			t.Errorf("parseIfID(%q) = %v, want an error", in, got)
		}
	}
}

func TestParseActions(t *testing.T) {
	for in, want := range map[string]ike.Action{"none": ike.ActionNone, "trap": ike.ActionTrap, "route": ike.ActionTrap, "start": ike.ActionStart,
		"trap|start": ike.ActionTrap | ike.ActionStart, "START|TRAP": ike.ActionTrap | ike.ActionStart} {
		if got, err := parseAction(in, true); err != nil || got != want {
			t.Errorf("start_action %q = %v, %v; want %v", in, got, err, want)
		}
	}
	if _, err := parseAction("trap|start", false); err == nil {
		t.Error("close_action trap|start accepted")
	}
	for in, want := range map[string]ike.Action{"clear": ike.ActionNone, "none": ike.ActionNone, "trap": ike.ActionTrap, "restart": ike.ActionStart, "start": ike.ActionStart} {
		if got, err := parseDPDAction(in); err != nil || got != want {
			t.Errorf("dpd_action %q = %v, %v; want %v", in, got, err, want)
		}
	}
}

func TestSecretRedacted(t *testing.T) {
	s := NewSecret([]byte("hunter2"))
	ike := &IKESecret{Name: "ike", Secret: s, IDs: []string{"a"}}
	outputs := []string{
		s.String(), s.GoString(),
		fmt.Sprint(s), fmt.Sprintf("%v %+v %#v %s %q %x %X %d", s, s, s, s, s, s, s, s),
		fmt.Sprintf("%v %+v %#v", ike, *ike, ike),
		fmt.Sprintf("%v", &s),
	}
	b, err := json.Marshal(ike)
	if err != nil {
		t.Fatal(err)
	}
	outputs = append(outputs, string(b))
	for _, out := range outputs {
		if strings.Contains(out, "hunter2") || strings.Contains(out, "68756e74657232") || strings.Contains(out, "aHVudGVyMg") {
			t.Errorf("secret leaked: %s", out)
		}
		if !strings.Contains(out, "redacted") {
			t.Errorf("no placeholder in %s", out)
		}
	}
	if string(s.Bytes()) != "hunter2" || s.Len() != 7 {
		t.Error("Bytes or Len wrong")
	}
	if !s.Equal(NewSecret([]byte("hunter2"))) || s.Equal(NewSecret([]byte("hunter3"))) {
		t.Error("Equal wrong")
	}
	b2 := s.Bytes()
	s.Zero()
	if !s.IsZero() || string(b2) != "\x00\x00\x00\x00\x00\x00\x00" {
		t.Errorf("Zero left %q", b2)
	}
}

func TestDecodeSecret(t *testing.T) {
	for in, want := range map[string]string{"plain": "plain", "0x414243": "ABC", "0X4142": "AB", "0sQUJD": "ABC", "0sQUI": "AB", "0sQUI=": "AB"} {
		s, err := decodeSecret(in)
		if err != nil || string(s.Bytes()) != want {
			t.Errorf("decodeSecret(%q) = %q, %v; want %q", in, s.Bytes(), err, want)
		}
	}
	for _, in := range []string{"0x4", "0xzz", "0s!!"} {
		if _, err := decodeSecret(in); err == nil {
			t.Errorf("decodeSecret(%q) accepted", in)
		}
	}
}
