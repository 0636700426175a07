package ike

import (
	"errors"
	"fmt"
	"net/netip"

	"github.com/xdpsec/xdpsec/ike/transform"
)

// A saved state is checked record by record before anything of it is
// taken back: a state file is written by us, but it may be damaged,
// edited by hand or put together from two files, and a record taken back
// with a key of the wrong length, a suite we cannot run, or the SPIs of
// another record would fail later, at the first message, or take the
// other record's SAs with it when it is removed.
//
// One bad record refuses that record only: the good ones of the same
// file are taken back, since refusing them all would strand their SAs
// (the kernel keeps them, nobody rekeys or deletes them). Where two
// records claim the same SPI, cookie, CHILD_SA or unique ID, the first in
// the file is the one taken back and the later one is refused.

// ErrBadRecord is wrapped by every reason a saved IKE SA record is
// refused as invalid (not merely because its connection is gone).
var ErrBadRecord = errors.New("invalid saved IKE_SA")

func badRecord(format string, a ...any) error {
	return fmt.Errorf("%w: %s", ErrBadRecord, fmt.Sprintf(format, a...))
}

// checkAddrs checks the addresses of an IKE SA: both set, not
// unspecified, with ports, of one family.
func checkAddrs(local, remote netip.AddrPort) error {
	for _, a := range []struct {
		name string
		ap   netip.AddrPort
	}{{"local", local}, {"remote", remote}} {
		if !a.ap.Addr().IsValid() || a.ap.Addr().IsUnspecified() || a.ap.Port() == 0 {
			return badRecord("%s address %q is not an address and port", a.name, a.ap)
		}
	}
	if local.Addr().Unmap().Is4() != remote.Addr().Unmap().Is4() {
		return badRecord("local address %s and remote address %s are of different families", local, remote)
	}
	return nil
}

// checkCommon checks what a record of either IKE version (an IKEv1 one
// asIKESA) holds by itself: unique ID, connection, SPIs (IKEv1:
// cookies), addresses and CHILD_SAs.
func checkCommon(version int, s *ExportedIKESA) error {
	spi := "IKE SPI"
	if version == 1 {
		spi = "cookie"
	}
	switch {
	case s.ID == 0:
		return badRecord("no unique ID")
	case s.Conn == "":
		return badRecord("no connection name")
	case s.SPIi == 0 || s.SPIr == 0:
		return badRecord("%s 0 (%.16x_i %.16x_r)", spi, s.SPIi, s.SPIr)
	}
	if err := checkAddrs(s.Local, s.Remote); err != nil {
		return err
	}
	for i := range s.Children {
		if err := checkChild(&s.Children[i]); err != nil {
			return err
		}
	}
	return nil
}

// checkChild checks what a CHILD_SA record holds by itself.
func checkChild(c *ExportedChildSA) error {
	switch {
	case c.ID == 0:
		return badRecord("CHILD_SA %s without a unique ID", c.Name)
	case c.SPIIn == 0 || c.SPIOut == 0:
		return badRecord("CHILD_SA %s{%d} with SPI 0 (in %.8x, out %.8x)", c.Name, c.ID, c.SPIIn, c.SPIOut)
	case len(c.LocalTS) == 0 || len(c.RemoteTS) == 0:
		return badRecord("CHILD_SA %s{%d} without selectors", c.Name, c.ID)
	case c.HeldOut != nil && len(c.HeldOut.Encr)+len(c.HeldOut.Integ) == 0:
		return badRecord("CHILD_SA %s{%d}: outbound SA held back without keys", c.Name, c.ID)
	}
	if err := c.Suite.Validate(); err != nil {
		return badRecord("CHILD_SA %s{%d}: %v", c.Name, c.ID, err)
	}
	return nil
}

// checkIKESA checks what an IKEv2 record holds beyond checkCommon.
func checkIKESA(s *ExportedIKESA) error {
	if err := s.Suite.CheckKeys(&s.Keys); err != nil {
		return badRecord("IKE suite %v: %v", s.Proposal, err)
	}
	if len(s.Proposal.Transforms) > 0 {
		if ps, err := s.Proposal.IKESuite(); err != nil || ps != s.Suite {
			return badRecord("proposal %v does not match the suite it was saved with", s.Proposal)
		}
	}
	for i := range s.Children {
		c := &s.Children[i]
		if c.ReqID == 0 {
			return badRecord("CHILD_SA %s{%d} without a reqid", c.Name, c.ID)
		}
		if len(c.Proposal.Transforms) > 0 {
			if ps, err := c.Proposal.ChildSuite(); err != nil || ps != c.Suite {
				return badRecord("CHILD_SA %s{%d}: proposal %v does not match the suite it was saved with", c.Name, c.ID, c.Proposal)
			}
		}
	}
	return nil
}

// checkV1SA checks what an IKEv1 record holds beyond checkCommon.
func checkV1SA(s *ExportedISAKMPSA) error {
	if err := transform.CheckV1Keys(s.PRF, s.Encr, s.EncrBits, &s.Keys); err != nil {
		return badRecord("ISAKMP SA %s: %v", s.Proposal, err)
	}
	if s.Group != 0 && !s.Group.Supported() {
		return badRecord("Diffie-Hellman group %v is not supported", s.Group)
	}
	return nil
}

// stateCheck finds the records of a state that claim what an earlier one
// claims.
type stateCheck struct {
	ikeIDs   map[uint32]string
	spis     map[uint64]string // our IKEv2 SPI
	cookies  map[uint64]string // our IKEv1 cookie
	childIDs map[uint32]string
	saIDs    map[SAID]string
}

// claim takes what record n of an IKE version holds (an IKEv1 one
// asIKESA) unless an earlier record took it.
func (c *stateCheck) claim(version, n int, s *ExportedIKESA) error {
	record := recordName(version, n, s.Conn, s.ID)
	if other, ok := c.ikeIDs[s.ID]; ok {
		return badRecord("unique ID [%d] already taken by %s", s.ID, other)
	}
	spis, what := c.spis, "IKE SPI"
	if version == 1 {
		spis, what = c.cookies, "cookie"
	}
	spi := ours(s.Initiator, s.SPIi, s.SPIr)
	if other, ok := spis[spi]; ok {
		return badRecord("%s %.16x already taken by %s", what, spi, other)
	}
	for _, ch := range s.Children {
		if other, ok := c.childIDs[ch.ID]; ok {
			return badRecord("CHILD_SA ID {%d} already taken by %s", ch.ID, other)
		}
	}
	saIDs := s.SAIDs()
	seen := map[SAID]bool{}
	for _, id := range saIDs {
		if other, ok := c.saIDs[id]; ok {
			return badRecord("SA %.8x to %s already taken by %s", id.SPI, id.Dst, other)
		}
		if seen[id] {
			return badRecord("SA %.8x to %s twice", id.SPI, id.Dst)
		}
		seen[id] = true
	}
	c.ikeIDs[s.ID] = record
	spis[spi] = record
	for _, ch := range s.Children {
		c.childIDs[ch.ID] = record
	}
	for _, id := range saIDs {
		c.saIDs[id] = record
	}
	return nil
}

func recordName(version, n int, conn string, id uint32) string {
	return fmt.Sprintf("record %d of IKEv%d (IKE_SA %s[%d])", n, version, conn, id)
}

// check returns the reason each bad record is refused, by index, for the
// IKEv2 and the IKEv1 records.
func (st *EngineState) check() (v2, v1 map[int]error) {
	c := &stateCheck{ikeIDs: map[uint32]string{}, spis: map[uint64]string{}, cookies: map[uint64]string{},
		childIDs: map[uint32]string{}, saIDs: map[SAID]string{}}
	v2 = checkRecords(c, 2, st.SAs, checkIKESA, (*ExportedIKESA).asIKESA)
	v1 = checkRecords(c, 1, st.V1, checkV1SA, (*ExportedISAKMPSA).asIKESA)
	return v2, v1
}

// checkRecords checks the records of one IKE version, each by itself
// (checkCommon, then alone) and then against what the records before it
// claimed.
func checkRecords[R any](c *stateCheck, version int, records []R, alone func(*R) error, view func(*R) ExportedIKESA) map[int]error {
	bad := map[int]error{}
	for i := range records {
		s := view(&records[i])
		err := checkCommon(version, &s)
		if err == nil {
			err = alone(&records[i])
		}
		if err == nil {
			err = c.claim(version, i+1, &s)
		}
		if err != nil {
			bad[i] = err
		}
	}
	return bad
}

// dataplaneSAIDs are the SAs the engine's CHILD_SAs have in the dataplane.
func (e *Engine) dataplaneSAIDs() map[SAID]bool {
	out := map[SAID]bool{}
	for _, sa := range e.allSAs() {
		for _, c := range sa.children {
			out[c.inboundID()], out[c.outboundID()] = true, true
		}
	}
	for _, sa := range e.allV1SAs() {
		for _, c := range sa.children {
			out[c.inboundID()], out[c.outboundID()] = true, true
		}
	}
	return out
}
