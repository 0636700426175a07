package maps

import (
	"errors"
	"fmt"

	"github.com/cilium/ebpf"

	"github.com/xdpsec/xdpsec/bpf"
)

// DefaultCPUQueue is the per-CPU queue length (packets) of cpu_map entries.
const DefaultCPUQueue = 2048

// CPUMap wraps cpu_map: the per-CPU queues SAs are steered to.
type CPUMap struct {
	m *ebpf.Map
}

// Enable gives cpu a queue of qsize packets. The kernel starts a kthread per
// enabled CPU that builds the skbs there.
func (c *CPUMap) Enable(cpu int, qsize uint32) error {
	// No program runs on the CPU side: the kernel attaches one only for fd > 0.
	v := bpf.XdpsecBpfCpumapVal{Qsize: qsize}
	if err := c.m.Put(uint32(cpu), &v); err != nil {
		return fmt.Errorf("enable CPU %d in cpu_map: %w", cpu, err)
	}
	return nil
}

// EnableAll gives every possible CPU that the map has room for a queue.
func (c *CPUMap) EnableAll(qsize uint32) (int, error) {
	n, err := ebpf.PossibleCPU()
	if err != nil {
		return 0, err
	}
	if n > int(c.m.MaxEntries()) {
		n = int(c.m.MaxEntries())
	}
	for cpu := range n {
		if err := c.Enable(cpu, qsize); err != nil {
			return cpu, err
		}
	}
	return n, nil
}

// Enabled lists the CPUs that have a queue, with its length.
func (c *CPUMap) Enabled() (map[int]uint32, error) {
	out := map[int]uint32{}
	for cpu := uint32(0); cpu < c.m.MaxEntries(); cpu++ {
		var v bpf.XdpsecBpfCpumapVal
		if err := c.m.Lookup(cpu, &v); err != nil {
			if errors.Is(err, ebpf.ErrKeyNotExist) {
				continue
			}
			return nil, fmt.Errorf("read cpu_map: %w", err)
		}
		if v.Qsize > 0 {
			out[int(cpu)] = v.Qsize
		}
	}
	return out, nil
}
