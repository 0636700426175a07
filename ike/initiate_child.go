package ike

import (
	"errors"
	"fmt"
	"slices"
)

// ErrChildExists is returned when a CHILD_SA asked for is installed
// already with the same configuration: no duplicate is negotiated
// (charon's check_for_duplicate, which swanctl --initiate --child meets).
var ErrChildExists = errors.New("ike: CHILD_SA exists")

// InitiateChildren starts an IKE SA of the named connection with only
// the named children (swanctl --initiate --child, and the children with
// start_action=start): the first in IKE_AUTH (IKEv1: in the first Quick
// Mode), the others with CREATE_CHILD_SA (Quick Mode) after it. The
// connection's other children are not started. It returns the IKE SA's
// unique ID.
func (e *Engine) InitiateChildren(name string, children ...string) (uint32, error) {
	return e.initiateNamed(name, func(c *connection) ([]*childConfig, error) {
		var cfgs []*childConfig
		for _, n := range children {
			i := slices.IndexFunc(c.children, func(cc *childConfig) bool { return cc.Name == n })
			if i < 0 {
				return nil, fmt.Errorf("%w: child %q of %q", ErrUnknownConnection, n, name)
			}
			if !slices.Contains(cfgs, c.children[i]) {
				cfgs = append(cfgs, c.children[i])
			}
		}
		return cfgs, nil
	})
}

// sameChildConfig reports whether two child configs make the same
// CHILD_SA: the same one, or one reloaded with the same selectors, mode,
// reqid and interface IDs (charon's child_sa_equals).
func sameChildConfig(a, b *childConfig) bool {
	if a == b {
		return true
	}
	return a.Name == b.Name && a.conn.Name == b.conn.Name && a.Mode == b.Mode && a.Reqid == b.Reqid &&
		a.IfIDIn == b.IfIDIn && a.IfIDOut == b.IfIDOut &&
		slices.Equal(a.LocalTS, b.LocalTS) && slices.Equal(a.RemoteTS, b.RemoteTS)
}

// duplicateChild returns the installed CHILD_SA of cfg among children, if
// there is one: one being rekeyed counts, its successor takes its place.
func duplicateChild[S anyIKESA, C interface{ kc() *kernelChild[S] }](children []C, cfg *childConfig) *kernelChild[S] {
	for _, c := range children {
		k := c.kc()
		if (k.state == ChildSAInstalled || k.state == ChildSARekeying) && sameChildConfig(k.cfg, cfg) {
			return k
		}
	}
	return nil
}

func (c *childSA) kc() *kernelChild[*ikeSA] { return &c.kernelChild }
func (c *v1Child) kc() *kernelChild[*v1SA]  { return &c.kernelChild }

// refuseDuplicate logs, in charon's words, that a CHILD_SA is not
// negotiated again, and returns the error saying so.
func refuseDuplicate[S anyIKESA](cfg *childConfig, dup *kernelChild[S]) error {
	msg := fmt.Sprintf("not establishing CHILD_SA %s due to existing duplicate %s with SPIs %.8x_i %.8x_o and TS %s === %s",
		cfg.Name, dup.name(), dup.spiIn, dup.spiOut, formatTS(dup.localTS), formatTS(dup.remoteTS))
	dup.ike.common().log.Info(msg)
	return fmt.Errorf("%w: %s", ErrChildExists, msg)
}
