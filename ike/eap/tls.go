package eap

import (
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"slices"
	"strings"
	"time"
)

// TLSConfig configures one side of EAP-TLS (RFC 5216, and RFC 9190 for
// TLS 1.3): our certificate and key, the trust anchors the other side's
// certificate must chain to, and the identity it must be issued to.
type TLSConfig struct {
	// Chain is our certificate, then intermediates; Key its private key.
	// The server presents the gateway's certificate, the peer the user's.
	Chain []*x509.Certificate
	Key   crypto.Signer
	// CAs are the trust anchors of the other side's certificate.
	CAs []*x509.Certificate
	// Identity is what the other side's certificate must be issued to
	// (the server: the peer's EAP identity; the peer: the server's IKE
	// identity); empty for any.
	Identity string
	// MatchIdentity reports whether cert is issued to identity. nil
	// matches a subjectAltName (DNS name, email, IP address) or the
	// subject as pkix.Name.String prints it; the engine passes its own,
	// which knows IKE identities.
	MatchIdentity func(cert *x509.Certificate, identity string) bool
	// MinVersion and MaxVersion bound the TLS version: 1.2 and 1.3 by
	// default. strongSwan 5.9's libtls offers 1.2 unless its
	// charon.tls.version_max says 1.3.
	MinVersion, MaxVersion uint16
	// FragmentSize is the largest EAP-TLS packet we send,
	// DefaultTLSFragmentSize if zero.
	FragmentSize int
	// MaxMessage bounds a reassembled TLS message, DefaultTLSMaxMessage
	// if zero; MaxPackets bounds the EAP-TLS packets processed,
	// DefaultTLSMaxPackets if zero.
	MaxMessage, MaxPackets int
	// Now is the time certificates are checked at; time.Now if nil.
	Now func() time.Time
	// Rand for TLS; crypto/rand if nil.
	Rand io.Reader
}

func (c *TLSConfig) check(role string) error {
	if len(c.Chain) == 0 || c.Key == nil {
		return fmt.Errorf("eap-tls %s: no certificate and key", role)
	}
	if pk, ok := c.Key.Public().(interface{ Equal(crypto.PublicKey) bool }); !ok || !pk.Equal(c.Chain[0].PublicKey) {
		return fmt.Errorf("eap-tls %s: the key is not the certificate's", role)
	}
	if len(c.CAs) == 0 {
		return fmt.Errorf("eap-tls %s: no CA certificate to check the other side's with", role)
	}
	if c.FragmentSize == 0 {
		c.FragmentSize = DefaultTLSFragmentSize
	}
	if c.FragmentSize < minTLSFragmentSize || c.FragmentSize > MaxPacketLen {
		return fmt.Errorf("eap-tls %s: fragment size %d out of range", role, c.FragmentSize)
	}
	if c.MaxMessage <= 0 {
		c.MaxMessage = DefaultTLSMaxMessage
	}
	if c.MaxPackets <= 0 {
		c.MaxPackets = DefaultTLSMaxPackets
	}
	if c.MinVersion == 0 {
		c.MinVersion = tls.VersionTLS12
	}
	if c.MaxVersion == 0 {
		c.MaxVersion = tls.VersionTLS13
	}
	if c.MinVersion < tls.VersionTLS12 || c.MaxVersion > tls.VersionTLS13 || c.MinVersion > c.MaxVersion {
		return fmt.Errorf("eap-tls %s: TLS versions %#04x-%#04x: only 1.2 and 1.3 are supported", role, c.MinVersion, c.MaxVersion)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.MatchIdentity == nil {
		c.MatchIdentity = certHasName
	}
	c.Chain, c.CAs = slices.Clone(c.Chain), slices.Clone(c.CAs)
	return nil
}

// certHasName is the default MatchIdentity.
func certHasName(c *x509.Certificate, id string) bool {
	if a, err := netip.ParseAddr(id); err == nil {
		return slices.ContainsFunc(c.IPAddresses, func(ip net.IP) bool {
			b, ok := netip.AddrFromSlice(ip)
			return ok && b.Unmap() == a.Unmap()
		})
	}
	eq := func(n string) bool { return strings.EqualFold(n, id) }
	return slices.ContainsFunc(c.DNSNames, eq) || slices.ContainsFunc(c.EmailAddresses, eq) || c.Subject.String() == id
}

// tlsCore is what the server and the peer of EAP-TLS share: the TLS
// session in its pipe, our fragments going out, the other side's coming
// in, and the outcome.
type tlsCore struct {
	cfg      TLSConfig
	server   bool
	pipe     *tlsPipe
	frag     tlsFragmenter
	reasm    tlsReassembly
	packets  int
	finished bool // the handshake (and 1.3's success indication) is done
	keylog   keyLog
	srvRand  []byte
	certErr  *Error            // why the other side's certificate was refused
	cert     *x509.Certificate // the other side's, once verified
	version  uint16
	suite    uint16
	state    tls.ConnectionState // after the handshake; its exporter holds secrets
	msk      []byte
}

func newTLSCore(cfg TLSConfig, server bool) *tlsCore {
	c := &tlsCore{cfg: cfg, server: server}
	c.frag.size = cfg.FragmentSize
	c.reasm.max = cfg.MaxMessage
	return c
}

func (c *tlsCore) tlsConfig() *tls.Config {
	raw := make([][]byte, len(c.cfg.Chain))
	for i, x := range c.cfg.Chain {
		raw[i] = x.Raw
	}
	cert := tls.Certificate{Certificate: raw, PrivateKey: c.cfg.Key, Leaf: c.cfg.Chain[0]}
	tc := &tls.Config{
		Rand:                   c.cfg.Rand,
		Time:                   c.cfg.Now,
		MinVersion:             c.cfg.MinVersion,
		MaxVersion:             c.cfg.MaxVersion,
		SessionTicketsDisabled: true,
		KeyLogWriter:           &c.keylog,
		VerifyPeerCertificate:  c.verify,
	}
	if c.server {
		pool := x509.NewCertPool()
		for _, ca := range c.cfg.CAs {
			pool.AddCert(ca)
		}
		tc.Certificates = []tls.Certificate{cert}
		// Any certificate is asked for and checked in verify, which
		// names the cause; ClientCAs only lists the CAs in the request.
		tc.ClientAuth = tls.RequireAnyClientCert
		tc.ClientCAs = pool
	} else {
		// verify does the checking, against our CAs and the server's
		// identity rather than a host name.
		tc.InsecureSkipVerify = true
		tc.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &cert, nil }
	}
	return tc
}

// verify checks the other side's certificate chain: trusted, valid now,
// issued to the expected identity. The reason is kept for the log.
func (c *tlsCore) verify(raw [][]byte, _ [][]*x509.Certificate) error {
	e := c.checkChain(raw)
	if e != nil {
		c.certErr = e
		return e
	}
	return nil
}

func (c *tlsCore) checkChain(raw [][]byte) *Error {
	fail := func(r Reason, err error) *Error { return failure(TypeTLS, r, c.cfg.Identity, err) }
	if len(raw) == 0 {
		return fail(ReasonUntrustedCertificate, errors.New("no certificate sent"))
	}
	var chain []*x509.Certificate
	for _, b := range raw {
		x, err := x509.ParseCertificate(b)
		if err != nil {
			return fail(ReasonUntrustedCertificate, fmt.Errorf("invalid certificate: %w", err))
		}
		chain = append(chain, x)
	}
	leaf := chain[0]
	roots, inter := x509.NewCertPool(), x509.NewCertPool()
	for _, ca := range c.cfg.CAs {
		roots.AddCert(ca)
	}
	for _, x := range chain[1:] {
		inter.AddCert(x)
	}
	_, err := leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, CurrentTime: c.cfg.Now(),
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}})
	if err != nil {
		var inv x509.CertificateInvalidError
		if errors.As(err, &inv) && inv.Reason == x509.Expired {
			return fail(ReasonCertificateExpired, fmt.Errorf("certificate %q (valid %s to %s): %w", leaf.Subject.String(),
				leaf.NotBefore.UTC().Format(time.DateOnly), leaf.NotAfter.UTC().Format(time.DateOnly), err))
		}
		return fail(ReasonUntrustedCertificate, fmt.Errorf("certificate %q issued by %q: %w", leaf.Subject.String(), leaf.Issuer.String(), err))
	}
	if c.cfg.Identity != "" && !c.cfg.MatchIdentity(leaf, c.cfg.Identity) {
		return fail(ReasonCertificateIdentity, fmt.Errorf("certificate %q is not issued to %s", leaf.Subject.String(), quote(c.cfg.Identity)))
	}
	c.cert = leaf
	return nil
}

// work is what the goroutine does: the handshake, then TLS 1.3's
// protected success indication (RFC 9190 section 2.5), one octet 0x00 of
// application data the server sends once it has verified the peer.
func (c *tlsCore) work(conn net.Conn) (tls.ConnectionState, error) {
	cfg := c.tlsConfig()
	if c.server {
		tc := tls.Server(conn, cfg)
		if err := tc.Handshake(); err != nil {
			return tls.ConnectionState{}, err
		}
		st := tc.ConnectionState()
		if st.Version == tls.VersionTLS13 {
			if _, err := tc.Write([]byte{0}); err != nil {
				return st, err
			}
		}
		return st, nil
	}
	tc := tls.Client(conn, cfg)
	if err := tc.Handshake(); err != nil {
		return tls.ConnectionState{}, err
	}
	st := tc.ConnectionState()
	if st.Version == tls.VersionTLS13 {
		var b [1]byte
		if _, err := io.ReadFull(tc, b[:]); err != nil {
			return st, fmt.Errorf("waiting for the protected success indication: %w", err)
		}
		if b[0] != 0 {
			return st, fmt.Errorf("protected success indication %#02x, 0x00 expected: %w", b[0], ErrMalformed)
		}
	}
	return st, nil
}

func (c *tlsCore) fail(r Reason, err error) ([]byte, Status, error) {
	return nil, Failed, failure(TypeTLS, r, c.cfg.Identity, err)
}

// start runs the TLS session; for the peer, out is its ClientHello.
func (c *tlsCore) start() ([]byte, Status, error) {
	var ev tlsEvent
	c.pipe, ev = startTLSPipe(c.work)
	if c.server && !ev.done && len(ev.out) == 0 {
		return nil, Continue, nil // waiting for the ClientHello
	}
	return c.after(ev)
}

// step takes the Type-Data of the other side's EAP-TLS packet and
// returns the Type-Data of ours.
func (c *tlsCore) step(data []byte) ([]byte, Status, error) {
	c.packets++
	if c.packets > c.cfg.MaxPackets {
		return c.fail(ReasonMalformed, fmt.Errorf("more than %d EAP-TLS packets: %w", c.cfg.MaxPackets, ErrTooLarge))
	}
	p, err := parseTLSPacket(data)
	if err != nil {
		return c.fail(ReasonMalformed, err)
	}
	if c.frag.pending() {
		if !p.ack() {
			return c.fail(ReasonUnexpected, fmt.Errorf("TLS data while our fragments are pending: %w", ErrUnexpected))
		}
		return c.frag.next(), Continue, nil
	}
	if c.finished {
		if c.server && p.ack() {
			return nil, Succeeded, nil
		}
		return c.fail(ReasonTLS, fmt.Errorf("TLS data after the handshake (an alert?): %w", ErrUnexpected))
	}
	if p.start() {
		return c.fail(ReasonUnexpected, fmt.Errorf("EAP-TLS Start in the middle of a conversation: %w", ErrUnexpected))
	}
	if p.ack() && !c.reasm.started {
		return c.fail(ReasonUnexpected, fmt.Errorf("acknowledgement with no fragment of ours pending: %w", ErrUnexpected))
	}
	complete, err := c.reasm.add(p)
	if err != nil {
		return c.fail(ReasonMalformed, err)
	}
	if !complete {
		return []byte{0}, Continue, nil
	}
	msg := c.reasm.take()
	if !c.server && c.srvRand == nil {
		c.srvRand = serverHelloRandom(msg)
	}
	return c.after(c.pipe.feed(msg))
}

// after turns what TLS did into our next packet.
func (c *tlsCore) after(ev tlsEvent) ([]byte, Status, error) {
	if ev.done {
		if ev.err != nil {
			return nil, Failed, c.tlsFailure(ev.err)
		}
		c.finished = true
		c.state = ev.state
		c.version = ev.state.Version
		c.suite = ev.state.CipherSuite
		msk, err := tlsMSK(&ev.state, &c.keylog, c.srvRand)
		c.keylog.wipe()
		if err != nil {
			return c.fail(ReasonInternal, err)
		}
		c.msk = msk
		if !c.server {
			if len(ev.out) > 0 || len(ev.in) > 0 {
				return c.fail(ReasonTLS, fmt.Errorf("TLS data after the handshake: %w", ErrUnexpected))
			}
			return []byte{0}, Succeeded, nil
		}
		if len(ev.out) == 0 {
			return nil, Succeeded, nil
		}
		c.frag.load(ev.out)
		return c.frag.next(), Continue, nil
	}
	if len(ev.out) == 0 {
		return c.fail(ReasonMalformed, fmt.Errorf("TLS message incomplete: %w", ErrTruncated))
	}
	if c.server && c.srvRand == nil {
		c.srvRand = serverHelloRandom(ev.out)
	}
	c.frag.load(ev.out)
	return c.frag.next(), Continue, nil
}

// tlsFailure names why the handshake failed: our check of the other
// side's certificate, an alert it sent, or another TLS error.
func (c *tlsCore) tlsFailure(err error) *Error {
	if c.certErr != nil {
		return c.certErr
	}
	var alert tls.AlertError
	if errors.As(err, &alert) && !c.server {
		return failure(TypeTLS, ReasonRejected, c.cfg.Identity, err)
	}
	return failure(TypeTLS, ReasonTLS, c.cfg.Identity, err)
}

func (c *tlsCore) wipe() {
	if c.pipe != nil {
		c.pipe.close()
	}
	clear(c.msk)
	c.msk = nil
	c.state = tls.ConnectionState{}
	c.keylog.wipe()
	c.reasm.take()
	c.frag.load(nil)
}

// detail is charon's line for the negotiated session.
func (c *tlsCore) detail() string {
	if c.version == 0 {
		return ""
	}
	return "negotiated " + tls.VersionName(c.version) + " using suite " + tls.CipherSuiteName(c.suite)
}

// TLSServer is the server side of EAP-TLS.
type TLSServer struct {
	core      *tlsCore
	id        uint8
	identity  string
	succeeded bool
}

// NewTLSServer returns the server side of EAP-TLS for a peer whose EAP
// identity is cfg.Identity.
func NewTLSServer(cfg TLSConfig) (*TLSServer, error) {
	if err := cfg.check("server"); err != nil {
		return nil, err
	}
	return &TLSServer{core: newTLSCore(cfg, true)}, nil
}

func (s *TLSServer) Type() Type { return TypeTLS }

// Begin sends EAP-TLS Start; the TLS server waits for the ClientHello.
func (s *TLSServer) Begin(id uint8) (Packet, error) {
	if s.core.pipe != nil {
		return Packet{}, fmt.Errorf("eap-tls server: begun twice")
	}
	s.id = id
	if _, st, err := s.core.start(); st == Failed {
		return Packet{}, err
	}
	return Packet{Code: CodeRequest, Identifier: id, Type: TypeTLS, Data: []byte{tlsFlagStart}}, nil
}

func (s *TLSServer) Process(resp Packet) (Packet, Status, error) {
	if s.core.pipe == nil {
		return Packet{}, Failed, failure(TypeTLS, ReasonInternal, s.core.cfg.Identity, fmt.Errorf("Process before Begin"))
	}
	out, st, err := s.core.step(resp.Data)
	if st == Succeeded {
		s.succeeded = true
		s.identity = s.core.cfg.Identity
		if s.identity == "" && s.core.cert != nil {
			s.identity = s.core.cert.Subject.String()
		}
	}
	s.id++
	return Packet{Code: CodeRequest, Identifier: s.id, Type: TypeTLS, Data: out}, st, err
}

// Identity is the identity the client certificate was checked against,
// or its subject when no identity was asked for.
func (s *TLSServer) Identity() string { return s.identity }

func (s *TLSServer) MSK() []byte {
	if !s.succeeded {
		return nil
	}
	return slices.Clone(s.core.msk)
}

// Version is the negotiated TLS version, after success.
func (s *TLSServer) Version() uint16 { return s.core.version }

// Detail says which TLS version and suite were negotiated.
func (s *TLSServer) Detail() string { return s.core.detail() }

func (s *TLSServer) Wipe() { s.core.wipe() }

// TLSPeer is the peer side of EAP-TLS.
type TLSPeer struct {
	core *tlsCore
}

// NewTLSPeer returns the peer side of EAP-TLS, to authenticate a server
// whose certificate is issued to cfg.Identity.
func NewTLSPeer(cfg TLSConfig) (*TLSPeer, error) {
	if err := cfg.check("peer"); err != nil {
		return nil, err
	}
	return &TLSPeer{core: newTLSCore(cfg, false)}, nil
}

func (p *TLSPeer) Type() Type { return TypeTLS }

func (p *TLSPeer) Process(req Packet) (*Packet, Status, error) {
	var out []byte
	var st Status
	var err error
	if p.core.pipe == nil {
		tp, perr := parseTLSPacket(req.Data)
		if perr != nil || !tp.start() {
			return nil, Failed, failure(TypeTLS, ReasonUnexpected, p.core.cfg.Identity, fmt.Errorf("first EAP-TLS request is no Start: %w", ErrUnexpected))
		}
		p.core.packets++
		out, st, err = p.core.start()
	} else {
		out, st, err = p.core.step(req.Data)
	}
	if st == Failed {
		return nil, Failed, err
	}
	return &Packet{Code: CodeResponse, Identifier: req.Identifier, Type: TypeTLS, Data: out}, st, nil
}

func (p *TLSPeer) MSK() []byte { return slices.Clone(p.core.msk) }

// Version is the negotiated TLS version, after success.
func (p *TLSPeer) Version() uint16 { return p.core.version }

// Detail says which TLS version and suite were negotiated.
func (p *TLSPeer) Detail() string { return p.core.detail() }

func (p *TLSPeer) Wipe() { p.core.wipe() }
