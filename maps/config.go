package maps

import (
	"crypto/rand"
	"encoding/binary"
	"fmt"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

	"github.com/xdpsec/xdpsec/bpf"
)

// IKERateLimit is the per-source policer for new IKE SA requests applied by
// xdp_wan (IKEv2 IKE_SA_INIT, IKEv1 Main/Aggressive Mode first messages).
type IKERateLimit struct {
	Rate  uint32 // requests per second per source address, 0: no limit
	Burst uint32 // requests a source may send back to back (at least 1)
}

// Config wraps the single-entry config array.
type Config struct {
	m    *ebpf.Map
	lock func() (func(), error)
}

func (c *Config) read() (bpf.XdpsecXsConfig, error) {
	var v bpf.XdpsecXsConfig
	if err := c.m.Lookup(uint32(0), &v); err != nil {
		return v, fmt.Errorf("read config: %w", err)
	}
	return v, nil
}

// update applies fn to the config under the writers' lock.
func (c *Config) update(fn func(*bpf.XdpsecXsConfig)) error {
	unlock, err := c.lock()
	if err != nil {
		return err
	}
	defer unlock()
	return c.updateLocked(fn)
}

func (c *Config) updateLocked(fn func(*bpf.XdpsecXsConfig)) error {
	v, err := c.read()
	if err != nil {
		return err
	}
	fn(&v)
	if err := c.m.Put(uint32(0), &v); err != nil {
		return fmt.Errorf("write config: %w", err)
	}
	return nil
}

// IKERateLimit returns the policer settings in force.
func (c *Config) IKERateLimit() (IKERateLimit, error) {
	v, err := c.read()
	return IKERateLimit{Rate: v.IkeRate, Burst: v.IkeBurst}, err
}

// SetIKERateLimit changes the policer; packets see it at once.
func (c *Config) SetIKERateLimit(l IKERateLimit) error {
	if l.Rate > 0 && l.Burst == 0 {
		return fmt.Errorf("IKE rate limit: burst must be at least 1")
	}
	if l.Rate > 1_000_000_000 {
		return fmt.Errorf("IKE rate limit: rate %d above one per nanosecond", l.Rate)
	}
	var seed [4]byte
	if _, err := rand.Read(seed[:]); err != nil {
		return fmt.Errorf("IKE rate limit: seed: %w", err)
	}
	interval, tau := l.ticks()
	// The coarse clock's resolution is a jiffy: xdp_wan counts time in
	// jiffies, which are cheaper to read, when it knows their length.
	var res unix.Timespec
	jiffy := uint32(0)
	if err := unix.ClockGetres(unix.CLOCK_MONOTONIC_COARSE, &res); err == nil && res.Sec == 0 && res.Nsec > 0 {
		jiffy = uint32(res.Nsec)
	}
	return c.update(func(v *bpf.XdpsecXsConfig) {
		v.IkeRate, v.IkeBurst = l.Rate, l.Burst
		v.JiffyNs = jiffy
		v.IkeInterval, v.IkeTau = interval, tau
		// Keyed once: a new seed would move every source to another bucket.
		if v.IkeSeed == 0 {
			v.IkeSeed = binary.NativeEndian.Uint32(seed[:]) | 1
		}
	})
}

// ikeTickShift mirrors XS_IKE_TICK_SHIFT: xdp_wan's policer counts time
// in units of 1<<ikeTickShift ns.
const ikeTickShift = 10

// ticks returns the emission interval 1/Rate and the tolerance
// (Burst-1)/Rate in policer ticks, the interval rounded to the nearest
// tick and at least one (so rates above about a million per second are
// limited to one request per tick).
func (l IKERateLimit) ticks() (interval uint32, tau uint64) {
	if l.Rate == 0 {
		return 0, 0
	}
	perTick := uint64(l.Rate) << ikeTickShift
	iv := max((1_000_000_000+perTick/2)/perTick, 1)
	return uint32(iv), iv * uint64(max(l.Burst, 1)-1)
}

// SPIRange is the range of SPIs the daemon allocates inbound SAs from:
// [Base, Base+Count). SAs in it are found by array index.
type SPIRange struct {
	Base  uint32
	Count uint32
}

// Contains reports whether spi is in the range.
func (r SPIRange) Contains(spi uint32) bool { return spi-r.Base < r.Count }

// DefaultSPIBase is where the allocated range starts: strongSwan's default
// spi_min, so SPIs look familiar to operators.
const DefaultSPIBase = 0xc0000000

// SPIRange returns the allocated SPI range.
func (c *Config) SPIRange() (SPIRange, error) {
	v, err := c.read()
	return SPIRange{Base: v.SpiBase, Count: v.SpiCount}, err
}

// SetSPIRange sets the allocated SPI range; Count is bounded by the
// sa_slot table, and the range must not wrap past 0xffffffff or hold SPI 0.
func (c *Config) SetSPIRange(r SPIRange, slots uint32) error {
	if r.Count > slots {
		return fmt.Errorf("SPI range of %d SPIs is larger than the SA slot table (%d)", r.Count, slots)
	}
	if r.Base == 0 || uint64(r.Base)+uint64(r.Count) > 1<<32 {
		return fmt.Errorf("SPI range %#x+%d is outside 1-0xffffffff", r.Base, r.Count)
	}
	return c.update(func(v *bpf.XdpsecXsConfig) { v.SpiBase, v.SpiCount = r.Base, r.Count })
}

// cfgForeignSAs mirrors XS_CFG_FOREIGN_SAS, cfgForeignHashed
// XS_CFG_FOREIGN_HASHED.
const (
	cfgForeignSAs    = 0x1
	cfgForeignHashed = 0x8
)

// setForeign sets the flags on (and sa_foreign's mask, which xdp_wan
// reads only under cfgForeignSAs) or, with on false, clears them.
func (c *Config) setForeign(flags uint32, on bool, mask uint32) error {
	return c.update(func(v *bpf.XdpsecXsConfig) {
		if on {
			v.ForeignMask = mask
			v.Flags |= flags
		} else {
			v.Flags &^= flags
		}
	})
}

// spdLensIndex mirrors XS_SPD_LENS_IDX for a generation and lensIndex.
func spdLensIndex(gen uint8, family int) int { return int(gen&1)<<1 | family }

func (c *Config) spdGen() (uint8, error) {
	v, err := c.read()
	return uint8(v.SpdGen & 1), err
}
