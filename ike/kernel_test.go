package ike_test

import (
	"testing"

	"github.com/xdpsec/xdpsec/ike"
)

// TestKernelLayerSharedAcrossVersions: an IKEv2 and an IKEv1 CHILD_SA of
// the same child, selectors and addresses are one set of kernel
// policies with one reqid (the kernel has one policy per selector pair
// and direction), and the policies stay while either still uses them.
// Before IKEv1 and IKEv2 shared the install layer each version kept its
// own entry for the same kernel policies, so deleting the IKEv1 SA
// removed the policies the IKEv2 CHILD_SA still needed.
func TestKernelLayerSharedAcrossVersions(t *testing.T) {
	tb := newTestbed(t, bedOptions{})
	for _, p := range []*peer{tb.a, tb.b} {
		local, remote := addrA, addrB
		lnet, rnet := "10.1.0.0/16", "10.2.0.0/16"
		lid, rid := "moon.example.org", "sun.example.org"
		if p == tb.b {
			local, remote, lnet, rnet, lid, rid = remote, local, rnet, lnet, rid, lid
		}
		c := baseConn(local, remote, lid, rid, lnet, rnet)
		c.Name = "gw1"
		v1("aes128-sha256-modp2048", "aes128-sha256")(c)
		if err := p.e.AddConnection(c); err != nil {
			t.Fatal(err)
		}
	}
	tb.establish() // IKEv2 "gw"
	v1ID, err := tb.a.e.Initiate("gw1")
	if err != nil {
		t.Fatal(err)
	}
	tb.net.Flush()

	for _, p := range []*peer{tb.a, tb.b} {
		var versions []int
		var reqids []uint32
		for _, sa := range p.sas() {
			for _, c := range sa.Children {
				if c.State == ike.ChildSAInstalled {
					versions = append(versions, sa.Version)
				}
			}
		}
		for _, sa := range p.dp.SAs() {
			reqids = append(reqids, sa.ReqID)
		}
		if len(versions) != 2 || len(reqids) != 4 {
			t.Fatalf("%s: installed CHILD_SAs of versions %v, %d ESP SAs; want one IKEv2 and one IKEv1 CHILD_SA", p.name, versions, len(reqids))
		}
		for _, r := range reqids {
			if r != reqids[0] {
				t.Fatalf("%s: ESP SAs carry reqids %v, want one shared reqid", p.name, reqids)
			}
		}
		// out, in and fwd once, not once per version.
		if pol := p.dp.Policies(); len(pol) != 3 {
			t.Fatalf("%s: %d policies, want 3 shared by both CHILD_SAs: %+v", p.name, len(pol), pol)
		}
	}

	if err := tb.a.e.DeleteIKESA(v1ID); err != nil {
		t.Fatal(err)
	}
	tb.net.Flush()
	for _, p := range []*peer{tb.a, tb.b} {
		if n := len(p.dp.SAs()); n != 2 {
			t.Fatalf("%s: %d ESP SAs after the IKEv1 SA went, want the IKEv2 CHILD_SA's 2", p.name, n)
		}
		if pol := p.dp.Policies(); len(pol) != 3 {
			t.Fatalf("%s: %d policies after the IKEv1 SA went, want the 3 the IKEv2 CHILD_SA still uses", p.name, len(pol))
		}
	}
	tb.established(tb.a)
	for _, sa := range tb.a.sas() {
		if err := tb.a.e.DeleteIKESA(sa.ID); err != nil {
			t.Fatal(err)
		}
	}
	tb.net.Flush()
	tb.wantNoSAs(tb.a)
	tb.wantNoSAs(tb.b)
}

// TestSACarriesHWOffload: every SA of a CHILD_SA tells the dataplane the
// child's hw_offload, inbound and outbound, after a rekey too; the peer's
// setting is its own.
func TestSACarriesHWOffload(t *testing.T) {
	tb := newTestbed(t, bedOptions{connA: func(c *ike.Connection) { c.Children[0].HWOffload = ike.HWOffloadAuto }})
	tb.establish()
	check := func(when string) {
		t.Helper()
		for _, p := range []*peer{tb.a, tb.b} {
			want := ike.HWOffloadNo
			if p == tb.a {
				want = ike.HWOffloadAuto
			}
			sas := p.dp.SAs()
			if len(sas) < 2 {
				t.Fatalf("%s %s: %d SAs, want 2 or more", p.name, when, len(sas))
			}
			for _, sa := range sas {
				if sa.Offload != want {
					t.Errorf("%s %s: SA %.8x (inbound %v) asks offload %v, want %v", p.name, when, sa.SPI, sa.Inbound, sa.Offload, want)
				}
			}
		}
	}
	check("established")
	child := tb.established(tb.a).Children[0]
	if err := tb.a.e.RekeyChildSA(child.ID); err != nil {
		t.Fatal(err)
	}
	tb.net.Flush()
	check("after a rekey")
}
