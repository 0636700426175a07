package daemon

// TEMPORARY: what needs helper A's and B's branches (pool arbiter,
// Config.CheckpointChildKeys, SAStats' sequence numbers), replaced by the
// real calls when fleet-core and fleet-engine are merged.

import (
	"github.com/xdpsec/xdpsec/ike"
)

func checkpointChildKeys(cfg *ike.Config) {}

func saSeqs(st ike.SAStats) (out, in uint64) { return 0, 0 }

// fleetPools makes the pools' leases the fleet's.
func (d *Daemon) fleetPools(pools []*ike.Pool) {
	for _, p := range pools {
		ike.StubSetArbiter(p.Leases, d.fleet.member.Leases())
	}
}
