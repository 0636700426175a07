package radius

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"sync/atomic"
	"time"

	"layeh.com/radius"
	"layeh.com/radius/rfc2865"
	"layeh.com/radius/rfc3162"
)

// Client sends requests to the configured servers. It is safe for
// concurrent use: every exchange has its own UDP socket, so thousands of
// sessions never share the 256 identifiers of one socket.
type Client struct {
	cfg     Config
	servers []Server // by preference, highest first
	log     *slog.Logger
	stats   counters
	nextID  atomic.Uint32
	now     func() time.Time
}

// New validates the configuration and makes a Client. It sends nothing.
func New(cfg Config) (*Client, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.Tries == 0 {
		cfg.Tries = DefaultTries
	}
	if cfg.NASIdentifier == "" {
		cfg.NASIdentifier = DefaultNASIdentifier
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	servers := slices.Clone(cfg.Servers)
	slices.SortStableFunc(servers, func(a, b Server) int { return cmp.Compare(b.Preference, a.Preference) })
	c := &Client{cfg: cfg, servers: servers, log: log, now: time.Now}
	c.nextID.Store(rand.Uint32())
	return c, nil
}

// Stats is a snapshot of the counters.
func (c *Client) Stats() Stats { return c.stats.snapshot() }

// AccountingInterval is Config.AccountingInterval, 0 with accounting
// off.
func (c *Client) AccountingInterval() time.Duration {
	if !c.cfg.Accounting {
		return 0
	}
	return c.cfg.AccountingInterval
}

// answer is a verified reply and the server that gave it.
type answer struct {
	reply   *radius.Packet
	request *radius.Packet
	server  *Server
}

// exchange sends a request to the given servers in turn until one gives
// a verified reply. build makes the packet for a server, since the secret
// (and so the authenticators) differ per server.
func (c *Client) exchange(ctx context.Context, servers []*Server, acct bool, build func(*Server) (*radius.Packet, error)) (*answer, error) {
	var failures []ServerFailure
	var request string
	for _, srv := range servers {
		p, err := build(srv)
		if err != nil {
			return nil, err
		}
		request = p.Code.String()
		ans, f, err := c.exchangeWith(ctx, srv, acct, p)
		if err != nil {
			return nil, err
		}
		if ans != nil {
			return ans, nil
		}
		failures = append(failures, *f)
		c.stats.timeouts.Add(1)
		c.log.Info(f.describe(request))
	}
	return nil, &NotRespondingError{Request: request, Failures: failures}
}

// exchangeWith sends one request to one server with retransmissions. It
// returns the answer, or a failure when the server gave no verified
// reply, or an error when the context ended or the request cannot be
// built.
func (c *Client) exchangeWith(ctx context.Context, srv *Server, acct bool, p *radius.Packet) (*answer, *ServerFailure, error) {
	port := srv.authPort()
	if acct {
		port = srv.acctPort()
	}
	addr := net.JoinHostPort(srv.Address, strconv.Itoa(int(port)))
	f := &ServerFailure{Server: srv.name(), Addr: addr}

	p.Identifier = byte(c.nextID.Add(1))
	wire, err := encodeRequest(p)
	if err != nil {
		return nil, nil, fmt.Errorf("radius: encode %v: %w", p.Code, err)
	}

	var d net.Dialer
	conn, err := d.DialContext(ctx, "udp", addr)
	if err != nil {
		if ctx.Err() != nil {
			return nil, nil, ctx.Err()
		}
		f.Err = err
		return nil, f, nil
	}
	defer conn.Close()
	// A cancelled context wakes a blocked read at once.
	stop := context.AfterFunc(ctx, func() { conn.SetReadDeadline(time.Unix(1, 0)) })
	defer stop()

	c.log.Info(fmt.Sprintf("sending RADIUS %v to server '%s'", p.Code, srv.name()))
	c.stats.requests.Add(1)
	buf := make([]byte, maxPacketLen+1)
	for f.Attempts < c.cfg.Tries {
		if err := ctx.Err(); err != nil {
			return nil, nil, err
		}
		if f.Attempts > 0 {
			c.stats.retransmits.Add(1)
			c.log.Info(fmt.Sprintf("retransmit %d of RADIUS %v (timeout: %.1fs)", f.Attempts, p.Code, c.cfg.Timeout.Seconds()))
		}
		f.Attempts++
		if _, err := conn.Write(wire); err != nil {
			if ctx.Err() != nil {
				return nil, nil, ctx.Err()
			}
			f.Err = err
			return nil, f, nil
		}
		deadline := time.Now().Add(c.cfg.Timeout)
		conn.SetReadDeadline(deadline)
		for {
			n, err := conn.Read(buf)
			if err != nil {
				if ctx.Err() != nil {
					return nil, nil, ctx.Err()
				}
				if ne, ok := err.(net.Error); ok && ne.Timeout() {
					break
				}
				// A socket error, port unreachable (ECONNREFUSED) the
				// most common: nothing listens there, and the other
				// tries would not change it, so the next server goes.
				f.Err = err
				return nil, f, nil
			}
			reply, why := verifyReply(wire, buf[:n], srv.Secret.bytes())
			if why != DropNone {
				c.stats.dropped[why].Add(1)
				f.Dropped++
				f.LastDrop = why
				c.log.Info(fmt.Sprintf("%v from server '%s', ignored", why, srv.name()))
				continue
			}
			c.log.Info(fmt.Sprintf("received RADIUS %v from server '%s'", reply.Code, srv.name()))
			return &answer{reply: reply, request: p, server: srv}, nil, nil
		}
	}
	return nil, f, nil
}

// newRequest makes a packet with the attributes every request of ours
// carries: NAS-Identifier, NAS-IP-Address or NAS-IPv6-Address, and
// NAS-Port-Type Virtual (RFC 2865 §5.41), as charon sends them.
func (c *Client) newRequest(code radius.Code, srv *Server) (*radius.Packet, error) {
	p := radius.New(code, srv.Secret.bytes())
	if code == radius.CodeAccountingRequest {
		// RFC 2866 §3: the Request Authenticator is computed, not random.
		p.Authenticator = [16]byte{}
	}
	if err := rfc2865.NASIdentifier_SetString(p, c.cfg.NASIdentifier); err != nil {
		return nil, fmt.Errorf("NAS-Identifier: %w", err)
	}
	if a := c.cfg.NASIPAddress; a.IsValid() {
		if a.Is4() || a.Is4In6() {
			b := a.Unmap().As4()
			p.Add(rfc2865.NASIPAddress_Type, b[:])
		} else {
			b := a.As16()
			p.Add(rfc3162.NASIPv6Address_Type, b[:])
		}
	}
	if err := rfc2865.NASPortType_Set(p, rfc2865.NASPortType_Value_Virtual); err != nil {
		return nil, err
	}
	return p, nil
}

// stationID formats a Called- or Calling-Station-Id as charon does by
// default (station_id_with_port): "192.0.2.1[4500]".
func stationID(ap netip.AddrPort) string {
	if ap.Port() == 0 {
		return ap.Addr().String()
	}
	return fmt.Sprintf("%v[%d]", ap.Addr(), ap.Port())
}

// addStringAttr adds a text attribute, refusing values that do not fit.
func addStringAttr(p *radius.Packet, t radius.Type, name, v string) error {
	if v == "" {
		return nil
	}
	a, err := radius.NewString(v)
	if err != nil {
		return fmt.Errorf("%s of %d bytes: at most %d fit an attribute", name, len(v), maxAttrLen)
	}
	p.Add(t, a)
	return nil
}
