package interop

import (
	"fmt"
	"strings"
)

// peer is one side's view of the connection "c" with its CHILD_SA "net",
// written as swanctl.conf, which both charon and our daemon read.
type peer struct {
	local, remote     string // local_addrs, remote_addrs ("" leaves them out)
	proposals         string // IKE proposals
	esp               string // esp_proposals ("" leaves them out)
	localAuth         string // psk, pubkey, ...
	remoteAuth        string
	localID, remoteID string
	cert              string // our certificate's file in x509/
	remoteCA          string // cacerts of the remote round, a file in x509ca/
	localTS, remoteTS string
	psk               string // secret for both identities ("" for none)
	connExtra         string // more lines in the connection
	childExtra        string // more lines in the CHILD_SA
	moreChildren      string // more CHILD_SA sections beside "net"
	trailer           string // more sections after connections and secrets
	// decoy adds a copy of "c" named "decoy" (CHILD_SA "decoynet"), to
	// leave a half-open IKE SA at the peer without touching "c".
	decoy bool
}

func (p peer) conf() string {
	var b strings.Builder
	b.WriteString("connections {\n")
	p.connBlock(&b, "c", "net")
	if p.decoy {
		// charon would queue CHILD_SAs of "c" on the decoy's IKE SA if
		// their IKE configs were equal: a second proposal sets it apart.
		d := p
		d.proposals += ",aes256-sha256-modp2048"
		d.connBlock(&b, "decoy", "decoynet")
	}
	b.WriteString("}\n")
	if p.psk != "" {
		fmt.Fprintf(&b, "secrets {\n  ike-c {\n    id-l = %s\n    id-r = %s\n    secret = \"%s\"\n  }\n}\n", p.localID, p.remoteID, p.psk)
	}
	b.WriteString(p.trailer)
	return b.String()
}

func (p peer) connBlock(b *strings.Builder, name, child string) {
	fmt.Fprintf(b, "  %s {\n", name)
	if p.local != "" {
		fmt.Fprintf(b, "    local_addrs = %s\n", p.local)
	}
	if p.remote != "" {
		fmt.Fprintf(b, "    remote_addrs = %s\n", p.remote)
	}
	fmt.Fprintf(b, "    proposals = %s\n", p.proposals)
	b.WriteString(p.connExtra)
	fmt.Fprintf(b, "    local {\n      auth = %s\n", p.localAuth)
	if p.localID != "" {
		fmt.Fprintf(b, "      id = %s\n", p.localID)
	}
	if p.cert != "" {
		fmt.Fprintf(b, "      certs = %s\n", p.cert)
	}
	b.WriteString("    }\n")
	fmt.Fprintf(b, "    remote {\n      auth = %s\n", p.remoteAuth)
	if p.remoteID != "" {
		fmt.Fprintf(b, "      id = %s\n", p.remoteID)
	}
	if p.remoteCA != "" {
		fmt.Fprintf(b, "      cacerts = %s\n", p.remoteCA)
	}
	b.WriteString("    }\n")
	esp := ""
	if p.esp != "" {
		esp = "        esp_proposals = " + p.esp + "\n"
	}
	fmt.Fprintf(b, "    children {\n      %s {\n        local_ts = %s\n        remote_ts = %s\n%s%s      }\n%s    }\n",
		child, p.localTS, p.remoteTS, esp, p.childExtra, p.moreChildren)
	b.WriteString("  }\n")
}

// pskPeers is the PSK net-to-net tunnel of most tests, from both sides.
func pskPeers(ike, esp string) (charonSide, oursSide peer) {
	charonSide = peer{
		local: charonAddr, remote: oursAddr, proposals: ike, esp: esp,
		localAuth: "psk", remoteAuth: "psk", localID: "moon.example.org", remoteID: "sun.example.org",
		localTS: charonNet, remoteTS: oursNet, psk: "a shared secret for the interop test",
	}
	oursSide = charonSide.mirror()
	return charonSide, oursSide
}

// mirror is the other side of a symmetric connection.
func (p peer) mirror() peer {
	m := p
	m.local, m.remote = p.remote, p.local
	m.localID, m.remoteID = p.remoteID, p.localID
	m.localAuth, m.remoteAuth = p.remoteAuth, p.localAuth
	m.localTS, m.remoteTS = p.remoteTS, p.localTS
	return m
}
