package swanctl

import (
	"github.com/xdpsec/xdpsec/ike"
	"net/netip"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/xdpsec/xdpsec/ike/transform"
)

func check[T comparable](t *testing.T, what string, got, want T) {
	t.Helper()
	if got != want {
		t.Errorf("%s = %v, want %v", what, got, want)
	}
}

func checkStrings(t *testing.T, what string, got []string, want ...string) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Errorf("%s = %q, want %q", what, got, want)
	}
}

func stringsOf[T interface{ String() string }](list []T) []string {
	out := make([]string, len(list))
	for i, x := range list {
		out[i] = x.String()
	}
	return out
}

func TestLoadNetToNetPSK(t *testing.T) {
	path := copyTestdata(t, "psk")
	cfg, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Dir(path)
	check(t, "Path", cfg.Path, path)
	check(t, "Dir", cfg.Dir, dir)
	if len(cfg.Warnings) != 0 {
		t.Errorf("warnings: %v", cfg.Warnings)
	}
	if len(cfg.Connections) != 1 {
		t.Fatalf("%d connections, want 1", len(cfg.Connections))
	}
	c := cfg.Connection("site-a-to-b")
	if c == nil {
		t.Fatal("no connection site-a-to-b")
	}
	check(t, "Pos", c.Pos, Pos{File: path, Line: 6})
	check(t, "Version", c.Version, 2)
	checkStrings(t, "LocalAddrs", stringsOf(c.LocalAddrs), "192.0.2.1")
	checkStrings(t, "RemoteAddrs", stringsOf(c.RemoteAddrs), "198.51.100.7", "gw-b.example.net")
	check(t, "RemoteAddrs[0].Kind", c.RemoteAddrs[0].Kind, AddrIP)
	check(t, "RemoteAddrs[1].Kind", c.RemoteAddrs[1].Kind, AddrDNS)
	check(t, "LocalPort", c.LocalPort, 500)
	check(t, "RemotePort", c.RemotePort, 500)
	check(t, "Proposals", transform.FormatProposals(c.Proposals),
		"IKE:AES_GCM_16_256/PRF_HMAC_SHA2_384/ECP_384, IKE:AES_CBC_256/HMAC_SHA2_256_128/PRF_HMAC_SHA2_256/MODP_3072")
	check(t, "DPDDelay", c.DPDDelay, 30*time.Second)
	check(t, "Mobike", c.Mobike, false)
	check(t, "Fragmentation", c.Fragmentation, ike.FragmentationAccept)
	check(t, "RekeyTime", c.RekeyTime, 8*time.Hour)
	check(t, "ReauthTime", c.ReauthTime, time.Duration(0))
	check(t, "OverTime", c.OverTime, 48*time.Minute)
	check(t, "RandTime", c.RandTime, 48*time.Minute)
	check(t, "IfIDIn", c.IfIDIn, IfID{ID: 7})
	check(t, "IfIDOut", c.IfIDOut, IfID{ID: 7})

	if len(c.Local) != 1 || len(c.Remote) != 1 {
		t.Fatalf("auth rounds %d/%d, want 1/1", len(c.Local), len(c.Remote))
	}
	check(t, "Local.Auth", c.Local[0].Auth, ike.AuthPSK)
	check(t, "Local.ID", c.Local[0].IDSpec, "gw-a.example.net")
	check(t, "Local.Pos", c.Local[0].Pos, Pos{File: path, Line: 18})
	check(t, "Remote.Auth", c.Remote[0].Auth, ike.AuthPSK)
	check(t, "Remote.ID", c.Remote[0].IDSpec, "gw-b.example.net")

	ch := c.Child("lan-lan")
	if ch == nil || len(c.Children) != 1 {
		t.Fatalf("children %v", c.Children)
	}
	checkStrings(t, "LocalTS", stringsOf(ch.LocalTS), "10.1.0.0/16")
	checkStrings(t, "RemoteTS", stringsOf(ch.RemoteTS), "10.2.0.0/16", "10.3.0.0/24[tcp/443]")
	ts := ch.RemoteTS[1].TS
	check(t, "RemoteTS[1].Protocol", ts.Protocol, 6)
	check(t, "RemoteTS[1].FromPort", ts.StartPort, 443)
	check(t, "RemoteTS[1].ToPort", ts.EndPort, 443)
	check(t, "RemoteTS[1].To", ts.End, netip.MustParseAddr("10.3.0.255"))
	check(t, "ESPProposals", transform.FormatProposals(ch.ESPProposals), "ESP:AES_GCM_16_256/ECP_384/NO_EXT_SEQ")
	check(t, "Mode", ch.Mode, ike.ModeTunnel)
	check(t, "StartAction", ch.StartAction, ike.ActionTrap|ike.ActionStart)
	check(t, "CloseAction", ch.CloseAction, ike.ActionTrap)
	check(t, "DPDAction", ch.DPDAction, ike.ActionStart)
	check(t, "Lifetime", lifetimeOf(ch), lifetime{
		RekeyTime: 90 * time.Minute, LifeTime: 99 * time.Minute, RandTime: 9 * time.Minute,
		RekeyBytes: 500 << 20, LifeBytes: 550 << 20, RandBytes: 50 << 20,
	})
	check(t, "HWOffload", ch.HWOffload, ike.HWOffloadAuto)
	check(t, "MarkIn", ch.MarkIn, Mark{Value: 0x10, Mask: 0xff})
	check(t, "MarkOut", ch.MarkOut, Mark{})
	check(t, "ReplayWindow", ch.ReplayWindow, 1024)
	check(t, "IfIDIn (from the connection)", ch.IfIDIn, IfID{ID: 7})
	check(t, "CopyDF", ch.CopyDF, true)
	check(t, "CopyDSCP", ch.CopyDSCP, CopyDSCPOut)
	check(t, "Policies", ch.Policies, true)

	secretsIKE := cfg.Secrets.IKE
	if len(secretsIKE) != 3 {
		t.Fatalf("%d IKE secrets, want 3", len(secretsIKE))
	}
	secrets := filepath.Join(dir, "conf.d", "secrets.conf")
	check(t, "ike-b.Pos", secretsIKE[0].Pos, Pos{File: secrets, Line: 4})
	checkStrings(t, "ike-b.IDs", secretsIKE[0].IDs, "gw-a.example.net", "gw-b.example.net")
	check(t, "ike-b.Secret", string(secretsIKE[0].Secret.Bytes()), "a long pre-shared key # with a hash")
	check(t, "ike-hex.Secret", string(secretsIKE[1].Secret.Bytes()), "\x01\x23\x45\x67\x89\xab\xcd\xef")
	check(t, "ike-b64.Secret", string(secretsIKE[2].Secret.Bytes()), "secret")
	check(t, "ike-b64.IDs", len(secretsIKE[2].IDs), 0)
	check(t, "PrivateKeys", len(cfg.Secrets.PrivateKeys), 0)
}

func TestLoadCertificates(t *testing.T) {
	path := copyTestdata(t, "cert")
	cfg, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Dir(path)
	c := cfg.Connection("hq")
	if c == nil {
		t.Fatal("no connection hq")
	}
	check(t, "Version", c.Version, 0)
	checkStrings(t, "LocalAddrs", stringsOf(c.LocalAddrs), "2001:db8::1")
	checkStrings(t, "RemoteAddrs", stringsOf(c.RemoteAddrs), "%any6")
	check(t, "Proposals (default)", transform.FormatProposals(c.Proposals), transform.FormatProposals(transform.DefaultProposals(transform.ProtoIKE)))
	check(t, "SendCert", c.SendCert, ike.SendCertAlways)
	check(t, "Unique", c.Unique, ike.UniqueReplace)
	// reauth_time alone disables rekeying; over_time and rand_time follow it.
	check(t, "ReauthTime", c.ReauthTime, 24*time.Hour)
	check(t, "RekeyTime", c.RekeyTime, time.Duration(0))
	check(t, "OverTime", c.OverTime, 144*time.Minute)
	check(t, "RandTime", c.RandTime, 144*time.Minute)

	l, r := c.Local[0], c.Remote[0]
	check(t, "Local.Auth", l.Auth, ike.AuthPubkey)
	check(t, "Local.ID", l.IDSpec, "C=CH, O=Example, CN=gw-a.example.net")
	checkStrings(t, "Local.Certs", l.CertFiles, filepath.Join(dir, "x509", "gw-a.pem"))
	check(t, "Remote.Auth", r.Auth, ike.AuthPubkey)
	check(t, "Remote.AuthSpec", r.AuthSpec, "rsa-2048-sha256")
	check(t, "Remote.ID", r.IDSpec, "C=CH, O=Example, CN=*")
	checkStrings(t, "Remote.CACerts", r.CACertFiles, filepath.Join(dir, "x509ca", "ca.pem"))
	check(t, "Remote.Revocation", r.Revocation, RevocationStrict)

	if len(c.Children) != 2 {
		t.Fatalf("%d children, want 2", len(c.Children))
	}
	v6 := c.Children[0]
	check(t, "v6.Name", v6.Name, "v6")
	checkStrings(t, "v6.RemoteTS", stringsOf(v6.RemoteTS), "2001:db8:2::/48", "2001:db8:3::10-2001:db8:3::20[udp/500-510]")
	check(t, "v6.Lifetime", lifetimeOf(v6), lifetime{RekeyTime: time.Hour, LifeTime: 2 * time.Hour, RandTime: time.Hour})
	check(t, "v6.CopyDSCP", v6.CopyDSCP, CopyDSCPNo)
	check(t, "v6.IfIDIn", v6.IfIDIn, IfID{Unique: UniquePerSA})
	check(t, "v6.IfIDOut", v6.IfIDOut, IfID{Unique: UniquePerDirection})
	host := c.Children[1]
	check(t, "host.Mode", host.Mode, ike.ModeTransport)
	checkStrings(t, "host.LocalTS", stringsOf(host.LocalTS), "dynamic")
	check(t, "host.DPDAction", host.DPDAction, ike.ActionNone)

	keys := cfg.Secrets.PrivateKeys
	if len(keys) != 2 {
		t.Fatalf("%d private keys, want 2", len(keys))
	}
	check(t, "key[0].Path", keys[0].Path, filepath.Join(dir, "private", "gw-a.key"))
	check(t, "key[0].Name", keys[0].Name, "private-gw")
	check(t, "key[0].Passphrase", string(keys[0].Passphrase.Bytes()), "key passphrase")
	check(t, "key[1].Path (from the folder)", keys[1].Path, filepath.Join(dir, "private", "other.key"))
	check(t, "key[1].Passphrase", keys[1].Passphrase.IsZero(), true)
}

func TestDefaults(t *testing.T) {
	cfg := mustLoadMem(t, map[string]string{"swanctl.conf": `
connections {
	minimal {
		remote_addrs = 192.0.2.2
		children {
			c {
				local_ts = 10.0.0.0/8
				remote_ts = 10.9.0.0/16
			}
		}
	}
}`})
	c := cfg.Connections[0]
	check(t, "Version", c.Version, 0)
	checkStrings(t, "LocalAddrs", stringsOf(c.LocalAddrs), "%any")
	check(t, "LocalPort", c.LocalPort, 500)
	check(t, "RemotePort", c.RemotePort, 500)
	check(t, "Proposals", transform.FormatProposals(c.Proposals), transform.FormatProposals(transform.DefaultProposals(transform.ProtoIKE)))
	check(t, "Pull", c.Pull, true)
	check(t, "Mobike", c.Mobike, true)
	check(t, "Encap", c.Encap, false)
	check(t, "Aggressive", c.Aggressive, false)
	check(t, "DPDDelay", c.DPDDelay, time.Duration(0))
	check(t, "Fragmentation", c.Fragmentation, ike.FragmentationYes)
	check(t, "SendCertReq", *c.SendCertReq, true)
	check(t, "SendCert", c.SendCert, ike.SendCertIfAsked)
	check(t, "KeyingTries", c.KeyingTries, 1)
	check(t, "Unique", c.Unique, ike.UniqueNo)
	check(t, "RekeyTime", c.RekeyTime, 4*time.Hour)
	check(t, "ReauthTime", c.ReauthTime, time.Duration(0))
	check(t, "OverTime", c.OverTime, 24*time.Minute)
	check(t, "RandTime", c.RandTime, 24*time.Minute)
	check(t, "IfIDIn", c.IfIDIn, IfID{})
	check(t, "Local.Auth", c.Local[0].Auth, ike.AuthPubkey)
	check(t, "Local.ID", c.Local[0].IDSpec, "")
	check(t, "Remote.ID", c.Remote[0].IDSpec, "%any")

	ch := c.Children[0]
	check(t, "ESPProposals", transform.FormatProposals(ch.ESPProposals), transform.FormatProposals(transform.DefaultProposals(transform.ProtoESP)))
	check(t, "Mode", ch.Mode, ike.ModeTunnel)
	check(t, "StartAction", ch.StartAction, ike.ActionNone)
	check(t, "CloseAction", ch.CloseAction, ike.ActionNone)
	check(t, "DPDAction", ch.DPDAction, ike.ActionNone)
	check(t, "Lifetime", lifetimeOf(ch), lifetime{RekeyTime: time.Hour, LifeTime: 66 * time.Minute, RandTime: 6 * time.Minute})
	check(t, "ReplayWindow", ch.ReplayWindow, 256) // ours; strongSwan has 32
	check(t, "HWOffload", ch.HWOffload, ike.HWOffloadNo)
	check(t, "CopyDF", ch.CopyDF, true)
	check(t, "CopyECN", ch.CopyECN, true)
	check(t, "CopyDSCP", ch.CopyDSCP, CopyDSCPOut)
	check(t, "Policies", ch.Policies, true)
	check(t, "MarkIn", ch.MarkIn, Mark{})

	// The local pubkey round without a certificate is a warning, not an error.
	if len(cfg.Warnings) != 1 {
		t.Errorf("warnings %v, want the one about the missing certificate", cfg.Warnings)
	}
}

func TestIKELifetimeDefaults(t *testing.T) {
	tests := []struct {
		set                        string
		rekey, reauth, over, rand_ time.Duration
	}{
		{"", 4 * time.Hour, 0, 24 * time.Minute, 24 * time.Minute},
		{"rekey_time = 1h", time.Hour, 0, 6 * time.Minute, 6 * time.Minute},
		{"reauth_time = 2h", 0, 2 * time.Hour, 12 * time.Minute, 12 * time.Minute},
		{"rekey_time = 1h\nreauth_time = 10h", time.Hour, 10 * time.Hour, time.Hour, 30 * time.Minute},
		{"rekey_time = 1h\nover_time = 5m", time.Hour, 0, 5 * time.Minute, 5 * time.Minute},
		{"rekey_time = 1h\nrand_time = 0", time.Hour, 0, 6 * time.Minute, 0},
		{"rekey_time = 0", 0, 0, 0, 0},
	}
	for _, tt := range tests {
		cfg := mustLoadMem(t, map[string]string{"swanctl.conf": "connections {\n c {\n" + tt.set + "\n}\n}\n"})
		c := cfg.Connections[0]
		if c.RekeyTime != tt.rekey || c.ReauthTime != tt.reauth || c.OverTime != tt.over || c.RandTime != tt.rand_ {
			t.Errorf("%q: rekey %v reauth %v over %v rand %v, want %v %v %v %v", tt.set,
				c.RekeyTime, c.ReauthTime, c.OverTime, c.RandTime, tt.rekey, tt.reauth, tt.over, tt.rand_)
		}
	}
}

func TestChildLifetimeDefaults(t *testing.T) {
	tests := []struct {
		set  string
		want lifetime
	}{
		{"rekey_time = 30m", lifetime{RekeyTime: 30 * time.Minute, LifeTime: 33 * time.Minute, RandTime: 3 * time.Minute}},
		{"rekey_time = 1h\nlife_time = 90m", lifetime{RekeyTime: time.Hour, LifeTime: 90 * time.Minute, RandTime: 30 * time.Minute}},
		{"rand_time = 1m", lifetime{RekeyTime: time.Hour, LifeTime: 66 * time.Minute, RandTime: time.Minute}},
		{"rekey_bytes = 1g\nrekey_packets = 1000", lifetime{RekeyTime: time.Hour, LifeTime: 66 * time.Minute, RandTime: 6 * time.Minute,
			RekeyBytes: 1 << 30, LifeBytes: (1 << 30) * 11 / 10, RandBytes: (1<<30)*11/10 - 1<<30,
			RekeyPackets: 1000, LifePackets: 1100, RandPackets: 100}},
		{"life_packets = 5\nrand_packets = 1", lifetime{RekeyTime: time.Hour, LifeTime: 66 * time.Minute, RandTime: 6 * time.Minute,
			LifePackets: 5, RandPackets: 1}},
	}
	for _, tt := range tests {
		cfg := mustLoadMem(t, map[string]string{"swanctl.conf": "connections {\n c {\nchildren {\n x {\n" + tt.set + "\n}\n}\n}\n}\n"})
		if got := lifetimeOf(cfg.Connections[0].Children[0]); got != tt.want {
			t.Errorf("%q: %+v, want %+v", tt.set, got, tt.want)
		}
	}
}
