package bench

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/xdpsec/xdpsec/ike"
	"github.com/xdpsec/xdpsec/ike/eap"
	"github.com/xdpsec/xdpsec/ike/transform"
)

// Remote-access establishments: our responder and charon as the gateway
// of road warriors, loaded with the same swanctl.conf (a gateway
// certificate, EAP-MSCHAPv2 against local users, a pool with a DNS
// server), and our engines as the clients (loadgen.go), each IKE SA as
// a user of its own asking for a virtual IP. The network, the responder
// processes and what is read from /proc are the IKE comparison's
// (ikebench.go).

// The gateway the clients dial and what it hands out.
const (
	// RAGatewayID is the gateway's identity, its certificate's DNS name.
	RAGatewayID = "gw.bench.example"
	// RAKeyType is the gateway's key (and the CA's).
	RAKeyType = "ECDSA P-256"
	// RAClientsEnv overrides the client count of `make bench` and
	// `make bench-ra` (RAClientsFromEnv).
	RAClientsEnv = "XDPSEC_BENCH_RA_CLIENTS"
	raPoolName   = "rw"
	raDNS        = "10.2.0.53"
)

// RAPool is the pool the clients' virtual IPs come from.
var RAPool = netip.MustParsePrefix("10.3.0.0/18")

// RAProposal is the proposal of the remote-access runs.
var RAProposal = BenchProposals[0]

// raCharonPlugins are what charon loads for the remote-access runs
// besides benchCharonPlugins: certificates and keys (x509, pem, pkcs1,
// pkcs8), and the EAP server's EAP-Identity and EAP-MSCHAPv2 (Debian's
// libcharon-extra-plugins and libcharon-extauth-plugins, which `make
// deps` installs).
const raCharonPlugins = "x509 pem pkcs1 pkcs8 eap-identity eap-mschapv2"

// RACharonPlugins names them for the report.
const RACharonPlugins = "x509, pem, pkcs1, pkcs8, eap-identity, eap-mschapv2"

// RAOptions tune the remote-access comparison.
type RAOptions struct {
	// Bin is the xdpsec binary our responder runs as.
	Bin string
	// Clients is how many IKE SAs a run opens, each as its own user
	// with one CHILD_SA; the responders hold as many users.
	Clients int
	// Window is how many establishments the generator keeps in flight.
	Window int
	// Responders run one after the other.
	Responders []ResponderKind
}

// DefaultRAOptions are what `make bench` uses.
var DefaultRAOptions = RAOptions{Clients: 10_000, Window: 64, Responders: []ResponderKind{Ours, Charon}}

// RAClientsFromEnv is the client count RAClientsEnv asks for, def if
// it is unset.
func RAClientsFromEnv(def int) (int, error) {
	v := os.Getenv(RAClientsEnv)
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 || uint64(n) > raPoolSize() {
		return 0, fmt.Errorf("%s=%q: want a count from 1 to %d (the pool's size)", RAClientsEnv, v, raPoolSize())
	}
	return n, nil
}

// raPoolSize is how many addresses the pool hands out (all but the
// network and the broadcast address).
func raPoolSize() uint64 { return 1<<(32-RAPool.Bits()) - 2 }

// RAResult is one responder's remote-access run.
type RAResult struct {
	// IKEResult's SAs are the clients, each with its virtual IP.
	IKEResult
	// DNS counts the DNS servers the clients received.
	DNS int64
}

// RequireRA says why the remote-access comparison cannot run here, or nil.
func RequireRA(kinds []ResponderKind) error {
	if err := RequireIKE(kinds); err != nil {
		return err
	}
	for _, k := range kinds {
		if k != Charon {
			continue
		}
		for _, p := range []string{"eap-identity", "eap-mschapv2"} {
			path := "/usr/lib/ipsec/plugins/libstrongswan-" + p + ".so"
			if _, err := os.Stat(path); err != nil {
				return fmt.Errorf("charon needs its %s plugin (`make deps` installs it): %w", p, err)
			}
		}
	}
	return nil
}

// raUser is the i-th user's name (from 1), raPassword its password.
func raUser(i int) string     { return "user" + strconv.Itoa(i) }
func raPassword(i int) string { return "bench password of user " + strconv.Itoa(i) }

// raCredentials are the gateway's certificate and key, and the CA the
// clients trust, made for a run.
type raCredentials struct {
	ca    *x509.Certificate
	files map[string][]byte // swanctl directory paths: x509/, private/
}

func newRACredentials() (*raCredentials, error) {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{Organization: []string{"xdpsec"}, CommonName: "xdpsec bench CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(7 * 24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, caKey.Public(), caKey)
	if err != nil {
		return nil, err
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		return nil, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{Organization: []string{"xdpsec"}, CommonName: RAGatewayID},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(7 * 24 * time.Hour),
		DNSNames: []string{RAGatewayID}, IPAddresses: []net.IP{respAddr.AsSlice()},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, key.Public(), caKey)
	if err != nil {
		return nil, err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	return &raCredentials{ca: ca, files: map[string][]byte{
		"x509/gateway.pem":    pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		"private/gateway.pem": pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}),
	}}, nil
}

// raConf is the gateway's swanctl.conf, the same for both responders:
// its certificate, sent always (the clients send no CERTREQ); the
// clients with EAP-MSCHAPv2, asked for their EAP identity (eap_id =
// %any, as a gateway for the built-in clients of Windows, macOS and
// Android is set up); users user1 to userN; one pool with a DNS server;
// one CHILD_SA from the gateway's LAN to the client's virtual IP.
func raConf(users int, p Proposal) string {
	var b strings.Builder
	fmt.Fprintf(&b, `connections {
	rw {
		version = 2
		proposals = %s
		send_cert = always
		pools = %s
		local {
			auth = pubkey
			certs = gateway.pem
			id = %s
		}
		remote {
			auth = eap-mschapv2
			eap_id = %%any
		}
		children {
			net {
				local_ts = %s
				esp_proposals = %s
			}
		}
	}
}
pools {
	%s {
		addrs = %s
		dns = %s
	}
}
secrets {
`, p.IKE, raPoolName, RAGatewayID, respLAN, p.ESP, raPoolName, RAPool, raDNS)
	for i := 1; i <= users; i++ {
		fmt.Fprintf(&b, "\teap-%s {\n\t\tid = %s\n\t\tsecret = \"%s\"\n\t}\n", raUser(i), raUser(i), raPassword(i))
	}
	b.WriteString("}\n")
	return b.String()
}

// raGen is the generator of a remote-access run: its engines know every
// user's password and trust the CA; each IKE SA is the next user's,
// asking for a virtual IP (vips = 0.0.0.0), with EAP-MSCHAPv2 and one
// CHILD_SA to the gateway's LAN.
func raGen(users int, ca *x509.Certificate) genOptions {
	creds := ike.Credentials{CAs: []*x509.Certificate{ca}}
	for i := 1; i <= users; i++ {
		creds.EAP = append(creds.EAP, ike.EAPSecret{IDs: []string{raUser(i)}, Secret: []byte(raPassword(i))})
	}
	var next atomic.Int64
	gw := ike.MustParseIdentity(RAGatewayID)
	return genOptions{credentials: creds, vipPool: RAPool, connFor: func(p Proposal, src netip.Addr) *ike.Connection {
		user := int((next.Add(1)-1)%int64(users)) + 1
		return &ike.Connection{
			Name: genConn, LocalAddrs: []netip.Addr{src}, RemoteAddrs: []netip.Addr{respAddr},
			Proposals: transform.MustParseProposals(transform.ProtoIKE, p.IKE),
			VIPs:      []netip.Addr{netip.IPv4Unspecified()},
			Local: []*ike.AuthConfig{{Auth: ike.AuthEAP, ID: ike.MustParseIdentity(raUser(user)),
				EAPMethods: []eap.Type{eap.TypeMSCHAPv2}}},
			Remote: []*ike.AuthConfig{{Auth: ike.AuthPubkey, ID: gw}},
			Children: []*ike.ChildConfig{{Name: "net", RemoteTS: ike.MustParseTSSpecs(respLAN),
				ESPProposals: transform.MustParseProposals(transform.ProtoESP, p.ESP)}},
		}
	}}
}

// RemoteAccess runs the comparison: for each responder, o.Clients
// clients, as fast as the responder takes them. progress, if set, is
// told about each run.
func RemoteAccess(o RAOptions, progress func(string)) ([]RAResult, error) {
	if progress == nil {
		progress = func(string) {}
	}
	if err := RequireRA(o.Responders); err != nil {
		return nil, fmt.Errorf("bench ra: %w", err)
	}
	if o.Clients <= 0 || uint64(o.Clients) > raPoolSize() {
		return nil, fmt.Errorf("bench ra: %d clients: the pool holds %d", o.Clients, raPoolSize())
	}
	creds, err := newRACredentials()
	if err != nil {
		return nil, fmt.Errorf("bench ra: credentials: %w", err)
	}
	var rs []RAResult
	for _, kind := range o.Responders {
		r, err := raRun(o, kind, creds, progress)
		if err != nil {
			return rs, fmt.Errorf("bench ra: %s: %w", kind, err)
		}
		rs = append(rs, r)
	}
	return rs, nil
}

func raRun(o RAOptions, kind ResponderKind, creds *raCredentials, progress func(string)) (RAResult, error) {
	res := RAResult{IKEResult: IKEResult{Responder: kind, Proposal: RAProposal, SAs: o.Clients}}
	s := respSettings{proposal: RAProposal, cookieThreshold: -1, conf: raConf(o.Clients, RAProposal), files: creds.files, plugins: raCharonPlugins}
	b, err := newIKEBedGen(kind, o.Bin, s, raGen(o.Clients, creds.ca))
	if err != nil {
		return res, err
	}
	defer b.close()
	before, err := readProc(b.resp.pid)
	if err != nil {
		return res, err
	}
	genBefore, err := readProc(os.Getpid())
	if err != nil {
		return res, err
	}
	res.Elapsed, err = b.g.closedLoop(RAProposal, o.Clients, o.Window, 15*time.Second, &res.Tenths)
	if err != nil {
		return res, fmt.Errorf("%w; %s's log ends:\n%s", err, kind, b.resp.logTail())
	}
	after, err := readProc(b.resp.pid)
	if err != nil {
		return res, err
	}
	genAfter, err := readProc(os.Getpid())
	if err != nil {
		return res, err
	}
	res.GenCPU = genAfter.CPU - genBefore.CPU
	if f, nv := b.g.failed.Load(), b.g.noVIP.Load(); f > 0 {
		return res, fmt.Errorf("%d of %d clients failed, %d of them established without a virtual IP of %s; %s's log ends:\n%s",
			f, o.Clients, nv, RAPool, kind, b.resp.logTail())
	}
	if est := b.g.established.Load(); est != int64(o.Clients) {
		return res, fmt.Errorf("%d clients established, want %d", est, o.Clients)
	}
	res.DNS = b.g.dns.Load()
	res.CPU, res.IdleRSS, res.HWM = after.CPU-before.CPU, before.RSS, after.HWM
	progress(fmt.Sprintf("remote access, %s: %d clients with virtual IPs in %s, %.0f/s, %.2f CPU-ms/client, %.1f MiB per 10k clients",
		kind, o.Clients, res.Elapsed.Round(time.Millisecond), res.Rate(), res.CPUPerSA(), res.RSSPer10k()))
	return res, nil
}
