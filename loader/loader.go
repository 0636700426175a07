// Package loader loads xdpsec's BPF programs, attaches them (XDP on the WAN
// interface, tc on LAN interfaces), and pins maps, programs and links under
// one directory on bpffs, so that they outlive the process that loaded them
// and the daemon and CLI can find them. Loading again changes nothing or
// upgrades the programs in place; Unload removes everything Load made.
//
// It knows nothing of IKE.
package loader

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/features"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/rlimit"
	"golang.org/x/sys/unix"

	"github.com/xdpsec/xdpsec/bpf"
	"github.com/xdpsec/xdpsec/maps"
)

// DefaultPinDir is where xdpsec pins its objects.
const DefaultPinDir = "/sys/fs/bpf/xdpsec"

// Subdirectories of the pin directory; the maps' is maps.MapsDir.
const (
	progsDir = "progs"
	linksDir = "links"
)

// ProgPath is where a program of the bpf package (bpf.XdpsecProgXdpWan,
// bpf.XdpsecProgTcLan) is pinned under a pin directory: the one place
// that knows the layout, for the commands that open a loaded program.
func ProgPath(pinDir, name string) string { return filepath.Join(pinDir, progsDir, name) }

// Defaults for Options.
const (
	DefaultMaxSAs      = 65536
	DefaultMaxForeign  = 4096
	DefaultMaxPolicies = 16384
	DefaultIKERate     = 20
	DefaultIKEBurst    = 40
)

// XDPMode chooses how xdp_wan is attached.
type XDPMode string

const (
	XDPAuto    XDPMode = "auto"    // native, falling back to generic with a log line
	XDPNative  XDPMode = "native"  // in the driver, or fail
	XDPGeneric XDPMode = "generic" // in the stack (skb mode), for drivers without XDP
)

// TCMode chooses how tc_lan is attached.
type TCMode string

const (
	TCAuto   TCMode = "auto"   // tcx where the kernel has it (6.6+), else clsact
	TCX      TCMode = "tcx"    // tcx link, or fail
	TCClsact TCMode = "clsact" // a direct-action cls_bpf filter on the clsact qdisc
)

// Options says what to load and where to attach it.
type Options struct {
	WAN         string   // interface for xdp_wan; "" loads and pins without attaching XDP
	LAN         []string // interfaces for tc_lan (ingress)
	XDPMode     XDPMode
	TCMode      TCMode
	PinDir      string
	MaxSAs      uint32 // SAs with SPIs from the allocated range (sa_slot)
	MaxForeign  uint32 // SAs with other SPIs: manual ones, another daemon's (sa_foreign, sa_in when a window is full)
	SPIBase     uint32 // first SPI of the allocated range
	MaxPolicies uint32 // spd_out entries
	IKERate     maps.IKERateLimit
	CPUQueue    uint32 // cpu_map queue length per CPU
	Log         *slog.Logger
}

func (o *Options) setDefaults() {
	if o.XDPMode == "" {
		o.XDPMode = XDPAuto
	}
	if o.TCMode == "" {
		o.TCMode = TCAuto
	}
	if o.PinDir == "" {
		o.PinDir = DefaultPinDir
	}
	if o.MaxSAs == 0 {
		o.MaxSAs = DefaultMaxSAs
	}
	if o.MaxForeign == 0 {
		o.MaxForeign = DefaultMaxForeign
	}
	if o.SPIBase == 0 {
		o.SPIBase = maps.DefaultSPIBase
	}
	if o.MaxPolicies == 0 {
		o.MaxPolicies = DefaultMaxPolicies
	}
	if o.CPUQueue == 0 {
		o.CPUQueue = maps.DefaultCPUQueue
	}
	if o.Log == nil {
		o.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
}

// Errors callers may want to tell apart.
var (
	ErrNotRoot        = errors.New("must run as root (needs CAP_BPF and CAP_NET_ADMIN)")
	ErrNoBPF          = errors.New("kernel cannot load BPF programs")
	ErrNoInterface    = errors.New("no such interface")
	ErrForeignProgram = errors.New("interface already has a program xdpsec did not attach")
	ErrKernelTooOld   = errors.New("kernel too old for xdpsec's BPF programs (they need Linux 5.18 or later; 6.1 and 6.12 are tested)")
)

// Loaded is a loaded, attached and pinned xdpsec.
type Loaded struct {
	Maps  *maps.Set
	XDP   *ebpf.Program
	TC    *ebpf.Program
	Stash *StashRunner
	coll  *ebpf.Collection
	links []link.Link
}

// Close releases file descriptors; what is pinned stays loaded and attached.
func (l *Loaded) Close() {
	for _, lk := range l.links {
		lk.Close()
	}
	if l.Maps != nil {
		l.Maps.Close()
	}
	if l.coll != nil {
		l.coll.Close()
	}
}

// checkEnv reports, in one line each, the reasons loading cannot work here.
func checkEnv() error {
	if os.Geteuid() != 0 {
		return ErrNotRoot
	}
	if err := rlimit.RemoveMemlock(); err != nil {
		return fmt.Errorf("lift memlock limit: %w", err)
	}
	if err := features.HaveProgramType(ebpf.XDP); err != nil {
		return fmt.Errorf("%w: %v", ErrNoBPF, err)
	}
	return nil
}

func interfaceByName(name string) (*net.Interface, error) {
	ifc, err := net.InterfaceByName(name)
	if err != nil {
		return nil, fmt.Errorf("interface %q: %w", name, ErrNoInterface)
	}
	return ifc, nil
}

// Load loads the programs, reusing compatible pinned maps (so SAs,
// policies and counters survive an upgrade), attaches or upgrades the
// attachments Options names, detaches xdpsec from interfaces it no longer
// names, and pins everything under PinDir.
func Load(opts Options) (*Loaded, error) {
	opts.setDefaults()
	if err := checkEnv(); err != nil {
		return nil, err
	}
	var wan *net.Interface
	if opts.WAN != "" {
		ifc, err := interfaceByName(opts.WAN)
		if err != nil {
			return nil, err
		}
		wan = ifc
	}
	lans := make([]*net.Interface, 0, len(opts.LAN))
	for _, name := range opts.LAN {
		ifc, err := interfaceByName(name)
		if err != nil {
			return nil, err
		}
		if wan != nil && ifc.Index == wan.Index {
			return nil, fmt.Errorf("interface %s is given as both WAN and LAN", name)
		}
		lans = append(lans, ifc)
	}
	if err := ensurePinDir(opts.PinDir); err != nil {
		return nil, err
	}
	unlock, err := lockDir(opts.PinDir)
	if err != nil {
		return nil, err
	}
	defer unlock()

	l, err := loadCollection(&opts)
	if err != nil {
		return nil, err
	}
	if err := l.attachAll(&opts, wan, lans); err != nil {
		l.Close()
		return nil, err
	}
	return l, nil
}

func loadCollection(opts *Options) (*Loaded, error) {
	spec, err := bpf.LoadXdpsec()
	if err != nil {
		return nil, fmt.Errorf("load BPF objects: %w", err)
	}
	missingKfuncs, err := resolveKsymExists(spec)
	if err != nil {
		return nil, err
	}
	ncpu, err := ebpf.PossibleCPU()
	if err != nil {
		return nil, err
	}
	sizes := map[string]uint32{
		maps.PinSAIn:         opts.MaxForeign,
		maps.PinSAForeign:    maps.ForeignSlots(opts.MaxForeign),
		maps.PinSAForeignCtr: maps.ForeignSlots(opts.MaxForeign),
		maps.PinSASlot:       opts.MaxSAs,
		maps.PinSASlotCtr:    opts.MaxSAs,
		maps.PinCPUMap:       uint32(ncpu),
		maps.PinSPDOut:       opts.MaxPolicies,
		maps.PinSPDStats:     opts.MaxPolicies + 1,
		maps.PinSPDPrefix4:   2 * opts.MaxPolicies,
		maps.PinSPDPrefix6:   2 * opts.MaxPolicies,
		maps.PinSPDDst:       2 * opts.MaxPolicies,
		maps.PinSPDSrc:       2 * opts.MaxPolicies,
		maps.PinSPDNode:      2 * opts.MaxPolicies,
		maps.PinSPDRule:      2 * opts.MaxPolicies,
	}
	for name, m := range spec.Maps {
		if n, ok := sizes[name]; ok {
			m.MaxEntries = n
		}
		m.Pinning = ebpf.PinByName
	}
	oldStats, err := takeOldStats(opts, spec.Maps[maps.PinStats])
	if err != nil {
		return nil, err
	}
	coll, err := ebpf.NewCollectionWithOptions(spec, ebpf.CollectionOptions{
		Maps: ebpf.MapOptions{PinPath: filepath.Join(opts.PinDir, maps.MapsDir)},
	})
	if err != nil {
		if errors.Is(err, ebpf.ErrMapIncompatible) {
			return nil, fmt.Errorf("pinned maps under %s do not fit this load (sizes or version changed; `xdpsec unload` first, losing SAs and policies): %w", opts.PinDir, err)
		}
		var ve *ebpf.VerifierError
		if errors.As(err, &ve) {
			// An older kernel refuses a helper call it does not know with
			// a line deep in the log: name what is missing instead.
			if missing := missingHelpers(spec); len(missing) > 0 {
				return nil, fmt.Errorf("%w: kernel %s lacks BPF helpers the programs call: %s", ErrKernelTooOld,
					kernelRelease(), strings.Join(missing, ", "))
			}
			return nil, fmt.Errorf("kernel rejected the BPF programs: %w", err)
		}
		return nil, fmt.Errorf("load BPF objects: %w", err)
	}
	logMissingKfuncs(opts.Log, missingKfuncs)
	var m bpf.XdpsecMaps
	var p bpf.XdpsecPrograms
	if err := coll.Assign(&m); err != nil {
		coll.Close()
		return nil, err
	}
	if err := coll.Assign(&p); err != nil {
		coll.Close()
		return nil, err
	}
	for i, v := range oldStats {
		if err := m.Stats.Put(uint32(i), v); err != nil {
			opts.Log.Warn("carrying a counter over to the new stats map failed", "counter", maps.Info(maps.Counter(i)).Name, "error", err)
		}
	}
	l := &Loaded{coll: coll, Maps: maps.New(&m), XDP: p.XdpWan, TC: p.TcLan,
		Stash: &StashRunner{inject: p.XdpStashInject, expire: p.XdpStashExpire}}

	if err := l.Maps.Config.SetSPIRange(maps.SPIRange{Base: opts.SPIBase, Count: opts.MaxSAs}, opts.MaxSAs); err != nil {
		l.Close()
		return nil, err
	}
	if err := l.Maps.Config.SetIKERateLimit(opts.IKERate); err != nil {
		l.Close()
		return nil, err
	}
	if _, err := l.Maps.CPUs.EnableAll(opts.CPUQueue); err != nil {
		l.Close()
		return nil, err
	}
	for name, prog := range map[string]*ebpf.Program{bpf.XdpsecProgXdpWan: l.XDP, bpf.XdpsecProgTcLan: l.TC,
		bpf.XdpsecProgXdpStashInject: p.XdpStashInject, bpf.XdpsecProgXdpStashExpire: p.XdpStashExpire} {
		if err := pinReplace(prog.Pin, ProgPath(opts.PinDir, name)); err != nil {
			l.Close()
			return nil, fmt.Errorf("pin program %s: %w", name, err)
		}
	}
	return l, nil
}

// tmpPinPrefix marks pins in the middle of pinReplace. bpffs refuses names
// with a dot, so it cannot be a dot file.
const tmpPinPrefix = "new-"

// pinReplace pins an object under a temporary name and renames it over
// path, so that path always names a complete object.
func pinReplace(pin func(string) error, path string) error {
	tmp := filepath.Join(filepath.Dir(path), tmpPinPrefix+filepath.Base(path))
	os.Remove(tmp)
	if err := pin(tmp); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return err
	}
	return nil
}

// ensurePinDir makes the pin directory, mounting bpffs on /sys/fs/bpf if
// nothing is mounted there yet.
func ensurePinDir(dir string) error {
	root := "/sys/fs/bpf"
	if strings.HasPrefix(filepath.Clean(dir)+"/", root+"/") {
		var st unix.Statfs_t
		if err := unix.Statfs(root, &st); err != nil {
			return fmt.Errorf("statfs %s: %w", root, err)
		}
		if st.Type != unix.BPF_FS_MAGIC {
			if err := unix.Mount("bpf", root, "bpf", 0, "mode=0700"); err != nil {
				return fmt.Errorf("mount bpffs on %s: %w", root, err)
			}
		}
	}
	for _, sub := range []string{"", maps.MapsDir, progsDir, linksDir} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o700); err != nil {
			return fmt.Errorf("make pin dir: %w", err)
		}
	}
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return fmt.Errorf("statfs %s: %w", dir, err)
	}
	if st.Type != unix.BPF_FS_MAGIC {
		return fmt.Errorf("pin dir %s is not on a BPF filesystem", dir)
	}
	return nil
}

// lockDir takes an exclusive flock on the pin directory: the same lock
// maps.Set takes, so loads, unloads and map writers do not interleave.
func lockDir(dir string) (func(), error) {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open pin dir: %w", err)
	}
	if err := unix.Flock(fd, unix.LOCK_EX); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("lock pin dir: %w", err)
	}
	return func() {
		unix.Flock(fd, unix.LOCK_UN)
		unix.Close(fd)
	}, nil
}

// takeOldStats reads the counters of a pinned stats map with fewer
// entries than this xdpsec's (an older one's, before counters were
// added) and unpins it, so that the load makes a new one for them to be
// written into: an upgrade in place keeps its counters. Counters go
// after the existing ones in enum xs_counter, so an index means the same
// counter in both.
func takeOldStats(opts *Options, want *ebpf.MapSpec) ([][]bpf.XdpsecXsCounterValue, error) {
	path := filepath.Join(opts.PinDir, maps.MapsDir, maps.PinStats)
	old, err := ebpf.LoadPinnedMap(path, nil)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("open pinned map %s: %w", maps.PinStats, err)
	}
	defer old.Close()
	if old.MaxEntries() >= want.MaxEntries || old.Type() != want.Type || old.ValueSize() != want.ValueSize {
		// Equal: reused as it is; anything else: the load says it does not fit.
		return nil, nil
	}
	vals := make([][]bpf.XdpsecXsCounterValue, old.MaxEntries())
	for i := range vals {
		if err := old.Lookup(uint32(i), &vals[i]); err != nil {
			return nil, fmt.Errorf("read pinned map %s: %w", maps.PinStats, err)
		}
	}
	if err := os.Remove(path); err != nil {
		return nil, fmt.Errorf("unpin the older %s: %w", maps.PinStats, err)
	}
	opts.Log.Info("counters map of an older xdpsec replaced, counts kept", "counters", old.MaxEntries(), "now", want.MaxEntries)
	return vals, nil
}
