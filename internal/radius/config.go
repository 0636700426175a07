package radius

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"time"
)

// Defaults, as RFC 2865 §3 and RFC 2866 §3 assign the ports and as
// charon's eap-radius plugin waits (retransmit_timeout = 2s).
const (
	DefaultAuthPort      = 1812
	DefaultAcctPort      = 1813
	DefaultTimeout       = 2 * time.Second
	DefaultTries         = 3
	DefaultNASIdentifier = "xdpsec"
)

// maxAttrLen is the longest value one attribute can hold (RFC 2865 §5:
// the Length octet counts the type and length octets too).
const maxAttrLen = 253

// Server is one RADIUS server.
type Server struct {
	// Name is how logs and errors call the server; empty: Address.
	// charon: the section name under eap-radius.servers.
	Name string
	// Address is a host name or an IP address, without the port
	// (charon: address).
	Address string
	// AuthPort receives Access-Requests; 0: 1812 (charon: auth_port).
	AuthPort uint16
	// AcctPort receives Accounting-Requests; 0: 1813 (charon: acct_port).
	AcctPort uint16
	// Secret is shared with the server (RFC 2865 §3; charon: secret).
	Secret Secret
	// Preference orders the servers: the highest is asked first and the
	// others are failovers, in order; equal preferences keep the order of
	// the configuration. charon's eap-radius calls it "preference" too.
	Preference int
}

// Config is the typed configuration of a Client. RADIUS settings are not
// swanctl.conf keys (strongSwan keeps them in strongswan.conf under
// charon.plugins.eap-radius); the daemon gives them their home and fills
// this struct.
type Config struct {
	Servers []Server
	// Timeout is how long one transmission waits for its reply; 0: 2s
	// (charon: retransmit_timeout, which grows by retransmit_base at
	// each retransmission; ours stays the same).
	Timeout time.Duration
	// Tries is how many times a request goes to one server, the first
	// transmission included, before the next server is asked (charon's
	// retransmit_tries); 0: 3.
	Tries int
	// NASIdentifier is sent in every request (RFC 2865 §5.32); empty:
	// "xdpsec" (charon: nas_identifier, "strongSwan").
	NASIdentifier string
	// NASIPAddress, when valid, is sent as NAS-IP-Address (IPv4) or
	// NAS-IPv6-Address (IPv6).
	NASIPAddress netip.Addr
	// Accounting turns RFC 2866 accounting on; off, the accounting calls
	// send nothing and return nil (charon: accounting).
	Accounting bool
	// AccountingInterval is how often the daemon sends Interim-Update
	// records of a session whose Access-Accept named no
	// Acct-Interim-Interval; 0: none (charon: accounting_interval).
	AccountingInterval time.Duration
	// FramedIP makes an Access-Accept's Framed-IP-Address the client's
	// virtual IP (Reply.FramedIP); off, the attribute is ignored.
	FramedIP bool
	// Logger receives charon-worded lines; nil: nothing is logged.
	Logger *slog.Logger
}

// Validate reports every mistake in the configuration, each naming the
// server and the field. It never quotes a secret.
func (c *Config) Validate() error {
	var errs []error
	if len(c.Servers) == 0 {
		errs = append(errs, errors.New("radius: no server configured"))
	}
	names := map[string]int{}
	for i, s := range c.Servers {
		where := fmt.Sprintf("radius: server %d", i+1)
		if s.Name != "" {
			where += fmt.Sprintf(" ('%s')", s.Name)
		}
		name := s.name()
		if name != "" {
			if j, dup := names[name]; dup {
				errs = append(errs, fmt.Errorf("%s: name '%s' already used by server %d", where, name, j+1))
			}
			names[name] = i
		}
		if err := checkAddress(s.Address); err != nil {
			errs = append(errs, fmt.Errorf("%s: address: %w", where, err))
		}
		if s.Secret.Len() == 0 {
			errs = append(errs, fmt.Errorf("%s: shared secret missing", where))
		}
	}
	if c.Timeout < 0 {
		errs = append(errs, fmt.Errorf("radius: timeout %v is negative", c.Timeout))
	} else if c.Timeout > 0 && c.Timeout < time.Millisecond {
		errs = append(errs, fmt.Errorf("radius: timeout %v is shorter than 1ms", c.Timeout))
	}
	if c.AccountingInterval < 0 {
		errs = append(errs, fmt.Errorf("radius: accounting interval %v is negative", c.AccountingInterval))
	}
	if c.Tries < 0 || c.Tries > 20 {
		errs = append(errs, fmt.Errorf("radius: tries %d out of range 1-20", c.Tries))
	}
	if len(c.NASIdentifier) > maxAttrLen {
		errs = append(errs, fmt.Errorf("radius: NAS-Identifier is %d bytes, at most %d fit an attribute", len(c.NASIdentifier), maxAttrLen))
	}
	if c.NASIPAddress.IsValid() && c.NASIPAddress.Zone() != "" {
		errs = append(errs, fmt.Errorf("radius: NAS-IP-Address %v has a zone", c.NASIPAddress))
	}
	return errors.Join(errs...)
}

func (s *Server) name() string {
	if s.Name != "" {
		return s.Name
	}
	return s.Address
}

func (s *Server) authPort() uint16 { return orDefault(s.AuthPort, DefaultAuthPort) }
func (s *Server) acctPort() uint16 { return orDefault(s.AcctPort, DefaultAcctPort) }

func orDefault(p, d uint16) uint16 {
	if p == 0 {
		return d
	}
	return p
}

// checkAddress accepts an IP address or a host name (RFC 1123 labels).
func checkAddress(a string) error {
	if a == "" {
		return errors.New("missing")
	}
	if ip, err := netip.ParseAddr(a); err == nil {
		if ip.Zone() != "" {
			return fmt.Errorf("%q has a zone", a)
		}
		return nil
	}
	if len(a) > 253 {
		return fmt.Errorf("host name of %d bytes is too long", len(a))
	}
	for label := range strings.SplitSeq(strings.TrimSuffix(a, "."), ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return fmt.Errorf("%q is neither an IP address nor a host name", a)
		}
		for _, r := range label {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-') {
				return fmt.Errorf("%q is neither an IP address nor a host name", a)
			}
		}
	}
	return nil
}
