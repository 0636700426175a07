package vici

import (
	"crypto/x509"
	"errors"
	"fmt"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/xdpsec/xdpsec/ike"
	"github.com/xdpsec/xdpsec/ike/message"
	"github.com/xdpsec/xdpsec/ike/swanctl"
	"github.com/xdpsec/xdpsec/internal/daemon"
)

// Version is what the version command reports as the daemon's version:
// the main module's version the binary was built from ("(devel)" for a
// build in a checkout).
var Version = func() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		return bi.Main.Version
	}
	return "(devel)"
}()

// handler answers one command; streamed ones send their events on c.
type handler func(s *Server, c *conn, req *Message) *Message

var handlers map[string]handler

func init() {
	handlers = map[string]handler{
		"version":          cmdVersion,
		"stats":            cmdStats,
		"list-sas":         cmdListSAs,
		"list-conns":       cmdListConns,
		"get-conns":        cmdGetConns,
		"get-pools":        cmdGetPools,
		"get-algorithms":   cmdGetAlgorithms,
		"list-certs":       cmdListCerts,
		"get-counters":     cmdGetCounters,
		"reset-counters":   cmdResetCounters,
		"list-authorities": cmdListAuthorities,
		"load-authority":   cmdLoadAuthority,
		"unload-authority": cmdUnloadAuthority,
		"list-policies":    cmdListPolicies,
		"install":          cmdInstall,
		"uninstall":        cmdUninstall,
		"load-pool":        cmdLoadPool,
		"unload-pool":      cmdUnloadPool,
		"initiate":         cmdInitiate,
		"terminate":        cmdTerminate,
		"rekey":            cmdRekey,
		"redirect":         cmdRedirect,
		"load-conn":        cmdLoadConn,
		"unload-conn":      cmdUnloadConn,
		"load-shared":      cmdLoadShared,
		"unload-shared":    cmdUnloadShared,
		"get-shared":       cmdGetShared,
		"reload-settings":  func(s *Server, c *conn, req *Message) *Message { return result(s.backend.ReloadSettings()) },
		"clear-creds":      func(s *Server, c *conn, req *Message) *Message { s.backend.ClearCreds(); return success() },
		"load-cert":        cmdLoadCert,
		"load-key":         cmdLoadKey,
		// There is no certificate cache (CRLs, OCSP, fetched
		// certificates) to flush.
		"flush-certs": func(*Server, *conn, *Message) *Message { return success() },
		"get-keys": func(s *Server, c *conn, req *Message) *Message {
			return NewMessage().SetList("keys", s.backend.KeyIDs())
		},
		"unload-key": func(s *Server, c *conn, req *Message) *Message {
			if req.Get("id") == "" {
				return errMsg(errors.New("unload-key: key id missing"))
			}
			return result(s.backend.UnloadKey(req.Get("id")))
		},
		// Those loaded over VICI, as get-conns: swanctl unloads the ones
		// its file no longer has, and the daemon's own are not its.
		"get-authorities": func(s *Server, c *conn, req *Message) *Message {
			var names []string
			for _, a := range s.backend.Authorities() {
				if a.VICI {
					names = append(names, a.Name)
				}
			}
			return NewMessage().SetList("authorities", names)
		},
	}
}

// viciCommands are all the commands of strongSwan 5.9's VICI: those we do
// not answer get an error that names them, others CMD_UNKNOWN.
var viciCommands = []string{
	"version", "stats", "reload-settings", "initiate", "terminate", "rekey", "redirect", "install", "uninstall",
	"list-sas", "list-policies", "list-conns", "get-conns", "list-certs", "list-authorities", "get-authorities",
	"load-conn", "unload-conn", "load-key", "unload-key", "get-keys", "load-token", "load-shared", "unload-shared",
	"get-shared", "flush-certs", "clear-creds", "load-authority", "unload-authority", "load-cert", "load-pool",
	"unload-pool", "get-pools", "get-algorithms", "get-counters", "reset-counters",
}

func (s *Server) command(c *conn, name string, req *Message) *Message {
	if h, ok := handlers[name]; ok {
		return h(s, c, req)
	}
	if slices.Contains(viciCommands, name) {
		return errMsg(fmt.Errorf("xdpsec does not support the VICI command '%s' yet", name))
	}
	s.log.Debug(fmt.Sprintf("vici: unknown command %q", name))
	return nil
}

func success() *Message { return NewMessage().Set("success", "yes") }

func errMsg(err error) *Message {
	return NewMessage().Set("success", "no").Set("errmsg", err.Error())
}

func result(err error) *Message {
	if err != nil {
		return errMsg(err)
	}
	return success()
}

func cmdVersion(s *Server, c *conn, req *Message) *Message {
	m := NewMessage().Set("daemon", "xdpsec").Set("version", Version)
	var u unix.Utsname
	if unix.Uname(&u) == nil {
		m.Set("sysname", unix.ByteSliceToString(u.Sysname[:])).Set("release", unix.ByteSliceToString(u.Release[:])).
			Set("machine", unix.ByteSliceToString(u.Machine[:]))
	} else {
		m.Set("sysname", runtime.GOOS).Set("release", "").Set("machine", runtime.GOARCH)
	}
	return m
}

func cmdStats(s *Server, c *conn, req *Message) *Message {
	resp := s.backend.Handle(daemon.Request{Command: daemon.CmdListSAs})
	total, half := 0, 0
	for _, sa := range resp.SAs {
		total++
		if sa.State == "CREATED" || sa.State == "CONNECTING" {
			half++
		}
	}
	m := NewMessage()
	up := m.Section("uptime")
	up.Set("running", humanDuration(time.Since(s.started)))
	up.Set("since", s.started.Format("Jan 02 15:04:05 2006"))
	// Go has no worker pool to report: the runtime's threads stand in.
	w := m.Section("workers")
	w.Set("total", strconv.Itoa(runtime.GOMAXPROCS(0))).Set("idle", strconv.Itoa(runtime.GOMAXPROCS(0)))
	a := w.Section("active")
	q := m.Section("queues")
	for _, p := range []string{"critical", "high", "medium", "low"} {
		a.Set(p, "0")
		q.Set(p, "0")
	}
	m.Set("scheduled", "0")
	ik := m.Section("ikesas")
	ik.Set("total", strconv.Itoa(total)).Set("half-open", strconv.Itoa(half))
	m.SetList("plugins", []string{"vici"})
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	mem := m.Section("mem")
	mem.Set("total", strconv.FormatUint(ms.HeapAlloc, 10)).Set("allocs", strconv.FormatUint(ms.HeapObjects, 10))
	return m
}

// humanDuration prints an uptime as charon does ("2 days, 03:04:05"
// becomes "2 days", "5 minutes", ...): its largest unit.
func humanDuration(d time.Duration) string {
	secs := int64(d / time.Second)
	unit := func(n int64, u string) string {
		if n == 1 {
			return "1 " + u
		}
		return fmt.Sprintf("%d %ss", n, u)
	}
	switch {
	case secs >= 86400:
		return unit(secs/86400, "day")
	case secs >= 3600:
		return unit(secs/3600, "hour")
	case secs >= 60:
		return unit(secs/60, "minute")
	}
	return unit(secs, "second")
}

func cmdListSAs(s *Server, c *conn, req *Message) *Message {
	resp := s.backend.Handle(daemon.Request{Command: daemon.CmdListSAs, IKE: req.Get("ike")})
	var id uint64
	if v := req.Get("ike-id"); v != "" {
		id, _ = strconv.ParseUint(v, 10, 32)
	} else if v := req.Get("ike_id"); v != "" {
		id, _ = strconv.ParseUint(v, 10, 32)
	}
	for _, sa := range resp.SAs {
		if id != 0 && uint64(sa.UniqueID) != id {
			continue
		}
		m := NewMessage()
		m.AddSection(sa.Name, ikeSAMessage(sa, sa.Children))
		c.stream("list-sa", m)
	}
	return NewMessage()
}

func cmdListConns(s *Server, c *conn, req *Message) *Message {
	resp := s.backend.Handle(daemon.Request{Command: daemon.CmdListConns})
	name := req.Get("ike")
	for _, ci := range resp.Conns {
		if name != "" && ci.Name != name {
			continue
		}
		m := NewMessage()
		m.AddSection(ci.Name, connMessage(ci))
		c.stream("list-conn", m)
	}
	return NewMessage()
}

func cmdGetConns(s *Server, c *conn, req *Message) *Message {
	return NewMessage().SetList("conns", s.backend.VICIConns())
}

func cmdGetPools(s *Server, c *conn, req *Message) *Message {
	leases := req.Get("leases") == "yes"
	resp := s.backend.Handle(daemon.Request{Command: daemon.CmdListPools, Leases: leases})
	m := NewMessage()
	name := req.Get("name")
	for _, p := range resp.Pools {
		if name != "" && p.Name != name {
			continue
		}
		ps := m.Section(p.Name)
		ps.Set("base", p.ConfBase).Set("size", strconv.FormatUint(p.Size, 10)).
			Set("online", strconv.Itoa(p.Online)).Set("offline", strconv.Itoa(p.Offline))
		if leases {
			ls := ps.Section("leases")
			for i, l := range p.Leases {
				status := "offline"
				if l.Online {
					status = "online"
				}
				ls.Section(strconv.Itoa(i)).Set("address", l.Addr.String()).Set("identity", l.Identity).Set("status", status)
			}
		}
	}
	return m
}

// controlRequest reads the arguments initiate, terminate and rekey share.
func controlRequest(cmd string, req *Message) (daemon.Request, error) {
	r := daemon.Request{Command: cmd, IKE: req.Get("ike"), Child: req.Get("child")}
	if cmd == daemon.CmdRedirect {
		// redirect's: the IKE SAs of a peer address (or prefix) and
		// the gateway to send them to.
		if req.Get("peer-id") != "" {
			return r, errors.New("redirect: selecting IKE SAs by peer-id is not supported (use ike, ike-id or peer-ip)")
		}
		r.Peer, r.Gateway = req.Get("peer-ip"), req.Get("gateway")
	}
	for _, k := range []struct {
		key string
		dst *uint32
	}{{"ike-id", &r.IKEID}, {"ike_id", &r.IKEID}, {"child-id", &r.ChildID}, {"child_id", &r.ChildID}} {
		if v := req.Get(k.key); v != "" {
			n, err := strconv.ParseUint(v, 10, 32)
			if err != nil {
				return r, fmt.Errorf("%s: %q is not a unique id", k.key, v)
			}
			*k.dst = uint32(n)
		}
	}
	if v := req.Get("timeout"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			return r, fmt.Errorf("timeout: %q is not a number of milliseconds", v)
		}
		// charon: 0 waits for the result, -1 does not wait.
		switch {
		case n == 0:
			r.TimeoutMS = int((5 * time.Minute) / time.Millisecond)
		case n < 0:
			r.TimeoutMS = -1
		default:
			r.TimeoutMS = n
		}
	} else {
		r.TimeoutMS = int((5 * time.Minute) / time.Millisecond)
	}
	return r, nil
}

// control runs initiate, terminate or rekey and streams the log lines of
// the IKE SAs it acts on as control-log events, as charon does.
func (s *Server) control(c *conn, cmd string, req *Message) *Message {
	r, err := controlRequest(cmd, req)
	if err != nil {
		return errMsg(err)
	}
	level := 1
	if v := req.Get("loglevel"); v != "" {
		if level, err = strconv.Atoi(v); err != nil {
			return errMsg(fmt.Errorf("loglevel: %q is not a number", v))
		}
	}
	ikeName := r.IKE
	if ikeName == "" && r.Child != "" {
		ikeName = s.connOfChild(r.Child)
	}
	c.mu.Lock()
	c.control = &controlFilter{ike: ikeName, level: level}
	c.mu.Unlock()
	resp := s.backend.Handle(r)
	c.mu.Lock()
	c.control = nil
	c.mu.Unlock()
	if !resp.OK {
		return errMsg(errors.New(resp.Error))
	}
	m := success()
	if cmd != daemon.CmdInitiate {
		// charon counts what it matched (swanctl --rekey prints it).
		m.Set("matches", "1")
	}
	return m
}

// cmdInstall installs a child's trap policies (swanctl --install), as
// charon's: child names the CHILD_SA config, ike optionally its
// connection.
func cmdInstall(s *Server, c *conn, req *Message) *Message {
	return trapCommand(s, req, daemon.CmdInstall)
}

// cmdUninstall removes a child's trap policies (swanctl --uninstall).
func cmdUninstall(s *Server, c *conn, req *Message) *Message {
	return trapCommand(s, req, daemon.CmdUninstall)
}

func trapCommand(s *Server, req *Message, cmd string) *Message {
	if req.Get("child") == "" {
		return errMsg(errors.New("missing configuration name"))
	}
	resp := s.backend.Handle(daemon.Request{Command: cmd, IKE: req.Get("ike"), Child: req.Get("child")})
	if !resp.OK {
		return errMsg(errors.New(resp.Error))
	}
	return success()
}

// cmdListPolicies streams the trap policies as list-policy events, each
// in a section "connection/child" with charon's keys. xdpsec has no pass
// or drop policies (shunts): asking for those alone lists nothing. With
// none of trap, drop and pass asked for, traps are listed.
func cmdListPolicies(s *Server, c *conn, req *Message) *Message {
	trap, drop, pass := req.Get("trap") != "", req.Get("drop") != "", req.Get("pass") != ""
	if !trap && (drop || pass) {
		return NewMessage()
	}
	child, ikeName := req.Get("child"), req.Get("ike")
	for _, p := range s.backend.Handle(daemon.Request{Command: daemon.CmdListPolicies}).Policies {
		if child != "" && p.Child != child || ikeName != "" && p.IKE != ikeName {
			continue
		}
		m := NewMessage()
		sec := m.Section(p.IKE + "/" + p.Child)
		sec.Set("child", p.Child).Set("ike", p.IKE).Set("mode", strings.ToUpper(p.Mode))
		sec.SetList("local-ts", p.LocalTS).SetList("remote-ts", p.RemoteTS)
		c.stream("list-policy", m)
	}
	return NewMessage()
}

func cmdInitiate(s *Server, c *conn, req *Message) *Message {
	return s.control(c, daemon.CmdInitiate, req)
}

func cmdTerminate(s *Server, c *conn, req *Message) *Message {
	return s.control(c, daemon.CmdTerminate, req)
}

func cmdRekey(s *Server, c *conn, req *Message) *Message {
	return s.control(c, daemon.CmdRekey, req)
}

func cmdRedirect(s *Server, c *conn, req *Message) *Message {
	return s.control(c, daemon.CmdRedirect, req)
}

// certKeys of authentication rounds carry file contents over VICI
// (swanctl reads the files and sends their data); pubkeys (raw public
// keys) xdpsec does not support.
var certKeys = map[string]bool{"certs": true, "cacerts": true}

// listKeys are the swanctl.conf keys swanctl sends as VICI lists.
func cmdLoadConn(s *Server, c *conn, req *Message) *Message {
	root := &swanctl.Tree{}
	conns := root.Sub("connections")
	certs := map[string]daemon.RoundCerts{}
	n := 0
	for _, e := range req.Elements {
		if e.Kind != KindSection {
			return errMsg(fmt.Errorf("load-conn: %q is not a connection section", e.Key))
		}
		t, err := toTree(e.Key, e.Section, "connections."+e.Key, 0, certs)
		if err != nil {
			return errMsg(err)
		}
		conns.Subs = append(conns.Subs, t)
		n++
	}
	if n == 0 {
		return errMsg(errors.New("load-conn: no connection given"))
	}
	return result(s.backend.LoadConn(root, certs))
}

// toTree turns a VICI section into a swanctl.Tree. The certificates of
// authentication rounds (depth 1 under a connection: local*, remote*)
// go to certs by the round's path instead, as data.
func toTree(name string, m *Message, path string, depth int, certs map[string]daemon.RoundCerts) (*swanctl.Tree, error) {
	if depth > MaxDepth {
		return nil, fmt.Errorf("%s: nested too deep", path)
	}
	t := &swanctl.Tree{Name: name}
	round := depth == 1 && certs != nil && (strings.HasPrefix(name, "local") || strings.HasPrefix(name, "remote"))
	for _, e := range m.Elements {
		key := path + "." + e.Key
		if e.Key == "pubkeys" {
			return nil, fmt.Errorf("%s: raw public keys are not supported yet", key)
		}
		if round && certKeys[e.Key] {
			var blobs [][]byte
			switch e.Kind {
			case KindValue:
				blobs = [][]byte{e.Value}
			case KindList:
				blobs = e.List
			default:
				return nil, fmt.Errorf("%s: want certificate data", key)
			}
			rc := certs[path]
			if e.Key == "certs" {
				rc.Certs = append(rc.Certs, blobs...)
			} else {
				rc.CACerts = append(rc.CACerts, blobs...)
			}
			certs[path] = rc
			continue
		}
		switch e.Kind {
		case KindValue:
			t.Set(e.Key, string(e.Value))
		case KindList:
			vals := make([]string, len(e.List))
			for i, v := range e.List {
				if strings.Contains(string(v), ",") {
					return nil, fmt.Errorf("%s: list item %q holds a comma", key, v)
				}
				vals[i] = string(v)
			}
			t.Set(e.Key, strings.Join(vals, ", "))
		case KindSection:
			sub, err := toTree(e.Key, e.Section, key, depth+1, certs)
			if err != nil {
				return nil, err
			}
			t.Subs = append(t.Subs, sub)
		}
	}
	return t, nil
}

func cmdLoadPool(s *Server, c *conn, req *Message) *Message {
	root := &swanctl.Tree{}
	pools := root.Sub("pools")
	for _, e := range req.Elements {
		if e.Kind != KindSection {
			return errMsg(fmt.Errorf("load-pool: %q is not a pool section", e.Key))
		}
		t, err := toTree(e.Key, e.Section, "pools."+e.Key, 0, nil)
		if err != nil {
			return errMsg(err)
		}
		pools.Subs = append(pools.Subs, t)
	}
	if len(pools.Subs) == 0 {
		return errMsg(errors.New("load-pool: no pool given"))
	}
	return result(s.backend.LoadPool(root))
}

func cmdUnloadPool(s *Server, c *conn, req *Message) *Message {
	name := req.Get("name")
	if name == "" {
		return errMsg(errors.New("unload-pool: missing pool name"))
	}
	return result(s.backend.UnloadPool(name))
}

func cmdUnloadConn(s *Server, c *conn, req *Message) *Message {
	name := req.Get("name")
	if name == "" {
		return errMsg(errors.New("unload-conn: missing connection name to unload"))
	}
	return result(s.backend.UnloadConn(name))
}

func cmdLoadShared(s *Server, c *conn, req *Message) *Message {
	sh := Shared{ID: req.Get("id"), Type: strings.ToUpper(req.Get("type")), Owners: req.GetList("owners")}
	if e := req.find("data", KindValue); e != nil {
		sh.Data = e.Value
	}
	switch sh.Type {
	case "IKE", "EAP":
	case "XAUTH":
		// charon keeps XAuth passwords as EAP secrets (vici_cred.c):
		// one user may log in with either.
		sh.Type = "EAP"
	case "":
		return errMsg(errors.New("load-shared: type missing"))
	default:
		return errMsg(fmt.Errorf("load-shared: shared secrets of type %s are not supported", sh.Type))
	}
	if len(sh.Data) == 0 {
		return errMsg(errors.New("load-shared: data missing"))
	}
	err := s.backend.LoadShared(sh)
	clear(sh.Data)
	if err != nil {
		return errMsg(err)
	}
	return success()
}

func cmdUnloadShared(s *Server, c *conn, req *Message) *Message {
	id := req.Get("id")
	if id == "" {
		return errMsg(errors.New("unload-shared: unique identifier missing"))
	}
	return result(s.backend.UnloadShared(id))
}

func cmdGetShared(s *Server, c *conn, req *Message) *Message {
	return NewMessage().SetList("keys", s.backend.SharedIDs())
}

// cmdListCerts streams the X.509 certificates the daemon loaded as
// list-cert events (type X509, flag CA for trust anchors). Filters by
// type, flag and subject as charon's; other types (CRLs, attribute
// certificates, raw public keys) xdpsec does not load.
func cmdListCerts(s *Server, c *conn, req *Message) *Message {
	typ, flag := strings.ToUpper(req.Get("type")), strings.ToUpper(req.Get("flag"))
	var subject *ike.Identity
	if v := req.Get("subject"); v != "" {
		id, err := ike.ParseIdentity(v)
		if err != nil {
			return errMsg(fmt.Errorf("subject: %v", err))
		}
		subject = &id
	}
	if typ != "" && typ != "ANY" && typ != "X509" {
		return NewMessage()
	}
	for _, cert := range s.backend.Certs() {
		f := "NONE"
		if cert.CA {
			f = "CA"
		}
		if flag != "" && flag != "ANY" && flag != f {
			continue
		}
		if subject != nil {
			x, err := x509.ParseCertificate(cert.DER)
			if err != nil || !subject.Equal(ike.Identity{Type: message.ID_DER_ASN1_DN, Data: x.RawSubject}) &&
				!slices.ContainsFunc(x.DNSNames, func(n string) bool { return strings.EqualFold(n, string(subject.Data)) }) {
				continue
			}
		}
		m := NewMessage().Set("type", "X509").Set("flag", f)
		if cert.HasKey {
			m.Set("has_privkey", "yes")
		}
		m.put(Element{Kind: KindValue, Key: "data", Value: cert.DER})
		c.stream("list-cert", m)
	}
	return NewMessage()
}

// counterConns are the connections get-counters and reset-counters act
// on: name, every loaded one (all = yes), or the global counters ("").
func (s *Server) counterConns(req *Message) []string {
	if req.Get("all") == "yes" {
		var names []string
		for _, c := range s.backend.Handle(daemon.Request{Command: daemon.CmdListConns}).Conns {
			names = append(names, c.Name)
		}
		return names
	}
	return []string{req.Get("name")}
}

// cmdGetCounters answers as charon's counters plugin: the counters of
// each connection asked for in a section of its name, the global ones in
// the section "".
func cmdGetCounters(s *Server, c *conn, req *Message) *Message {
	m := NewMessage()
	cs := m.Section("counters")
	for _, name := range s.counterConns(req) {
		counters := s.backend.Counters(name)
		sec := cs.Section(name)
		for i, v := range counters {
			sec.Set(ike.Counter(i).String(), u64(v))
		}
	}
	return m.Set("success", "yes")
}

func cmdResetCounters(s *Server, c *conn, req *Message) *Message {
	for _, name := range s.counterConns(req) {
		s.backend.ResetCounters(name)
	}
	return success()
}

// connOfChild names the connection of a CHILD_SA config, "" if unknown.
func (s *Server) connOfChild(child string) string {
	for _, c := range s.backend.Handle(daemon.Request{Command: daemon.CmdListConns}).Conns {
		for _, ch := range c.Children {
			if ch.Name == child {
				return c.Name
			}
		}
	}
	return ""
}

// cmdLoadCert loads an X.509 certificate (flag CA: a trust anchor).
// Other types (CRLs, attribute certificates, public keys) are refused.
func cmdLoadCert(s *Server, c *conn, req *Message) *Message {
	typ, flag := strings.ToUpper(req.Get("type")), strings.ToUpper(req.Get("flag"))
	if typ != "X509" {
		return errMsg(fmt.Errorf("load-cert: certificates of type %s are not supported", typ))
	}
	if flag != "" && flag != "NONE" && flag != "CA" {
		return errMsg(fmt.Errorf("load-cert: X.509 certificates with flag %s are not supported", flag))
	}
	e := req.find("data", KindValue)
	if e == nil || len(e.Value) == 0 {
		return errMsg(errors.New("load-cert: data missing"))
	}
	return result(s.backend.LoadCert(e.Value, flag == "CA"))
}

// cmdLoadKey loads a private key. Its data is a secret: it goes to the
// backend and is zeroed here.
func cmdLoadKey(s *Server, c *conn, req *Message) *Message {
	e := req.find("data", KindValue)
	if e == nil || len(e.Value) == 0 {
		return errMsg(errors.New("load-key: data missing"))
	}
	defer clear(e.Value)
	switch t := strings.ToLower(req.Get("type")); t {
	case "rsa", "ecdsa", "ed25519", "any", "":
	default:
		return errMsg(fmt.Errorf("load-key: keys of type %s are not supported", t))
	}
	// swanctl keeps the id to unload keys whose files are gone.
	id, err := s.backend.LoadKey(e.Value)
	if err != nil {
		return errMsg(err)
	}
	return success().Set("id", id)
}

// authorityKeys are the keys of a load-authority section xdpsec takes;
// tokenKeys are charon's for a CA certificate on a PKCS#11 token.
var (
	authorityKeys = []string{"cacert", "file", "crl_uris", "ocsp_uris", "cert_uri_base"}
	tokenKeys     = []string{"handle", "slot", "module"}
)

// cmdLoadAuthority loads a certification authority: one section named
// after it, with cacert (the certificate's data) or file (a path the
// daemon reads), crl_uris, ocsp_uris and cert_uri_base. The URIs are
// kept and listed: xdpsec fetches no CRLs or OCSP responses.
func cmdLoadAuthority(s *Server, c *conn, req *Message) *Message {
	var sec *Element
	for i := range req.Elements {
		e := &req.Elements[i]
		if e.Kind != KindSection || sec != nil {
			return errMsg(fmt.Errorf("load-authority: want one authority section, got %q", e.Key))
		}
		sec = e
	}
	if sec == nil {
		return errMsg(errors.New("load-authority: no authority given"))
	}
	a := daemon.VICIAuthority{Name: sec.Key}
	for _, e := range sec.Section.Elements {
		key := "authorities." + sec.Key + "." + e.Key
		switch {
		case slices.Contains(tokenKeys, e.Key):
			return errMsg(fmt.Errorf("load-authority: %s: CA certificates on tokens (PKCS#11) are not supported", key))
		case !slices.Contains(authorityKeys, e.Key):
			return errMsg(fmt.Errorf("load-authority: %s: unknown key", key))
		}
		vals := e.List
		if e.Kind == KindValue {
			vals = [][]byte{e.Value}
		} else if e.Kind != KindList {
			return errMsg(fmt.Errorf("load-authority: %s: want a value", key))
		}
		var strs []string
		for _, v := range vals {
			strs = append(strs, string(v))
		}
		switch e.Key {
		case "cacert":
			if len(vals) != 1 {
				return errMsg(fmt.Errorf("load-authority: %s: want one certificate", key))
			}
			a.CACert = vals[0]
		case "file":
			a.File = strings.Join(strs, "")
		case "crl_uris":
			a.CRLURIs = splitURIs(strs)
		case "ocsp_uris":
			a.OCSPURIs = splitURIs(strs)
		case "cert_uri_base":
			a.CertURIBase = strings.Join(strs, "")
		}
	}
	return result(s.backend.LoadAuthority(a))
}

// splitURIs takes a list or a comma-separated value.
func splitURIs(vals []string) []string {
	var out []string
	for _, v := range vals {
		for _, u := range strings.Split(v, ",") {
			if u = strings.TrimSpace(u); u != "" {
				out = append(out, u)
			}
		}
	}
	return out
}

func cmdUnloadAuthority(s *Server, c *conn, req *Message) *Message {
	name := req.Get("name")
	if name == "" {
		return errMsg(errors.New("unload-authority: missing authority name"))
	}
	return result(s.backend.UnloadAuthority(name))
}

// cmdListAuthorities streams the authorities as charon's list-authority
// events: the CA certificate's subject, the URIs.
func cmdListAuthorities(s *Server, c *conn, req *Message) *Message {
	name := req.Get("name")
	for _, a := range s.backend.Authorities() {
		if name != "" && a.Name != name {
			continue
		}
		m := NewMessage()
		sec := m.Section(a.Name)
		sec.Set("cacert", ike.Identity{Type: message.ID_DER_ASN1_DN, Data: a.Cert.RawSubject}.String())
		sec.SetList("crl_uris", a.CRLURIs).SetList("ocsp_uris", a.OCSPURIs)
		if a.CertURIBase != "" {
			sec.Set("cert_uri_base", a.CertURIBase)
		}
		c.stream("list-authority", m)
	}
	return NewMessage()
}
