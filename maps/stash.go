package maps

import (
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

	"github.com/xdpsec/xdpsec/bpf"
)

// StashFrameMax is the longest frame the stash holds (XS_STASH_FRAME).
const StashFrameMax = len(bpf.XdpsecXsStashEntry{}.Frame)

// StashedFrame is a frame xdp_wan held back because its SPI was pending:
// allocated, its SA not in yet.
type StashedFrame struct {
	// Stashed is when, on CLOCK_MONOTONIC (bpf_ktime_get_ns).
	Stashed time.Duration
	Ifindex uint32 // the interface and receive queue it arrived on
	RxQueue uint32
	SPI     uint32 // host order
	Proto   SAProto
	Dst     netip.Addr
	Frame   []byte // from the Ethernet header on
}

// ErrStashFull means the stash queue has no room.
var ErrStashFull = errors.New("stash is full")

// Stash is the queue of frames xdp_wan holds for pending SPIs (the stash
// map): the dataplane drains it once an SA is in.
type Stash struct {
	m *ebpf.Map
}

// Drain pops up to max frames, oldest first.
func (s *Stash) Drain(max int) ([]StashedFrame, error) {
	var (
		out []StashedFrame
		e   bpf.XdpsecXsStashEntry
	)
	for len(out) < max {
		if err := s.m.LookupAndDelete(nil, &e); errors.Is(err, ebpf.ErrKeyNotExist) {
			break
		} else if err != nil {
			return out, fmt.Errorf("drain stash: %w", err)
		}
		f, err := frameOf(&e)
		if err != nil {
			return out, fmt.Errorf("drain stash: %w", err)
		}
		out = append(out, f)
	}
	return out, nil
}

func frameOf(e *bpf.XdpsecXsStashEntry) (StashedFrame, error) {
	if int(e.Len) > len(e.Frame) {
		return StashedFrame{}, fmt.Errorf("entry of %d bytes, at most %d fit", e.Len, len(e.Frame))
	}
	dst, err := addrFrom(e.Family, e.Daddr)
	if err != nil {
		return StashedFrame{}, err
	}
	return StashedFrame{
		Stashed: time.Duration(e.TimeNs), Ifindex: e.Ifindex, RxQueue: e.RxQueue,
		SPI: ntoh32(e.Spi), Proto: SAProto(e.Proto), Dst: dst,
		Frame: append([]byte(nil), e.Frame[:e.Len]...),
	}, nil
}

// Push puts a frame back at the end of the queue (its SA is still
// pending); ErrStashFull when there is no room.
func (s *Stash) Push(f StashedFrame) error {
	if len(f.Frame) > StashFrameMax {
		return fmt.Errorf("stash frame of %d bytes: at most %d fit", len(f.Frame), StashFrameMax)
	}
	key := saKey(f.Proto, f.SPI, f.Dst)
	e := bpf.XdpsecXsStashEntry{
		TimeNs: uint64(f.Stashed), Ifindex: f.Ifindex, RxQueue: f.RxQueue, Len: uint32(len(f.Frame)),
		Spi: key.Spi, Family: key.Family, Proto: key.Proto, Daddr: key.Daddr,
	}
	copy(e.Frame[:], f.Frame)
	if err := s.m.Update(nil, &e, ebpf.UpdateAny); err != nil {
		if errors.Is(err, unix.E2BIG) {
			return ErrStashFull
		}
		return fmt.Errorf("push to stash: %w", err)
	}
	return nil
}

// Capacity is how many frames the stash holds.
func (s *Stash) Capacity() int { return int(s.m.MaxEntries()) }
