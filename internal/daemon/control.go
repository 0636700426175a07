package daemon

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/xdpsec/xdpsec/ike"
)

// The control socket speaks one JSON request and one JSON response per
// connection: {"command": "list-sas"} → {"ok": true, "sas": [...]}.

// Commands of the control socket.
const (
	CmdInitiate  = "initiate"
	CmdTerminate = "terminate"
	CmdRekey     = "rekey"
	CmdListSAs   = "list-sas"
	CmdListConns = "list-conns"
	CmdListPools = "list-pools"
	CmdReload    = "reload"
	CmdRedirect  = "redirect"
	// CmdInstall and CmdUninstall install and remove a child's trap
	// policies; CmdListPolicies lists them.
	CmdInstall      = "install"
	CmdUninstall    = "uninstall"
	CmdListPolicies = "list-policies"
	// CmdFleetStatus and CmdFleetNotify are `xdpsec fleet status` and
	// `xdpsec fleet notify STATE SHARED` (keepalived's notify).
	CmdFleetStatus = "fleet-status"
	CmdFleetNotify = "fleet-notify"
)

// Request is a control command.
type Request struct {
	Command string `json:"command"`
	IKE     string `json:"ike,omitempty"`   // connection name
	Child   string `json:"child,omitempty"` // CHILD_SA config name
	IKEID   uint32 `json:"ike_id,omitempty"`
	ChildID uint32 `json:"child_id,omitempty"`
	// TimeoutMS bounds how long initiate and terminate wait for the
	// exchanges to finish; 0 means 10 seconds, negative does not wait.
	TimeoutMS int `json:"timeout_ms,omitempty"`
	// Leases asks list-pools for each pool's leases.
	Leases bool `json:"leases,omitempty"`
	// Peer and Gateway are redirect's: the clients' address (or prefix)
	// and the gateway to send them to (IP address or domain name).
	Peer    string `json:"peer,omitempty"`
	Gateway string `json:"gateway,omitempty"`
	// State and Shared are fleet-notify's: keepalived's state (master,
	// backup, fault, stop) of a shared address (its name or address).
	State  string `json:"state,omitempty"`
	Shared string `json:"shared,omitempty"`
}

// Response is the daemon's answer.
type Response struct {
	OK      bool       `json:"ok"`
	Error   string     `json:"error,omitempty"`
	Message string     `json:"message,omitempty"`
	SAs     []IKESA    `json:"sas,omitempty"`
	Conns   []ConnInfo `json:"conns,omitempty"`
	Pools   []PoolInfo `json:"pools,omitempty"`
	// Policies are list-policies' trap policies.
	Policies []TrapPolicy `json:"policies,omitempty"`
	Changes  *Changes     `json:"changes,omitempty"`
	// Fleet is fleet-status's answer.
	Fleet *FleetStatus `json:"fleet,omitempty"`
	// Denied says the daemon refused the connection's user.
	Denied bool `json:"denied,omitempty"`
}

// IKESA is an IKE SA as list-sas shows it (swanctl --list-sas).
type IKESA struct {
	Name       string `json:"name"`
	UniqueID   uint32 `json:"uniqueid"`
	State      string `json:"state"`
	Version    int    `json:"version"`
	Initiator  bool   `json:"initiator"`
	SPIi       string `json:"initiator-spi"`
	SPIr       string `json:"responder-spi"`
	LocalHost  string `json:"local-host"`
	LocalPort  uint16 `json:"local-port"`
	LocalID    string `json:"local-id"`
	RemoteHost string `json:"remote-host"`
	RemotePort uint16 `json:"remote-port"`
	RemoteID   string `json:"remote-id"`
	NATLocal   bool   `json:"nat-local,omitempty"`
	NATRemote  bool   `json:"nat-remote,omitempty"`
	Proposal   string `json:"proposal"`
	// As swanctl --list-sas names them: the EAP identity, the virtual
	// IPs we received (local) and those we assigned (remote).
	EAPID      string   `json:"remote-eap-id,omitempty"`
	LocalVIPs  []string `json:"local-vips,omitempty"`
	RemoteVIPs []string `json:"remote-vips,omitempty"`
	// DNSServers came with our virtual IPs (not a swanctl field: charon
	// hands them to its resolve plugin instead).
	DNSServers  []string  `json:"dns-servers,omitempty"`
	Established *int64    `json:"established,omitempty"` // seconds ago
	RekeyTime   *int64    `json:"rekey-time,omitempty"`  // seconds from now
	ReauthTime  *int64    `json:"reauth-time,omitempty"` // seconds from now
	Children    []ChildSA `json:"child-sas"`
}

// ChildSA is a CHILD_SA as list-sas shows it.
type ChildSA struct {
	Name          string `json:"name"`
	UniqueID      uint32 `json:"uniqueid"`
	ReqID         uint32 `json:"reqid"`
	State         string `json:"state"`
	Mode          string `json:"mode"`
	Protocol      string `json:"protocol"`
	Encap         bool   `json:"encap,omitempty"`
	SPIIn         string `json:"spi-in"`
	SPIOut        string `json:"spi-out"`
	Proposal      string `json:"proposal"`
	BytesIn       uint64 `json:"bytes-in"`
	PacketsIn     uint64 `json:"packets-in"`
	BytesOut      uint64 `json:"bytes-out"`
	PacketsOut    uint64 `json:"packets-out"`
	RxSeenPackets uint64 `json:"rx-seen-packets"`
	RxSeenBytes   uint64 `json:"rx-seen-bytes"`
	InstallTime   *int64 `json:"install-time,omitempty"` // seconds ago
	// UseIn and UseOut are the seconds since the inbound and the
	// outbound SA last carried a packet (the kernel SA's last use), nil
	// when it has carried none or the dataplane does not know.
	UseIn     *int64   `json:"use-in,omitempty"`
	UseOut    *int64   `json:"use-out,omitempty"`
	RekeyTime *int64   `json:"rekey-time,omitempty"` // seconds from now
	LifeTime  *int64   `json:"life-time,omitempty"`  // seconds from now
	LocalTS   []string `json:"local-ts"`
	RemoteTS  []string `json:"remote-ts"`
}

// ConnInfo is a loaded connection as list-conns shows it.
type ConnInfo struct {
	Name        string   `json:"name"`
	LocalAddrs  []string `json:"local_addrs"`
	RemoteAddrs []string `json:"remote_addrs"`
	Version     string   `json:"version"`
	LocalAuth   string   `json:"local-auth"`
	LocalID     string   `json:"local-id"`
	RemoteAuth  string   `json:"remote-auth"`
	RemoteID    string   `json:"remote-id"`
	Proposals   []string `json:"proposals"`
	RekeyTime   int64    `json:"rekey_time"`
	ReauthTime  int64    `json:"reauth_time"`
	// The subjects of the rounds' certificates and CA certificates, as
	// charon prints DNs.
	LocalCerts    []string    `json:"local-certs,omitempty"`
	LocalCACerts  []string    `json:"local-cacerts,omitempty"`
	RemoteCerts   []string    `json:"remote-certs,omitempty"`
	RemoteCACerts []string    `json:"remote-cacerts,omitempty"`
	Children      []ChildConn `json:"children"`
	// Redirect is the connection's redirect rule (xdpsec's own).
	Redirect *RedirectInfo `json:"redirect,omitempty"`
}

// RedirectInfo is a redirect rule with the gateways' loads as last read.
type RedirectInfo struct {
	Choose   string           `json:"choose"`
	During   string           `json:"during"`
	Gateways []RedirectGWInfo `json:"gateways"`
}

// RedirectGWInfo is one gateway of a redirect rule; Load is nil while
// its metrics do not answer (or it has none).
type RedirectGWInfo struct {
	Name    string `json:"name"`
	Address string `json:"address"`
	Metrics string `json:"metrics,omitempty"`
	Load    *int   `json:"load,omitempty"`
}

// ChildConn is a CHILD_SA config as list-conns shows it.
type ChildConn struct {
	Name        string   `json:"name"`
	Mode        string   `json:"mode"`
	LocalTS     []string `json:"local-ts"`
	RemoteTS    []string `json:"remote-ts"`
	Proposals   []string `json:"esp_proposals"`
	AHProposals []string `json:"ah_proposals,omitempty"` // an AH CHILD_SA's, Proposals then empty
	StartAction string   `json:"start_action"`
	HWOffload   string   `json:"hw_offload"`
	IfIDIn      uint32   `json:"if_id_in,omitempty"`
	IfIDOut     uint32   `json:"if_id_out,omitempty"`
	RekeyTime   int64    `json:"rekey_time"`
}

// Changes is what a reload did.
type Changes struct {
	Added   []string `json:"added"`
	Removed []string `json:"removed"`
	Changed []string `json:"changed"`
	// RedirectChanged differ in their redirect rule only: SAs stay.
	RedirectChanged []string `json:"redirect-changed,omitempty"`
	SecretsChanged  bool     `json:"secrets-changed"`
}

// ErrControlDenied is returned by Call when the daemon's control socket
// is not ours to use: it is root's (the daemon's user's) only.
var ErrControlDenied = errors.New("permission denied: the daemon's control socket is root's only, run xdpsec as root")

// Call sends one request to the daemon's control socket.
func Call(path string, req Request) (*Response, error) {
	c, err := net.DialTimeout("unix", path, 2*time.Second)
	if errors.Is(err, syscall.EACCES) || errors.Is(err, syscall.EPERM) {
		return nil, fmt.Errorf("connecting to the daemon at %s: %w", path, ErrControlDenied)
	}
	if err != nil {
		return nil, fmt.Errorf("connecting to the daemon at %s: %w (is `xdpsec daemon` running?)", path, err)
	}
	defer c.Close()
	wait := 10 * time.Second
	if req.TimeoutMS > 0 {
		wait = time.Duration(req.TimeoutMS) * time.Millisecond
	}
	c.SetDeadline(time.Now().Add(wait + 10*time.Second))
	// A daemon refusing us answers without reading and closes: the
	// request may then fail to go out (a broken pipe), but the answer
	// saying why is there to read.
	werr := json.NewEncoder(c).Encode(&req)
	var resp Response
	if err := json.NewDecoder(c).Decode(&resp); err != nil {
		if werr != nil {
			return nil, fmt.Errorf("control socket: %w", werr)
		}
		return nil, fmt.Errorf("control socket: %w", err)
	}
	if resp.Denied {
		return &resp, fmt.Errorf("%s: %w (%s)", path, ErrControlDenied, resp.Error)
	}
	if !resp.OK {
		return &resp, errors.New(resp.Error)
	}
	return &resp, nil
}

// listenControl opens the control socket, 0600 in a 0700 directory: only
// root (the daemon's user) may talk to it, which each connection's peer
// credentials confirm.
func (d *Daemon) listenControl() error {
	path := d.opts.SocketPath
	if err := ensureDir(path, 0o700); err != nil {
		return fmt.Errorf("control socket: %w", err)
	}
	if c, err := net.Dial("unix", path); err == nil {
		c.Close()
		return fmt.Errorf("control socket %s: another daemon is answering on it", path)
	}
	os.Remove(path)
	old := unix.Umask(0o177)
	l, err := net.Listen("unix", path)
	unix.Umask(old)
	if err != nil {
		return fmt.Errorf("control socket: %w", err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		l.Close()
		return fmt.Errorf("control socket: %w", err)
	}
	l.(*net.UnixListener).SetUnlinkOnClose(true)
	d.control = l
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			d.wg.Add(1)
			go func() {
				defer d.wg.Done()
				d.serveControl(c.(*net.UnixConn))
			}()
		}
	}()
	return nil
}

// PeerUID is the user ID of the process at the other end of a unix
// socket connection (SO_PEERCRED): the control and VICI sockets serve
// root and the daemon's own user only.
func PeerUID(c *net.UnixConn) (int, error) {
	raw, err := c.SyscallConn()
	if err != nil {
		return -1, err
	}
	uid := -1
	var cerr error
	raw.Control(func(fd uintptr) {
		var cred *unix.Ucred
		cred, cerr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
		if cerr == nil {
			uid = int(cred.Uid)
		}
	})
	return uid, cerr
}

func (d *Daemon) serveControl(c *net.UnixConn) {
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	enc := json.NewEncoder(c)
	if uid, err := PeerUID(c); err != nil || (uid != 0 && uid != os.Geteuid()) {
		who := fmt.Sprintf("uid %d", uid)
		if err != nil {
			who = fmt.Sprintf("a peer whose credentials are unknown (%v)", err)
		}
		d.log.Warn(fmt.Sprintf("control socket: refused %s, only root and uid %d may use it", who, os.Geteuid()))
		enc.Encode(&Response{Denied: true, Error: fmt.Sprintf("the daemon refused %s: only root may use it", who)})
		return
	}
	var req Request
	if err := json.NewDecoder(c).Decode(&req); err != nil {
		enc.Encode(&Response{Error: "bad request: " + err.Error()})
		return
	}
	c.SetReadDeadline(time.Time{})
	resp := d.Handle(req)
	enc.Encode(resp)
}

// Handle runs one control request.
func (d *Daemon) Handle(req Request) *Response {
	var resp *Response
	var err error
	switch req.Command {
	case CmdInitiate:
		resp, err = d.initiate(req)
	case CmdTerminate:
		resp, err = d.terminate(req)
	case CmdRekey:
		resp, err = d.rekey(req)
	case CmdRedirect:
		resp, err = d.redirect(req)
	case CmdInstall:
		resp, err = d.install(req)
	case CmdUninstall:
		resp, err = d.uninstall(req)
	case CmdListPolicies:
		resp = &Response{Policies: d.TrapPolicies()}
	case CmdListSAs:
		resp = &Response{SAs: d.ListSAs(req.IKE)}
	case CmdListConns:
		resp = &Response{Conns: d.ListConns()}
	case CmdListPools:
		resp = &Response{Pools: d.ListPools(req.Leases)}
	case CmdFleetStatus:
		resp, err = d.fleetStatus()
	case CmdFleetNotify:
		resp, err = d.fleetNotify(req)
	case CmdReload:
		var ch Changes
		c, rerr := d.Reload()
		err = rerr
		ch = Changes{Added: c.Added, Removed: c.Removed, Changed: c.Changed, RedirectChanged: c.RedirectChanged, SecretsChanged: c.SecretsChanged}
		resp = &Response{Changes: &ch}
	default:
		err = fmt.Errorf("unknown command %q", req.Command)
	}
	if err != nil {
		return &Response{Error: err.Error()}
	}
	switch req.Command {
	case CmdInitiate, CmdTerminate, CmdRekey, CmdReload, CmdInstall, CmdUninstall:
		// What the command changed is in the state file before it says
		// so (the engine appends SAs as they go in; this adds the rest):
		// a daemon killed right after still has it at its next start.
		d.engine.FlushState()
	}
	resp.OK = true
	return resp
}

func timeout(req Request) time.Duration {
	if req.TimeoutMS == 0 {
		return 10 * time.Second
	}
	return time.Duration(req.TimeoutMS) * time.Millisecond
}

// waitFor polls the engine until cond holds or the timeout passes.
func (d *Daemon) waitFor(req Request, cond func([]ike.IKESAInfo) (bool, error)) error {
	deadline := time.Now().Add(timeout(req))
	for {
		done, err := cond(d.engine.IKESAs())
		if done || err != nil {
			return err
		}
		if req.TimeoutMS < 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return errors.New("timed out, the exchange goes on in the background")
		}
		select {
		case <-d.stop:
			return errors.New("the daemon is stopping")
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func findIKE(sas []ike.IKESAInfo, id uint32) *ike.IKESAInfo {
	for i := range sas {
		if sas[i].ID == id {
			return &sas[i]
		}
	}
	return nil
}

// connOfChild finds the connection that holds a child config.
func (d *Daemon) connOfChild(child string) (string, error) {
	_, conns := d.allConns()
	for _, c := range conns {
		for _, ch := range c.Children {
			if ch.Name == child {
				return c.Name, nil
			}
		}
	}
	return "", fmt.Errorf("no CHILD_SA config named '%s' found", child)
}

// initiate starts an IKE SA (--ike) or a CHILD_SA (--child): with an
// established IKE SA of its connection the CHILD_SA is created with
// CREATE_CHILD_SA (IKEv1: in a Quick Mode of the ISAKMP SA), else the
// connection is initiated.
func (d *Daemon) initiate(req Request) (*Response, error) {
	conn := req.IKE
	if req.Child != "" {
		c, err := d.connOfChild(req.Child)
		if err != nil {
			return nil, err
		}
		if conn != "" && conn != c {
			return nil, fmt.Errorf("CHILD_SA config '%s' belongs to '%s', not '%s'", req.Child, c, conn)
		}
		conn = c
		for _, sa := range d.engine.IKESAs() {
			if sa.Name != conn || sa.State != ike.IKESAEstablished {
				continue
			}
			// An ISAKMP SA lists the Quick Modes it started as CHILD_SAs
			// without an ID, by their inbound SPI.
			before, creating := map[uint32]bool{}, map[uint32]bool{}
			for _, ch := range sa.Children {
				before[ch.ID] = true
				if ch.ID == 0 {
					creating[ch.SPIIn] = true
				}
			}
			if err := d.engine.CreateChildSA(sa.ID, req.Child); err != nil {
				// Installed already: no duplicate (swanctl fails the
				// same way, charon logs the same line).
				return nil, err
			}
			var msg string
			err := d.waitFor(req, func(sas []ike.IKESAInfo) (bool, error) {
				s := findIKE(sas, sa.ID)
				if s == nil {
					return false, fmt.Errorf("IKE_SA %s[%d] went away", sa.Name, sa.ID)
				}
				ours := false
				for _, ch := range s.Children {
					// Rekeying or rekeyed: it was installed, and a short
					// rekey_time may already be replacing it.
					if !before[ch.ID] && ch.Name == req.Child && ch.State >= ike.ChildSAInstalled && ch.State <= ike.ChildSARekeyed {
						msg = fmt.Sprintf("CHILD_SA %s{%d} established with SPIs %.8x_i %.8x_o", ch.Name, ch.ID, ch.SPIIn, ch.SPIOut)
						return true, nil
					}
					ours = ours || (ch.ID == 0 && ch.Name == req.Child && !creating[ch.SPIIn])
				}
				if s.Version == 1 && !ours {
					// The Quick Mode ended (NO_PROPOSAL_CHOSEN, INVALID_ID_INFORMATION,
					// no answer) and left no IPsec SA.
					return false, fmt.Errorf("its Quick Mode on IKE_SA %s[%d] ended without it (see the daemon's log)", sa.Name, sa.ID)
				}
				return false, nil
			})
			if err != nil {
				return nil, fmt.Errorf("initiating CHILD_SA '%s' failed: %w", req.Child, err)
			}
			return &Response{Message: msg}, nil
		}
	}
	if conn == "" {
		return nil, errors.New("initiate needs --ike or --child")
	}
	var id uint32
	var err error
	if req.Child != "" {
		// Only the child asked for: the others start as their own
		// start_action says, or when asked for.
		id, err = d.engine.InitiateChildren(conn, req.Child)
	} else {
		id, err = d.engine.Initiate(conn)
	}
	if err != nil {
		return nil, err
	}
	var msg string
	err = d.waitFor(req, func(sas []ike.IKESAInfo) (bool, error) {
		s := findIKE(sas, id)
		if s == nil {
			return false, fmt.Errorf("IKE_SA %s[%d] failed (see the daemon's log)", conn, id)
		}
		if s.State < ike.IKESAEstablished {
			return false, nil
		}
		if req.Child != "" {
			// The CHILD_SA asked for came with IKE_AUTH: the IKE_SA
			// alone is no success (swanctl --initiate --child fails too).
			installed, pending := false, false
			for _, ch := range s.Children {
				if ch.Name == req.Child {
					// Rekeying or rekeyed: it was installed, and a short
					// rekey_time may already be replacing it.
					installed = installed || (ch.State >= ike.ChildSAInstalled && ch.State <= ike.ChildSARekeyed)
					pending = pending || ch.State < ike.ChildSAInstalled
				}
			}
			// IKEv1 negotiates it in Quick Mode, after phase 1.
			if !installed && pending {
				return false, nil
			}
			if !installed {
				return false, fmt.Errorf("IKE_SA %s[%d] established, but establishing CHILD_SA '%s' failed (see the daemon's log)", conn, id, req.Child)
			}
		}
		msg = fmt.Sprintf("IKE_SA %s[%d] established", conn, id)
		for _, ch := range s.Children {
			if (req.Child == "" || ch.Name == req.Child) && ch.State >= ike.ChildSAInstalled && ch.State <= ike.ChildSARekeyed {
				msg += fmt.Sprintf(", CHILD_SA %s{%d} established with SPIs %.8x_i %.8x_o", ch.Name, ch.ID, ch.SPIIn, ch.SPIOut)
			}
		}
		return true, nil
	})
	if err != nil {
		return nil, fmt.Errorf("initiating '%s' failed: %w", conn, err)
	}
	return &Response{Message: msg}, nil
}

// terminate deletes IKE SAs (by connection name or ID) or CHILD_SAs (by
// config name or ID) and waits for the deletes to complete.
func (d *Daemon) terminate(req Request) (*Response, error) {
	return d.actOnSAs(req, "terminate", "terminated", false, d.engine.DeleteIKESA, d.engine.DeleteChildSA)
}

// rekey rekeys IKE SAs (by connection name or ID) or CHILD_SAs (by config
// name or ID), as swanctl --rekey does, and waits until the rekeyed SAs
// are gone, replaced by their successors.
func (d *Daemon) rekey(req Request) (*Response, error) {
	return d.actOnSAs(req, "rekey", "rekeyed", true, d.engine.RekeyIKESA, d.engine.RekeyChildSA)
}

// maxOutstandingSAOps is how many deletes (or rekeys) one terminate or
// rekey request keeps in flight; the next starts as an earlier one
// completes. Started all at once, 2,000 DELETEs bring 2,000 responses
// within milliseconds: more than the IKE socket's receive buffer may hold
// while the engine is busy, and each lost response leaves its SA in
// DELETING until the retransmits give up (issue 13). The peer, too, gets
// at most this many requests of ours at once. 64 in flight keep the
// exchanges of a round trip going together (thousands per second on a
// LAN) while a burst of responses stays far below the buffer.
const maxOutstandingSAOps = 64

// saOpPoll is how often a paced request looks for completed operations.
const saOpPoll = 5 * time.Millisecond

// saOp is one delete or rekey of a request: of an IKE SA or a CHILD_SA.
type saOp struct {
	child bool
	id    uint32
}

func (o saOp) String() string {
	if o.child {
		return fmt.Sprintf("CHILD_SA {%d}", o.id)
	}
	return fmt.Sprintf("IKE_SA [%d]", o.id)
}

// saOpsRun is the progress of a paced request.
type saOpsRun struct {
	started chan struct{} // closed once the first window is started
	done    chan struct{} // closed once every operation completed or failed

	mu       sync.Mutex // guards below
	total    int
	finished int     // completed: the SA is no longer listed
	inFlight int     // started, still listed
	failed   []error // operations that did not start
}

func (r *saOpsRun) progress() (finished, inFlight, notStarted int, failed []error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.finished, r.inFlight, r.total - r.finished - r.inFlight - len(r.failed), slices.Clone(r.failed)
}

// actOnSAs applies ikeFn or childFn to the SAs a request names, at most
// maxOutstandingSAOps at once, and waits until none of them is listed any
// more (deleted, or replaced by a successor with a new ID). On a timeout
// the rest goes on in the background.
func (d *Daemon) actOnSAs(req Request, verb, done string, establishedOnly bool, ikeFn, childFn func(uint32) error) (*Response, error) {
	if req.IKE == "" && req.Child == "" && req.IKEID == 0 && req.ChildID == 0 {
		return nil, fmt.Errorf("%s needs --ike, --child, --ike-id or --child-id", verb)
	}
	ikeIDs, childIDs := d.selectSAs(req, establishedOnly)
	if len(ikeIDs) == 0 && len(childIDs) == 0 {
		return nil, errors.New("no matching SA found")
	}
	var ops []saOp
	var msgs []string
	for _, id := range ikeIDs {
		ops = append(ops, saOp{id: id})
	}
	for _, id := range childIDs {
		ops = append(ops, saOp{child: true, id: id})
	}
	for _, op := range ops {
		msgs = append(msgs, fmt.Sprintf("%s %s", op, done))
	}
	r := &saOpsRun{started: make(chan struct{}), done: make(chan struct{}), total: len(ops)}
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		d.paceSAOps(ops, ikeFn, childFn, r)
	}()
	<-r.started
	var timedOut bool
	if req.TimeoutMS >= 0 {
		select {
		case <-r.done:
		case <-time.After(timeout(req)):
			timedOut = true
		case <-d.stop:
			return nil, fmt.Errorf("%s: the daemon is stopping", verb)
		}
	}
	finished, inFlight, notStarted, failed := r.progress()
	if len(failed) > 0 {
		return nil, fmt.Errorf("%s: %w", verb, errors.Join(failed...))
	}
	if timedOut {
		return nil, fmt.Errorf("%s: timed out with %d of %d SAs %s, %d in progress and %d waiting to start; the rest goes on in the background",
			verb, finished, len(ops), done, inFlight, notStarted)
	}
	return &Response{Message: strings.Join(msgs, ", ")}, nil
}

// paceSAOps starts the operations in order, keeping at most
// maxOutstandingSAOps of them whose SA is still listed by the engine.
func (d *Daemon) paceSAOps(ops []saOp, ikeFn, childFn func(uint32) error, r *saOpsRun) {
	defer close(r.done)
	inFlight := map[saOp]bool{}
	next := 0
	first := true
	for {
		for next < len(ops) && len(inFlight) < maxOutstandingSAOps {
			op := ops[next]
			next++
			fn := ikeFn
			if op.child {
				fn = childFn
			}
			if err := fn(op.id); err != nil {
				r.mu.Lock()
				r.failed = append(r.failed, fmt.Errorf("%s: %w", op, err))
				r.mu.Unlock()
				continue
			}
			inFlight[op] = true
			r.mu.Lock()
			r.inFlight = len(inFlight)
			r.mu.Unlock()
		}
		if first {
			close(r.started)
			first = false
		}
		if len(inFlight) == 0 {
			return
		}
		select {
		case <-d.stop:
			return
		case <-time.After(saOpPoll):
		}
		listed := map[saOp]bool{}
		for _, sa := range d.engine.IKESAs() {
			listed[saOp{id: sa.ID}] = true
			for _, ch := range sa.Children {
				listed[saOp{child: true, id: ch.ID}] = true
			}
		}
		gone := 0
		for op := range inFlight {
			if !listed[op] {
				delete(inFlight, op)
				gone++
			}
		}
		r.mu.Lock()
		r.finished += gone
		r.inFlight = len(inFlight)
		r.mu.Unlock()
	}
}

// selectSAs finds the IKE SAs (by connection name or ID) and CHILD_SAs
// (by config name or ID) a terminate or rekey request names.
// establishedOnly leaves out IKE SAs still negotiating unless named by ID.
func (d *Daemon) selectSAs(req Request, establishedOnly bool) (ikeIDs, childIDs []uint32) {
	for _, sa := range d.engine.IKESAs() {
		if establishedOnly && sa.State != ike.IKESAEstablished && req.IKEID == 0 && req.ChildID == 0 {
			continue
		}
		if (req.IKE != "" && sa.Name == req.IKE && req.Child == "") || (req.IKEID != 0 && sa.ID == req.IKEID) {
			ikeIDs = append(ikeIDs, sa.ID)
			continue
		}
		for _, ch := range sa.Children {
			if ch.ID != 0 && ((req.Child != "" && ch.Name == req.Child && (req.IKE == "" || req.IKE == sa.Name)) || (req.ChildID != 0 && ch.ID == req.ChildID)) {
				childIDs = append(childIDs, ch.ID)
			}
		}
	}
	return ikeIDs, childIDs
}
