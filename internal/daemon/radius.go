package daemon

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"path/filepath"

	"github.com/xdpsec/xdpsec/ike"
	"github.com/xdpsec/xdpsec/ike/swanctl"
	"github.com/xdpsec/xdpsec/internal/radius"
)

// LoadRadius reads the radius section of xdpsec.conf at path and makes
// the RADIUS client the eap-radius connections relay to: nil without a
// radius section, or without the file when it is the default path (a
// named file must exist). Every mistake is reported, naming the file,
// line and key, or the server.
func LoadRadius(path string, log *slog.Logger) (*radius.Client, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	st, err := swanctl.LoadSettings(swanctl.OSFS{}, abs)
	if err != nil {
		if path == swanctl.DefaultSettingsPath && errors.Is(err, fs.ErrNotExist) {
			return nil, nil
		}
		return nil, fmt.Errorf("loading %s: %w", path, err)
	}
	if st.Radius == nil {
		return nil, nil
	}
	r := st.Radius
	cfg := radius.Config{
		Timeout: r.Timeout, Tries: r.RetransmitTries, NASIdentifier: r.NASIdentifier,
		Accounting: r.Accounting, FramedIP: r.UseFramedIP, Logger: log,
	}
	for _, s := range r.Servers {
		cfg.Servers = append(cfg.Servers, radius.Server{
			Name: s.Name, Address: s.Address, AuthPort: s.AuthPort, AcctPort: s.AcctPort,
			Secret: radius.NewSecret(string(s.Secret.Bytes())), Preference: s.Preference,
		})
	}
	c, err := radius.New(cfg)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

// checkEAPRadius refuses connections with remote.auth = eap-radius when
// no RADIUS server is configured: every peer would be refused.
func checkEAPRadius(conns []*ike.Connection, c *radius.Client, settings string) error {
	if c != nil {
		return nil
	}
	var errs []error
	for _, conn := range conns {
		for _, r := range conn.Remote {
			if r.Auth == ike.AuthEAPRadius {
				errs = append(errs, fmt.Errorf("connection %s: remote.auth = eap-radius needs a radius section with servers in %s", conn.Name, settings))
			}
		}
	}
	return errors.Join(errs...)
}

// radiusBackend relays eap-radius connections' EAP to the RADIUS
// servers (ike.EAPBackend over internal/radius).
type radiusBackend struct{ c *radius.Client }

func (b radiusBackend) NewConversation(p ike.EAPPeer) (ike.EAPConversation, error) {
	s, err := b.c.NewSession(radius.Peer{
		UserName: p.Identity, Calling: p.Remote, Called: p.Local,
		NASPort: p.IKESAID, NASPortID: p.Connection,
	})
	if err != nil {
		return nil, err
	}
	return radiusConversation{s}, nil
}

type radiusConversation struct{ s *radius.Session }

func (c radiusConversation) Exchange(ctx context.Context, eap []byte) (ike.EAPReply, error) {
	r, err := c.s.Exchange(ctx, eap)
	if err != nil {
		return ike.EAPReply{}, err
	}
	out := ike.EAPReply{EAP: r.EAP, Server: r.Server}
	switch r.Outcome {
	case radius.Challenge:
		out.Outcome = ike.EAPChallenge
	case radius.Accept:
		out.Outcome = ike.EAPAccept
		out.MSK, out.FramedIP = r.MSK, r.FramedIP
	default:
		out.Outcome = ike.EAPReject
	}
	return out, nil
}
