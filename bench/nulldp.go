package bench

import (
	"net/netip"
	"sync/atomic"

	"github.com/xdpsec/xdpsec/ike"
)

// nullDataplane hands out SPIs and accepts everything.
type nullDataplane struct{ spi atomic.Uint32 }

func (d *nullDataplane) AllocateSPI(proto ike.SAProto, src, dst netip.Addr) (uint32, error) {
	return 0xc0000000 + d.spi.Add(1), nil
}
func (d *nullDataplane) AddSA(*ike.SA) error                   { return nil }
func (d *nullDataplane) UpdateSA(*ike.SA) error                { return nil }
func (d *nullDataplane) DeleteSA(ike.SAID) error               { return nil }
func (d *nullDataplane) MigrateSA(ike.SAID, *ike.SA) error     { return nil }
func (d *nullDataplane) MigratePolicy(_, _ *ike.Policy) error  { return nil }
func (d *nullDataplane) AddPolicy(*ike.Policy) error           { return nil }
func (d *nullDataplane) DeletePolicy(*ike.Policy) error        { return nil }
func (d *nullDataplane) QuerySA(ike.SAID) (ike.SAStats, error) { return ike.SAStats{}, nil }
func (d *nullDataplane) AddVirtualIP(*ike.VirtualIP) error     { return nil }
func (d *nullDataplane) DeleteVirtualIP(*ike.VirtualIP) error  { return nil }
