package dataplane

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"

	"github.com/xdpsec/xdpsec/ike"
	"github.com/xdpsec/xdpsec/maps"
)

// DryRunDataplane installs nothing: it hands out SPIs itself and logs what
// it would install, never the keys. It serves tests, kernels without ESP
// and checking what a configuration would do.
type DryRunDataplane struct {
	log   *slog.Logger
	spis  maps.SPIRange
	mu    sync.Mutex // guards below
	inUse map[uint32]bool
	sas   map[ike.SAID]bool
	// seqs are the initial sequence numbers SAs were installed with (an
	// SA taken over), which QuerySA reports as the kernel's would.
	seqs map[ike.SAID]seqPair
}

type seqPair struct{ out, in uint64 }

// NewDryRunDataplane returns a dry-run dataplane allocating SPIs in r.
func NewDryRunDataplane(log *slog.Logger, r maps.SPIRange) *DryRunDataplane {
	if r.Count == 0 {
		r = maps.SPIRange{Base: maps.DefaultSPIBase, Count: 1 << 20}
	}
	return &DryRunDataplane{log: log, spis: r, inUse: map[uint32]bool{}, sas: map[ike.SAID]bool{}, seqs: map[ike.SAID]seqPair{}}
}

// AllocateSPI hands out SPIs unique over both protocols, as the kernel
// dataplane does.
func (d *DryRunDataplane) AllocateSPI(proto ike.SAProto, src, dst netip.Addr) (uint32, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.inUse) >= int(d.spis.Count) {
		return 0, fmt.Errorf("SPI range %#x+%d exhausted", d.spis.Base, d.spis.Count)
	}
	var b [4]byte
	for {
		rand.Read(b[:])
		spi := d.spis.Base + binary.BigEndian.Uint32(b[:])%d.spis.Count
		if !d.inUse[spi] {
			d.inUse[spi] = true
			if d.log.Enabled(context.Background(), slog.LevelDebug) {
				d.log.Debug(fmt.Sprintf("dry-run: allocated %v SPI %.8x for %s -> %s", proto, spi, src, dst))
			}
			return spi, nil
		}
	}
}

// Adopt marks SPIs of SAs taken back after a restart as in use.
func (d *DryRunDataplane) Adopt(ids []ike.SAID) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, id := range ids {
		d.inUse[id.SPI] = true
		d.sas[id] = true
	}
}

func describeSA(sa *ike.SA) string {
	dir := "out"
	if sa.Inbound {
		dir = "in"
	}
	s := fmt.Sprintf("%s SA %.8x %s -> %s %v reqid %d ", dir, sa.SPI, sa.Src, sa.Dst, sa.Mode, sa.ReqID)
	if sa.Proto == ike.SAProtoAH {
		s += fmt.Sprintf("AH %v", sa.Integ)
	} else {
		s += sa.Encr.String()
		if sa.EncrBits != 0 {
			s += fmt.Sprintf("_%d", sa.EncrBits)
		}
		if sa.Integ != 0 {
			s += fmt.Sprintf("/%v", sa.Integ)
		}
	}
	if sa.ESN {
		s += " esn"
	}
	if sa.Encap != nil {
		s += fmt.Sprintf(" encap udp %d->%d", sa.Encap.SrcPort, sa.Encap.DstPort)
	}
	if sa.IfID != 0 {
		s += fmt.Sprintf(" if_id %#x", sa.IfID)
	}
	if sa.Replay != 0 {
		s += fmt.Sprintf(" replay_window %d", sa.Replay)
	}
	if sa.OutSeq != 0 {
		s += fmt.Sprintf(" oseq %d", sa.OutSeq)
	}
	if sa.InSeq != 0 {
		s += fmt.Sprintf(" seq %d", sa.InSeq)
	}
	return s
}

func (d *DryRunDataplane) AddSA(sa *ike.SA) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.sas[sa.SAID] = true
	if sa.OutSeq != 0 || sa.InSeq != 0 {
		d.seqs[sa.SAID] = seqPair{out: sa.OutSeq, in: sa.InSeq}
	}
	if sa.Inbound {
		// Installed without AllocateSPI here (an SA taken over): the SPI
		// is not handed out again.
		d.inUse[sa.SPI] = true
		if d.log.Enabled(context.Background(), slog.LevelInfo) {
			d.log.Info(fmt.Sprintf("dry-run: would put %v SPI %.8x dst %s into the BPF SA table", sa.Proto, sa.SPI, sa.Dst))
		}
	}
	if d.log.Enabled(context.Background(), slog.LevelInfo) {
		d.log.Info("dry-run: would install " + describeSA(sa))
	}
	return nil
}

func (d *DryRunDataplane) UpdateSA(sa *ike.SA) error {
	if d.log.Enabled(context.Background(), slog.LevelInfo) {
		d.log.Info("dry-run: would update " + describeSA(sa))
	}
	return nil
}

func (d *DryRunDataplane) MigrateSA(from ike.SAID, sa *ike.SA) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.sas[from] {
		delete(d.sas, from)
		d.sas[sa.SAID] = true
	}
	if sa.Inbound && from.Dst != sa.Dst {
		if d.log.Enabled(context.Background(), slog.LevelInfo) {
			d.log.Info(fmt.Sprintf("dry-run: would move SPI %.8x in the BPF SA table from dst %s to %s", sa.SPI, from.Dst, sa.Dst))
		}
	}
	if d.log.Enabled(context.Background(), slog.LevelInfo) {
		d.log.Info(fmt.Sprintf("dry-run: would move SA %.8x dst %s to ", from.SPI, from.Dst) + describeSA(sa))
	}
	return nil
}

func (d *DryRunDataplane) DeleteSA(id ike.SAID) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	delete(d.inUse, id.SPI)
	delete(d.seqs, id)
	if d.sas[id] {
		delete(d.sas, id)
		if d.log.Enabled(context.Background(), slog.LevelInfo) {
			d.log.Info(fmt.Sprintf("dry-run: would delete SA %.8x dst %s", id.SPI, id.Dst))
		}
	}
	return nil
}

func describePolicy(p *ike.Policy) string {
	s := fmt.Sprintf("policy %s === %s %v reqid %d", p.Src, p.Dst, p.Dir, p.ReqID)
	if p.Proto == ike.SAProtoAH {
		s += " proto ah"
	}
	if p.IfID != 0 {
		s += fmt.Sprintf(" if_id %#x (route-based)", p.IfID)
	}
	if p.RouteSrc.IsValid() {
		s += fmt.Sprintf(" routes with src %s", p.RouteSrc)
	}
	return s
}

func (d *DryRunDataplane) AddPolicy(p *ike.Policy) error {
	if d.log.Enabled(context.Background(), slog.LevelInfo) {
		d.log.Info("dry-run: would install " + describePolicy(p))
	}
	return nil
}

func (d *DryRunDataplane) MigratePolicy(from, to *ike.Policy) error {
	if d.log.Enabled(context.Background(), slog.LevelInfo) {
		d.log.Info(fmt.Sprintf("dry-run: would move %s to %s - %s", describePolicy(to), to.TmplSrc, to.TmplDst))
	}
	return nil
}

func (d *DryRunDataplane) DeletePolicy(p *ike.Policy) error {
	if d.log.Enabled(context.Background(), slog.LevelInfo) {
		d.log.Info("dry-run: would delete " + describePolicy(p))
	}
	return nil
}

func (d *DryRunDataplane) AddVirtualIP(v *ike.VirtualIP) error {
	if d.log.Enabled(context.Background(), slog.LevelInfo) {
		d.log.Info(fmt.Sprintf("dry-run: would install virtual IP %s on the interface toward %s", v.Addr, v.Peer))
	}
	return nil
}

func (d *DryRunDataplane) DeleteVirtualIP(v *ike.VirtualIP) error {
	if d.log.Enabled(context.Background(), slog.LevelInfo) {
		d.log.Info(fmt.Sprintf("dry-run: would remove virtual IP %s", v.Addr))
	}
	return nil
}

func (d *DryRunDataplane) QuerySA(id ike.SAID) (ike.SAStats, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.sas[id] {
		return ike.SAStats{}, fmt.Errorf("dry-run: no SA %.8x", id.SPI)
	}
	seq := d.seqs[id]
	return ike.SAStats{OutSeq: seq.out, InSeq: seq.in}, nil
}

func (d *DryRunDataplane) RxSeen(ike.SAID) (uint64, uint64, error) { return 0, 0, nil }
