package ike

import (
	"errors"
	"fmt"
	"net/netip"

	"github.com/xdpsec/xdpsec/ike/transform"
)

// ErrNotAllowed is returned for a taken-back IKE SA that its loaded
// connection no longer allows (another peer or local address, identity
// or proposal than the configuration now has): it is not imported, so
// that nothing (initiate, a CHILD_SA) uses an IKE SA to a peer the
// configuration does not name, and the caller removes its kernel SAs.
var ErrNotAllowed = errors.New("no longer allowed by its connection")

// allowsTakenBack checks an exported IKE SA of either version against
// the connection it names, as the connection is loaded now.
func (c *connection) allowsTakenBack(version int, local, remote netip.AddrPort, localID, remoteID Identity) error {
	want := c.Version
	if want == 0 {
		want = 2
	}
	if want != version {
		return fmt.Errorf("%w: connection %q is IKEv%d now, the IKE SA IKEv%d", ErrNotAllowed, c.Name, want, version)
	}
	if !addrAllowed(c.RemoteAddrs, remote.Addr().Unmap()) {
		return fmt.Errorf("%w: peer %s is not among the remote_addrs of connection %q", ErrNotAllowed, remote.Addr(), c.Name)
	}
	if l := local.Addr().Unmap(); l.IsValid() && !l.IsUnspecified() && !addrAllowed(c.LocalAddrs, l) {
		return fmt.Errorf("%w: local address %s is not among the local_addrs of connection %q", ErrNotAllowed, l, c.Name)
	}
	if !c.remote.ID.Matches(remoteID) {
		return fmt.Errorf("%w: peer identity '%s' does not match '%s' of connection %q", ErrNotAllowed, remoteID, c.remote.ID, c.Name)
	}
	if !c.local.ID.IsAny() && !c.local.ID.Matches(localID) {
		return fmt.Errorf("%w: our identity '%s' is not '%s' of connection %q any more", ErrNotAllowed, localID, c.local.ID, c.Name)
	}
	return nil
}

// proposalAllowed reports whether every algorithm of an IKEv2 SA's
// negotiated proposal is still among one of the connection's proposals.
func (c *connection) proposalAllowed(p transform.Proposal) bool {
	for _, ours := range c.Proposals {
		all := true
		for _, t := range p.Transforms {
			found := false
			for _, o := range ours.Algorithms(t.Type) {
				if o.ID == t.ID && o.KeyLength == t.KeyLength {
					found = true
				}
			}
			if !found {
				all = false
				break
			}
		}
		if all {
			return true
		}
	}
	return false
}

// v1SuiteAllowed reports whether an ISAKMP SA's suite is still one the
// connection proposes.
func (c *connection) v1SuiteAllowed(s ExportedISAKMPSA) bool {
	for _, o := range c.v1Suites(0) {
		if o.encr == s.Encr && o.encrBits == s.EncrBits && o.prf == s.PRF && o.group == s.Group {
			return true
		}
	}
	return false
}
