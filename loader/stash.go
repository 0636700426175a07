package loader

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"sync"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"golang.org/x/sys/unix"

	"github.com/xdpsec/xdpsec/bpf"
)

// ErrNoLiveFrames means the kernel cannot hand a frame to the stack from
// BPF_PROG_RUN (BPF_F_TEST_XDP_LIVE_FRAMES, Linux 5.18).
var ErrNoLiveFrames = errors.New("kernel does not run XDP programs on live frames (BPF_F_TEST_XDP_LIVE_FRAMES, Linux 5.18)")

// StashRunner hands frames xdp_wan stashed back to the kernel by
// running the stash programs with BPF_PROG_RUN: Inject gives a frame to
// the stack as if its interface had just received it, Expire drops it;
// both count in xdp_wan's stats.
type StashRunner struct {
	inject, expire *ebpf.Program
	owned          bool
	closeOnce      sync.Once
}

// OpenStashRunner opens the stash programs pinned under a pin directory.
func OpenStashRunner(pinDir string) (*StashRunner, error) {
	var progs [2]*ebpf.Program
	for i, name := range []string{bpf.XdpsecProgXdpStashInject, bpf.XdpsecProgXdpStashExpire} {
		p, err := ebpf.LoadPinnedProgram(ProgPath(pinDir, name), nil)
		if err != nil {
			for _, q := range progs[:i] {
				q.Close()
			}
			if errors.Is(err, os.ErrNotExist) {
				return nil, fmt.Errorf("pinned program %s is missing (loaded by an older xdpsec): run `xdpsec load` again to upgrade in place", name)
			}
			return nil, fmt.Errorf("open pinned program %s: %w", name, err)
		}
		progs[i] = p
	}
	return &StashRunner{inject: progs[0], expire: progs[1], owned: true}, nil
}

// xdpMD mirrors struct xdp_md, the context BPF_PROG_RUN takes for XDP:
// data_end must be the frame's length, egress_ifindex zero.
type xdpMD struct {
	Data, DataEnd, DataMeta    uint32
	IngressIfindex, RxQueueIdx uint32
	EgressIfindex              uint32
}

// Inject hands a frame to the stack as received on ifindex, receive
// queue rxQueue (which must exist on the interface). The interface is
// looked up in the caller's network namespace.
//
// A UDP datagram's checksum is computed afresh first: the stack checks it
// on the new skb, and a frame XDP saw may carry a partial one (a sender
// on the same host through a veth leaves it to offload that never ran).
func (r *StashRunner) Inject(ifindex, rxQueue uint32, frame []byte) error {
	completeUDPChecksum(frame)
	_, err := r.inject.Run(&ebpf.RunOptions{
		Data:    frame,
		Context: xdpMD{DataEnd: uint32(len(frame)), IngressIfindex: ifindex, RxQueueIdx: rxQueue},
		Flags:   unix.BPF_F_TEST_XDP_LIVE_FRAMES,
		Repeat:  1,
	})
	if err != nil {
		// Live-frame runs report no verdict: XDP_PASS went to the stack.
		return fmt.Errorf("inject frame on ifindex %d queue %d: %w", ifindex, rxQueue, err)
	}
	return nil
}

// LiveFrames says whether the kernel hands frames from BPF_PROG_RUN to
// the stack (BPF_F_TEST_XDP_LIVE_FRAMES, Linux 5.18; some kernels
// refuse it with EPERM): it runs a program that drops the frame in that
// mode, which has no effect besides the answer.
func LiveFrames() error {
	p, err := ebpf.NewProgram(&ebpf.ProgramSpec{Name: "xdpsec_probe", Type: ebpf.XDP, License: "Dual BSD/GPL",
		Instructions: asm.Instructions{asm.Mov.Imm(asm.R0, 1 /* XDP_DROP */), asm.Return()}})
	if err != nil {
		return fmt.Errorf("%w: load probe: %v", ErrNoLiveFrames, err)
	}
	defer p.Close()
	if _, err := p.Run(&ebpf.RunOptions{Data: make([]byte, 64), Flags: unix.BPF_F_TEST_XDP_LIVE_FRAMES, Repeat: 1}); err != nil {
		return fmt.Errorf("%w: %v", ErrNoLiveFrames, err)
	}
	return nil
}

// Expire drops a stashed frame, counted as stash_expired.
func (r *StashRunner) Expire(frame []byte) error {
	if _, err := r.expire.Run(&ebpf.RunOptions{Data: frame}); err != nil {
		return fmt.Errorf("count expired frame: %w", err)
	}
	return nil
}

// Close releases the programs it opened.
func (r *StashRunner) Close() {
	r.closeOnce.Do(func() {
		if r.owned {
			r.inject.Close()
			r.expire.Close()
		}
	})
}

// completeUDPChecksum writes the UDP checksum of an unfragmented IPv4 or
// IPv6 (UDP right after the fixed header) frame, one VLAN tag allowed.
// Anything else is left as it is. IPv4 datagrams sent without a checksum
// (zero, as RFC 3948 allows for ESP in UDP) keep it.
func completeUDPChecksum(frame []byte) {
	off := 14
	if len(frame) < off {
		return
	}
	etype := binary.BigEndian.Uint16(frame[12:])
	if etype == 0x8100 || etype == 0x88a8 {
		if len(frame) < off+4 {
			return
		}
		etype = binary.BigEndian.Uint16(frame[16:])
		off += 4
	}
	var sum uint32
	var udp []byte
	switch etype {
	case 0x0800:
		ip := frame[off:]
		if len(ip) < 20 || ip[0]>>4 != 4 || ip[9] != unix.IPPROTO_UDP {
			return
		}
		hl, total := int(ip[0]&0xf)*4, int(binary.BigEndian.Uint16(ip[2:]))
		if hl < 20 || total < hl+8 || total > len(ip) || binary.BigEndian.Uint16(ip[6:])&0x3fff != 0 {
			return // short, or a fragment
		}
		udp = ip[hl:total]
		if binary.BigEndian.Uint16(udp[6:]) == 0 {
			return
		}
		sum = sumWords(ip[12:20], 0)
	case 0x86dd:
		ip := frame[off:]
		if len(ip) < 40 || ip[6] != unix.IPPROTO_UDP {
			return
		}
		plen := int(binary.BigEndian.Uint16(ip[4:]))
		if plen < 8 || 40+plen > len(ip) {
			return
		}
		udp = ip[40 : 40+plen]
		sum = sumWords(ip[8:40], 0)
	default:
		return
	}
	if int(binary.BigEndian.Uint16(udp[4:])) != len(udp) {
		return
	}
	sum += unix.IPPROTO_UDP + uint32(len(udp))
	udp[6], udp[7] = 0, 0
	sum = sumWords(udp, sum)
	for sum > 0xffff {
		sum = sum>>16 + sum&0xffff
	}
	c := ^uint16(sum)
	if c == 0 {
		c = 0xffff // zero means "no checksum" (RFC 768)
	}
	binary.BigEndian.PutUint16(udp[6:], c)
}

// sumWords adds b as big-endian 16-bit words (an odd last byte padded).
func sumWords(b []byte, sum uint32) uint32 {
	for len(b) >= 2 {
		sum += uint32(binary.BigEndian.Uint16(b))
		b = b[2:]
	}
	if len(b) == 1 {
		sum += uint32(b[0]) << 8
	}
	return sum
}
