package maps

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

	"github.com/xdpsec/xdpsec/bpf"
)

// Pin names of the maps under <pin dir>/maps/.
const (
	PinSAIn         = bpf.XdpsecMapSaIn
	PinSASlot       = bpf.XdpsecMapSaSlot
	PinSASlotCtr    = bpf.XdpsecMapSaSlotStats
	PinSAForeign    = bpf.XdpsecMapSaForeign
	PinSAForeignCtr = bpf.XdpsecMapSaForeignStats
	PinCPUMap       = bpf.XdpsecMapCpuMap
	PinIKEBucket    = bpf.XdpsecMapIkeBucket
	PinConfig       = bpf.XdpsecMapConfig
	PinStats        = bpf.XdpsecMapStats
	PinSPDOut       = bpf.XdpsecMapSpdOut
	PinSPDStats     = bpf.XdpsecMapSpdStats
	PinSPDPrefix4   = bpf.XdpsecMapSpdPrefix4
	PinSPDPrefix6   = bpf.XdpsecMapSpdPrefix6
	PinSPDDst       = bpf.XdpsecMapSpdDst
	PinSPDNode      = bpf.XdpsecMapSpdNode
	PinSPDSrc       = bpf.XdpsecMapSpdSrc
	PinSPDRule      = bpf.XdpsecMapSpdRule
	PinStash        = bpf.XdpsecMapStash
)

// MapsDir is the subdirectory of a pin directory that holds the maps.
const MapsDir = "maps"

// ErrNotLoaded means the pin directory has no xdpsec maps: nothing was loaded.
var ErrNotLoaded = errors.New("xdpsec is not loaded")

// ErrOutdated means the pins are an older xdpsec's, without a map this
// one needs.
var ErrOutdated = errors.New("xdpsec's pinned maps are outdated")

// Set is every shared map, each behind its typed wrapper.
type Set struct {
	SA       *SATable
	CPUs     *CPUMap
	Config   *Config
	Counters *Counters
	SPD      *SPD
	Stash    *Stash

	raw    []*ebpf.Map
	unlock func() error
	lockMu *sync.Mutex
	lockFd int
}

// New wraps the maps of a loaded collection (for the loader and for tests).
func New(m *bpf.XdpsecMaps) *Set {
	s := &Set{lockMu: new(sync.Mutex), lockFd: -1}
	s.raw = []*ebpf.Map{m.SaIn, m.SaSlot, m.SaSlotStats, m.SaForeign, m.SaForeignStats, m.CpuMap, m.IkeBucket, m.Config, m.Stats, m.SpdOut,
		m.SpdStats, m.SpdPrefix4, m.SpdPrefix6, m.SpdDst, m.SpdNode, m.SpdSrc, m.SpdRule, m.Stash}
	s.wrap(m)
	return s
}

func (s *Set) wrap(m *bpf.XdpsecMaps) {
	s.CPUs = &CPUMap{m: m.CpuMap}
	s.Config = &Config{m: m.Config, lock: s.lock}
	s.SA = &SATable{m: m.SaIn, slots: m.SaSlot, slotStats: m.SaSlotStats, foreign: m.SaForeign,
		foreignStats: m.SaForeignStats, config: s.Config}
	s.Counters = &Counters{m: m.Stats}
	s.Stash = &Stash{m: m.Stash}
	s.SPD = &SPD{
		policies: m.SpdOut, stats: m.SpdStats, prefix4: m.SpdPrefix4, prefix6: m.SpdPrefix6, dst: m.SpdDst, node: m.SpdNode,
		src: m.SpdSrc, rule: m.SpdRule, config: s.Config, lock: s.lock,
	}
}

// OpenPinned opens the maps pinned under dir/maps. Operations that
// read-modify-write shared state take an exclusive flock on dir, so the
// daemon and CLI invocations do not interleave.
func OpenPinned(dir string) (*Set, error) {
	mdir := filepath.Join(dir, MapsDir)
	if _, err := os.Stat(mdir); errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%w (no %s)", ErrNotLoaded, mdir)
	}
	var m bpf.XdpsecMaps
	s := &Set{lockMu: new(sync.Mutex), lockFd: -1}
	open := func(name string, dst **ebpf.Map) error {
		mp, err := ebpf.LoadPinnedMap(filepath.Join(mdir, name), nil)
		if errors.Is(err, os.ErrNotExist) {
			// The others are there: an older xdpsec pinned them.
			return fmt.Errorf("%w: pinned map %s is missing from %s (loaded by an older xdpsec): run `xdpsec load` again to upgrade in place", ErrOutdated, name, mdir)
		}
		if err != nil {
			return fmt.Errorf("open pinned map %s: %w", name, err)
		}
		*dst = mp
		s.raw = append(s.raw, mp)
		return nil
	}
	for name, dst := range map[string]**ebpf.Map{
		PinSAIn: &m.SaIn, PinSASlot: &m.SaSlot, PinSASlotCtr: &m.SaSlotStats, PinSAForeign: &m.SaForeign, PinSAForeignCtr: &m.SaForeignStats, PinCPUMap: &m.CpuMap, PinIKEBucket: &m.IkeBucket,
		PinConfig: &m.Config, PinStats: &m.Stats, PinSPDOut: &m.SpdOut,
		PinSPDStats: &m.SpdStats, PinSPDPrefix4: &m.SpdPrefix4, PinSPDPrefix6: &m.SpdPrefix6, PinSPDDst: &m.SpdDst, PinSPDNode: &m.SpdNode,
		PinSPDSrc: &m.SpdSrc, PinSPDRule: &m.SpdRule, PinStash: &m.Stash,
	} {
		if err := open(name, dst); err != nil {
			s.Close()
			return nil, err
		}
	}
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		s.Close()
		return nil, fmt.Errorf("open pin dir for locking: %w", err)
	}
	s.lockFd = fd
	s.wrap(&m)
	return s, nil
}

// lock serialises writers: within the process by a mutex, across processes
// by an flock on the pin directory when the maps are pinned.
func (s *Set) lock() (func(), error) {
	s.lockMu.Lock()
	if s.lockFd >= 0 {
		if err := unix.Flock(s.lockFd, unix.LOCK_EX); err != nil {
			s.lockMu.Unlock()
			return nil, fmt.Errorf("lock pin dir: %w", err)
		}
	}
	return func() {
		if s.lockFd >= 0 {
			unix.Flock(s.lockFd, unix.LOCK_UN)
		}
		s.lockMu.Unlock()
	}, nil
}

// Close releases the file descriptors; pinned maps stay.
func (s *Set) Close() error {
	for _, m := range s.raw {
		if m != nil {
			m.Close()
		}
	}
	s.raw = nil
	if s.lockFd >= 0 {
		unix.Close(s.lockFd)
		s.lockFd = -1
	}
	return nil
}
