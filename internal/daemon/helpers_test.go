package daemon

import (
	"net/netip"

	"github.com/xdpsec/xdpsec/ike"
	"github.com/xdpsec/xdpsec/maps"
)

type discardSender struct{}

func (discardSender) Send(ike.Datagram) error { return nil }

var spiRangeZero = maps.SPIRange{}

func netipAddr(s string) netip.Addr { return netip.MustParseAddr(s) }
