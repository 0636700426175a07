package main

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/xdpsec/xdpsec/internal/daemon"
	"github.com/xdpsec/xdpsec/internal/testenv"
)

// TestDaemonsRedirectLeastLoaded: three gateways, our daemons, where gw1
// redirects every new client to the least loaded of gw2 and gw3 (their
// loads read from their /metrics), and clients that are our daemons too.
// gw2 serves one client already, so the next client of gw1 goes to gw3;
// once gw3 is gone (its /metrics silent) the next goes to gw2.
func TestDaemonsRedirectLeastLoaded(t *testing.T) {
	testenv.RequireRoot(t)
	testenv.RequireCommand(t, "nsenter")
	nsG := testenv.NewNetns(t, "xdpsec-rg")
	nsC := testenv.NewNetns(t, "xdpsec-rc")
	testenv.Veth(t, nsG, "wan0", "10.97.0.1/24", nsC, "wan0", "10.97.0.11/24")
	for _, a := range []string{"10.97.0.2", "10.97.0.3"} {
		nsG.MustRun(t, "ip", "addr", "add", a+"/24", "dev", "wan0")
	}
	for _, a := range []string{"10.97.0.12", "10.97.0.13"} {
		nsC.MustRun(t, "ip", "addr", "add", a+"/24", "dev", "wan0")
	}
	// The clients share an identity: unique = never keeps each one's IKE
	// SA when the next brings INITIAL_CONTACT.
	gateway := func(name, addr, extra string) *site {
		conf := siteConf(addr, "%any", "sun.example.org", "moon.example.org", "10.2.0.0/16", "10.0.0.0/8", "")
		conf = strings.Replace(conf, "      proposals = aes128gcm16-prfsha256-x25519\n", "      proposals = aes128gcm16-prfsha256-x25519\n      unique = never\n"+extra, 1)
		s := newSite(t, name, nsG, conf)
		s.flags = []string{"--listen", addr, "--metrics", addr + ":9901", "--log", "ike=1,cfg=1"}
		return s
	}
	client := func(name, addr, gw, net string) *site {
		s := newSite(t, name, nsC, siteConf(addr, gw, "moon.example.org", "sun.example.org", net, "10.2.0.0/16", ""))
		s.flags = []string{"--listen", addr, "--metrics", addr + ":9901"}
		s.start()
		return s
	}
	gw2 := gateway("gw2", "10.97.0.2", "")
	gw3 := gateway("gw3", "10.97.0.3", "")
	gw1 := gateway("gw1", "10.97.0.1", `      redirect {
         choose = load
         poll_interval = 200ms
         gateways {
            gw2 {
               address = 10.97.0.2
               metrics = http://10.97.0.2:9901/metrics
            }
            gw3 {
               address = 10.97.0.3
               metrics = http://10.97.0.3:9901/metrics
            }
         }
      }
`)
	gw2.start()
	gw3.start()
	// gw2 has a client before gw1 reads the loads.
	c1 := client("c1", "10.97.0.11", "10.97.0.2", "10.11.0.0/16")
	c1.ok("initiate", "--child", "net")
	gw1.start()
	waitLogLines(t, gw1, "redirect gateway gw2 of site answers, load 1", "redirect gateway gw3 of site answers, load 0")
	if out := gw1.ok("list-conns"); !strings.Contains(out, "redirect new clients during IKE_SA_INIT, choosing by load:\n    gw2: 10.97.0.2, load 1\n    gw3: 10.97.0.3, load 0\n") {
		t.Errorf("gw1's list-conns:\n%s", out)
	}

	c2 := client("c2", "10.97.0.12", "10.97.0.1", "10.12.0.0/16")
	if out := c2.ok("initiate", "--child", "net"); !strings.Contains(out, "IKE_SA site[1] established") {
		t.Fatalf("c2 initiate: %s", out)
	}
	if sas := c2.sas(); len(sas) != 1 || sas[0].RemoteHost != "10.97.0.3" {
		t.Fatalf("c2 went to %+v, want gw3 (the least loaded)", sas)
	}
	gw3.waitSAs("c2's IKE SA", func(s []daemon.IKESA) bool { return len(s) == 1 && s[0].RemoteHost == "10.97.0.12" })
	if sas := gw1.sas(); len(sas) != 0 {
		t.Fatalf("gw1 kept %+v", sas)
	}
	waitLogLines(t, gw1, "redirecting peer to 10.97.0.3")
	waitLogLines(t, c2, "redirected to 10.97.0.3")

	// gw3 goes away: gw1 skips it, and the next client goes to gw2.
	gw3.stop()
	waitLogLines(t, gw1, "redirect gateway gw3 of site not answering, skipped")
	if out := gw1.ok("list-conns"); !strings.Contains(out, "gw3: 10.97.0.3, load unknown") {
		t.Errorf("gw1's list-conns with gw3 down:\n%s", out)
	}
	c3 := client("c3", "10.97.0.13", "10.97.0.1", "10.13.0.0/16")
	c3.ok("initiate", "--child", "net")
	if sas := c3.sas(); len(sas) != 1 || sas[0].RemoteHost != "10.97.0.2" {
		t.Fatalf("c3 went to %+v, want gw2 (gw3 is down)", sas)
	}
	if n := len(gw2.sas()); n != 2 {
		t.Fatalf("gw2 has %d IKE SAs, want 2", n)
	}
}

// waitLogLines waits until a site's log holds every line.
func waitLogLines(t *testing.T, s *site, lines ...string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		b, _ := os.ReadFile(s.logPath)
		var missing []string
		for _, l := range lines {
			if !strings.Contains(string(b), l) {
				missing = append(missing, l)
			}
		}
		if len(missing) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s's log lacks %q", s.name, missing)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
