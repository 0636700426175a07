package loader

import (
	"errors"
	"fmt"

	"github.com/cilium/ebpf"

	"github.com/xdpsec/xdpsec/maps"
)

// skbCtx is struct __sk_buff (linux/bpf.h) with the fields after cb[] left
// opaque: a BPF_PROG_TEST_RUN of a tc program reads and writes it back
// whole. TestSkbCtxLayout checks size and offsets against the object's BTF.
type skbCtx struct {
	Len            uint32
	PktType        uint32
	Mark           uint32
	QueueMapping   uint32
	Protocol       uint32
	VlanPresent    uint32
	VlanTCI        uint32
	VlanProto      uint32
	Priority       uint32
	IngressIfindex uint32
	Ifindex        uint32
	TCIndex        uint32
	CB             [5]uint32
	_              [skbCtxSize - 68]byte
}

// skbCtxSize is sizeof(struct __sk_buff).
const skbCtxSize = 192

// Index of the cb[] words tc_lan leaves its decision in, and the probe
// marker (XS_CB_*, XS_PROBE_MAGIC in xdpsec.h).
const (
	cbPolicyID = 0
	cbAction   = 1
	cbProbe    = 2
	probeMagic = 0x70726f62
)

// tc return codes (linux/pkt_cls.h).
const (
	TCActUnspec   = -1
	TCActOK       = 0
	TCActShot     = 2
	TCActRedirect = 7
)

// TCVerdict is what tc_lan did with one packet in a test run.
type TCVerdict struct {
	Ret      int32       // tc action code
	PolicyID uint32      // matched policy, 0: none
	Action   maps.Action // its action, ActionNone if none matched
	Mark     uint32      // skb mark afterwards
	Packet   []byte      // the packet as the program left it
}

// RunTC runs a tc_lan program once on frame (starting at the Ethernet
// header) through BPF_PROG_TEST_RUN and reports its decision. The packet
// is counted like one from the wire.
func RunTC(prog *ebpf.Program, frame []byte) (TCVerdict, error) {
	return runTC(prog, frame, false)
}

// ProbeTC is RunTC without counting: the program answers what it would do
// with the packet and leaves every counter as it was. The program is the
// attached one, so the answer is what a packet on the wire gets.
func ProbeTC(prog *ebpf.Program, frame []byte) (TCVerdict, error) {
	return runTC(prog, frame, true)
}

func runTC(prog *ebpf.Program, frame []byte, probe bool) (TCVerdict, error) {
	if prog == nil {
		return TCVerdict{}, errors.New("run tc_lan: no program")
	}
	var in, out skbCtx
	if probe {
		in.CB[cbProbe] = probeMagic
	}
	opts := ebpf.RunOptions{
		Data:       frame,
		DataOut:    make([]byte, len(frame)+256),
		Context:    in,
		ContextOut: &out,
	}
	ret, err := prog.Run(&opts)
	if err != nil {
		return TCVerdict{}, fmt.Errorf("run tc_lan: %w", err)
	}
	return TCVerdict{
		Ret:      int32(ret),
		PolicyID: out.CB[cbPolicyID],
		Action:   maps.Action(out.CB[cbAction]),
		Mark:     out.Mark,
		Packet:   opts.DataOut,
	}, nil
}
