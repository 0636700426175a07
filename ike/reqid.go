package ike

import (
	"fmt"
	"strings"
)

// reqidTable hands out reqids and owns the policies, as charon's kernel
// interface does: CHILD_SAs with the same selectors, outer addresses and
// interface IDs share a reqid and its policies, so that a rekeyed
// CHILD_SA takes over the policies of the one it replaces
// (make-before-break) and they are removed with the last user.
type reqidTable struct {
	byKey map[string]*reqidEntry
	next  uint32
}

type reqidEntry struct {
	key      string
	reqid    uint32
	refs     int
	policies []*Policy
}

func reqidKey(c *childSA) string {
	return fmt.Sprintf("%s|%s|%s|%s|%s|%d|%d|%d", c.cfg.Name, formatTS(c.localTS), formatTS(c.remoteTS),
		c.ike.local.Addr(), c.ike.remote.Addr(), c.cfg.IfIDIn, c.cfg.IfIDOut, c.mode)
}

func (t *reqidTable) acquire(c *childSA) *reqidEntry {
	key := reqidKey(c)
	r := t.byKey[key]
	if r == nil {
		reqid := c.cfg.Reqid
		if reqid == 0 {
			t.next++
			reqid = t.next
		}
		r = &reqidEntry{key: key, reqid: reqid}
		t.byKey[key] = r
	}
	r.refs++
	return r
}

// installPolicies installs the entry's policies for its first user.
func (t *reqidTable) installPolicies(c *childSA) error {
	r := c.reqid
	if len(r.policies) > 0 {
		return nil
	}
	sa := c.ike
	local, remote := sa.local.Addr(), sa.remote.Addr()
	for _, l := range c.localTS {
		for _, rm := range c.remoteTS {
			if l.Start.Is4() != rm.Start.Is4() {
				continue
			}
			r.policies = append(r.policies,
				&Policy{Dir: DirOut, Src: l, Dst: rm, TmplSrc: local, TmplDst: remote, Mode: c.mode, ReqID: r.reqid, IfID: c.cfg.IfIDOut},
				&Policy{Dir: DirIn, Src: rm, Dst: l, TmplSrc: remote, TmplDst: local, Mode: c.mode, ReqID: r.reqid, IfID: c.cfg.IfIDIn})
			if c.mode == ModeTunnel {
				r.policies = append(r.policies,
					&Policy{Dir: DirFwd, Src: rm, Dst: l, TmplSrc: remote, TmplDst: local, Mode: c.mode, ReqID: r.reqid, IfID: c.cfg.IfIDIn})
			}
		}
	}
	var errs []string
	for _, p := range r.policies {
		if err := sa.e.cfg.Dataplane.AddPolicy(p); err != nil {
			errs = append(errs, err.Error())
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("%s", strings.Join(errs, "; "))
	}
	return nil
}

func (t *reqidTable) release(c *childSA) {
	r := c.reqid
	r.refs--
	if r.refs > 0 {
		return
	}
	for _, p := range r.policies {
		if err := c.ike.e.cfg.Dataplane.DeletePolicy(p); err != nil {
			c.ike.log.Debug(fmt.Sprintf("unable to delete policy %s === %s %s: %v", p.Src, p.Dst, p.Dir, err))
		}
	}
	delete(t.byKey, r.key)
}
