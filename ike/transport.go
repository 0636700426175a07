package ike

import (
	"net/netip"
	"time"
)

// Datagram is one UDP payload received or to be sent on an IKE port, with
// its addresses. On the NAT-T port (4500) Data includes the four-octet
// non-ESP marker; the engine adds and strips it.
type Datagram struct {
	Local, Remote netip.AddrPort
	Data          []byte
	// Received is when the datagram arrived (the socket's timestamp);
	// zero means when HandleDatagram takes it.
	Received time.Time
}

// Sender sends the engine's datagrams. It is called with the engine's lock
// held: it must not block for long and must not call back into the engine.
// The engine does not touch Data after Send returns.
type Sender interface {
	Send(d Datagram) error
}

// IKE ports (RFC 7296 section 2, RFC 3948).
const (
	PortIKE  = 500
	PortNATT = 4500
)

// nonESPMarker precedes IKE messages on port 4500 (RFC 3948 section 2.2).
var nonESPMarker = []byte{0, 0, 0, 0}
