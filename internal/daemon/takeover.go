package daemon

import (
	"errors"
	"fmt"

	"github.com/xdpsec/xdpsec/ike"
)

// A test path into the fleet's takeover without etcd: `xdpsec daemon
// --take-over FILE` reads the state file another daemon wrote (its
// --state, with --checkpoint-child-keys so that it holds the CHILD_SAs'
// keys) and takes its IKE SAs over at start (ike.Engine.TakeOver): their
// SAs and policies are installed here, the message IDs synchronised with
// the peer (RFC 6311) or the IKE SAs rekeyed. The fleet itself hands the
// engine records from etcd instead.

// takeOverFile takes over the IKE SAs of Options.TakeOverPath, once the
// IKE sockets are up (the synchronisation goes out at once).
func (d *Daemon) takeOverFile() {
	path := d.opts.TakeOverPath
	if path == "" {
		return
	}
	f, err := readState(path)
	if err != nil {
		d.log.Warn(fmt.Sprintf("not taking over %s: %v", path, err))
		return
	}
	defer f.Engine.Zero()
	out := d.opts.TakeOverOutSeq
	errs := d.engine.TakeOver(f.Engine, func(id ike.SAID) (uint64, uint64) {
		// Past what the failed daemon can have sent; its inbound
		// windows are not known here (the fleet checkpoints them).
		return out, 0
	})
	for _, e := range errs {
		msg := fmt.Sprintf("not taking over %s %v", path, e)
		if errors.Is(e.Err, ike.ErrBadRecord) {
			d.log.Error(msg)
		} else {
			d.log.Warn(msg)
		}
	}
	saved := len(f.Engine.SAs) + len(f.Engine.V1)
	d.log.Info(fmt.Sprintf("took over %d of %d IKE_SAs of %s", saved-len(errs), saved, path))
}
