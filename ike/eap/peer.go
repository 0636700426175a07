package eap

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"slices"
)

// PeerConfig configures the peer side of one conversation.
type PeerConfig struct {
	// Identity is sent in the EAP-Identity Response and as the MS-CHAPv2
	// Name (charon's eap_id, or the IKE identity).
	Identity string
	// Secret is the user's password (or, for EAP-MSCHAPv2 only, its NT
	// hash). NewPeer takes a copy; the caller wipes its own.
	Secret Secret
	// Methods are the methods the peer accepts, in order of preference.
	// A Request for another is answered with a Nak that lists these.
	Methods []Type
	// Rand supplies the MS-CHAPv2 peer challenge; crypto/rand if nil.
	Rand io.Reader
	// NewMethod, if set, makes the peer side of a method in Methods that
	// this package does not implement (EAP-TLS); nil if it cannot.
	NewMethod func(t Type) PeerMethod
}

// Peer runs the peer side of an EAP conversation, the way the IKE_AUTH
// initiator needs it: Process takes each message of the server and gives
// the Response to send, if any, until Done; Result then tells the
// outcome. It answers EAP-Identity and EAP-Notification itself. Anything
// malformed or out of place ends the conversation with nothing sent, as
// charon's peer does. A Peer is not safe for concurrent use.
//
//	waiting ──Identity/Notification──▶ waiting
//	waiting ──Request of an accepted method──▶ method ──▶ method satisfied ──EAP-Success──▶ done (MSK)
//	waiting ──Request of another method──▶ Nak ──▶ waiting
//	any ──EAP-Failure, method failure, bad packet──▶ done (failed)
type Peer struct {
	cfg       PeerConfig
	rand      io.Reader
	method    PeerMethod
	satisfied bool  // the method has Succeeded; EAP-Success may come
	lastID    uint8 // Identifier of the last Response sent
	answered  bool
	done      bool
	result    Result
}

// NewPeer checks cfg and returns a Peer.
func NewPeer(cfg PeerConfig) (*Peer, error) {
	if err := checkIdentity([]byte(cfg.Identity)); err != nil {
		return nil, fmt.Errorf("eap peer: identity: %w", err)
	}
	if len(cfg.Methods) == 0 {
		return nil, fmt.Errorf("eap peer: no method configured")
	}
	for _, t := range cfg.Methods {
		if !methodAvailable(t, cfg.NewMethod != nil) {
			return nil, fmt.Errorf("eap peer: method %s not supported", t)
		}
		if (t == TypeMD5 || t == TypeMSCHAPv2) && !cfg.Secret.Valid() {
			return nil, fmt.Errorf("eap peer: %s without a secret", t)
		}
	}
	r := cfg.Rand
	if r == nil {
		r = rand.Reader
	}
	s := cfg.Secret
	cfg.Secret = Secret{password: slices.Clone(s.password), ntHash: s.ntHash, hasNT: s.hasNT}
	cfg.Methods = slices.Clone(cfg.Methods)
	return &Peer{cfg: cfg, rand: r}, nil
}

func (p *Peer) newMethod(t Type) PeerMethod {
	switch t {
	case TypeMD5:
		return newMD5Peer(p.cfg.Identity, &p.cfg.Secret)
	case TypeMSCHAPv2:
		return newMSCHAPv2Peer(p.cfg.Identity, &p.cfg.Secret, p.rand)
	}
	if p.cfg.NewMethod != nil {
		if m := p.cfg.NewMethod(t); m != nil && m.Type() == t {
			return m
		}
	}
	return nil
}

// Process takes the server's EAP message and returns the Response to
// send, or nil. Its error is not the conversation's failure (see Result)
// but ErrFinished for a message after the end; a final EAP-Failure after
// a failed method is taken without error.
func (p *Peer) Process(msg []byte) ([]byte, error) {
	if p.done {
		if pk, err := Parse(msg); err == nil && pk.Code == CodeFailure && p.result.Err != nil {
			return nil, nil
		}
		return nil, ErrFinished
	}
	pk, err := Parse(msg)
	if err != nil {
		reason := ReasonMalformed
		if errors.Is(err, ErrExpandedType) {
			reason = ReasonUnsupported
		}
		return p.fail(failure(p.methodType(), reason, p.cfg.Identity, err)), nil
	}
	switch pk.Code {
	case CodeRequest:
		return p.request(pk)
	case CodeSuccess:
		if !p.satisfied || !p.answered || pk.Identifier != p.lastID {
			err := fmt.Errorf("EAP-Success id %d before the method completed: %w", pk.Identifier, ErrUnexpected)
			return p.fail(failure(p.methodType(), ReasonUnexpected, p.cfg.Identity, err)), nil
		}
		p.done = true
		p.result = Result{Method: p.method.Type(), Identity: p.cfg.Identity, MSK: p.method.MSK(), Detail: detail(p.method)}
		p.wipe()
		return nil, nil
	case CodeFailure:
		return p.fail(failure(p.methodType(), ReasonRejected, p.cfg.Identity, fmt.Errorf("received EAP-Failure"))), nil
	}
	err = fmt.Errorf("%s sent to the peer: %w", pk.Code, ErrUnexpected)
	return p.fail(failure(p.methodType(), ReasonUnexpected, p.cfg.Identity, err)), nil
}

func (p *Peer) methodType() Type {
	if p.method == nil {
		return TypeIdentity
	}
	return p.method.Type()
}

func (p *Peer) request(req Packet) ([]byte, error) {
	switch {
	case req.Type == TypeIdentity && p.method == nil:
		return p.respond(identityResponse(req, p.cfg.Identity))
	case req.Type == TypeNotification:
		// RFC 3748 section 5.2: acknowledged with an empty Response. The
		// text is the server's and not shown here.
		return p.respond(Packet{Code: CodeResponse, Identifier: req.Identifier, Type: TypeNotification})
	case req.Type == TypeNak:
		err := fmt.Errorf("Nak in a Request: %w", ErrMalformed)
		return p.fail(failure(p.methodType(), ReasonMalformed, p.cfg.Identity, err)), nil
	case p.method == nil && !slices.Contains(p.cfg.Methods, req.Type):
		data := make([]byte, len(p.cfg.Methods))
		for i, t := range p.cfg.Methods {
			data[i] = byte(t)
		}
		return p.respond(Packet{Code: CodeResponse, Identifier: req.Identifier, Type: TypeNak, Data: data})
	case p.method == nil:
		if p.method = p.newMethod(req.Type); p.method == nil {
			err := fmt.Errorf("no implementation of %s", req.Type)
			return p.fail(failure(req.Type, ReasonInternal, p.cfg.Identity, err)), nil
		}
	case req.Type != p.method.Type():
		err := fmt.Errorf("%s request during %s: %w", req.Type, p.method.Type(), ErrUnexpected)
		return p.fail(failure(p.method.Type(), ReasonUnexpected, p.cfg.Identity, err)), nil
	}
	resp, st, err := p.method.Process(req)
	var out []byte
	if resp != nil {
		var merr error
		if out, merr = p.respondBytes(*resp); merr != nil {
			return p.fail(failure(p.method.Type(), ReasonInternal, p.cfg.Identity, merr)), nil
		}
	}
	switch st {
	case Continue:
	case Succeeded:
		p.satisfied = true
	default:
		e, ok := err.(*Error)
		if !ok {
			e = failure(p.method.Type(), ReasonInternal, p.cfg.Identity, err)
		}
		p.fail(e)
	}
	return out, nil
}

func (p *Peer) respond(resp Packet) ([]byte, error) {
	b, err := p.respondBytes(resp)
	if err != nil {
		return p.fail(failure(p.methodType(), ReasonInternal, p.cfg.Identity, err)), nil
	}
	return b, nil
}

func (p *Peer) respondBytes(resp Packet) ([]byte, error) {
	b, err := resp.Marshal()
	if err != nil {
		return nil, err
	}
	p.lastID = resp.Identifier
	p.answered = true
	return b, nil
}

// fail ends the conversation; it returns nil, the nothing to send.
func (p *Peer) fail(e *Error) []byte {
	p.done = true
	p.result = Result{Method: e.Method, Identity: p.cfg.Identity, Err: e}
	p.wipe()
	return nil
}

func (p *Peer) wipe() {
	if p.method != nil {
		p.method.Wipe()
	}
	p.cfg.Secret.Wipe()
}

// Done reports whether the conversation is over.
func (p *Peer) Done() bool { return p.done }

// Abort ends a conversation that has not finished, wiping the method's
// and the runner's secrets. It does nothing after the end.
func (p *Peer) Abort() {
	if p.done {
		return
	}
	p.done = true
	p.wipe()
}

// Result is the outcome once Done. The caller owns Result().MSK.
func (p *Peer) Result() Result { return p.result }
