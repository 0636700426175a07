package ike

// XAuth (draft-beaulieu-ike-xauth-02): a second authentication round of
// IKEv1 after Main or Aggressive Mode, the user's name and password. The
// phase 1 auth method says it is used (XAUTH_INIT_PSK etc.: INIT when the
// phase 1 initiator is the XAuth client). The server, usually the
// responder, asks once phase 1 is done:
//
//	<-- HASH ATTR(CFG_REQUEST, XAUTH_USER_NAME, XAUTH_USER_PASSWORD)
//	    HASH ATTR(CFG_REPLY, XAUTH_USER_NAME=alice, XAUTH_USER_PASSWORD=...) -->
//	<-- HASH ATTR(CFG_SET, XAUTH_STATUS=OK|FAIL)
//	    HASH ATTR(CFG_ACK, XAUTH_STATUS) -->
//
// each request in a Transaction exchange of its own (v1_transaction.go).
// The ISAKMP SA counts as established, for Quick Mode and for the logs,
// only after the ACK of XAUTH_STATUS=OK; a failure ends it.

import (
	"context"
	"crypto/subtle"
	"fmt"

	"github.com/xdpsec/xdpsec/ike/isakmp"
)

// v1AuthMethodFor is the phase 1 auth method of the connection as the
// initiator (initiator) or responder proposes or selects it: the method
// of the first rounds, an XAuth one when a second round is XAuth.
func (c *connection) v1AuthMethodFor(initiator bool) isakmp.AuthMethod {
	base := c.v1AuthMethod()
	if !c.xauthClient() && !c.xauthServer() {
		return base
	}
	// INIT: the phase 1 initiator is the XAuth client.
	init := c.xauthClient() == initiator
	switch {
	case base == isakmp.AuthPSK && init:
		return isakmp.AuthXAuthInitPSK
	case base == isakmp.AuthPSK:
		return isakmp.AuthXAuthRespPSK
	case init:
		// XAuth has RSA methods only: charon uses them for any key.
		return isakmp.AuthXAuthInitRSA
	}
	return isakmp.AuthXAuthRespRSA
}

// xauthClientRole and xauthServerRole say which end of the negotiated
// XAuth round we are (neither without XAuth).
func (sa *v1SA) xauthClientRole() bool { return sa.xauthMethod != 0 && sa.conn.xauthClient() }
func (sa *v1SA) xauthServerRole() bool { return sa.xauthMethod != 0 && sa.conn.xauthServer() }

// phase1Complete follows the last phase 1 message: the ISAKMP SA is
// established, or XAuth starts (as the server) or is awaited (client).
func (sa *v1SA) phase1Complete() {
	sa.p1done = true
	switch {
	case sa.xauthServerRole():
		sa.leaveHalfOpen()
		sa.startXAuth()
		sa.releaseHeld()
	case sa.xauthClientRole():
		infof(sa.log, "waiting for XAuth request of %s", sa.remoteID)
		sa.leaveHalfOpen()
		sa.releaseHeld()
		// A gateway that never asks leaves us half-way (charon's
		// schedule_timeout).
		sa.after(sa.e.cfg.HalfOpenTimeout, func() {
			if sa.state != IKESAEstablished {
				infof(sa.log, "IKE_SA %s: no XAuth round completed in %v, destroying", sa.name(), sa.e.cfg.HalfOpenTimeout)
				sa.destroy()
			}
		})
	default:
		sa.established()
	}
}

// startXAuth asks the client for its user name and password.
func (sa *v1SA) startXAuth() {
	cp := &isakmp.ConfigAttributes{CfgType: isakmp.CfgRequest, Identifier: sa.txnIdentifier(), Attributes: []isakmp.Attribute{
		isakmp.ModeCfgAttribute(isakmp.XAuthUserName, nil), isakmp.ModeCfgAttribute(isakmp.XAuthUserPassword, nil)}}
	sa.txnRequest(cp, "XAuth request", sa.xauthReply)
}

// xauthReply checks the client's answer: against the EAP/XAuth secrets,
// or through the XAuthBackend for xauth-radius.
func (sa *v1SA) xauthReply(cp *isakmp.ConfigAttributes) {
	user, ok1 := cp.Find(isakmp.XAuthUserName)
	pass, ok2 := cp.Find(isakmp.XAuthUserPassword)
	if cp.CfgType != isakmp.CfgReply || !ok1 || !ok2 {
		sa.xauthStatus(sa.remoteID.String(), false, "peer did not respond to our XAuth request")
		return
	}
	name := string(user.Value)
	if name == "" {
		name = sa.remoteID.String()
	}
	password := pass.Value
	if n := len(password); n > 0 && password[n-1] == 0 {
		// Android and others terminate the password with a NUL.
		password = password[:n-1]
	}
	defer clear(pass.Value)
	if want := sa.conn.xauthRemote.XAuthID; want != "" && want != "%any" && want != name {
		sa.xauthStatus(name, false, fmt.Sprintf("user '%s' is not the configured xauth_id '%s'", name, want))
		return
	}
	if sa.conn.xauthRemote.Auth == AuthXAuthRadius {
		sa.xauthRADIUS(name, password)
		return
	}
	secret, found := sa.e.xauthSecret(name)
	if !found {
		sa.xauthStatus(name, false, fmt.Sprintf("no XAuth secret found for '%s'", name))
		return
	}
	defer clear(secret)
	if subtle.ConstantTimeCompare(secret, password) != 1 {
		sa.xauthStatus(name, false, "wrong password")
		return
	}
	sa.xauthStatus(name, true, "")
}

// xauthRADIUS asks the XAuthBackend about the user on a goroutine of its
// own; the answer comes back under the engine lock.
func (sa *v1SA) xauthRADIUS(name string, password []byte) {
	b := sa.e.cfg.XAuthBackend
	if b == nil {
		sa.xauthStatus(name, false, "no XAuth backend (RADIUS) configured for xauth-radius")
		return
	}
	req := XAuthRequest{User: name, Password: append([]byte(nil), password...), Remote: sa.remote, Local: sa.local,
		IKESAID: sa.id, Connection: sa.conn.Name}
	ctx, cancel := context.WithCancel(context.Background())
	sa.xauthCancel = cancel
	e := sa.e
	go func() {
		res, err := b.Authenticate(ctx, req)
		clear(req.Password)
		e.mu.Lock()
		defer e.unlock()
		cancel()
		if e.closed || sa.deleted || sa.xauthCancel == nil {
			return
		}
		sa.xauthCancel = nil
		defer e.recoverPanic(sa.remote)
		e.handle(sa)
		switch {
		case err != nil:
			sa.xauthStatus(name, false, fmt.Sprintf("XAuth backend: %v", err))
		case !res.Accept:
			sa.xauthStatus(name, false, fmt.Sprintf("rejected by %s", res.Server))
		default:
			sa.framedIP = res.FramedIP
			sa.xauthStatus(name, true, "")
		}
	}()
}

// xauthStatus tells the client the verdict (CFG_SET XAUTH_STATUS) and,
// once it acknowledged, establishes the ISAKMP SA or ends it.
func (sa *v1SA) xauthStatus(user string, ok bool, why string) {
	status := isakmp.XAuthStatusOK
	if ok {
		infof(sa.log, "XAuth authentication of '%s' successful", user)
		sa.eapIdentity = user
	} else {
		status = isakmp.XAuthStatusFail
		sa.e.stats.XAuthFailures++
		infof(sa.log, "XAuth authentication of '%s' failed: %s", user, why)
	}
	cp := &isakmp.ConfigAttributes{CfgType: isakmp.CfgSet, Identifier: sa.txnIdentifier(),
		Attributes: []isakmp.Attribute{isakmp.BasicAttr(isakmp.XAuthStatus, status)}}
	sa.txnRequest(cp, "XAuth status", func(ack *isakmp.ConfigAttributes) {
		if ack.CfgType != isakmp.CfgAck {
			sa.log.Info("received invalid XAuth status response")
			ok = false
		}
		if !ok {
			infof(sa.log, "destroying IKE_SA %s after failed XAuth authentication of '%s'", sa.name(), user)
			sa.destroy()
			return
		}
		sa.xauthDone()
	})
}

// xauthDone establishes the ISAKMP SA after a successful XAuth round:
// uniqueness applies to the XAuth user (road warriors share a group ID).
func (sa *v1SA) xauthDone() {
	if sa.conn.xauthServer() && sa.uniqueRefused("XAuth", sa.delete) {
		return
	}
	sa.established()
}

// xauthClientRequest answers the server as its client: the user name and
// password of our local XAuth round, then the ACK of the status.
func (sa *v1SA) xauthClientRequest(ex *v1Exchange, cp *isakmp.ConfigAttributes) {
	user := sa.conn.xauthLocal.XAuthID
	if user == "" {
		user = sa.localID.String()
	}
	switch cp.CfgType {
	case isakmp.CfgRequest:
		for _, a := range cp.Attributes {
			if isakmp.ModeCfgAttr(a.Type) == isakmp.XAuthMessage {
				infof(sa.log, "XAuth message: %s", printable(a.Value))
			}
		}
		reply := &isakmp.ConfigAttributes{CfgType: isakmp.CfgReply, Identifier: cp.Identifier}
		var password []byte
		for _, a := range cp.Attributes {
			switch isakmp.ModeCfgAttr(a.Type) {
			case isakmp.XAuthUserName:
				reply.Attributes = append(reply.Attributes, isakmp.ModeCfgAttribute(isakmp.XAuthUserName, []byte(user)))
			case isakmp.XAuthUserPassword:
				secret, found := sa.e.xauthSecret(user)
				if !found {
					infof(sa.log, "no XAuth password found for '%s' - '%s'", user, sa.remoteID)
					reply.Attributes = nil
					break
				}
				password = secret
				reply.Attributes = append(reply.Attributes, isakmp.ModeCfgAttribute(isakmp.XAuthUserPassword, password))
			}
		}
		sa.answerTxn(ex, reply)
		clear(password)
	case isakmp.CfgSet:
		status, ok := cp.Find(isakmp.XAuthStatus)
		v, _ := status.Uint()
		sa.answerTxn(ex, &isakmp.ConfigAttributes{CfgType: isakmp.CfgAck, Identifier: cp.Identifier,
			Attributes: []isakmp.Attribute{isakmp.ModeCfgAttribute(isakmp.XAuthStatus, nil)}})
		if !ok || v != uint64(isakmp.XAuthStatusOK) {
			sa.e.stats.XAuthFailures++
			infof(sa.log, "XAuth authentication of '%s' (myself) failed", user)
			sa.destroy()
			return
		}
		infof(sa.log, "XAuth authentication of '%s' (myself) successful", user)
		sa.eapIdentity = user
		sa.established()
	default:
		sa.e.stats.DroppedUnexpected++
		infof(sa.log, "ignoring XAuth %v", cp.CfgType)
	}
}

// xauthSecret is the password of an XAuth user: the secrets.eap or
// secrets.xauth entry naming it (charon keeps both as EAP secrets), a copy
// the caller clears.
func (e *Engine) xauthSecret(user string) ([]byte, bool) {
	if i := e.eapSecrets.lookup(user); i >= 0 {
		return append([]byte(nil), e.eapSecrets.list[i].Secret...), true
	}
	return nil, false
}

// printable replaces what a log line must not carry.
func printable(b []byte) string {
	out := []byte(string(b))
	for i, c := range out {
		if c < 0x20 || c > 0x7e {
			out[i] = '?'
		}
	}
	return string(out)
}
