package vici

import (
	"github.com/xdpsec/xdpsec/ike"
	"github.com/xdpsec/xdpsec/ike/swanctl"
	"github.com/xdpsec/xdpsec/internal/daemon"
)

// DaemonBackend serves VICI from a running daemon.
func DaemonBackend(d *daemon.Daemon) Backend { return daemonBackend{d} }

type daemonBackend struct{ d *daemon.Daemon }

func (b daemonBackend) Handle(r daemon.Request) *daemon.Response { return b.d.Handle(r) }
func (b daemonBackend) LoadConn(t *swanctl.Tree, certs map[string]daemon.RoundCerts) error {
	return b.d.LoadVICIConns(t, certs)
}
func (b daemonBackend) LoadCert(data []byte, ca bool) error {
	_, err := b.d.LoadVICICert(data, ca)
	return err
}
func (b daemonBackend) LoadKey(data []byte) (string, error) { return b.d.LoadVICIKey(data) }
func (b daemonBackend) ClearCreds()                         { b.d.ClearVICICreds() }
func (b daemonBackend) KeyIDs() []string                    { return b.d.VICIKeyIDs() }
func (b daemonBackend) UnloadKey(id string) error           { return b.d.UnloadVICIKey(id) }
func (b daemonBackend) UnloadConn(name string) error        { return b.d.UnloadVICIConn(name) }
func (b daemonBackend) LoadPool(t *swanctl.Tree) error      { return b.d.LoadVICIPools(t) }
func (b daemonBackend) UnloadPool(name string) error        { return b.d.UnloadVICIPool(name) }
func (b daemonBackend) VICIConns() []string                 { return b.d.VICIConns() }
func (b daemonBackend) UnloadShared(id string) error        { return b.d.UnloadVICIShared(id) }
func (b daemonBackend) SharedIDs() []string                 { return b.d.VICISharedIDs() }

func (b daemonBackend) LoadShared(s Shared) error {
	return b.d.LoadVICIShared(daemon.VICIShared{ID: s.ID, EAP: s.Type == "EAP", Secret: s.Data, Owners: s.Owners})
}

func (b daemonBackend) Observe(o ike.Observer) {
	if o == nil {
		b.d.SetObserver(nil)
		return
	}
	b.d.SetObserver(o)
}

func (b daemonBackend) SetLogTap(f func(daemon.LogRecord)) { b.d.SetLogTap(f) }

func (b daemonBackend) Counters(conn string) ike.Counters { return b.d.Counters(conn) }
func (b daemonBackend) ResetCounters(conn string)         { b.d.ResetCounters(conn) }
func (b daemonBackend) Certs() []daemon.LoadedCert        { return b.d.Certs() }

func (b daemonBackend) ReloadSettings() error { return b.d.ReloadSettings() }

func (b daemonBackend) LoadAuthority(a daemon.VICIAuthority) error { return b.d.LoadVICIAuthority(a) }
func (b daemonBackend) UnloadAuthority(name string) error          { return b.d.UnloadVICIAuthority(name) }
func (b daemonBackend) Authorities() []daemon.Authority            { return b.d.Authorities() }
