package loader

import (
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
func (r *StashRunner) Inject(ifindex, rxQueue uint32, frame []byte) error {
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
