package ike_test

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"net/netip"
	"reflect"
	"testing"
	"time"

	"github.com/xdpsec/xdpsec/ike"
)

// fill sets v (and everything it holds) to random values, nil and empty
// ones included: every field of a record, whatever its type, so that a
// field added to a record shows in the comparison below.
func fill(r *rand.Rand, v reflect.Value, depth int) {
	switch v.Interface().(type) {
	case time.Time:
		ts := []time.Time{{}, time.Unix(r.Int64N(1<<32), r.Int64N(1e9)).UTC(),
			time.Unix(r.Int64N(1<<32), 0).In(time.FixedZone("x", -5*3600-30*60)),
			time.Unix(r.Int64N(1<<32), 0).In(time.FixedZone("odd", 17))}
		if r.IntN(200) == 0 {
			// encoding/json refuses it, and so must AppendJSON.
			ts = []time.Time{time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)}
		}
		v.Set(reflect.ValueOf(ts[r.IntN(len(ts))]))
		return
	case netip.Addr:
		v.Set(reflect.ValueOf(randomAddr(r)))
		return
	case netip.AddrPort:
		v.Set(reflect.ValueOf(netip.AddrPortFrom(randomAddr(r), uint16(r.Uint32()))))
		return
	}
	switch v.Kind() {
	case reflect.Bool:
		v.SetBool(r.IntN(2) == 1)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		v.SetInt(r.Int64() >> r.IntN(64))
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		v.SetUint(r.Uint64() >> r.IntN(65))
	case reflect.String:
		ss := []string{"", "gw", "net-1", `a"b\c<d>&e`, "tab\there", "é\u2028", "\xff"}
		v.SetString(ss[r.IntN(len(ss))])
	case reflect.Slice:
		if r.IntN(4) == 0 || depth > 6 {
			return // nil
		}
		n := r.IntN(3)
		s := reflect.MakeSlice(v.Type(), n, n)
		for i := range n {
			fill(r, s.Index(i), depth+1)
		}
		v.Set(s)
	case reflect.Array:
		for i := range v.Len() {
			fill(r, v.Index(i), depth+1)
		}
	case reflect.Pointer:
		if r.IntN(2) == 0 || depth > 6 {
			return
		}
		p := reflect.New(v.Type().Elem())
		fill(r, p.Elem(), depth+1)
		v.Set(p)
	case reflect.Map:
		if r.IntN(2) == 0 || depth > 6 {
			return
		}
		m := reflect.MakeMap(v.Type())
		for range r.IntN(3) {
			k, e := reflect.New(v.Type().Key()).Elem(), reflect.New(v.Type().Elem()).Elem()
			fill(r, k, depth+1)
			fill(r, e, depth+1)
			m.SetMapIndex(k, e)
		}
		v.Set(m)
	case reflect.Struct:
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				fill(r, v.Field(i), depth+1)
			}
		}
	}
}

func randomAddr(r *rand.Rand) netip.Addr {
	var b [16]byte
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	switch r.IntN(5) {
	case 0:
		return netip.Addr{}
	case 1:
		return netip.AddrFrom16(b).WithZone("eth0")
	case 2:
		return netip.AddrFrom16(b)
	case 3:
		return netip.AddrFrom4([4]byte(b[:4]))
	}
	return netip.AddrFrom4([4]byte(b[:4])).Unmap()
}

// The journal's encoding of a delta must be encoding/json's, byte for
// byte, for records with any field set or not.
func TestStateDeltaAppendJSON(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	fast, refused := 0, 0
	for i := range 3000 {
		var d ike.StateDelta
		fill(r, reflect.ValueOf(&d).Elem(), 0)
		if i%3 == 0 {
			// Mostly the common case: IKEv2 SAs and message IDs only.
			d.V1, d.Leases = nil, nil
		}
		want, wantErr := json.Marshal(&d)
		got, err := d.AppendJSON([]byte("prefix"))
		if (err != nil) != (wantErr != nil) {
			t.Fatalf("delta %d: error %v, encoding/json's %v", i, err, wantErr)
		}
		if err != nil {
			refused++
			continue
		}
		if !bytes.Equal(got[len("prefix"):], want) {
			t.Fatalf("delta %d:\n got %s\nwant %s", i, got[len("prefix"):], want)
		}
		if len(d.SAs) > 0 {
			fast++
		}
	}
	if fast < 1000 || refused == 0 {
		t.Errorf("%d deltas with IKE SA records compared, %d refused: want 1,000 and some", fast, refused)
	}
}

// A typical delta: one IKE SA with one CHILD_SA, as the journal writes
// it when the SA is established.
func typicalDelta() *ike.StateDelta {
	r := rand.New(rand.NewPCG(3, 4))
	key := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(r.Uint32())
		}
		return b
	}
	ts := func(a string) []ike.TrafficSelector {
		p := netip.MustParseAddr(a)
		return []ike.TrafficSelector{{EndPort: 65535, Start: p, End: p}}
	}
	sa := ike.ExportedIKESA{ID: 1, Conn: "gw", SPIi: r.Uint64(), SPIr: r.Uint64(),
		Local: netip.MustParseAddrPort("192.0.2.2:500"), Remote: netip.MustParseAddrPort("10.200.3.4:500"),
		LocalID: ike.Identity{Type: 2, Data: []byte("sun.example.org")}, RemoteID: ike.Identity{Type: 2, Data: []byte("moon.example.org")},
		LastResponse: [][]byte{key(300)}, ExpectMessageID: 1, EstablishedAt: time.Now(),
		Children: []ike.ExportedChildSA{{ID: 1, Name: "net", SPIIn: r.Uint32(), SPIOut: r.Uint32(),
			LocalTS: ts("10.2.0.1"), RemoteTS: ts("10.200.3.4"), ReqID: 1, InstalledAt: time.Now()}}}
	sa.Keys.D, sa.Keys.EI, sa.Keys.ER, sa.Keys.PI, sa.Keys.PR = key(32), key(20), key(20), key(32), key(32)
	return &ike.StateDelta{NextIKEID: 2, NextChildID: 2, NextReqID: 2, SAs: []ike.ExportedIKESA{sa}}
}

func BenchmarkStateDeltaJSON(b *testing.B) {
	d := typicalDelta()
	b.Run("encoding-json", func(b *testing.B) {
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		for b.Loop() {
			buf.Reset()
			enc.Encode(d)
		}
	})
	b.Run("AppendJSON", func(b *testing.B) {
		var buf []byte
		for b.Loop() {
			buf, _ = d.AppendJSON(buf[:0])
		}
	})
}
