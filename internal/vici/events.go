package vici

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"

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
	x := fromIKE(sa)
	if up {
		// It was established just now.
		x.Established = seconds(0)
	}
	m.AddSection(sa.Name, ikeSAMessage(x, nil))
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

// IKEUpdate reports new outer addresses as charon's ike-update: the new
// ones at the top, the IKE SA (with the old ones) in its section.
func (o observer) IKEUpdate(sa ike.IKESAInfo, local, remote netip.AddrPort) {
	if !o.s.listening("ike-update") {
		return
	}
	m := NewMessage()
	m.Set("local-host", local.Addr().String()).Set("local-port", strconv.Itoa(int(local.Port())))
	m.Set("remote-host", remote.Addr().String()).Set("remote-port", strconv.Itoa(int(remote.Port())))
	m.AddSection(sa.Name, ikeSAMessage(fromIKE(sa), nil))
	o.s.emit("ike-update", m)
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
		Protocol: ch.Protocol.String(), Encap: ch.Encap, SPIIn: fmt.Sprintf("%.8x", ch.SPIIn), SPIOut: fmt.Sprintf("%.8x", ch.SPIOut),
		Proposal: ch.Proposal,
	}
	if !ch.InstalledAt.IsZero() {
		c.InstallTime = seconds(time.Since(ch.InstalledAt))
	}
	for _, ts := range ch.LocalTS {
		c.LocalTS = append(c.LocalTS, ts.String())
	}
	for _, ts := range ch.RemoteTS {
		c.RemoteTS = append(c.RemoteTS, ts.String())
	}
	return c
}

// logRecord sends a daemon log line as a log event to the clients
// registered for it, and as a control-log event to those whose control
// command it is about. It runs wherever the line was logged, perhaps
// with the engine locked: it queues without waiting, and never logs.
func (s *Server) logRecord(r daemon.LogRecord) {
	name, id, _ := strings.Cut(strings.TrimSuffix(r.SA, "]"), "[")
	var logPkt, ctlPkt []byte
	encode := func(event string) []byte {
		m := NewMessage().Set("group", r.Group).Set("level", strconv.Itoa(r.Level))
		if event == "log" {
			m.Set("thread", "0")
		}
		if name != "" {
			m.Set("ikesa-name", name).Set("ikesa-uniqueid", id)
		}
		m.Set("msg", r.Msg)
		b, err := Packet{Type: Event, Name: event, Msg: m}.Encode()
		if err != nil {
			return nil
		}
		return b
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		c.mu.Lock()
		if c.closed {
			c.mu.Unlock()
			continue
		}
		var send [][]byte
		if c.registered["log"] {
			if logPkt == nil {
				logPkt = encode("log")
			}
			send = append(send, logPkt)
		}
		if f := c.control; f != nil && c.registered["control-log"] && r.Level <= f.level && name != "" && (f.ike == "" || f.ike == name) {
			if ctlPkt == nil {
				ctlPkt = encode("control-log")
			}
			send = append(send, ctlPkt)
		}
		for _, b := range send {
			if b == nil {
				continue
			}
			select {
			case c.out <- b:
			default:
				c.dropped++
			}
		}
		c.mu.Unlock()
	}
}

func seconds(d time.Duration) *int64 {
	s := int64(d / time.Second)
	return &s
}
