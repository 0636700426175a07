package vici

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/xdpsec/xdpsec/ike"
	"github.com/xdpsec/xdpsec/ike/swanctl"
	"github.com/xdpsec/xdpsec/internal/daemon"
)

// DefaultSocket is where Debian's swanctl (and charon) look for VICI.
const DefaultSocket = "/var/run/charon.vici"

// Backend is what the server asks of the daemon.
type Backend interface {
	// Handle runs a control-socket request: list-sas, list-conns,
	// list-pools, initiate, terminate, rekey.
	Handle(daemon.Request) *daemon.Response
	// LoadConn loads (or replaces) the connections of a load-conn tree
	// (connections.<name> as swanctl.conf has it); UnloadConn removes one
	// loaded so. VICIConns names those loaded over VICI.
	LoadConn(t *swanctl.Tree, certs map[string]daemon.RoundCerts) error
	UnloadConn(name string) error
	VICIConns() []string
	// LoadPool loads (or updates) the pools of a load-pool tree
	// (pools.<name>), UnloadPool removes one loaded so.
	LoadPool(t *swanctl.Tree) error
	UnloadPool(name string) error
	// LoadShared adds or replaces a shared secret (load-shared),
	// UnloadShared removes one by its id, SharedIDs lists their ids.
	LoadShared(s Shared) error
	UnloadShared(id string) error
	SharedIDs() []string
	// Observe has the engine report SA events to o (nil: to nobody).
	Observe(o ike.Observer)
	// Counters returns the IKE event counters of a connection, or the
	// global ones for ""; ResetCounters zeroes them.
	Counters(conn string) ike.Counters
	ResetCounters(conn string)
	// LoadCert adds a certificate (a trust anchor if ca), LoadKey a
	// private key, ClearCreds forgets what VICI loaded.
	LoadCert(data []byte, ca bool) error
	LoadKey(data []byte) (id string, err error)
	// KeyIDs are the ids of the keys loaded (charon's: SHA-1 of the
	// public key), UnloadKey forgets one.
	KeyIDs() []string
	UnloadKey(id string) error
	ClearCreds()
	// ReloadSettings rereads the daemon's settings (xdpsec.conf).
	ReloadSettings() error
	// Certs lists the certificates the daemon loaded.
	Certs() []daemon.LoadedCert
	// LoadAuthority loads (or replaces) a certification authority,
	// UnloadAuthority removes one loaded so; Authorities lists all, the
	// file's too.
	LoadAuthority(a daemon.VICIAuthority) error
	UnloadAuthority(name string) error
	Authorities() []daemon.Authority
	// SetLogTap has the daemon's log lines given to f (nil: to nobody).
	SetLogTap(f func(daemon.LogRecord))
}

// Shared is a load-shared secret. Data is the secret: it is never
// formatted.
type Shared struct {
	ID     string // optional unique id (unload-shared, get-shared)
	Type   string // IKE, EAP, XAUTH (upper case)
	Data   []byte
	Owners []string
}

// Server is a running VICI server.
type Server struct {
	log     *slog.Logger
	backend Backend
	l       net.Listener
	started time.Time

	mu    sync.Mutex // guards conns
	conns map[*conn]bool

	wg sync.WaitGroup
}

// eventQueue is how many events a client may have waiting before further
// ones are dropped (and it is told in the log): a slow client must not
// hold up the engine, which reports events with its lock held.
const eventQueue = 1024

// Listen opens the socket at path (0600 in a 0700 directory, root's only
// like the control socket) and serves it. A socket another process
// answers on is left alone: the error says so.
func Listen(path string, b Backend, log *slog.Logger) (*Server, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("vici socket: %w", err)
	}
	if c, err := net.Dial("unix", path); err == nil {
		c.Close()
		return nil, fmt.Errorf("vici socket %s: another daemon (charon?) is answering on it", path)
	}
	os.Remove(path)
	old := unix.Umask(0o177)
	l, err := net.Listen("unix", path)
	unix.Umask(old)
	if err != nil {
		return nil, fmt.Errorf("vici socket: %w", err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		l.Close()
		return nil, fmt.Errorf("vici socket: %w", err)
	}
	l.(*net.UnixListener).SetUnlinkOnClose(true)
	s := Serve(l, b, log)
	return s, nil
}

// Serve answers VICI on l (tests give it any listener).
func Serve(l net.Listener, b Backend, log *slog.Logger) *Server {
	s := &Server{log: log, backend: b, l: l, started: time.Now(), conns: map[*conn]bool{}}
	b.Observe(observer{s})
	b.SetLogTap(s.logRecord)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			if uc, ok := c.(*net.UnixConn); ok {
				if uid, err := daemon.PeerUID(uc); err != nil || (uid != 0 && uid != os.Geteuid()) {
					s.log.Warn(fmt.Sprintf("vici: refused uid %d, only root and uid %d may use it", uid, os.Geteuid()))
					c.Close()
					continue
				}
			}
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				s.serve(c)
			}()
		}
	}()
	return s
}

// Close stops the server and closes its clients' connections.
func (s *Server) Close() error {
	s.backend.Observe(nil)
	s.backend.SetLogTap(nil)
	err := s.l.Close()
	s.mu.Lock()
	for c := range s.conns {
		c.nc.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
	return err
}

// conn is one client. Everything it is sent goes through out, written by
// one goroutine, so that events and responses never interleave inside a
// segment and streamed events precede their command's response.
type conn struct {
	s   *Server
	nc  net.Conn
	out chan []byte

	mu         sync.Mutex // guards below
	registered map[string]bool
	dropped    int
	closed     bool
	// control is set while an initiate, terminate or rekey of this client
	// runs: the log lines it gets as control-log events.
	control *controlFilter
}

// controlFilter selects the log lines of a running control command: of
// IKE SAs of connection ike ("" any), up to level.
type controlFilter struct {
	ike   string
	level int
}

func (s *Server) serve(nc net.Conn) {
	c := &conn{s: s, nc: nc, out: make(chan []byte, eventQueue), registered: map[string]bool{}}
	s.mu.Lock()
	s.conns[c] = true
	s.mu.Unlock()
	done := make(chan struct{})
	go func() {
		defer close(done)
		for b := range c.out {
			if _, err := nc.Write(b); err != nil {
				nc.Close()
				for range c.out {
				}
				return
			}
		}
	}()
	defer func() {
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
		c.mu.Lock()
		c.closed = true
		close(c.out)
		c.mu.Unlock()
		<-done
		nc.Close()
	}()
	r := bufio.NewReader(nc)
	for {
		p, err := ReadPacket(r)
		if err != nil {
			if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
				s.log.Debug(fmt.Sprintf("vici: closing client: %v", err))
			}
			return
		}
		switch p.Type {
		case CmdRequest:
			c.send(Packet{Type: CmdResponse, Msg: s.command(c, p.Name, p.Msg)}, CmdUnknown)
		case EventRegister, EventUnregister:
			if !knownEvents[p.Name] {
				c.send(Packet{Type: EventUnknown}, 0)
				continue
			}
			c.mu.Lock()
			c.registered[p.Name] = p.Type == EventRegister
			c.mu.Unlock()
			c.send(Packet{Type: EventConfirm}, 0)
		default:
			s.log.Debug(fmt.Sprintf("vici: closing client that sent a packet of type %d", p.Type))
			return
		}
	}
}

// send queues a packet of the client's own request (blocking). A nil
// response message means the command is unknown: the packet becomes
// unknownType.
func (c *conn) send(p Packet, unknownType uint8) {
	if p.Type == CmdResponse && p.Msg == nil {
		p = Packet{Type: unknownType}
	}
	b, err := p.Encode()
	if err != nil {
		b, _ = Packet{Type: CmdResponse, Msg: errMsg(fmt.Errorf("answer does not encode: %w", err))}.Encode()
	}
	c.out <- b
}

// stream sends an event of the client's own streaming command, if it
// registered for it (as charon, which sends only to the registered).
func (c *conn) stream(name string, m *Message) {
	c.mu.Lock()
	reg := c.registered[name]
	c.mu.Unlock()
	if !reg {
		return
	}
	b, err := Packet{Type: Event, Name: name, Msg: m}.Encode()
	if err != nil {
		c.s.log.Warn(fmt.Sprintf("vici: %s event does not encode: %v", name, err))
		return
	}
	c.out <- b
}

// emit sends an event to every client registered for it, without
// waiting: a client whose queue is full loses it.
func (s *Server) emit(name string, m *Message) {
	var b []byte
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		c.mu.Lock()
		if c.registered[name] && !c.closed {
			if b == nil {
				var err error
				if b, err = (Packet{Type: Event, Name: name, Msg: m}).Encode(); err != nil {
					c.mu.Unlock()
					s.log.Warn(fmt.Sprintf("vici: %s event does not encode: %v", name, err))
					return
				}
			}
			select {
			case c.out <- b:
			default:
				// Not logged here: a log line is an event too.
				c.dropped++
			}
		}
		c.mu.Unlock()
	}
}

// listening reports whether some client registered for the event.
func (s *Server) listening(name string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		c.mu.Lock()
		reg := c.registered[name]
		c.mu.Unlock()
		if reg {
			return true
		}
	}
	return false
}

// knownEvents are the events of VICI; registering for one we never
// raise is confirmed all the same, as a charon without the source would.
var knownEvents = map[string]bool{
	"log": true, "control-log": true, "list-sa": true, "list-policy": true, "list-conn": true, "list-cert": true,
	"list-authority": true, "ike-updown": true, "ike-rekey": true, "ike-update": true, "child-updown": true, "child-rekey": true,
}
