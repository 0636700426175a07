package ike_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/xdpsec/xdpsec/ike"
)

// twinChildren adds copies of the first child config under other names,
// with the same selectors.
func twinChildren(names ...string) func(c *ike.Connection) {
	return func(c *ike.Connection) {
		for _, n := range names {
			cc := *c.Children[0]
			cc.Name = n
			c.Children = append(c.Children, &cc)
		}
	}
}

// threeNets gives the connection the children net1, net2 and net3, each
// with subnets of its own (10.1.n.0/24 === 10.2.n.0/24 seen from a).
func threeNets(local, remote string) func(c *ike.Connection) {
	return func(c *ike.Connection) {
		first := *c.Children[0]
		c.Children = nil
		for i := 1; i <= 3; i++ {
			cc := first
			cc.Name = fmt.Sprintf("net%d", i)
			cc.LocalTS = ike.MustParseTSSpecs(fmt.Sprintf(local, i))
			cc.RemoteTS = ike.MustParseTSSpecs(fmt.Sprintf(remote, i))
			c.Children = append(c.Children, &cc)
		}
	}
}

// childNames are the names of the installed CHILD_SAs of p's one IKE SA.
func (tb *testbed) childNames(p *peer) string {
	tb.t.Helper()
	var names []string
	for _, c := range tb.children(p) {
		if c.State == ike.ChildSAInstalled {
			names = append(names, c.Name)
		}
	}
	return strings.Join(names, " ")
}

// TestInitiateNamedChild: initiating one child of a connection of three
// with no IKE SA up brings up that child alone, in IKE_AUTH (swanctl
// --initiate --child); initiating it again while it is installed
// negotiates no duplicate and says which CHILD_SA exists, as charon does;
// the others come over the same IKE SA when asked for, and each exists
// once on both sides. IKEv2 and IKEv1 (one Quick Mode per child).
func TestInitiateNamedChild(t *testing.T) {
	for _, version := range []string{"IKEv2", "IKEv1"} {
		t.Run(version, func(t *testing.T) {
			modA := threeNets("10.1.%d.0/24", "10.2.%d.0/24")
			modB := threeNets("10.2.%d.0/24", "10.1.%d.0/24")
			var tb *testbed
			if version == "IKEv1" {
				tb = v1Bed(t, func(c *ike.Connection) {
					if c.Children[0].LocalTS[0].TS.String() == "10.1.0.0/16" {
						modA(c)
					} else {
						modB(c)
					}
				})
			} else {
				tb = newTestbed(t, bedOptions{connA: modA, connB: modB})
			}
			id, err := tb.a.e.InitiateChildren("gw", "net1")
			if err != nil {
				t.Fatal(err)
			}
			tb.net.Flush()
			if a, b := tb.childNames(tb.a), tb.childNames(tb.b); a != "net1" || b != "net1" {
				t.Fatalf("after initiating net1: a has %q, b %q, want net1 alone", a, b)
			}
			if version == "IKEv2" && tb.a.log.count("generating CREATE_CHILD_SA request") != 0 {
				t.Error("a sent CREATE_CHILD_SA for a child not asked for")
			}
			for _, again := range []string{"net1", "net2", "net2", "net1", "net3", "net3"} {
				before := tb.children(tb.a)
				err := tb.a.e.CreateChildSA(id, again)
				var dup *ike.ChildSAInfo
				for i := range before {
					if before[i].Name == again {
						dup = &before[i]
					}
				}
				if dup == nil && err != nil {
					t.Fatalf("initiating %s: %v", again, err)
				}
				if dup != nil {
					want := fmt.Sprintf("not establishing CHILD_SA %s due to existing duplicate %s{%d} with SPIs %.8x_i %.8x_o and TS",
						again, again, dup.ID, dup.SPIIn, dup.SPIOut)
					if !errors.Is(err, ike.ErrChildExists) || !strings.Contains(err.Error(), want) {
						t.Fatalf("initiating installed %s: %v, want %q", again, err, want)
					}
					if !tb.a.log.contains(want) {
						t.Errorf("a did not log %q", want)
					}
				}
				tb.net.Flush()
			}
			a, b := tb.childNames(tb.a), tb.childNames(tb.b)
			if a != "net1 net2 net3" || b != "net1 net2 net3" {
				t.Fatalf("a has %q, b %q, want net1 net2 net3 once each", a, b)
			}
			if n := len(tb.a.sas()); n != 1 {
				t.Fatalf("a has %d IKE SAs", n)
			}
			tb.checkKeys()
			if n := len(tb.a.dp.SAs()); n != 6 {
				t.Errorf("a has %d ESP SAs, want 6", n)
			}
		})
	}
}

// TestInitiateChildrenUnknown: a child of another connection, or none by
// that name, is an error and starts nothing.
func TestInitiateChildrenUnknown(t *testing.T) {
	tb := newTestbed(t, bedOptions{})
	if _, err := tb.a.e.InitiateChildren("gw", "nonesuch"); !errors.Is(err, ike.ErrUnknownConnection) {
		t.Fatalf("InitiateChildren of an unknown child: %v", err)
	}
	if _, err := tb.a.e.InitiateChildren("nonesuch", "net"); !errors.Is(err, ike.ErrUnknownConnection) {
		t.Fatalf("InitiateChildren of an unknown connection: %v", err)
	}
	tb.net.Flush()
	tb.wantNoSAs(tb.a)
}

// establishWith initiates from a with the named children only and runs
// the network until it is quiet.
func (tb *testbed) establishWith(children ...string) uint32 {
	tb.t.Helper()
	id, err := tb.a.e.InitiateChildren("gw", children...)
	if err != nil {
		tb.t.Fatal(err)
	}
	tb.net.Flush()
	return id
}
