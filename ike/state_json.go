package ike

import (
	"encoding/base64"
	"encoding/json"
	"net/netip"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/xdpsec/xdpsec/ike/transform"
)

// AppendJSON appends d as encoding/json encodes it, byte for byte, without
// its reflection: the daemon's journal writes a delta every time an SA
// changes (a few KB per IKE SA established, keys and last response
// included), and encoding/json's walk of the record and the strings it
// allocates for each address and time were a tenth of a responder's CPU.
// The common records (IKEv2 SAs and their CHILD_SAs, message IDs, gone
// SAs) are written here; what is rare (IKEv1 SAs, leases, virtual IPs,
// accounting, held-back keys) goes through encoding/json. The tests
// compare both encodings of records with every field set, so a field
// added to a record without being added here fails them.
func (d *StateDelta) AppendJSON(b []byte) ([]byte, error) {
	w := jsonWriter{b: b}
	w.raw(`{"NextIKEID":`)
	w.uint(uint64(d.NextIKEID))
	w.raw(`,"NextChildID":`)
	w.uint(uint64(d.NextChildID))
	w.raw(`,"NextReqID":`)
	w.uint(uint64(d.NextReqID))
	if len(d.SAs) > 0 {
		w.raw(`,"SAs":[`)
		for i := range d.SAs {
			if i > 0 {
				w.raw(",")
			}
			w.ikeSA(&d.SAs[i])
		}
		w.raw("]")
	}
	if len(d.V1) > 0 {
		w.raw(`,"V1":`)
		w.marshal(&d.V1)
	}
	if len(d.Gone) > 0 {
		w.raw(`,"Gone":[`)
		for i, id := range d.Gone {
			if i > 0 {
				w.raw(",")
			}
			w.uint(uint64(id))
		}
		w.raw("]")
	}
	if len(d.MessageIDs) > 0 {
		w.raw(`,"MessageIDs":[`)
		for i := range d.MessageIDs {
			m := &d.MessageIDs[i]
			if i > 0 {
				w.raw(",")
			}
			w.raw(`{"ID":`)
			w.uint(uint64(m.ID))
			w.raw(`,"Next":`)
			w.uint(uint64(m.Next))
			w.raw(`,"Expect":`)
			w.uint(uint64(m.Expect))
			if len(m.LastResponse) > 0 {
				w.raw(`,"LastResponse":`)
				w.bytesList(m.LastResponse)
			}
			w.raw("}")
		}
		w.raw("]")
	}
	if len(d.Leases) > 0 {
		w.raw(`,"Leases":`)
		w.marshal(&d.Leases)
	}
	w.raw("}")
	return w.b, w.err
}

func (w *jsonWriter) ikeSA(s *ExportedIKESA) {
	w.raw(`{"ID":`)
	w.uint(uint64(s.ID))
	w.raw(`,"Conn":`)
	w.string(s.Conn)
	w.raw(`,"Initiator":`)
	w.bool(s.Initiator)
	w.raw(`,"SPIi":`)
	w.uint(s.SPIi)
	w.raw(`,"SPIr":`)
	w.uint(s.SPIr)
	w.raw(`,"Local":`)
	w.addrPort(s.Local)
	w.raw(`,"Remote":`)
	w.addrPort(s.Remote)
	w.raw(`,"Proposal":`)
	w.proposal(&s.Proposal)
	w.raw(`,"Suite":{"Encr":`)
	w.uint(uint64(s.Suite.Encr))
	w.raw(`,"EncrKeyBits":`)
	w.uint(uint64(s.Suite.EncrKeyBits))
	w.raw(`,"Integ":`)
	w.uint(uint64(s.Suite.Integ))
	w.raw(`,"PRF":`)
	w.uint(uint64(s.Suite.PRF))
	w.raw(`,"KE":`)
	w.uint(uint64(s.Suite.KE))
	w.raw(`},"Keys":{"D":`)
	w.bytes(s.Keys.D)
	w.raw(`,"AI":`)
	w.bytes(s.Keys.AI)
	w.raw(`,"AR":`)
	w.bytes(s.Keys.AR)
	w.raw(`,"EI":`)
	w.bytes(s.Keys.EI)
	w.raw(`,"ER":`)
	w.bytes(s.Keys.ER)
	w.raw(`,"PI":`)
	w.bytes(s.Keys.PI)
	w.raw(`,"PR":`)
	w.bytes(s.Keys.PR)
	w.raw(`},"LocalID":`)
	w.identity(&s.LocalID)
	w.raw(`,"RemoteID":`)
	w.identity(&s.RemoteID)
	w.raw(`,"NATLocal":`)
	w.bool(s.NATLocal)
	w.raw(`,"NATRemote":`)
	w.bool(s.NATRemote)
	w.raw(`,"PeerFragmentation":`)
	w.bool(s.PeerFragmentation)
	if s.PeerRedirect {
		w.raw(`,"PeerRedirect":true`)
	}
	if s.PeerMIDSync {
		w.raw(`,"PeerMIDSync":true`)
	}
	w.raw(`,"NextMessageID":`)
	w.uint(uint64(s.NextMessageID))
	w.raw(`,"ExpectMessageID":`)
	w.uint(uint64(s.ExpectMessageID))
	w.raw(`,"LastResponse":`)
	w.bytesList(s.LastResponse)
	w.raw(`,"Children":`)
	if s.Children == nil {
		w.raw("null")
	} else {
		w.raw("[")
		for i := range s.Children {
			if i > 0 {
				w.raw(",")
			}
			w.childSA(&s.Children[i])
		}
		w.raw("]")
	}
	if s.EAPIdentity != "" {
		w.raw(`,"EAPIdentity":`)
		w.string(s.EAPIdentity)
	}
	if len(s.VIPs) > 0 {
		w.raw(`,"VIPs":`)
		w.marshal(&s.VIPs)
	}
	if len(s.LocalVIPs) > 0 {
		w.raw(`,"LocalVIPs":`)
		w.addrs(s.LocalVIPs)
	}
	if len(s.DNSServers) > 0 {
		w.raw(`,"DNSServers":`)
		w.addrs(s.DNSServers)
	}
	if s.Accounting != nil {
		w.raw(`,"Accounting":`)
		w.marshal(s.Accounting)
	}
	if s.MOBIKE {
		w.raw(`,"MOBIKE":true`)
	}
	if s.NotOriginalInitiator {
		w.raw(`,"NotOriginalInitiator":true`)
	}
	if len(s.PeerAddrs) > 0 {
		w.raw(`,"PeerAddrs":`)
		w.addrs(s.PeerAddrs)
	}
	if s.LastUpdateID != 0 {
		w.raw(`,"LastUpdateID":`)
		w.uint(uint64(s.LastUpdateID))
	}
	if s.UpdateSeen {
		w.raw(`,"UpdateSeen":true`)
	}
	if !s.EstablishedAt.IsZero() {
		w.raw(`,"EstablishedAt":`)
		w.time(s.EstablishedAt)
	}
	w.raw("}")
}

func (w *jsonWriter) childSA(c *ExportedChildSA) {
	w.raw(`{"ID":`)
	w.uint(uint64(c.ID))
	w.raw(`,"Name":`)
	w.string(c.Name)
	w.raw(`,"SPIIn":`)
	w.uint(uint64(c.SPIIn))
	w.raw(`,"SPIOut":`)
	w.uint(uint64(c.SPIOut))
	w.raw(`,"Proposal":`)
	w.proposal(&c.Proposal)
	w.raw(`,"Suite":{"Encr":`)
	w.uint(uint64(c.Suite.Encr))
	w.raw(`,"EncrKeyBits":`)
	w.uint(uint64(c.Suite.EncrKeyBits))
	w.raw(`,"Integ":`)
	w.uint(uint64(c.Suite.Integ))
	w.raw(`,"KE":`)
	w.uint(uint64(c.Suite.KE))
	w.raw(`,"ESN":`)
	w.uint(uint64(c.Suite.ESN))
	w.raw(`,"AH":`)
	w.bool(c.Suite.AH)
	w.raw(`},"Mode":`)
	w.uint(uint64(c.Mode))
	w.raw(`,"LocalTS":`)
	w.selectors(c.LocalTS)
	w.raw(`,"RemoteTS":`)
	w.selectors(c.RemoteTS)
	w.raw(`,"ReqID":`)
	w.uint(uint64(c.ReqID))
	w.raw(`,"InstalledAt":`)
	w.time(c.InstalledAt)
	if c.HeldOut != nil {
		w.raw(`,"HeldOut":`)
		w.marshal(c.HeldOut)
	}
	if c.Keys != nil {
		w.raw(`,"Keys":`)
		w.marshal(c.Keys)
	}
	w.raw("}")
}

func (w *jsonWriter) proposal(p *transform.Proposal) {
	w.raw(`{"Protocol":`)
	w.uint(uint64(p.Protocol))
	w.raw(`,"Transforms":`)
	if p.Transforms == nil {
		w.raw("null}")
		return
	}
	w.raw("[")
	for i, t := range p.Transforms {
		if i > 0 {
			w.raw(",")
		}
		w.raw(`{"Type":`)
		w.uint(uint64(t.Type))
		w.raw(`,"ID":`)
		w.uint(uint64(t.ID))
		w.raw(`,"KeyLength":`)
		w.uint(uint64(t.KeyLength))
		w.raw("}")
	}
	w.raw("]}")
}

func (w *jsonWriter) identity(id *Identity) {
	w.raw(`{"Type":`)
	w.uint(uint64(id.Type))
	w.raw(`,"Data":`)
	w.bytes(id.Data)
	w.raw("}")
}

func (w *jsonWriter) selectors(ts []TrafficSelector) {
	if ts == nil {
		w.raw("null")
		return
	}
	w.raw("[")
	for i, s := range ts {
		if i > 0 {
			w.raw(",")
		}
		w.raw(`{"Protocol":`)
		w.uint(uint64(s.Protocol))
		w.raw(`,"StartPort":`)
		w.uint(uint64(s.StartPort))
		w.raw(`,"EndPort":`)
		w.uint(uint64(s.EndPort))
		w.raw(`,"Start":`)
		w.addr(s.Start)
		w.raw(`,"End":`)
		w.addr(s.End)
		w.raw("}")
	}
	w.raw("]")
}

// jsonWriter appends JSON values as encoding/json writes them (HTML
// characters escaped, as json.Marshal and a json.Encoder do by default);
// the first error sticks.
type jsonWriter struct {
	b   []byte
	err error
}

func (w *jsonWriter) raw(s string)  { w.b = append(w.b, s...) }
func (w *jsonWriter) uint(v uint64) { w.b = strconv.AppendUint(w.b, v, 10) }
func (w *jsonWriter) bool(v bool)   { w.b = strconv.AppendBool(w.b, v) }
func (w *jsonWriter) marshal(v any) { w.b, w.err = appendMarshal(w.b, v, w.err) }

// addr writes a as its MarshalText does ("" for the zero Addr); one with
// an IPv6 zone, which may need escaping, goes through encoding/json.
func (w *jsonWriter) addr(a netip.Addr) {
	if a.Zone() != "" {
		w.marshal(a)
		return
	}
	w.b = append(w.b, '"')
	if a.IsValid() {
		w.b = a.AppendTo(w.b)
	}
	w.b = append(w.b, '"')
}

// addrPort writes p as addr writes its address.
func (w *jsonWriter) addrPort(p netip.AddrPort) {
	if p.Addr().Zone() != "" {
		w.marshal(p)
		return
	}
	w.b = append(w.b, '"')
	if p.Addr().IsValid() {
		w.b = p.AppendTo(w.b)
	}
	w.b = append(w.b, '"')
}

func (w *jsonWriter) addrs(as []netip.Addr) {
	w.raw("[")
	for i, a := range as {
		if i > 0 {
			w.raw(",")
		}
		w.addr(a)
	}
	w.raw("]")
}

func (w *jsonWriter) bytes(b []byte) {
	if b == nil {
		w.raw("null")
		return
	}
	w.b = append(w.b, '"')
	w.b = base64.StdEncoding.AppendEncode(w.b, b)
	w.b = append(w.b, '"')
}

func (w *jsonWriter) bytesList(bs [][]byte) {
	if bs == nil {
		w.raw("null")
		return
	}
	w.raw("[")
	for i, b := range bs {
		if i > 0 {
			w.raw(",")
		}
		w.bytes(b)
	}
	w.raw("]")
}

// string writes s directly when it needs no escaping, else through
// encoding/json (control, HTML and non-ASCII characters).
func (w *jsonWriter) string(s string) {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= utf8.RuneSelf || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			w.marshal(s)
			return
		}
	}
	w.b = append(w.b, '"')
	w.b = append(w.b, s...)
	w.b = append(w.b, '"')
}

// time writes t as its MarshalJSON does (RFC 3339 with nanoseconds),
// through MarshalJSON itself where that refuses or may differ: a year
// outside 0-9999 or a zone offset that is not whole minutes.
func (w *jsonWriter) time(t time.Time) {
	_, off := t.Zone()
	if y := t.Year(); y < 0 || y > 9999 || off%60 != 0 || off <= -24*3600 || off >= 24*3600 {
		w.marshal(t)
		return
	}
	w.b = append(w.b, '"')
	w.b = t.AppendFormat(w.b, time.RFC3339Nano)
	w.b = append(w.b, '"')
}

func appendMarshal(b []byte, v any, err error) ([]byte, error) {
	if err != nil {
		return b, err
	}
	j, err := json.Marshal(v)
	if err != nil {
		return b, err
	}
	b = append(b, j...)
	clear(j) // keys may be in it
	return b, nil
}
