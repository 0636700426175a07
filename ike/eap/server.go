package eap

import (
	"crypto/rand"
	"fmt"
	"io"
	"slices"
	"strings"
)

// ServerConfig configures the authenticator side of one conversation.
type ServerConfig struct {
	// Methods are the methods offered, in order of preference (TypeMD5,
	// TypeMSCHAPv2). The first is started; a peer's Nak may pick another
	// of the list, each at most once, as strongSwan's eap-dynamic does.
	Methods []Type
	// Identity is the peer's EAP identity if it is known beforehand (a
	// configured eap_id, or the peer's IKE identity). Empty: the server
	// asks with EAP-Identity first.
	Identity string
	// Credentials looks up the secret of an identity.
	Credentials Credentials
	// Name is the authenticator's name in MS-CHAPv2 and MD5 Challenges;
	// "xdpsec" if empty.
	Name string
	// MSCHAPv2Retries is how many wrong passwords are answered with a
	// retriable MS-CHAPv2 Failure Request (E=691 R=1) before the final
	// EAP-Failure. Zero ends the conversation at the first wrong password.
	// charon's peer does not retry (it gives up at the first Failure
	// Request without answering it); the engine may delay a
	// retry's Request to slow down guessing, as charon does.
	MSCHAPv2Retries int
	// Rand supplies challenges and the first Identifier; crypto/rand if
	// nil.
	Rand io.Reader
	// NewMethod, if set, makes the server side of a method in Methods
	// that this package does not implement (EAP-TLS, a relay to a RADIUS
	// server), for the peer's EAP identity; nil if it cannot.
	NewMethod func(t Type, identity string) ServerMethod
}

// Result is the outcome of a conversation. Err is nil on success and an
// *Error otherwise.
type Result struct {
	Method   Type   // the method that ran last
	Identity string // the identity the method authenticated, or the EAP identity
	MSK      []byte // nil without success or for methods without an MSK
	Err      error
	// Detail is what the method negotiated, for the log, in charon's
	// words where it has some (EAP-TLS: "negotiated TLS 1.2 using suite
	// TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256"); empty for most methods.
	Detail string
}

// detail asks a method that can tell what it negotiated.
func detail(m any) string {
	if d, ok := m.(interface{ Detail() string }); ok {
		return d.Detail()
	}
	return ""
}

// Server runs the authenticator side of an EAP conversation, the way the
// IKE_AUTH responder needs it: Start gives the first Request, Process
// takes each Response and gives the next message, until Done, when that
// message was EAP-Success or EAP-Failure and Result tells the outcome.
// Anything the peer sends that is malformed or does not fit (a wrong
// Identifier, Code, Type or OpCode) ends the conversation with
// EAP-Failure, as charon's does. A Server is not safe for concurrent use.
//
//	Start ──▶ [identity] ──▶ [method] ──▶ done (Success | Failure)
//	              │  Nak picks another offered method ▲
//	              └──────────────────────────────────┘
type Server struct {
	cfg      ServerConfig
	rand     io.Reader
	identity string
	method   ServerMethod
	tried    []Type
	lastReq  Packet // the Request the next Response must answer
	rounds   int    // Responses the current method has processed
	started  bool
	done     bool
	result   Result
}

// NewServer checks cfg and returns a Server.
func NewServer(cfg ServerConfig) (*Server, error) {
	if len(cfg.Methods) == 0 {
		return nil, fmt.Errorf("eap server: no method configured")
	}
	for _, t := range cfg.Methods {
		if !methodAvailable(t, cfg.NewMethod != nil) {
			return nil, fmt.Errorf("eap server: method %s not supported", t)
		}
	}
	if cfg.Credentials == nil {
		return nil, fmt.Errorf("eap server: no credentials")
	}
	if cfg.Name == "" {
		cfg.Name = "xdpsec"
	}
	if err := checkIdentity([]byte(cfg.Name)); err != nil {
		return nil, fmt.Errorf("eap server: name: %w", err)
	}
	if cfg.MSCHAPv2Retries < 0 {
		return nil, fmt.Errorf("eap server: negative MSCHAPv2Retries")
	}
	r := cfg.Rand
	if r == nil {
		r = rand.Reader
	}
	cfg.Methods = slices.Clone(cfg.Methods)
	return &Server{cfg: cfg, rand: r, identity: cfg.Identity}, nil
}

// methodAvailable tells whether t can be a configured method: one of this
// package, or, with a NewMethod hook, any authentication Type (not
// Identity, Notification, Nak, Expanded or the reserved 0).
func methodAvailable(t Type, hook bool) bool {
	switch t {
	case TypeMD5, TypeMSCHAPv2:
		return true
	case 0, TypeIdentity, TypeNotification, TypeNak, TypeExpanded:
		return false
	}
	return hook
}

func (s *Server) newMethod(t Type) ServerMethod {
	switch t {
	case TypeMD5:
		return newMD5Server(s.identity, s.cfg.Name, s.cfg.Credentials, s.rand)
	case TypeMSCHAPv2:
		return newMSCHAPv2Server(s.identity, s.cfg.Name, s.cfg.Credentials, s.cfg.MSCHAPv2Retries, s.rand)
	}
	if s.cfg.NewMethod != nil {
		if m := s.cfg.NewMethod(t, s.identity); m != nil && m.Type() == t {
			return m
		}
	}
	return nil
}

// Start returns the first Request: EAP-Identity if the identity is not
// known, else the first method's. If that method cannot begin, the
// message is EAP-Failure and Done reports true. The error is for a
// second Start, or randomness that fails.
func (s *Server) Start() ([]byte, error) {
	if s.started {
		return nil, fmt.Errorf("eap server: started twice")
	}
	s.started = true
	var id [1]byte
	if _, err := io.ReadFull(s.rand, id[:]); err != nil {
		return nil, fmt.Errorf("eap server: identifier: %w", err)
	}
	if s.identity == "" {
		s.method = newIdentityServer()
		return s.begin(id[0])
	}
	return s.beginMethod(s.cfg.Methods[0], id[0])
}

// beginMethod starts method t with a Request of Identifier id.
func (s *Server) beginMethod(t Type, id uint8) ([]byte, error) {
	if s.method != nil {
		s.method.Wipe()
	}
	s.tried = append(s.tried, t)
	s.method = s.newMethod(t)
	if s.method == nil {
		s.method = &noMethod{t}
		return s.fail(id, failure(t, ReasonInternal, s.identity, fmt.Errorf("no implementation of %s", t))), nil
	}
	return s.begin(id)
}

func (s *Server) begin(id uint8) ([]byte, error) {
	req, err := s.method.Begin(id)
	if err != nil {
		return s.fail(id, failure(s.method.Type(), ReasonInternal, s.identity, err)), nil
	}
	s.rounds = 0
	return s.send(req)
}

func (s *Server) send(req Packet) ([]byte, error) {
	b, err := req.Marshal()
	if err != nil {
		return s.fail(req.Identifier, failure(s.method.Type(), ReasonInternal, s.identity, err)), nil
	}
	s.lastReq = req
	return b, nil
}

// Process takes the peer's EAP message and returns the message to send:
// the next Request, or EAP-Success or EAP-Failure when the conversation
// ends (then Done reports true). Its error is not the peer's failure (see
// Result) but misuse: ErrFinished after the end, or Process before Start.
func (s *Server) Process(msg []byte) ([]byte, error) {
	if !s.started {
		return nil, fmt.Errorf("eap server: Process before Start")
	}
	if s.done {
		return nil, ErrFinished
	}
	mt := s.method.Type()
	p, err := Parse(msg)
	if err != nil {
		return s.fail(s.lastReq.Identifier, failure(mt, ReasonMalformed, s.identity, err)), nil
	}
	if p.Code != CodeResponse || p.Identifier != s.lastReq.Identifier {
		err := fmt.Errorf("%s id %d in answer to %s id %d: %w", p.Code, p.Identifier, s.lastReq.Type, s.lastReq.Identifier, ErrUnexpected)
		return s.fail(s.lastReq.Identifier, failure(mt, ReasonUnexpected, s.identity, err)), nil
	}
	if p.Type == TypeNak && mt != TypeIdentity && s.rounds == 0 {
		return s.nak(p)
	}
	if p.Type != mt {
		err := fmt.Errorf("%s in answer to %s: %w", p.Type, mt, ErrUnexpected)
		return s.fail(p.Identifier, failure(mt, ReasonUnexpected, s.identity, err)), nil
	}
	s.rounds++
	next, st, err := s.method.Process(p)
	switch st {
	case Continue:
		return s.send(next)
	case Succeeded:
		if mt == TypeIdentity {
			s.identity = s.method.Identity()
			return s.beginMethod(s.cfg.Methods[0], p.Identifier+1)
		}
		return s.succeed(p.Identifier)
	default:
		var e *Error
		if err == nil {
			e = failure(mt, ReasonInternal, s.identity, fmt.Errorf("method failed without a reason"))
		} else if x, ok := err.(*Error); ok {
			e = x
		} else {
			e = failure(mt, ReasonMalformed, s.identity, err)
		}
		return s.fail(p.Identifier, e), nil
	}
}

// nak handles a Legacy Nak (RFC 3748 section 5.3.1): the Type-Data lists
// the methods the peer would take, 0 for none.
func (s *Server) nak(p Packet) ([]byte, error) {
	mt := s.method.Type()
	for _, want := range p.Data {
		t := Type(want)
		if slices.Contains(s.cfg.Methods, t) && !slices.Contains(s.tried, t) {
			return s.beginMethod(t, p.Identifier+1)
		}
	}
	var names []string
	for i, want := range p.Data {
		if i == 8 {
			names = append(names, "...")
			break
		}
		names = append(names, Type(want).String())
	}
	err := fmt.Errorf("peer refused %s, would take [%s]", mt, strings.Join(names, " "))
	return s.fail(p.Identifier, failure(mt, ReasonNak, s.identity, err)), nil
}

func (s *Server) succeed(id uint8) ([]byte, error) {
	s.done = true
	s.result = Result{Method: s.method.Type(), Identity: s.method.Identity(), MSK: s.method.MSK(), Detail: detail(s.method)}
	s.method.Wipe()
	b, err := Packet{Code: CodeSuccess, Identifier: id}.Marshal()
	return b, err
}

func (s *Server) fail(id uint8, e *Error) []byte {
	s.done = true
	if s.method != nil {
		s.method.Wipe()
	}
	t := e.Method
	if s.method != nil {
		t = s.method.Type()
	}
	s.result = Result{Method: t, Identity: s.identity, Err: e}
	b, _ := Packet{Code: CodeFailure, Identifier: id}.Marshal()
	return b
}

// Done reports whether the conversation is over.
func (s *Server) Done() bool { return s.done }

// Abort ends a conversation that has not finished (the IKE SA is gone):
// the method's secrets are wiped and what it runs (EAP-TLS's handshake)
// stops. Result stays empty. It does nothing after the end.
func (s *Server) Abort() {
	if s.done {
		return
	}
	s.done = true
	if s.method != nil {
		s.method.Wipe()
	}
}

// Identity is the peer's EAP identity as far as it is known: configured,
// or received in EAP-Identity.
func (s *Server) Identity() string { return s.identity }

// Result is the outcome once Done. The caller owns Result().MSK and
// should clear it when the AUTH payloads are computed.
func (s *Server) Result() Result { return s.result }

// noMethod stands for a method whose implementation could not be made,
// so that the failure names it.
type noMethod struct{ t Type }

func (m *noMethod) Type() Type                { return m.t }
func (*noMethod) Begin(uint8) (Packet, error) { return Packet{}, fmt.Errorf("no method") }
func (*noMethod) Process(Packet) (Packet, Status, error) {
	return Packet{}, Failed, fmt.Errorf("no method")
}
func (*noMethod) Identity() string { return "" }
func (*noMethod) MSK() []byte      { return nil }
func (*noMethod) Wipe()            {}
