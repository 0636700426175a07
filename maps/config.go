package maps

import (
	"fmt"

	"github.com/cilium/ebpf"

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
	return c.update(func(v *bpf.XdpsecXsConfig) {
		v.IkeRate, v.IkeBurst = l.Rate, l.Burst
	})
}

func (c *Config) spdGen() (uint8, error) {
	v, err := c.read()
	return uint8(v.SpdGen & 1), err
}
