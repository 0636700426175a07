package vici

import (
	"fmt"
	"strings"

	"github.com/xdpsec/xdpsec/ike"
	"github.com/xdpsec/xdpsec/internal/daemon"
)

// observer turns the engine's SA events into VICI events. It runs with
// the engine locked: it formats and queues, nothing more, and only when
// a client registered for the event.
type observer struct{ s *Server }

func (o observer) IKEUpDown(sa ike.IKESAInfo, up bool) {
	if !o.s.listening("ike-updown") {
		return
	}
	m := NewMessage()
	if up {
		m.Set("up", "yes")
	}
	m.AddSection(sa.Name, ikeSAMessage(fromIKE(sa), nil))
	o.s.emit("ike-updown", m)
}

func (o observer) IKERekey(old, new ike.IKESAInfo) {
	if !o.s.listening("ike-rekey") {
		return
	}
	m := NewMessage()
	s := m.Section(old.Name)
	s.AddSection("old", ikeSAMessage(fromIKE(old), nil))
	s.AddSection("new", ikeSAMessage(fromIKE(new), nil))
	o.s.emit("ike-rekey", m)
}

func (o observer) ChildUpDown(sa ike.IKESAInfo, child ike.ChildSAInfo, up bool) {
	if !o.s.listening("child-updown") {
		return
	}
	m := NewMessage()
	if up {
		m.Set("up", "yes")
	}
	x := fromIKE(sa)
	m.AddSection(sa.Name, ikeSAMessage(x, []daemon.ChildSA{fromChild(x, child)}))
	o.s.emit("child-updown", m)
}

func (o observer) ChildRekey(sa ike.IKESAInfo, old, new ike.ChildSAInfo) {
	if !o.s.listening("child-rekey") {
		return
	}
	m := NewMessage()
	x := fromIKE(sa)
	s := ikeSAMessage(x, nil)
	c := s.Section("child-sas").Section(old.Name)
	c.AddSection("old", childSAMessage(fromChild(x, old)))
	c.AddSection("new", childSAMessage(fromChild(x, new)))
	m.AddSection(sa.Name, s)
	o.s.emit("child-rekey", m)
}

// fromIKE describes an IKE SA as the control socket's listing does,
// without what only the daemon knows (times, counters).
func fromIKE(sa ike.IKESAInfo) daemon.IKESA {
	x := daemon.IKESA{
		Name: sa.Name, UniqueID: sa.ID, State: sa.State.String(), Version: sa.Version, Initiator: sa.Initiator,
		SPIi: fmt.Sprintf("%016x", sa.SPIi), SPIr: fmt.Sprintf("%016x", sa.SPIr),
		LocalHost: sa.Local.Addr().String(), LocalPort: sa.Local.Port(), LocalID: sa.LocalID.String(),
		RemoteHost: sa.Remote.Addr().String(), RemotePort: sa.Remote.Port(), RemoteID: sa.RemoteID.String(),
		NATLocal: sa.NATLocal, NATRemote: sa.NATRemote, Proposal: sa.Proposal,
	}
	if !sa.Initiator {
		x.EAPID = sa.EAPIdentity
	}
	for _, v := range sa.LocalVIPs {
		x.LocalVIPs = append(x.LocalVIPs, v.String())
	}
	for _, v := range sa.RemoteVIPs {
		x.RemoteVIPs = append(x.RemoteVIPs, v.String())
	}
	return x
}

func fromChild(sa daemon.IKESA, ch ike.ChildSAInfo) daemon.ChildSA {
	c := daemon.ChildSA{
		Name: ch.Name, UniqueID: ch.ID, ReqID: ch.ReqID, State: ch.State.String(), Mode: strings.ToUpper(ch.Mode.String()),
		Protocol: "ESP", Encap: sa.NATLocal || sa.NATRemote, SPIIn: fmt.Sprintf("%.8x", ch.SPIIn), SPIOut: fmt.Sprintf("%.8x", ch.SPIOut),
		Proposal: ch.Proposal,
	}
	for _, ts := range ch.LocalTS {
		c.LocalTS = append(c.LocalTS, ts.String())
	}
	for _, ts := range ch.RemoteTS {
		c.RemoteTS = append(c.RemoteTS, ts.String())
	}
	return c
}
